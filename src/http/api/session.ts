// Cookie sign-in for the web UI: POST /signin, /signin/verify, /signout (Quay's endpoints/api/user.py),
// plus /detachexternal/{service_id}. /externallogin/{service_id} lives in ./external-login.ts.
import { Type } from 'typebox';
import type { FastifyReply } from 'fastify';
import { detachFederatedLogin } from '../../model/user-account.ts';
import { endSession, signIn, signOut, verifyFreshLogin } from '../../model/sessions.ts';
import { clearSessionCookie, issueLoginCookie, readSession, rotateCsrf } from '../session-cookie.ts';
import { requireScope, requireUser } from './auth.ts';
import { defineRoute, type AnyRoute } from './route.ts';

const Success = Type.Object({ success: Type.Boolean() });

const SigninUser = Type.Object({
  username: Type.String({ description: "The user's username" }),
  password: Type.String({ description: "The user's password" }),
  invite_code: Type.Optional(Type.String({ description: 'The optional invite code' })),
}, { description: 'Information required to sign in a user.' });

const VerifyUser = Type.Object({
  password: Type.String({ description: "The user's password" }),
}, { description: 'Information required to verify the signed in user.' });

function deny(reply: FastifyReply, body: Record<string, unknown>): FastifyReply {
  return reply.code(403).type('application/json').send(body);
}

export const sessionRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST', path: '/signin', nickname: 'signinUser', tag: 'user', features: ['DIRECT_LOGIN'], internal: true,
    anonAllowed: true, readonlyAllowed: true,
    description: 'Sign in the user with the specified credentials.',
    body: SigninUser, bodyName: 'SigninUser', response: Success,
    async handler(req, reply, env) {
      const { ctx } = env;
      const before = await readSession(ctx, req);
      const r = await signIn(ctx.services, req.body.username, req.body.password, { ip: req.ip, userAgent: req.headers['user-agent'] ?? '' });
      if (!r.ok) {
        return deny(reply, { needsEmailVerification: r.needsEmailVerification, invalidCredentials: r.invalidCredentials, message: r.message });
      }
      // The browser's previous session (maybe someone else's) is replaced, not kept alive beside it.
      if (before.session) await endSession(ctx.services, before.session.id);
      issueLoginCookie(ctx, req, reply, r.sid, r.session, r.user);
      return { success: true };
    },
  }),
  defineRoute({
    method: 'POST', path: '/signin/verify', nickname: 'verifyUser', tag: 'user', scopes: ['user:admin'], internal: true,
    readonlyAllowed: true,
    description: 'Verifies the signed in the user with the specified credentials.',
    body: VerifyUser, bodyName: 'VerifyUser', response: Success,
    async handler(req, reply, env) {
      const { ctx } = env;
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const st = await readSession(ctx, req);
      const session = p.via === 'session' ? st.session : null;
      const r = await verifyFreshLogin(ctx.services, p.userId, req.body.password, session?.id ?? null);
      if (!r.ok) return deny(reply, { message: r.message, invalidCredentials: true });
      if (session) await rotateCsrf(ctx, req, reply);
      return { success: true };
    },
  }),
  defineRoute({
    method: 'POST', path: '/signout', nickname: 'logout', tag: 'user', internal: true, anonAllowed: true,
    description: 'Request that the current user be signed out.',
    response: Success,
    async handler(req, reply, env) {
      const { ctx } = env;
      await signOut(ctx.services, req.principal, req.ip);
      clearSessionCookie(ctx, req, reply);
      return { success: true };
    },
  }),
  defineRoute({
    method: 'POST', path: '/detachexternal/{service_id}', nickname: 'detachExternalLogin', tag: 'user', scopes: ['user:admin'],
    features: ['DIRECT_LOGIN'], internal: true,
    description: 'Request that the current user be detached from the external login service.',
    params: Type.Object({ service_id: Type.String() }), response: Success,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      await detachFederatedLogin(env.ctx.services, p, req.params.service_id, req.ip);
      return { success: true };
    },
  }),
];

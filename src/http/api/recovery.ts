// Password recovery e-mails (FEATURE_MAILING): POST /api/v1/recovery for anyone who knows an
// address, and POST /api/v1/superusers/users/{username}/sendrecovery for superusers. The code in
// the e-mail is consumed by GET /recovery (src/http/web/recovery.ts).
import { Type } from 'typebox';
import { baseUrl } from '../context.ts';
import { requestRecovery, sendRecoveryForUser } from '../../model/recovery.ts';
import { findHuman, isSuperuserName } from '../../model/superuser.ts';
import { DomainError } from '../../model/errors.ts';
import { ApiError } from './errors.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { requireSuperuser } from './superuser-access.ts';
import { StringEnum } from './string-enum.ts';

const RequestRecovery = Type.Object({
  email: Type.String({ description: "The user's email address" }),
  recaptcha_response: Type.Optional(Type.String({ description: 'The (may be disabled) recaptcha response code for verification' })),
}, { description: 'Information required to sign in a user.' });

const RecoveryResponse = Type.Object({
  status: StringEnum(['sent', 'org'] as const, 'The status of the recovery request'),
  orgemail: Type.Optional(Type.String({ description: "The organization email (only present when status is 'org')" })),
  orgname: Type.Optional(Type.String({ description: "The redacted organization name (only present when status is 'org')" })),
}, { description: 'Response from password recovery request' });

export const recoveryRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST', path: '/recovery', nickname: 'requestRecoveryEmail', tag: 'user', features: ['MAILING'], internal: true, anonAllowed: true,
    description: 'Request a password recovery email.',
    body: RequestRecovery, bodyName: 'RequestRecovery', response: RecoveryResponse, responseName: 'RecoveryResponse',
    async handler(req, _reply, env) {
      return requestRecovery(env.ctx.services, req.body.email, baseUrl(env.ctx, req));
    },
  }),
  defineRoute({
    method: 'POST', path: '/superusers/users/{username}/sendrecovery', nickname: 'sendInstallUserRecoveryEmail', tag: 'superuser',
    scopes: ['super:user'], features: ['SUPER_USERS', 'MAILING'], internal: true,
    params: Type.Object({ username: Type.String() }),
    response: Type.Object({ email: Type.String() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireSuperuser(req, env.ctx, 'write');
      const user = await findHuman(s, req.params.username);
      if (!user) throw new ApiError('not_found', 'Not Found');
      if (await isSuperuserName(s, user.username)) throw new ApiError('invalid_request', 'Cannot send a recovery email for a superuser');
      try {
        return { email: await sendRecoveryForUser(s, user, baseUrl(env.ctx, req)) };
      } catch (e) {
        if (e instanceof DomainError && e.code === 'invalid_request') throw new ApiError('invalid_request', e.message);
        throw e;
      }
    },
  }),
];

// The external login callbacks (Quay's oauthlogin blueprint): a provider sends the browser back to
// /oauth2/<service>/callback (sign in) or /oauth2/<service>/callback/attach (link the identity to
// the signed-in account) with `code` and `state`.
//
// As in Quay: an attach without a session is a 401 and a bad `state` a 403, both {"error": …};
// a failed login is a 400 page naming the service and the reason; success signs the browser in
// (a new session cookie) and redirects to the index, or to /updateuser when the account has prompts.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { baseUrl } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import { finishExternalLogin, type LoginKind } from '../../model/external-login.ts';
import { findLoginService } from '../../model/login-providers.ts';
import { escapeHtml } from '../../model/mailer.ts';
import { issueLoginCookie, readSession } from '../session-cookie.ts';

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('Cache-Control', 'no-cache, no-store, must-revalidate');
}

function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return noStore(reply).code(status).type('application/json').send(body);
}

function page(ctx: HttpContext, reply: FastifyReply, status: number, heading: string, text: string): FastifyReply {
  const title = escapeHtml(ctx.services.config.registryTitle);
  const body = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>`
    + `<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto"><h1>${escapeHtml(heading)}</h1>`
    + `<p style="white-space: pre-line">${escapeHtml(text)}</p><p><a href="/">Return to ${title}</a></p></body></html>\n`;
  return noStore(reply).code(status).type('text/html; charset=utf-8').header('X-Frame-Options', 'DENY').send(body);
}

/** Quay's request.values: query string and form body (the query wins). */
function value(req: FastifyRequest, name: string): string | undefined {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const b = req.body && typeof req.body === 'object' && !Array.isArray(req.body) ? req.body as Record<string, unknown> : {};
  const v = q[name] ?? b[name];
  if (typeof v === 'string') return v;
  return Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;
}

async function callback(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply, kind: LoginKind): Promise<FastifyReply> {
  const s = ctx.services;
  const svc = findLoginService(s, (req.params as { service: string }).service);
  if (!svc) return page(ctx, reply, 404, 'Not Found', 'The requested URL was not found on the server.');
  const st = await readSession(ctx, req);
  const r = await finishExternalLogin(s, svc, {
    kind, state: value(req, 'state'), code: value(req, 'code'), error: value(req, 'error'),
    browserSecret: st.csrf, sessionUser: st.user, sessionId: st.session?.id ?? null,
  });
  switch (r.kind) {
    case 'login_required':
      return json(reply, 401, { error: 'Method requires login and no valid login could be loaded.' });
    case 'bad_state':
      return json(reply, 403, { error: 'CSRF token was invalid or missing.' });
    case 'error':
      return page(ctx, reply, 400, `There was an error signing in with ${r.serviceName}`, r.message);
    case 'attached':
      return noStore(reply).code(302).header('Location', `${baseUrl(ctx, req)}/user/${encodeURIComponent(r.user.username)}?tab=external`).send();
    case 'signed_in':
      issueLoginCookie(ctx, req, reply, r.sid, r.session, r.user);
      return noStore(reply).code(302).header('Location', `${baseUrl(ctx, req)}${r.redirect}`).send();
  }
}

export async function registerWebExternalLogin(app: AppInstance, ctx: HttpContext): Promise<void> {
  await app.register(async (web) => {
    web.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    // Quay registers GET and POST for both; the routes answer 404 for services that are not configured.
    web.route({ method: ['GET', 'POST'], url: '/oauth2/:service/callback', handler: (req, reply) => callback(ctx, req, reply, 'login') });
    web.route({ method: ['GET', 'POST'], url: '/oauth2/:service/callback/attach', handler: (req, reply) => callback(ctx, req, reply, 'attach') });
  });
}

// Web routes Quay clients use outside /api/v1: GET /csrf_token, and the OAuth 2 authorization
// server (/oauth/authorize consent page, /oauth/authorizeapp, /oauth/denyapp, /oauth/access_token,
// /oauth/authorize/assignuser, and the local handler page that shows a freshly issued token).
//
// Errors follow Quay's OAuth provider: a bad redirect URI is a 400 {"error": "invalid_request"}
// (never a redirect to an unverified URI); anything else redirects to the client with `error=` in
// the query. `state` comes back on every redirect.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { baseUrl } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import type { User } from '../../model/accounts.ts';
import { findUserById } from '../../model/accounts.ts';
import { principalFor } from '../../model/context.ts';
import { authenticateBasic } from '../../model/registry-auth.ts';
import { orgRole } from '../../model/permissions.ts';
import { DomainError } from '../../model/errors.ts';
import {
  alreadyAuthorized, applicationByClientId, assignToken, exchangeCode, grantCode, grantToken, mayAuthorize, parseScopes,
  redirectUriAllowed, scopeInformation, type OAuthApplication,
} from '../../model/oauth.ts';
import { csrfMatches, ensureCsrfToken, presentedCsrf, readSession } from '../session-cookie.ts';
import { parseBasic } from '../registry/auth.ts';

type Values = Record<string, string | undefined>;

/** Quay's request.values: query string and form body together (the query wins, as in Werkzeug). */
function values(req: FastifyRequest): Values {
  const out: Values = {};
  const body = req.body;
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(body as Record<string, unknown>)) if (typeof v === 'string') out[k] = v;
  }
  for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else if (Array.isArray(v) && typeof v[0] === 'string') out[k] = v[0];
  }
  return out;
}

function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('Cache-Control', 'no-cache, no-store, must-revalidate').type('application/json').send(body);
}

/** Quay's util.http.abort body. */
function abort(reply: FastifyReply, status: number, message: string): FastifyReply {
  return json(reply, status, { error: message });
}

function required(reply: FastifyReply, v: Values, names: string[]): boolean {
  for (const n of names) {
    if (v[n] === undefined) {
      abort(reply, 400, `Required param: ${n}`);
      return false;
    }
  }
  return true;
}

/** The signed-in user: session cookie, or HTTP Basic credentials (Quay's process_auth_or_cookie). */
async function webUser(ctx: HttpContext, req: FastifyRequest): Promise<{ user: User; via: 'session' | 'basic' } | null> {
  const basic = parseBasic(req.headers.authorization);
  if (basic && basic !== 'malformed') {
    const p = await authenticateBasic(ctx.services, basic.username, basic.password);
    if (p?.kind !== 'user') return null;
    const user = await findUserById(ctx.services, p.userId);
    return user ? { user, via: 'basic' } : null;
  }
  const st = await readSession(ctx, req);
  return st.user ? { user: st.user, via: 'session' } : null;
}

function localHandler(ctx: HttpContext, req: FastifyRequest): string {
  const configured = ctx.services.config.raw.LOCAL_OAUTH_HANDLER;
  return `${baseUrl(ctx, req)}${typeof configured === 'string' && configured.startsWith('/') ? configured : '/oauth/localapp'}`;
}

/** Quay's build_url: the redirect URI with extra query parameters (undefined ones left out). */
function buildUrl(base: string, params: Record<string, string | null | undefined>): string {
  const u = new URL(base);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
  return u.toString();
}

function redirect(reply: FastifyReply, location: string): FastifyReply {
  return reply.code(302).header('Location', location).header('Cache-Control', 'no-cache, no-store, must-revalidate').send();
}

function redirectError(reply: FastifyReply, redirectUri: string, error: string, state: string | undefined): FastifyReply {
  return redirect(reply, buildUrl(redirectUri, { error, state }));
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(title: string, body: string): string {
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${esc(title)}</title>`
    + '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
    + `<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">${body}</body></html>\n`;
}

function html(reply: FastifyReply, status: number, content: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').header('X-Frame-Options', 'DENY')
    .header('Cache-Control', 'no-cache, no-store, must-revalidate').send(content);
}

interface AuthorizeParams {
  clientId: string;
  redirectUri: string;
  scope: string;
  responseType: string;
  state: string | undefined;
  assignmentUuid: string | undefined;
}

/** Issues the grant (Quay's get_token_response / get_authorization_code) once consent is given. */
async function grant(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply, user: User, a: AuthorizeParams): Promise<FastifyReply> {
  const s = ctx.services;
  if (a.responseType !== 'token' && a.responseType !== 'code') return redirectError(reply, a.redirectUri, 'unsupported_response_type', a.state);
  const app = await applicationByClientId(s, a.clientId);
  if (!app) return redirectError(reply, a.redirectUri, 'unauthorized_client', a.state);
  if (!redirectUriAllowed(app, a.redirectUri, localHandler(ctx, req))) return json(reply, 400, { error: 'invalid_request' });
  if (!(await mayAuthorize(s, user, app, a.assignmentUuid))) return redirectError(reply, a.redirectUri, 'unauthorized_client', a.state);
  if (parseScopes(a.scope).length === 0) return redirectError(reply, a.redirectUri, 'invalid_scope', a.state);
  const g = { user, app, scope: a.scope, assignmentUuid: a.assignmentUuid ?? null, ip: req.ip };
  if (a.responseType === 'token') {
    const { token, expiresIn } = await grantToken(s, g);
    const location = buildUrl(a.redirectUri, { scope: a.scope, state: a.state });
    return redirect(reply, `${location}#access_token=${token}&token_type=Bearer&expires_in=${expiresIn}`);
  }
  const code = await grantCode(s, { ...g, redirectUri: a.redirectUri });
  return redirect(reply, buildUrl(a.redirectUri, { scope: a.scope, state: a.state, code }));
}

function authorizeParams(v: Values): AuthorizeParams {
  return {
    clientId: v.client_id ?? '', redirectUri: v.redirect_uri ?? '', scope: v.scope ?? '',
    responseType: v.response_type ?? 'code', state: v.state, assignmentUuid: v.assignment_uuid,
  };
}

function consentPage(ctx: HttpContext, app: OAuthApplication, orgName: string, user: User, a: AuthorizeParams, csrf: string): string {
  const hidden = (name: string, value: string | undefined) => (value === undefined ? '' : `<input type="hidden" name="${name}" value="${esc(value)}">`);
  const fields = hidden('client_id', a.clientId) + hidden('redirect_uri', a.redirectUri) + hidden('scope', a.scope)
    + hidden('response_type', a.responseType) + hidden('state', a.state) + hidden('assignment_uuid', a.assignmentUuid) + hidden('_csrf_token', csrf);
  const scopes = scopeInformation(a.scope).map((x) => `<li><strong>${esc(x.title)}</strong>${x.dangerous ? ' (dangerous)' : ''}<br>${esc(x.description)}</li>`).join('');
  return page(`Authorize ${app.name}`,
    `<h1>Authorize ${esc(app.name)}</h1><p>${esc(app.description)}</p>`
    + `<p>The application <strong>${esc(app.name)}</strong> of organization <strong>${esc(orgName)}</strong> asks to act as `
    + `<strong>${esc(user.username)}</strong> on ${esc(ctx.services.config.registryTitle)} with these permissions:</p><ul>${scopes}</ul>`
    + `<form method="post" action="/oauth/authorizeapp">${fields}<button type="submit">Authorize application</button></form>`
    + `<form method="post" action="/oauth/denyapp">${fields}<button type="submit">Cancel</button></form>`);
}

const LOCAL_HANDLER_PAGE = page('Access token',
  '<h1>Access token</h1><p>The access token is in this page\'s address, after <code>#access_token=</code>. '
  + 'It is shown only once: copy it now.</p><pre id="token"></pre>'
  + '<script>var m=/access_token=([^&]+)/.exec(location.hash);document.getElementById("token").textContent=m?decodeURIComponent(m[1]):"";</script>');

/** CSRF for cookie-authenticated form posts (Quay's verify_csrf). */
async function csrfOk(ctx: HttpContext, req: FastifyRequest): Promise<boolean> {
  const st = await readSession(ctx, req);
  return csrfMatches(st.csrf, presentedCsrf(req));
}

function corsFor(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): void {
  // Quay answers /csrf_token cross-origin only when CORS_ORIGIN names the origin (cookies included).
  const configured = ctx.services.config.raw.CORS_ORIGIN;
  const list = Array.isArray(configured) ? configured.filter((x): x is string => typeof x === 'string') : typeof configured === 'string' && configured !== '*' ? [configured] : [];
  const origin = req.headers.origin;
  if (!origin || !list.includes(origin)) return;
  reply.header('Access-Control-Allow-Origin', origin)
    .header('Access-Control-Allow-Credentials', 'true')
    .header('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS')
    .header('Access-Control-Allow-Headers', 'Authorization, Content-Type, X-Requested-With, Cookie, X-CSRF-Token')
    .header('Access-Control-Max-Age', '21600')
    .header('Vary', 'Origin');
}

export async function registerWebOAuth(app: AppInstance, ctx: HttpContext): Promise<void> {
  await app.register(async (web) => {
    web.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    web.get('/csrf_token', async (req, reply) => {
      corsFor(ctx, req, reply);
      const token = await ensureCsrfToken(ctx, req, reply);
      return json(reply, 200, { csrf_token: token });
    });
    web.options('/csrf_token', async (req, reply) => {
      corsFor(ctx, req, reply);
      return reply.code(200).send();
    });

    web.get('/oauth/authorize', async (req, reply) => {
      const v = values(req);
      if (!required(reply, v, ['client_id', 'redirect_uri', 'scope'])) return reply;
      const a = authorizeParams(v);
      const s = ctx.services;
      const who = await webUser(ctx, req);
      const oauthApp = await applicationByClientId(s, a.clientId);
      // Scopes the user already granted this application are not asked for again (Quay).
      if (who && oauthApp && (await alreadyAuthorized(s, oauthApp, who.user.id, a.scope))) return grant(ctx, req, reply, who.user, a);
      if (!oauthApp) return abort(reply, 404, 'Not Found');
      if (!redirectUriAllowed(oauthApp, a.redirectUri, localHandler(ctx, req))) {
        if (!oauthApp.redirect_uri) return json(reply, 400, { error: 'invalid_request' });
        return redirectError(reply, oauthApp.redirect_uri, 'redirect_uri_mismatch', a.state);
      }
      if (parseScopes(a.scope).length === 0) return abort(reply, 404, 'Not Found');
      if (!who) {
        return html(reply, 401, page('Sign in required', `<h1>Sign in required</h1><p>Sign in to ${esc(s.config.registryTitle)} to authorize ${esc(oauthApp.name)}.</p>`));
      }
      const org = await findUserById(s, oauthApp.org_id);
      const csrf = await ensureCsrfToken(ctx, req, reply);
      return html(reply, 200, consentPage(ctx, oauthApp, org?.username ?? '', who.user, a, csrf));
    });

    web.post('/oauth/authorizeapp', async (req, reply) => {
      const who = await webUser(ctx, req);
      if (!who) return abort(reply, 401, 'Unauthorized');
      const v = values(req);
      const whitelist = ctx.services.config.raw.DIRECT_OAUTH_CLIENTID_WHITELIST;
      const direct = who.via === 'basic' && Array.isArray(whitelist) && whitelist.includes(v.client_id);
      if (who.via === 'basic' && !direct) return abort(reply, 403, 'CSRF token was invalid or missing.');
      if (who.via === 'session' && !(await csrfOk(ctx, req))) return abort(reply, 403, 'CSRF token was invalid or missing.');
      return grant(ctx, req, reply, who.user, authorizeParams(v));
    });

    web.post('/oauth/denyapp', async (req, reply) => {
      if (!(await csrfOk(ctx, req))) return abort(reply, 403, 'CSRF token was invalid or missing.');
      const a = authorizeParams(values(req));
      const oauthApp = await applicationByClientId(ctx.services, a.clientId);
      if (!oauthApp || !redirectUriAllowed(oauthApp, a.redirectUri, localHandler(ctx, req))) return json(reply, 400, { error: 'invalid_request' });
      return redirectError(reply, a.redirectUri, a.responseType === 'token' ? 'authorization_denied' : 'access_denied', a.state);
    });

    web.post('/oauth/access_token', async (req, reply) => {
      const v = values(req);
      // Clients may authenticate with HTTP Basic (RFC 6749 2.3.1) instead of form fields.
      const basic = parseBasic(req.headers.authorization);
      if (basic && basic !== 'malformed') {
        v.client_id ??= decodeURIComponent(basic.username);
        v.client_secret ??= decodeURIComponent(basic.password);
      }
      if (!required(reply, v, ['grant_type', 'client_id', 'redirect_uri', 'code'])) return reply;
      const r = await exchangeCode(ctx.services, {
        grantType: v.grant_type!, clientId: v.client_id!, clientSecret: v.client_secret ?? '', redirectUri: v.redirect_uri!,
        code: v.code!, scope: v.scope ?? null, ip: req.ip,
      });
      if (!r.ok) return json(reply, 400, { error: r.error });
      return json(reply, 200, { access_token: r.token, token_type: 'Bearer', expires_in: r.expiresIn, refresh_token: null, scope: r.scope });
    });

    web.post('/oauth/authorize/assignuser', async (req, reply) => {
      if (!ctx.services.config.features.ASSIGN_OAUTH_TOKEN) return abort(reply, 404, 'Not Found');
      const who = await webUser(ctx, req);
      if (!who) return abort(reply, 401, 'Unauthorized');
      if (who.via === 'session' && !(await csrfOk(ctx, req))) return abort(reply, 403, 'CSRF token was invalid or missing.');
      const v = values(req);
      if (!required(reply, v, ['client_id', 'redirect_uri', 'scope', 'username'])) return reply;
      const oauthApp = await applicationByClientId(ctx.services, v.client_id!);
      if (!oauthApp) return abort(reply, 404, 'Not Found');
      const role = await orgRole(ctx.services, principalFor(who.user, 'session'), oauthApp.org_id);
      if (role !== 'admin') return abort(reply, 403, 'Unauthorized');
      if (!redirectUriAllowed(oauthApp, v.redirect_uri!, localHandler(ctx, req))) return json(reply, 400, { error: 'invalid_request' });
      try {
        await assignToken(ctx.services, who.user, oauthApp, {
          username: v.username!, redirectUri: v.redirect_uri!, scope: v.scope!, responseType: v.response_type ?? 'token', ip: req.ip,
        });
      } catch (e) {
        if (e instanceof DomainError) return json(reply, e.message.startsWith('Invalid username') ? 404 : 400, { message: e.message });
        throw e;
      }
      return json(reply, 200, { message: 'Token assigned successfully' });
    });

    web.get('/oauth/localapp', async (_req, reply) => html(reply, 200, LOCAL_HANDLER_PAGE));
  });
}

// Request-level protections Quay applies to every /api/v1 call, in front of the route handlers:
//
// - CSRF: a non-GET/HEAD call that carries the session cookie must also present the session's
//   CSRF token (`_csrf_token` query/body value or `X-CSRF-Token` header), else 403. Quay checks
//   every request without a validated OAuth token; Quayside checks the ones that carry the cookie,
//   because only an ambient cookie can be abused cross-site: a call without it is anonymous anyway
//   (and the cookie is SameSite=Lax, so other sites' POSTs do not carry it).
// - BROWSER_API_CALLS_XHR_ONLY: GETs from a browser user agent need `X-Requested-With:
//   XMLHttpRequest` (Quay's guard against reflected-text attacks), unless DEBUGGING is on.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { csrfMatches, presentedCsrf, readSession } from '../session-cookie.ts';
import type { AppInstance } from './route.ts';

export const CSRF_FAILURE = 'CSRF token was invalid or missing.';
export const XHR_REQUIRED = 'API calls must be invoked with an X-Requested-With header if called from a browser';

// Quay registers /user/initialize on its web blueprint (no CSRF). The bootstrap renewal is called
// by automation with a bearer token of its own: exempt when it carries one and no signed-in
// session rides along (a browser's session keeps the normal check, as in Quay).
const EXEMPT = new Set(['/api/v1/user/initialize']);
const BOOTSTRAP_RENEW = '/api/v1/bootstrap/renew';

export interface RegisteredRoute { method: string; url: string }
const registered = new WeakMap<HttpContext, RegisteredRoute[]>();

/** Every route registered in the API plugin after registerApiGuards (tests enumerate them). */
export function apiRoutesOf(ctx: HttpContext): readonly RegisteredRoute[] {
  return registered.get(ctx) ?? [];
}

// ua-parser families Quay treats as browsers; like Quay, only these exact families count (Edge,
// "Chrome Mobile" or "Mobile Safari" do not).
function browserFamily(ua: string): string | null {
  if (/\bEdg(e|A|iOS)?\//.test(ua)) return 'edge';
  if (/\bOPR\/|\bOpera\b/.test(ua)) return /Mobi/.test(ua) ? 'opera mobile' : 'opera';
  if (/\bSeaMonkey\//.test(ua)) return 'seamonkey';
  if (/\bFirefox\//.test(ua)) return /Mobile|Android/.test(ua) ? 'firefox mobile' : 'firefox';
  if (/\b(Chrome|Chromium)\//.test(ua)) return /Mobile/.test(ua) ? 'chrome mobile' : 'chrome';
  if (/\bVersion\/[\d.]+.*Safari\//.test(ua)) return /Mobile/.test(ua) ? 'mobile safari' : 'safari';
  if (/\bMSIE \d/.test(ua)) return 'ie';
  if (/\bKonqueror\//.test(ua)) return 'konqueror';
  if (/^Lynx\//.test(ua)) return 'lynx';
  if (/^Links\b/.test(ua)) return 'links';
  if (/\bCamino\//.test(ua)) return 'camino';
  if (/\bGaleon\//.test(ua)) return 'galeon';
  if (/\bK-Meleon\//.test(ua)) return 'kmeleon';
  if (/\bNetscape\d?\//.test(ua)) return 'netscape';
  return null;
}

const BROWSERS = new Set(['aol', 'ask', 'camino', 'chrome', 'firefox', 'galeon', 'google', 'kmeleon', 'konqueror', 'links', 'lynx', 'msie', 'msn', 'netscape', 'opera', 'safari', 'seamonkey', 'webkit', 'yahoo']);

export function isBrowserUserAgent(ua: string | undefined): boolean {
  if (!ua) return false;
  const family = browserFamily(ua);
  return family !== null && BROWSERS.has(family);
}

function truthyConfig(v: unknown): boolean {
  return v === true || v === 'true' || v === 'True';
}

// Quay's util.http.abort body: {"error": message}, naming the authenticated caller when there is one.
function denyBody(message: string, who: string | null): Record<string, string> {
  return { error: who ? `${message} (authorized: ${who})` : message };
}

export async function checkCsrf(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return undefined;
  if (req.is404) return undefined;
  const path = req.url.split('?')[0]!;
  if (EXEMPT.has(path)) return undefined;
  if (req.principal?.kind !== 'anonymous' && req.principal?.via === 'oauth') return undefined;
  const st = await readSession(ctx, req);
  if (!st.cookiePresent) return undefined;
  if (path === BOOTSTRAP_RENEW && !st.user && /^bearer\s/i.test(req.headers.authorization ?? '')) return undefined;
  if (csrfMatches(st.csrf, presentedCsrf(req))) return undefined;
  req.log.warn({ url: req.url }, 'CSRF failure');
  const who = st.user ? `user ${st.user.username}` : null;
  return reply.code(403).type('application/json').send(denyBody(CSRF_FAILURE, who));
}

/** Installs the guards on the API plugin; call it before any route is mounted. */
export function registerApiGuards(api: AppInstance, ctx: HttpContext): void {
  const routes: RegisteredRoute[] = [];
  registered.set(ctx, routes);
  api.addHook('onRoute', (opts) => {
    const methods = Array.isArray(opts.method) ? opts.method : [opts.method];
    for (const m of methods) routes.push({ method: String(m), url: opts.url });
  });

  api.addHook('onRequest', async (req, reply) => {
    const raw = ctx.services.config.raw;
    if (!truthyConfig(raw.BROWSER_API_CALLS_XHR_ONLY) || truthyConfig(raw.DEBUGGING)) return;
    if (req.method !== 'GET' || !isBrowserUserAgent(req.headers['user-agent'])) return;
    if (req.headers['x-requested-with'] === 'XMLHttpRequest') return;
    req.log.warn({ url: req.url, userAgent: req.headers['user-agent'] }, 'disallowed possible reflected-text attack');
    return reply.code(400).type('application/json').send(denyBody(XHR_REQUIRED, null));
  });

  // preValidation: after the body is parsed (it may carry `_csrf_token`), before schema validation
  // and the handler, matching Quay's order (CSRF is checked before anything else looks at the call).
  api.addHook('preValidation', async (req, reply) => {
    const sent = await checkCsrf(ctx, req, reply);
    if (sent) return sent;
  });
}

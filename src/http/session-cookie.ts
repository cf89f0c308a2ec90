// The browser session cookie, shared by /api/v1 and the web routes (/csrf_token, /oauth/*).
//
// The cookie holds an HMAC-signed (SECRET_KEY) payload: the session's CSRF token and, once signed
// in, the random id of a server-side session row (src/model/sessions.ts). Anonymous visitors get
// a cookie with only a CSRF token and cost no database write; signed-in sessions live in the
// database so that sign-out and password changes end them everywhere.
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from './context.ts';
import type { User } from '../model/accounts.ts';
import { findSession, isFreshLogin, sessionLifetimeMs, type SessionRow } from '../model/sessions.ts';

/** Quay's DefaultConfig names the Flask session cookie `_csrf_token`. */
export const DEFAULT_COOKIE_NAME = '_csrf_token';
export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = '_csrf_token';
/** Quay sends the rotated CSRF token after a login in this header (the web UI reads it). */
export const NEXT_CSRF_HEADER = 'X-Next-CSRF-Token';

export interface SessionState {
  /** A cookie of ours came with the request (valid or not). */
  cookiePresent: boolean;
  /** The CSRF token bound to the cookie; null when there is no valid cookie. */
  csrf: string | null;
  sid: string | null;
  session: SessionRow | null;
  user: User | null;
}

interface Payload { v: 1; c: string; s?: string }

const states = new WeakMap<IncomingMessage, Promise<SessionState>>();
const keys = new WeakMap<HttpContext, Buffer>();

function signingKey(ctx: HttpContext): Buffer {
  let k = keys.get(ctx);
  if (!k) {
    k = Buffer.from(hkdfSync('sha256', ctx.services.config.secretKey, 'quayside', 'session-cookie', 32));
    keys.set(ctx, k);
  }
  return k;
}

export function cookieName(ctx: HttpContext): string {
  const n = ctx.services.config.raw.SESSION_COOKIE_NAME;
  return typeof n === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(n) ? n : DEFAULT_COOKIE_NAME;
}

/** Quay's generate_csrf_token: urlsafe base64 of 48 random bytes (64 characters). */
export function newCsrfToken(): string {
  return randomBytes(48).toString('base64url');
}

function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return null;
}

function encode(ctx: HttpContext, p: Payload): string {
  const body = Buffer.from(JSON.stringify(p)).toString('base64url');
  return `${body}.${createHmac('sha256', signingKey(ctx)).update(body).digest('base64url')}`;
}

function decode(ctx: HttpContext, value: string): Payload | null {
  const dot = value.indexOf('.');
  if (dot <= 0) return null;
  const body = value.slice(0, dot);
  const mac = Buffer.from(value.slice(dot + 1), 'base64url');
  const want = createHmac('sha256', signingKey(ctx)).update(body).digest();
  if (mac.length !== want.length || !timingSafeEqual(mac, want)) return null;
  try {
    const p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Payload;
    if (p?.v !== 1 || typeof p.c !== 'string' || (p.s !== undefined && typeof p.s !== 'string')) return null;
    return p;
  } catch {
    return null;
  }
}

async function load(ctx: HttpContext, req: FastifyRequest): Promise<SessionState> {
  const raw = readCookie(req.headers.cookie, cookieName(ctx));
  const state: SessionState = { cookiePresent: raw !== null, csrf: null, sid: null, session: null, user: null };
  const p = raw ? decode(ctx, raw) : null;
  if (!p) return state;
  state.csrf = p.c;
  if (p.s) {
    const found = await findSession(ctx.services, p.s);
    if (found) Object.assign(state, { sid: p.s, session: found.row, user: found.user });
  }
  return state;
}

/** The request's session (read once per request, whichever plugin asks first). */
export function readSession(ctx: HttpContext, req: FastifyRequest): Promise<SessionState> {
  let st = states.get(req.raw);
  if (!st) {
    st = load(ctx, req);
    states.set(req.raw, st);
  }
  return st;
}

export async function sessionIsFresh(ctx: HttpContext, req: FastifyRequest): Promise<boolean> {
  const st = await readSession(ctx, req);
  return st.session !== null && st.user !== null && isFreshLogin(ctx.services, st.session, st.user);
}

function secureFlag(ctx: HttpContext, req: FastifyRequest): boolean {
  const v = ctx.services.config.raw.SESSION_COOKIE_SECURE;
  if (v === true || v === 'true' || v === 'True') return true;
  if (v === false || v === 'false' || v === 'False') return false;
  // Unset: Secure only when the client reached us over TLS (directly or via a trusted proxy).
  return req.protocol === 'https';
}

function setCookie(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply, value: string, maxAgeSeconds: number | null): void {
  const attrs = [`${cookieName(ctx)}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax'];
  if (maxAgeSeconds !== null) {
    attrs.push(`Max-Age=${maxAgeSeconds}`, `Expires=${new Date(Date.now() + maxAgeSeconds * 1000).toUTCString()}`);
  }
  if (secureFlag(ctx, req)) attrs.push('Secure');
  reply.header('set-cookie', attrs.join('; '));
}

/** The session's CSRF token, minting an anonymous session cookie when the request has none. */
export async function ensureCsrfToken(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): Promise<string> {
  const st = await readSession(ctx, req);
  if (st.csrf) return st.csrf;
  const csrf = newCsrfToken();
  setCookie(ctx, req, reply, encode(ctx, { v: 1, c: csrf }), null);
  states.set(req.raw, Promise.resolve({ ...st, csrf }));
  return csrf;
}

/** Binds a new signed-in session to the browser, with a fresh CSRF token (Quay forces one at login). */
export function issueLoginCookie(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply, sid: string, row: SessionRow, user: User): string {
  const csrf = newCsrfToken();
  setCookie(ctx, req, reply, encode(ctx, { v: 1, c: csrf, s: sid }), Math.floor(sessionLifetimeMs(ctx.services) / 1000));
  reply.header(NEXT_CSRF_HEADER, csrf);
  states.set(req.raw, Promise.resolve({ cookiePresent: true, csrf, sid, session: row, user }));
  return csrf;
}

/** After re-verification: same session, new CSRF token. */
export async function rotateCsrf(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): Promise<string> {
  const st = await readSession(ctx, req);
  const csrf = newCsrfToken();
  const remaining = st.session ? Math.max(0, Math.floor((st.session.expiresAt - Date.now()) / 1000)) : null;
  setCookie(ctx, req, reply, encode(ctx, { v: 1, c: csrf, ...(st.sid ? { s: st.sid } : {}) }), remaining);
  reply.header(NEXT_CSRF_HEADER, csrf);
  states.set(req.raw, Promise.resolve({ ...st, csrf }));
  return csrf;
}

/** Sign-out: the browser keeps no session cookie at all. */
export function clearSessionCookie(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): void {
  const attrs = [`${cookieName(ctx)}=`, 'Path=/', 'HttpOnly', 'SameSite=Lax', 'Max-Age=0', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT'];
  if (secureFlag(ctx, req)) attrs.push('Secure');
  reply.header('set-cookie', attrs.join('; '));
  states.set(req.raw, Promise.resolve({ cookiePresent: false, csrf: null, sid: null, session: null, user: null }));
}

/** The CSRF token the request presents: `_csrf_token` in the query or body, else the X-CSRF-Token header. */
export function presentedCsrf(req: FastifyRequest): string {
  const q = req.query as Record<string, unknown> | undefined;
  const b = req.body as Record<string, unknown> | undefined;
  const fromValues = (q && typeof q[CSRF_FIELD] === 'string' ? q[CSRF_FIELD] : undefined)
    ?? (b && typeof b === 'object' && !Array.isArray(b) && typeof b[CSRF_FIELD] === 'string' ? b[CSRF_FIELD] : undefined);
  if (typeof fromValues === 'string' && fromValues) return fromValues;
  const h = req.headers[CSRF_HEADER];
  return typeof h === 'string' ? h : '';
}

export function csrfMatches(expected: string | null, presented: string): boolean {
  if (!expected || !presented) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

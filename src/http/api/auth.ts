// Who is calling /api/v1, and the route-level checks built on that answer.
//
// Quay's API accepts an OAuth bearer token or a session cookie; HTTP Basic (passwords, robot or
// app tokens) is not accepted on /api/v1 (only the registry and /v2/auth take it), so Basic
// credentials here leave the caller anonymous. An invalid or expired bearer token also leaves the
// caller anonymous, as in Quay: endpoints that need a user then answer 401 invalid_token.
import type { FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { ANONYMOUS, principalFor, type Principal } from '../../model/context.ts';
import { isSuperuser, verifyOAuthToken } from '../../model/accounts.ts';
import { ApiError } from './errors.ts';
import { readSession, sessionIsFresh } from '../session-cookie.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set for every /api/v1 request by the API plugin's onRequest hook. */
    principal: Principal;
  }
}

export type UserPrincipal = Exclude<Principal, { kind: 'anonymous' }>;

// A token with a broader scope may do what the narrower one allows (Quay's IMPLIED_SCOPES, plus
// user:admin ⊇ user:read which Quay grants through SCOPE_MAX_USER_ROLES).
const IMPLIED: Record<string, readonly string[]> = {
  'repo:admin': ['repo:admin', 'repo:write', 'repo:read'],
  'repo:write': ['repo:write', 'repo:read'],
  'user:admin': ['user:admin', 'user:read'],
};

export function scopesGrant(held: readonly string[], needed: string): boolean {
  return held.some((s) => s === needed || (IMPLIED[s]?.includes(needed) ?? false));
}

/** True unless the caller is an OAuth token lacking the scope (other credentials carry full rights). */
export function hasScope(p: Principal, scope: string): boolean {
  if (p.kind === 'anonymous' || p.scopes === null) return true;
  return scopesGrant(p.scopes, scope);
}

function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1]! : null;
}

/**
 * Cookie sessions (web UI login, `POST /api/v1/signin`): a valid session cookie makes its user the
 * caller, with via 'session'. The CSRF check for session-authenticated non-GET requests lives in
 * ./csrf.ts; bearer auth never reaches this function, which is how Quay skips CSRF for tokens.
 */
export async function resolveSession(ctx: HttpContext, req: FastifyRequest): Promise<Principal | null> {
  const st = await readSession(ctx, req);
  if (!st.user) return null;
  return principalFor(st.user, 'session', { superuser: isSuperuser(ctx.services, st.user) });
}

/** The caller of an API (or health/ops) request. Never throws for bad credentials. */
export async function resolvePrincipal(ctx: HttpContext, req: FastifyRequest): Promise<Principal> {
  const s = ctx.services;
  const token = bearerToken(req);
  if (token !== null) {
    const found = await verifyOAuthToken(s, token);
    if (!found) return ANONYMOUS;
    // Superuser powers travel in a token only when it was granted super:user.
    return principalFor(found.user, 'oauth', {
      scopes: found.scopes,
      superuser: isSuperuser(s, found.user) && found.scopes.includes('super:user'),
    });
  }
  return (await resolveSession(ctx, req)) ?? ANONYMOUS;
}

/** The calling user, or 401 invalid_token "Requires authentication" (Quay's wording). */
export function requireUser(req: FastifyRequest, extra?: Record<string, unknown>): UserPrincipal {
  const p = req.principal ?? ANONYMOUS;
  if (p.kind === 'anonymous') throw new ApiError('invalid_token', 'Requires authentication', 401, extra);
  return p;
}

/** 403 insufficient_scope when an OAuth token was not granted `scope` (or a scope implying it). */
export function requireScope(req: FastifyRequest, scope: string): void {
  const p = req.principal ?? ANONYMOUS;
  if (!hasScope(p, scope)) {
    throw new ApiError('insufficient_scope', `Unauthorized: the access token was not granted the ${scope} scope`);
  }
}

/** Quay's generic Unauthorized: 401 for anonymous callers, 403 for a user without permission. */
export function unauthorized(req: FastifyRequest): ApiError {
  const p = req.principal ?? ANONYMOUS;
  return p.kind === 'anonymous'
    ? new ApiError('invalid_token', 'Requires authentication')
    : new ApiError('insufficient_scope', 'Unauthorized');
}

/**
 * Quay's require_fresh_login, for endpoints marked fresh-login: a session whose password check is
 * older than FRESH_LOGIN_TIMEOUT (10m) gets 401 fresh_login_required until POST /api/v1/signin/verify.
 * OAuth tokens count as fresh (Quay's rule), and so do users without a password. Call it after the
 * permission check, as Quay's decorator order does.
 */
export async function requireFreshLogin(ctx: HttpContext, req: FastifyRequest): Promise<void> {
  const p = req.principal ?? ANONYMOUS;
  if (p.kind !== 'user') throw unauthorized(req);
  if (p.via !== 'session') return;
  if (!(await sessionIsFresh(ctx, req))) throw new ApiError('fresh_login_required', 'Requires fresh login');
}

// Quay's @require_fresh_login: destructive account operations need a recent password proof.
// OAuth bearer tokens always count as fresh (as in Quay); robots never do. Cookie sessions are the
// open end: when they land, `sessionIsFresh` must compare the session's login time with
// FRESH_LOGIN_TIMEOUT (default 10m) — until then a session principal is never fresh.
import type { FastifyRequest } from 'fastify';
import { ApiError } from './errors.ts';
import { unauthorized } from './auth.ts';

/** Hook for cookie sessions: true when the session's last password proof is recent enough. */
export function sessionIsFresh(req: FastifyRequest): boolean {
  void req;
  return false;
}

export function requireFreshLogin(req: FastifyRequest): void {
  const p = req.principal;
  if (p.kind !== 'user') throw unauthorized(req);
  if (p.via === 'oauth') return;
  if (p.via === 'session' && sessionIsFresh(req)) return;
  throw new ApiError('fresh_login_required', 'Requires fresh login', 401);
}

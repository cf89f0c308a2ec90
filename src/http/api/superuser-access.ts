// Who may use the superuser endpoints: superusers for everything, global read-only superusers for
// reads. Everyone else gets Quay's generic Unauthorized (401 anonymous, 403 signed in).
import type { FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { superuserAccess } from '../../model/superuser.ts';
import { requireFreshLogin, unauthorized, type UserPrincipal } from './auth.ts';

/** Werkzeug's Forbidden description: the body of Quay's bare abort(403). */
export const FORBIDDEN_MESSAGE = "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.";

/**
 * The calling superuser; `read` also admits global read-only superusers. `fresh` is Quay's
 * @require_fresh_login, the outermost decorator on these endpoints: it is checked first.
 */
export async function requireSuperuser(
  req: FastifyRequest, ctx: HttpContext, mode: 'read' | 'write', opts: { fresh: boolean } = { fresh: true },
): Promise<UserPrincipal> {
  if (opts.fresh) await requireFreshLogin(ctx, req);
  const access = superuserAccess(ctx.services, req.principal);
  if (access === 'full' || (mode === 'read' && access === 'readonly')) return req.principal as UserPrincipal;
  throw unauthorized(req);
}

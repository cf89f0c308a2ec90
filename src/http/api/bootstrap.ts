// POST /api/v1/bootstrap/renew (Quay's endpoints/api/bootstrap.py, FEATURE_PROGRAMMATIC_BOOTSTRAP):
// the holder of the bootstrap token trades it for a new one, written to the token file.
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { renewBootstrapToken, TokenRotationError } from '../../model/bootstrap-token.ts';
import { unauthorized } from './auth.ts';
import { ApiError } from './errors.ts';
import { defineRoute, type AnyRoute } from './route.ts';

const INVALID = 'Requires valid bootstrap bearer token';
export const RENEWAL_LOCATION_HEADER = 'x-quay-bootstrap-renewal-location';

/** Quay's header split: "<scheme> <token>", scheme bearer in any case, token non-empty. */
function bearerOf(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const sp = h.indexOf(' ');
  if (sp < 0 || h.slice(0, sp).toLowerCase() !== 'bearer') return null;
  const token = h.slice(sp + 1).trim();
  return token || null;
}

function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.replace(/^::ffff:/, '');
  return (isIP(a) === 4 && a.startsWith('127.')) || a === '::1';
}

/**
 * An expired token may still renew from inside the installation. Quay trusts a header its own nginx
 * sets; Quayside has no such proxy in front, so the header alone would be the client's word: it
 * also requires a loopback connection that no proxy forwarded.
 */
function localRenewal(req: FastifyRequest): boolean {
  return req.headers[RENEWAL_LOCATION_HEADER] === 'local' && isLoopback(req.socket.remoteAddress)
    && req.headers['x-forwarded-for'] === undefined && req.headers.forwarded === undefined;
}

export const bootstrapRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST', path: '/bootstrap/renew', nickname: 'renewBootstrapToken', tag: 'bootstrap', features: ['PROGRAMMATIC_BOOTSTRAP'],
    anonAllowed: true,
    description: 'Rotate the bootstrap token.',
    response: Type.Object({ status: Type.String() }),
    async handler(req, _reply, env) {
      const token = bearerOf(req);
      if (!token) throw new ApiError('invalid_token', INVALID);
      let r;
      try {
        r = await renewBootstrapToken(env.ctx.services, token, { allowExpired: localRenewal(req) });
      } catch (e) {
        if (e instanceof TokenRotationError) throw new ApiError('token_rotation_failed', e.message);
        throw e;
      }
      if (!r.ok) {
        // A valid OAuth token that is not the bootstrap token: Quay's generic Unauthorized.
        if (r.reason === 'not_bootstrap' && req.principal.kind !== 'anonymous' && req.principal.via === 'oauth') throw unauthorized(req);
        throw new ApiError('invalid_token', INVALID);
      }
      return { status: 'rotated' };
    },
  }),
];

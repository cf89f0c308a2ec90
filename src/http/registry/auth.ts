// Registry auth: the /v2/auth token endpoint (Quay's token auth) and the bearer check every /v2
// request passes. Verifying a request's token never touches the database.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { baseUrl, serverHost } from '../context.ts';
import type { Principal } from '../../model/context.ts';
import { ANONYMOUS } from '../../model/context.ts';
import { authenticateBasic, grantAccess, parseScope } from '../../model/registry-auth.ts';
import type { AccessEntry, VerifiedToken } from '../../model/registry-tokens.ts';
import { logAction } from '../../model/logs.ts';
import { OciError } from './errors.ts';

const MAX_SCOPES = 32;

export function tokenAudience(ctx: HttpContext): string {
  return ctx.services.config.serverHostname ?? 'quayside';
}

export function parseBasic(header: string | undefined): { username: string; password: string } | null | 'malformed' {
  if (!header) return null;
  const m = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!m) return /^Basic/i.test(header) ? 'malformed' : null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function scopesFrom(req: FastifyRequest): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string') out.push(...v.split(' ').filter(Boolean));
    else if (Array.isArray(v)) v.forEach(add);
  };
  add((req.query as Record<string, unknown>).scope);
  if (req.body && typeof req.body === 'object') add((req.body as Record<string, unknown>).scope);
  return out;
}

/** The OAuth2 form containerd POSTs first (Docker token spec): a password grant carries the
 * credentials in the body. Other grants (refresh_token) are refused, so the client falls back to GET. */
function formCredentials(req: FastifyRequest): { username: string; password: string } | null {
  const form = req.method === 'POST' && req.body && typeof req.body === 'object' ? (req.body as Record<string, unknown>) : null;
  if (!form || form.grant_type === undefined) return null;
  if (form.grant_type !== 'password') throw new OciError('UNSUPPORTED', 'unsupported grant_type');
  return { username: String(form.username ?? ''), password: String(form.password ?? '') };
}

/** GET|POST /v2/auth */
export async function tokenEndpoint(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const s = ctx.services;
  const creds = parseBasic(req.headers.authorization) ?? formCredentials(req);
  let principal: Principal;
  if (creds === 'malformed') throw new OciError('UNAUTHORIZED', 'Invalid Authorization header');
  if (creds === null || (creds.username === '' && creds.password === '')) {
    if (!s.config.features.ANONYMOUS_ACCESS) throw new OciError('UNAUTHORIZED', 'Anonymous access is disabled; log in first');
    principal = ANONYMOUS;
  } else {
    const p = await authenticateBasic(s, creds.username, creds.password);
    if (!p) {
      await logAction(s, 'login_failure', { ip: req.ip, metadata: { type: 'v2auth', username: creds.username, message: 'Invalid username or password' } });
      throw new OciError('UNAUTHORIZED', 'Invalid username or password');
    }
    principal = p;
  }
  const requested = scopesFrom(req);
  if (requested.length > MAX_SCOPES) throw new OciError('DENIED', `too many scopes (at most ${MAX_SCOPES})`);
  const access: AccessEntry[] = [];
  for (const raw of requested) {
    const scope = parseScope(raw);
    if (!scope) throw new OciError('DENIED', `invalid scope ${JSON.stringify(raw)}`, undefined, 400);
    access.push(await grantAccess(s, principal, scope));
  }
  const { token, issuedAt, expiresIn } = await ctx.keys.sign(principal, tokenAudience(ctx), access);
  return reply.header('Cache-Control', 'no-store').send({ token, access_token: token, expires_in: expiresIn, issued_at: new Date(issuedAt * 1000).toISOString() });
}

// Verified tokens, so the hot path skips the RSA check on repeat requests. Bounded; entries die
// with the token, or as soon as its signing key is no longer trusted (deleted or expired).
const cache = new Map<string, { v: VerifiedToken; exp: number; kid: string }>();
const CACHE_MAX = 10_000;

export async function bearer(ctx: HttpContext, req: FastifyRequest): Promise<VerifiedToken | null> {
  const h = req.headers.authorization;
  if (!h || !/^Bearer\s+/i.test(h)) return null;
  const token = h.replace(/^Bearer\s+/i, '').trim();
  const now = Date.now();
  const hit = cache.get(token);
  if (hit && hit.exp > now && await ctx.keys.trusts(hit.kid)) return hit.v;
  if (hit) cache.delete(token);
  const v = await ctx.keys.verify(token, tokenAudience(ctx));
  if (!v) throw new OciError('UNAUTHORIZED', 'invalid or expired token');
  if (cache.size >= CACHE_MAX) cache.clear();
  const [header, body] = token.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>);
  cache.set(token, { v, exp: Math.min(Number(body!.exp) * 1000, now + 300_000), kid: String(header!.kid) });
  return v;
}

export function challenge(ctx: HttpContext, req: FastifyRequest, scope?: string): string {
  const realm = `${baseUrl(ctx, req)}/v2/auth`;
  return `Bearer realm="${realm}",service="${serverHost(ctx, req)}"${scope ? `,scope="${scope}"` : ''}`;
}

export function granted(token: VerifiedToken | null, type: string, name: string, anyOf: string[]): boolean {
  if (!token) return false;
  return token.access.some((a) => a.type === type && a.name === name && a.actions.some((x) => anyOf.includes(x)));
}

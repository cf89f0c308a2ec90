// Access tokens an organization admin mints directly for one of the organization's OAuth
// applications (Quay's endpoints/api/organization_application_tokens.py): named, scoped, with a
// lifetime; the bearer secret is shown once, on creation. Tokens are stored like every OAuth
// token (createOAuthToken): a lookup prefix and the SHA-256 of the rest.
import type { Principal, Services } from './context.ts';
import { createOAuthToken, findUser, type User } from './accounts.ts';
import { DataModelError } from './data-errors.ts';
import { logAction } from './logs.ts';
import { orgRole } from './permissions.ts';
import { findApplication, parseScopes, scopesCover, TOKEN_EXPIRES_IN, type OAuthAccessToken, type OAuthApplication } from './oauth.ts';
import { denied, notFound, requireOrgAdmin } from './organizations.ts';

/** Non-expired tokens one application may hold (Quay's MAX_TOKENS_PER_APPLICATION). */
export const MAX_TOKENS_PER_APPLICATION = 1000;
export const MAX_TOKEN_NAME_LENGTH = 255;
const PAGE_SIZE = 50;

type UserPrincipal = Exclude<Principal, { kind: 'anonymous' }>;

export interface AppTokenRow { token: OAuthAccessToken; createdBy: string | null }

/** Quay's normalize_scope: comma or space separated, deduplicated, space joined. */
export function normalizeScope(scope: string): string {
  return [...new Set(scope.replace(/,/g, ' ').split(/\s+/).filter(Boolean))].join(' ');
}

async function applicationOf(s: Services, p: Principal, orgname: string, clientId: string, mode: 'read' | 'write'): Promise<{ org: User; app: OAuthApplication }> {
  const { org } = await requireOrgAdmin(s, p, orgname, mode);
  const app = await findApplication(s, org.id, clientId);
  if (!app) notFound();
  return { org, app: app! };
}

/** One page of the application's tokens, newest first, with the username each was issued to. */
export async function listApplicationTokens(
  s: Services, p: Principal, orgname: string, clientId: string, startId: number | null,
): Promise<{ tokens: AppTokenRow[]; nextStartId: number | null }> {
  const { app } = await applicationOf(s, p, orgname, clientId, 'read');
  let q = s.db.selectFrom('oauth_access_tokens').leftJoin('users', 'users.id', 'oauth_access_tokens.user_id')
    .selectAll('oauth_access_tokens').select('users.username as created_by')
    .where('oauth_access_tokens.application_id', '=', app.id);
  if (startId !== null) q = q.where('oauth_access_tokens.id', '<=', startId);
  const rows = await q.orderBy('oauth_access_tokens.id', 'desc').limit(PAGE_SIZE + 1).execute();
  const page = rows.slice(0, PAGE_SIZE).map(({ created_by, ...token }) => ({ token: token as OAuthAccessToken, createdBy: created_by }));
  return { tokens: page, nextStartId: rows.length > PAGE_SIZE ? rows[PAGE_SIZE]!.id : null };
}

/** Quay's _can_mint_scope: the caller holds every requested scope on this organization, and an
 * OAuth caller cannot mint more than its own token carries. */
async function mayMint(s: Services, p: UserPrincipal, org: User, scopes: string[]): Promise<boolean> {
  if (p.scopes !== null && !scopesCover(p.scopes.join(' '), scopes.join(' '))) return false;
  const role = await orgRole(s, p, org.id);
  return scopes.every((scope) => {
    switch (scope) {
      case 'repo:read': case 'repo:write': case 'repo:admin': case 'org:admin': return role === 'admin';
      case 'repo:create': return role === 'admin' || role === 'creator';
      case 'user:read': case 'user:admin': return true;
      case 'super:user': return p.superuser;
      default: return false;
    }
  });
}

export interface NewAppToken { name: string; scope: string; expiration?: number }

/** Mints a token issued to the caller; returns its row and the secret (never stored). */
export async function createApplicationToken(
  s: Services, p: Principal, orgname: string, clientId: string, input: NewAppToken, ip: string | null,
): Promise<{ row: AppTokenRow; token: string }> {
  const { org, app } = await applicationOf(s, p, orgname, clientId, 'write');
  const name = input.name.trim();
  if (!name) throw new DataModelError("'name' cannot be empty");
  if (name.length > MAX_TOKEN_NAME_LENGTH) throw new DataModelError("'name' is too long");
  const scope = normalizeScope(input.scope);
  if (parseScopes(scope).length === 0) throw new DataModelError(`Invalid scope: ${input.scope}`);
  if (p.kind !== 'user') denied();
  const caller = p as UserPrincipal;
  if (!(await mayMint(s, caller, org, scope.split(' ')))) denied();
  const expiration = input.expiration ?? TOKEN_EXPIRES_IN;
  if (!Number.isFinite(expiration) || expiration <= 0) throw new DataModelError("'expiration' must be a positive number of seconds");
  const seconds = Math.min(Math.trunc(expiration), TOKEN_EXPIRES_IN);
  const user = await findUser(s, caller.username);
  if (!user) denied();

  return s.db.transaction().execute(async (tx) => {
    // The count and the insert race with other admins minting for the same application: the
    // application row lock serializes them (SQLite serializes writers by itself).
    if (s.dialect === 'postgres') await tx.selectFrom('oauth_applications').select('id').where('id', '=', app.id).forUpdate().execute();
    const active = await tx.selectFrom('oauth_access_tokens').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('application_id', '=', app.id).where('expires_at', '>', s.now()).executeTakeFirstOrThrow();
    if (Number(active.n) >= MAX_TOKENS_PER_APPLICATION) {
      throw new DataModelError(`Token limit reached: maximum ${MAX_TOKENS_PER_APPLICATION} non-expired tokens per application`);
    }
    const ts: Services = { ...s, db: tx };
    const created = await createOAuthToken(ts, app.id, user!, scope, seconds, { name });
    await logAction(ts, 'create_oauth_api_token', {
      namespaceId: org.id, performer: caller, ip,
      metadata: {
        oauth_token_uuid: created.uuid, scope, token_display_name: name, application_name: app.name, auth_method: 'OAuth', client_id: app.client_id,
      },
    }, tx);
    const token = await tx.selectFrom('oauth_access_tokens').selectAll().where('uuid', '=', created.uuid).executeTakeFirstOrThrow();
    return { row: { token, createdBy: user!.username }, token: created.token };
  });
}

export async function deleteApplicationToken(s: Services, p: Principal, orgname: string, clientId: string, tokenUuid: string, ip: string | null): Promise<void> {
  const { org, app } = await applicationOf(s, p, orgname, clientId, 'write');
  await s.db.transaction().execute(async (tx) => {
    const gone = await tx.deleteFrom('oauth_access_tokens').where('application_id', '=', app.id).where('uuid', '=', tokenUuid).returning('id').execute();
    if (gone.length === 0) notFound();
    await logAction(s, 'revoke_oauth_api_token', {
      namespaceId: org.id, performer: p, ip, metadata: { oauth_token_uuid: tokenUuid, application_name: app.name, client_id: app.client_id },
    }, tx);
  });
}

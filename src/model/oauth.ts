// OAuth 2: organizations' applications, the authorization grants users give them (implicit and
// code flows), the user-facing list of authorizations, and token assignments by org admins.
//
// Access tokens are 40 characters, a 20-character lookup prefix plus a secret stored as a SHA-256
// (createOAuthToken in accounts.ts); authorization codes follow the same split. Client secrets are
// kept encrypted because Quay shows them to org admins again.
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { OauthAccessTokensTable, OauthApplicationsTable, OauthAssignedTokensTable } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { principalFor } from './context.ts';
import { createOAuthToken, findUser, findUserById, type User } from './accounts.ts';
import { randomCode, safeEqual, sha256Hex } from './crypto.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { orgRole } from './permissions.ts';

export type OAuthApplication = Selectable<OauthApplicationsTable>;
export type OAuthAccessToken = Selectable<OauthAccessTokensTable>;
export type OAuthAssignment = Selectable<OauthAssignedTokensTable>;
type UserPrincipal = Exclude<Principal, { kind: 'anonymous' }>;

// ---- Scopes (Quay's auth/scopes.py)

export interface ScopeInfo { scope: string; icon: string; dangerous: boolean; title: string; description: string }

export const SCOPES: readonly ScopeInfo[] = [
  { scope: 'repo:read', icon: 'fa-hdd-o', dangerous: false, title: 'View all visible repositories', description: 'This application will be able to view and pull all repositories visible to the granting user or robot account' },
  { scope: 'repo:write', icon: 'fa-hdd-o', dangerous: false, title: 'Read/Write to any accessible repositories', description: 'This application will be able to view, push and pull to all repositories to which the granting user or robot account has write access' },
  { scope: 'repo:admin', icon: 'fa-hdd-o', dangerous: false, title: 'Administer Repositories', description: 'This application will have administrator access to all repositories to which the granting user or robot account has access' },
  { scope: 'repo:create', icon: 'fa-plus', dangerous: false, title: 'Create Repositories', description: 'This application will be able to create repositories in to any namespaces that the granting user or robot account is allowed to create repositories' },
  { scope: 'user:read', icon: 'fa-user', dangerous: false, title: 'Read User Information', description: 'This application will be able to read user information such as username and email address.' },
  { scope: 'org:admin', icon: 'fa-gear', dangerous: true, title: 'Administer Organization', description: 'This application will be able to administer your organizations including creating robots, creating teams, adjusting team membership, and changing billing settings. You should have absolute trust in the requesting application before granting this permission.' },
  { scope: 'super:user', icon: 'fa-street-view', dangerous: true, title: 'Super User Access', description: 'This application will be able to administer your installation including managing users, managing organizations and other features found in the superuser panel. You should have absolute trust in the requesting application before granting this permission.' },
  { scope: 'user:admin', icon: 'fa-gear', dangerous: true, title: 'Administer User', description: 'This application will be able to administer your account including creating robots and granting them permissions to your repositories. You should have absolute trust in the requesting application before granting this permission.' },
];
const BY_NAME = new Map(SCOPES.map((x) => [x.scope, x]));
const IMPLIED: Record<string, readonly string[]> = {
  'repo:admin': ['repo:admin', 'repo:write', 'repo:read'],
  'repo:write': ['repo:write', 'repo:read'],
};

/** Quay's scopes_from_scope_string: space- (or comma-) separated; any unknown part voids the whole string. */
export function parseScopes(scope: string | null | undefined): string[] {
  const parts = (scope ?? '').split(/ |,/);
  if (parts.some((p) => !BY_NAME.has(p))) return [];
  return [...new Set(parts)];
}

export function scopeInformation(scope: string): ScopeInfo[] {
  return parseScopes(scope).map((n) => ({ ...BY_NAME.get(n)! }));
}

/** Quay's is_subset_string: every scope of `expected` is held (or implied) by `held`. */
export function scopesCover(held: string, expected: string): boolean {
  const have = parseScopes(held);
  if (have.length === 0) return false;
  const implied = new Set(have.flatMap((h) => IMPLIED[h] ?? [h]));
  return parseScopes(expected).every((e) => implied.has(e));
}

// ---- Applications

/** Quay keeps these names for the application its programmatic bootstrap creates. */
export function reservedApplicationNames(s: Services): Set<string> {
  const names = new Set(['__quay_bootstrap_app']);
  const configured = s.config.raw.BOOTSTRAP_APP_NAME;
  if (typeof configured === 'string' && configured) names.add(configured);
  return names;
}

export interface ApplicationFields {
  name: string;
  application_uri?: string;
  redirect_uri?: string;
  description?: string;
  avatar_email?: string | null;
}

function validateFields(s: Services, f: ApplicationFields): void {
  if (f.name.trim() === '') throw new DomainError('invalid_request', 'The application name must not be empty');
  if (f.name.length > 255) throw new DomainError('invalid_request', 'The application name must be at most 255 characters');
  if (reservedApplicationNames(s).has(f.name)) throw new DomainError('invalid_request', `The application name '${f.name}' is reserved`);
  for (const key of ['redirect_uri', 'application_uri'] as const) {
    const v = f[key];
    if (!v) continue;
    if (v.length > 1024) throw new DomainError('invalid_request', `The ${key} must be at most 1024 characters`);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new DomainError('invalid_request', `The ${key} must be an absolute URI: ${v}`);
    }
    if (/^(javascript|data|vbscript):$/i.test(u.protocol)) throw new DomainError('invalid_request', `The ${key} may not use the ${u.protocol} scheme`);
    if (key === 'redirect_uri' && u.hash) throw new DomainError('invalid_request', 'The redirect_uri must not contain a fragment');
  }
  if (f.avatar_email && !/^[^@\s]+@[^@\s]+$/.test(f.avatar_email)) throw new DomainError('invalid_request', `Invalid email address: ${f.avatar_email}`);
}

export async function listApplications(s: Services, orgId: number): Promise<OAuthApplication[]> {
  return s.db.selectFrom('oauth_applications').selectAll().where('org_id', '=', orgId).orderBy('id').execute();
}

export async function findApplication(s: Services, orgId: number, clientId: string): Promise<OAuthApplication | undefined> {
  return s.db.selectFrom('oauth_applications').selectAll().where('org_id', '=', orgId).where('client_id', '=', clientId).executeTakeFirst();
}

export async function applicationByClientId(s: Services, clientId: string): Promise<OAuthApplication | undefined> {
  return s.db.selectFrom('oauth_applications').selectAll().where('client_id', '=', clientId).executeTakeFirst();
}

export function clientSecret(s: Services, app: OAuthApplication): string {
  return s.box.decrypt(app.client_secret_enc);
}

function appLogMetadata(f: ApplicationFields, app: OAuthApplication): Record<string, unknown> {
  // Quay logs the request fields plus the application's name and client id.
  return { ...f, application_name: app.name, client_id: app.client_id };
}

export async function createApplication(s: Services, p: UserPrincipal, org: User, f: ApplicationFields, ip: string | null): Promise<OAuthApplication> {
  validateFields(s, f);
  return s.db.transaction().execute(async (tx) => {
    const app = await tx.insertInto('oauth_applications').values({
      uuid: randomUUID(), org_id: org.id, client_id: randomCode(20), client_secret_enc: s.box.encrypt(randomCode(40)),
      name: f.name, description: f.description ?? '', application_uri: f.application_uri ?? '', redirect_uri: f.redirect_uri ?? '',
      avatar_email: f.avatar_email ?? null,
    }).returningAll().executeTakeFirstOrThrow();
    await logAction(s, 'create_application', { namespaceId: org.id, performer: p, ip, metadata: appLogMetadata(f, app) }, tx);
    return app;
  });
}

export async function updateApplication(s: Services, p: UserPrincipal, org: User, clientId: string, f: Required<Pick<ApplicationFields, 'name' | 'redirect_uri' | 'application_uri'>> & ApplicationFields, ip: string | null): Promise<OAuthApplication> {
  const app = await findApplication(s, org.id, clientId);
  if (!app) throw new DomainError('not_found', 'Not Found');
  validateFields(s, f);
  return s.db.transaction().execute(async (tx) => {
    const updated = await tx.updateTable('oauth_applications').set({
      name: f.name, application_uri: f.application_uri, redirect_uri: f.redirect_uri,
      description: f.description ?? '', avatar_email: f.avatar_email ?? null,
    }).where('id', '=', app.id).returningAll().executeTakeFirstOrThrow();
    await logAction(s, 'update_application', { namespaceId: org.id, performer: p, ip, metadata: appLogMetadata(f, updated) }, tx);
    return updated;
  });
}

/** Deletes the application with every token, code and assignment issued for it. */
export async function deleteApplication(s: Services, p: UserPrincipal, org: User, clientId: string, ip: string | null): Promise<boolean> {
  const app = await findApplication(s, org.id, clientId);
  if (!app) return false;
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('oauth_applications').where('id', '=', app.id).execute();
    await logAction(s, 'delete_application', { namespaceId: org.id, performer: p, ip, metadata: { application_name: app.name, client_id: clientId } }, tx);
  });
  return true;
}

export async function resetClientSecret(s: Services, p: UserPrincipal, org: User, clientId: string, ip: string | null): Promise<OAuthApplication> {
  const app = await findApplication(s, org.id, clientId);
  if (!app) throw new DomainError('not_found', 'Not Found');
  return s.db.transaction().execute(async (tx) => {
    const updated = await tx.updateTable('oauth_applications').set({ client_secret_enc: s.box.encrypt(randomCode(40)) })
      .where('id', '=', app.id).returningAll().executeTakeFirstOrThrow();
    await logAction(s, 'reset_application_client_secret', { namespaceId: org.id, performer: p, ip, metadata: { application_name: app.name, client_id: clientId } }, tx);
    return updated;
  });
}

// ---- Authorization (the /oauth/* web flows)

/** Quay's access-token lifetime for authorized applications: ten years. */
export const TOKEN_EXPIRES_IN = Math.floor(60 * 60 * 24 * 365.25 * 10);
const CODE_TTL_MS = 10 * 60 * 1000;

export type AuthorizeError = 'unsupported_response_type' | 'unauthorized_client' | 'access_denied' | 'invalid_scope' | 'redirect_uri_mismatch';

/** Redirect URIs must equal the application's registered one exactly (or be Quayside's local handler). */
export function redirectUriAllowed(app: OAuthApplication, redirectUri: string, localHandler: string): boolean {
  if (redirectUri === localHandler) return true;
  return app.redirect_uri !== '' && redirectUri === app.redirect_uri;
}

/** Union of the scopes of the user's live tokens for the app covers `scope` (Quay's validate_has_scopes). */
export async function alreadyAuthorized(s: Services, app: OAuthApplication, userId: number, scope: string): Promise<boolean> {
  const rows = await s.db.selectFrom('oauth_access_tokens').select('scope')
    .where('application_id', '=', app.id).where('user_id', '=', userId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', s.now())])).execute();
  return rows.length > 0 && parseScopes(scope).length > 0 && scopesCover(rows.map((r) => r.scope).join(','), scope);
}

async function findAssignment(s: Services, uuid: string | null | undefined, userId: number, appId: number): Promise<OAuthAssignment | undefined> {
  if (!uuid) return undefined;
  return s.db.selectFrom('oauth_assigned_tokens').selectAll()
    .where('uuid', '=', uuid).where('assigned_user_id', '=', userId).where('application_id', '=', appId).executeTakeFirst();
}

/** Quay lets a user grant an application only when they administer its organization or an admin assigned it to them. */
export async function mayAuthorize(s: Services, user: User, app: OAuthApplication, assignmentUuid?: string | null): Promise<boolean> {
  const p = principalFor(user, 'session');
  if ((await orgRole(s, p, app.org_id)) === 'admin') return true;
  return (await findAssignment(s, assignmentUuid, user.id, app.id)) !== undefined;
}

export interface GrantInput {
  user: User;
  app: OAuthApplication;
  scope: string;
  assignmentUuid?: string | null;
  ip?: string | null;
}

async function recordGrant(s: Services, g: GrantInput, tokenUuid: string, flow: 'token' | 'code'): Promise<void> {
  const p = principalFor(g.user, 'session');
  await logAction(s, 'create_oauth_api_token', {
    namespaceId: g.app.org_id, performer: p, ip: g.ip,
    metadata: { oauth_token_uuid: tokenUuid, scope: g.scope, application_name: g.app.name, client_id: g.app.client_id, auth_method: flow === 'token' ? 'implicit' : 'authorization_code', granted_by: g.user.username },
  });
}

/** Implicit flow: the token itself. A used assignment is consumed. */
export async function grantToken(s: Services, g: GrantInput): Promise<{ token: string; expiresIn: number }> {
  const { uuid, token } = await createOAuthToken(s, g.app.id, g.user, parseScopes(g.scope).join(' '), TOKEN_EXPIRES_IN);
  const assignment = await findAssignment(s, g.assignmentUuid, g.user.id, g.app.id);
  if (assignment) await s.db.deleteFrom('oauth_assigned_tokens').where('id', '=', assignment.id).execute();
  await recordGrant(s, g, uuid, 'token');
  return { token, expiresIn: TOKEN_EXPIRES_IN };
}

/** Code flow, first leg: a single-use code bound to the user, scope and redirect URI, valid 10 minutes. */
export async function grantCode(s: Services, g: GrantInput & { redirectUri: string }): Promise<string> {
  const code = randomCode(40, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789');
  await s.db.insertInto('oauth_auth_codes').values({
    application_id: g.app.id, code_prefix: code.slice(0, 20), code_hash: sha256Hex(code.slice(20)), scope: g.scope,
    data: JSON.stringify({ username: g.user.username, user_id: g.user.id, redirect_uri: g.redirectUri, assignment_uuid: g.assignmentUuid ?? null }),
    created_at: s.now(),
  }).execute();
  return code;
}

export type ExchangeResult =
  | { ok: true; token: string; expiresIn: number; scope: string }
  | { ok: false; error: 'invalid_client' | 'invalid_grant' | 'invalid_scope' | 'unsupported_grant_type' };

/** Code flow, second leg (Quay's get_token): the client proves its secret and trades the code. */
export async function exchangeCode(
  s: Services, input: { grantType: string; clientId: string; clientSecret: string; redirectUri: string; code: string; scope: string | null; ip?: string | null },
): Promise<ExchangeResult> {
  if (input.grantType !== 'authorization_code') return { ok: false, error: 'unsupported_grant_type' };
  const app = await applicationByClientId(s, input.clientId);
  if (!app || !safeEqual(clientSecret(s, app), input.clientSecret)) return { ok: false, error: 'invalid_client' };
  return s.db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('oauth_auth_codes').selectAll()
      .where('application_id', '=', app.id).where('code_prefix', '=', input.code.slice(0, 20)).executeTakeFirst();
    if (!row || input.code.length < 40 || !safeEqual(row.code_hash, sha256Hex(input.code.slice(20)))) return { ok: false, error: 'invalid_grant' } as const;
    // Single use: whatever happens next, this code is spent.
    await tx.deleteFrom('oauth_auth_codes').where('id', '=', row.id).execute();
    const data = JSON.parse(row.data) as { user_id: number; redirect_uri: string; assignment_uuid: string | null };
    if (s.now() - row.created_at > CODE_TTL_MS || data.redirect_uri !== input.redirectUri) return { ok: false, error: 'invalid_grant' } as const;
    const scope = input.scope ?? row.scope;
    if (parseScopes(scope).length === 0) return { ok: false, error: 'invalid_scope' } as const;
    if (scope !== row.scope) return { ok: false, error: 'invalid_grant' } as const;
    // Every query below runs on the transaction: SQLite has a single connection.
    const ts: Services = { ...s, db: tx };
    const user = await findUserById(ts, data.user_id);
    if (!user || user.kind !== 'user' || !user.enabled) return { ok: false, error: 'invalid_grant' } as const;
    const { uuid, token } = await createOAuthToken(ts, app.id, user, parseScopes(scope).join(' '), TOKEN_EXPIRES_IN);
    if (data.assignment_uuid) await tx.deleteFrom('oauth_assigned_tokens').where('uuid', '=', data.assignment_uuid).where('assigned_user_id', '=', user.id).execute();
    await recordGrant(ts, { user, app, scope, ip: input.ip }, uuid, 'code');
    return { ok: true, token, expiresIn: TOKEN_EXPIRES_IN, scope } as const;
  });
}

// ---- The user's authorizations (GET/DELETE /api/v1/user/authorizations)

export interface Authorization { token: OAuthAccessToken; app: OAuthApplication; org: User }

async function withApps(s: Services, tokens: OAuthAccessToken[]): Promise<Authorization[]> {
  const out: Authorization[] = [];
  for (const token of tokens) {
    const app = await s.db.selectFrom('oauth_applications').selectAll().where('id', '=', token.application_id).executeTakeFirst();
    const org = app ? await findUserById(s, app.org_id) : undefined;
    if (app && org) out.push({ token, app, org });
  }
  return out;
}

export async function listAuthorizations(s: Services, userId: number): Promise<Authorization[]> {
  return withApps(s, await s.db.selectFrom('oauth_access_tokens').selectAll().where('user_id', '=', userId).orderBy('id').execute());
}

export async function getAuthorization(s: Services, userId: number, uuid: string): Promise<Authorization | undefined> {
  const t = await s.db.selectFrom('oauth_access_tokens').selectAll().where('user_id', '=', userId).where('uuid', '=', uuid).executeTakeFirst();
  return t ? (await withApps(s, [t]))[0] : undefined;
}

export async function revokeAuthorization(s: Services, p: UserPrincipal, uuid: string, ip: string | null): Promise<boolean> {
  const a = await getAuthorization(s, p.userId, uuid);
  if (!a) return false;
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('oauth_access_tokens').where('id', '=', a.token.id).execute();
    await logAction(s, 'oauth_token_revoked', {
      namespaceId: p.userId, performer: p, ip,
      metadata: { oauth_token_uuid: uuid, application_name: a.app.name, client_id: a.app.client_id },
    }, tx);
  });
  return true;
}

// ---- Token assignments (FEATURE_ASSIGN_OAUTH_TOKEN)

export interface AssignmentView { assignment: OAuthAssignment; app: OAuthApplication; org: User }

export async function listAssignments(s: Services, userId: number): Promise<AssignmentView[]> {
  const rows = await s.db.selectFrom('oauth_assigned_tokens').selectAll().where('assigned_user_id', '=', userId).orderBy('id').execute();
  const out: AssignmentView[] = [];
  for (const assignment of rows) {
    const app = await s.db.selectFrom('oauth_applications').selectAll().where('id', '=', assignment.application_id).executeTakeFirst();
    const org = app ? await findUserById(s, app.org_id) : undefined;
    if (app && org) out.push({ assignment, app, org });
  }
  // Seeing the list is what Quay's "assigned authorization" notifications ask for.
  await s.db.deleteFrom('user_notifications').where('user_id', '=', userId).where('kind', '=', 'assigned_authorization').execute();
  return out;
}

export async function deleteAssignment(s: Services, p: UserPrincipal, uuid: string, ip: string | null): Promise<boolean> {
  const row = await s.db.selectFrom('oauth_assigned_tokens').selectAll().where('uuid', '=', uuid).where('assigned_user_id', '=', p.userId).executeTakeFirst();
  if (!row) return false;
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('oauth_assigned_tokens').where('id', '=', row.id).execute();
    await logAction(s, 'oauth_token_revoked', { namespaceId: p.userId, performer: p, ip, metadata: { assignment_uuid: uuid } }, tx);
  });
  return true;
}

/** An org admin asks `username` to authorize the application (Quay's /oauth/authorize/assignuser). */
export async function assignToken(
  s: Services, admin: User, app: OAuthApplication,
  input: { username: string; redirectUri: string; scope: string; responseType: string; ip?: string | null },
): Promise<OAuthAssignment> {
  const assignee = await findUser(s, input.username);
  if (!assignee || assignee.kind !== 'user') throw new DomainError('invalid_request', `Invalid username ${input.username}`);
  if (parseScopes(input.scope).length === 0) throw new DomainError('invalid_request', `Invalid scope: ${input.scope}`);
  const uuid = randomUUID();
  return s.db.transaction().execute(async (tx) => {
    const row = await tx.insertInto('oauth_assigned_tokens').values({
      uuid, assigned_user_id: assignee.id, application_id: app.id, redirect_uri: input.redirectUri, scope: input.scope, response_type: input.responseType,
    }).returningAll().executeTakeFirstOrThrow();
    await tx.insertInto('user_notifications').values({
      uuid: randomUUID(), user_id: assignee.id, kind: 'assigned_authorization', dismissed: 0, created_at: s.now(),
      metadata: JSON.stringify({ username: admin.username, application_name: app.name, client_id: app.client_id }),
    }).execute();
    const p = principalFor(admin, 'session');
    await logAction(s, 'oauth_token_assigned', {
      namespaceId: app.org_id, performer: p, ip: input.ip,
      metadata: { assigned_user: assignee.username, application_name: app.name, client_id: app.client_id, scope: input.scope },
    }, tx);
    return row;
  });
}

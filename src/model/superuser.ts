// Registry administration by superusers (Quay's superuser panel): every user and organization of
// the installation, taking ownership of namespaces, and the installation-wide app-token list.
import { readFile } from 'node:fs/promises';
import { sql } from 'kysely';
import type { Principal, Services } from './context.ts';
import {
  createAppToken, createUser, findUser, hashPassword, isGlobalReadonlySuperuser, isSuperuser, validatePassword, type User,
} from './accounts.ts';
import { DomainError } from './errors.ts';
import { DataModelError } from './data-errors.ts';
import { logAction } from './logs.ts';
import { validNamespace } from './names.ts';
import { randomCode } from './crypto.ts';
import { deleteNamespaceRows } from './namespace-deletion.ts';
import { endAllSessions } from './sessions.ts';

/** What a principal may do in the superuser panel: everything, read only, or nothing. */
export type SuperuserAccess = 'full' | 'readonly' | null;

export function superuserAccess(s: Services, p: Principal): SuperuserAccess {
  if (p.kind !== 'user' || !s.config.features.SUPER_USERS) return null;
  // p.superuser already accounts for OAuth tokens without the super:user scope.
  if (p.superuser) return 'full';
  if (isGlobalReadonlySuperuser(s, { username: p.username, kind: 'user' })) return 'readonly';
  return null;
}

// Quay's DataModelException failures (bare 400 {"message"} in its API).
const dataModelError = (message: string): DataModelError => new DataModelError(message);

/** Whether a namespace name belongs to a superuser (config list or database flag). */
export async function isSuperuserName(s: Services, username: string): Promise<boolean> {
  if (s.config.superUsers.includes(username)) return s.config.features.SUPER_USERS;
  const u = await findUser(s, username);
  return !!u && isSuperuser(s, u);
}

export interface Page<T> { items: T[]; nextStartId: number | null }

/** Quay's modelutil.paginate: id order, `limit` rows from startId, and where the next page starts. */
async function pageOf<T extends { id: number }>(rows: Promise<T[]>, limit: number | null): Promise<Page<T>> {
  const all = await rows;
  if (limit === null || all.length <= limit) return { items: all, nextStartId: null };
  return { items: all.slice(0, limit), nextStartId: all[limit]!.id };
}

export async function listUsers(s: Services, opts: { includeDisabled: boolean; limit: number | null; startId: number | null }): Promise<Page<User>> {
  let q = s.db.selectFrom('users').selectAll().where('kind', '=', 'user');
  if (!opts.includeDisabled) q = q.where('enabled', '=', 1);
  if (opts.startId !== null) q = q.where('id', '>=', opts.startId);
  q = q.orderBy('id');
  if (opts.limit !== null) q = q.limit(opts.limit + 1);
  return pageOf(q.execute(), opts.limit);
}

export async function listOrganizations(s: Services, opts: { limit: number | null; startId: number | null }): Promise<Page<User>> {
  let q = s.db.selectFrom('users').selectAll().where('kind', '=', 'org');
  if (opts.startId !== null) q = q.where('id', '>=', opts.startId);
  q = q.orderBy('id');
  if (opts.limit !== null) q = q.limit(opts.limit + 1);
  return pageOf(q.execute(), opts.limit);
}

/** A human account (not an organization or robot), as Quay's get_nonrobot_user. */
export async function findHuman(s: Services, username: string): Promise<User | null> {
  const u = await findUser(s, username);
  return u && u.kind === 'user' ? u : null;
}

async function findOrganization(s: Services, name: string): Promise<User> {
  const u = await findUser(s, name);
  // Quay's InvalidOrganizationException, a DataModelException.
  if (!u || u.kind !== 'org') throw dataModelError(`Organization does not exist: ${name}`);
  return u;
}

const ENCRYPTED_PASSWORD_TITLE = 'Encrypted password (superuser panel)';

/**
 * Quay's "encrypted password": a credential that works as the docker login password. Like
 * /api/v1/user/initialize it is an app-specific token of the user (listed and revocable), or ''
 * when app-specific tokens are off.
 */
async function encryptedPassword(s: Services, user: User, performer: Principal, ip: string | null | undefined): Promise<string> {
  if (!s.config.features.APP_SPECIFIC_TOKENS) return '';
  const t = await createAppToken(s, user, ENCRYPTED_PASSWORD_TITLE);
  await logAction(s, 'create_app_specific_token', {
    namespaceId: user.id, performer, ip, metadata: { app_specific_token_title: ENCRYPTED_PASSWORD_TITLE, app_specific_token: t.uuid },
  });
  return t.token;
}

export interface CreatedInstallUser { user: User; password: string; encryptedPassword: string }

/** Creates a user with a generated 32-character password (Quay's createInstallUser). */
export async function createInstallUser(
  s: Services, performer: Principal, input: { username: string; email?: string | null }, ip?: string | null,
): Promise<CreatedInstallUser> {
  const existing = await findUser(s, input.username);
  if (existing) {
    throw dataModelError(existing.kind === 'org'
      ? `Username has already been taken by an organization and cannot be reused: ${input.username}`
      : `Username has already been taken by user cannot be reused: ${input.username}`);
  }
  const password = randomCode(32);
  const superuserName = performer.kind === 'anonymous' ? null : performer.username;
  // Not one transaction: hashing takes a while and SQLite would hold every writer meanwhile.
  let user: User;
  try {
    user = await createUser(s, { username: input.username, password, email: input.email ?? null, verified: !s.config.features.MAILING });
  } catch (e) {
    if (e instanceof DomainError && e.code === 'invalid_request') throw dataModelError(e.message);
    throw e;
  }
  await logAction(s, 'user_create', {
    namespaceId: user.id, performer, ip, metadata: { email: input.email ?? null, username: user.username, superuser: superuserName },
  });
  return { user, password, encryptedPassword: await encryptedPassword(s, user, performer, ip) };
}

export interface UserChanges { password?: string; email?: string; enabled?: boolean }

/** Quay's changeInstallUser: password, email and enabled flag, validated before anything changes. */
export async function updateInstallUser(
  s: Services, performer: Principal, username: string, changes: UserChanges, ip?: string | null,
): Promise<{ user: User; encryptedPassword: string | null }> {
  const user = await findHuman(s, username);
  if (!user) throw new DomainError('not_found', 'Not Found');
  if (isSuperuser(s, user)) throw new DomainError('invalid_request', 'Cannot update a superuser');
  const superuserName = performer.kind === 'anonymous' ? null : performer.username;

  // Quay's DataModelException messages, answered before any change is made.
  if (changes.password !== undefined) {
    try {
      validatePassword(changes.password);
    } catch (e) {
      throw dataModelError((e as Error).message);
    }
  }
  if (changes.email !== undefined) {
    if (!/^[^@\s]+@[^@\s]+$/.test(changes.email)) throw dataModelError(`Invalid email address: ${changes.email}`);
    const taken = await s.db.selectFrom('users').select('id').where('email', '=', changes.email).where('kind', '=', 'user')
      .where('id', '!=', user.id).executeTakeFirst();
    if (taken) throw dataModelError('E-mail address already used');
  }
  const passwordHash = changes.password !== undefined ? await hashPassword(changes.password) : null;

  await s.db.transaction().execute(async (tx) => {
    const base = { namespaceId: user.id, performer, ip };
    if (passwordHash !== null) {
      await tx.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', user.id).execute();
      await logAction(s, 'user_change_password', { ...base, metadata: { username, superuser: superuserName } }, tx);
    }
    if (changes.email !== undefined) {
      await tx.updateTable('users').set({ email: changes.email, verified: 1 }).where('id', '=', user.id).execute();
      await logAction(s, 'user_change_email', { ...base, metadata: { old_email: user.email, email: changes.email, superuser: superuserName } }, tx);
    }
    if (changes.enabled !== undefined) {
      await tx.updateTable('users').set({ enabled: changes.enabled ? 1 : 0 }).where('id', '=', user.id).execute();
      await logAction(s, changes.enabled ? 'user_enable' : 'user_disable', { ...base, metadata: { username, superuser: superuserName } }, tx);
    }
  });
  // Quay's change_password invalidates every session of the user.
  if (passwordHash !== null) await endAllSessions(s, user.id);
  const updated = (await findUser(s, username))!;
  const encrypted = changes.password !== undefined ? await encryptedPassword(s, updated, performer, ip) : null;
  return { user: updated, encryptedPassword: encrypted };
}

/** Deletes a user and everything in their namespace. Superusers cannot be deleted. */
export async function deleteInstallUser(s: Services, performer: Principal, username: string, ip?: string | null): Promise<void> {
  const user = await findHuman(s, username);
  if (!user) throw new DomainError('not_found', 'Not Found');
  if (isSuperuser(s, user)) throw new DomainError('invalid_request', 'Cannot delete a superuser');
  const superuserName = performer.kind === 'anonymous' ? null : performer.username;
  await s.db.transaction().execute(async (tx) => {
    await logAction(s, 'user_delete', { namespaceId: user.id, performer, ip, metadata: { username, superuser: superuserName } }, tx);
    await deleteNamespaceRows(s, user.id, tx);
  });
}

/** Renames an organization (its robots follow: `<org>+<robot>`). Quay's changeOrganization. */
export async function renameOrganization(
  s: Services, performer: Principal, name: string, newName: string | undefined, ip?: string | null,
): Promise<User> {
  const org = await findOrganization(s, name);
  const superuserName = performer.kind === 'anonymous' ? null : performer.username;
  if (newName !== undefined && newName !== name) {
    if (!validNamespace(newName)) {
      throw dataModelError(`Invalid namespace ${newName}: namespaces must be 2-255 characters of lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit`);
    }
    if (await findUser(s, newName)) throw dataModelError(`A user or organization with this name already exists: ${newName}`);
  }
  await s.db.transaction().execute(async (tx) => {
    await logAction(s, 'org_change_name', {
      namespaceId: org.id, performer, ip, metadata: { old_name: name, new_name: newName ?? null, superuser: superuserName },
    }, tx);
    if (newName === undefined || newName === name) return;
    await tx.updateTable('users').set({ username: newName }).where('id', '=', org.id).execute();
    const robots = await tx.selectFrom('users').select(['id', 'username']).where('robot_owner_id', '=', org.id).execute();
    for (const r of robots) {
      await tx.updateTable('users').set({ username: `${newName}+${r.username.slice(r.username.indexOf('+') + 1)}` }).where('id', '=', r.id).execute();
    }
  });
  return (await s.db.selectFrom('users').selectAll().where('id', '=', org.id).executeTakeFirst())!;
}

export async function deleteOrganization(s: Services, performer: Principal, name: string, ip?: string | null): Promise<void> {
  const org = await findOrganization(s, name);
  const superuserName = performer.kind === 'anonymous' ? null : performer.username;
  await s.db.transaction().execute(async (tx) => {
    await logAction(s, 'org_delete', { namespaceId: org.id, performer, ip, metadata: { namespace: name, superuser: superuserName } }, tx);
    await deleteNamespaceRows(s, org.id, tx);
  });
}

/**
 * Makes the calling superuser an administrator of a namespace. An organization gains them in its
 * owners team; a user account is converted into an organization they own (it can no longer sign
 * in: password, tokens, linked logins, memberships and direct permissions go).
 */
export async function takeOwnership(
  s: Services, performer: Exclude<Principal, { kind: 'anonymous' }>, namespace: string, ip?: string | null,
): Promise<{ entityId: number; wasUser: boolean }> {
  if (await isSuperuserName(s, namespace)) throw new DomainError('invalid_request', 'Cannot take ownership of a superuser');
  const entity = await findUser(s, namespace);
  if (!entity || entity.kind === 'robot') throw new DomainError('not_found', 'Not Found');
  const wasUser = entity.kind === 'user';
  await s.db.transaction().execute(async (tx) => {
    let ownersId: number;
    if (wasUser) {
      await tx.updateTable('users').set({ kind: 'org', password_hash: null }).where('id', '=', entity.id).execute();
      await tx.deleteFrom('federated_logins').where('user_id', '=', entity.id).execute();
      await tx.deleteFrom('repo_permissions').where('user_id', '=', entity.id).execute();
      await tx.deleteFrom('team_members').where('user_id', '=', entity.id).execute();
      await tx.deleteFrom('app_tokens').where('user_id', '=', entity.id).execute();
      await tx.deleteFrom('oauth_access_tokens').where('user_id', '=', entity.id).execute();
      await tx.deleteFrom('oauth_assigned_tokens').where('assigned_user_id', '=', entity.id).execute();
      await tx.deleteFrom('stars').where('user_id', '=', entity.id).execute();
      await tx.deleteFrom('sessions').where('user_id', '=', entity.id).execute();
      const team = await tx.insertInto('teams').values({ org_id: entity.id, name: 'owners', role: 'admin', description: '' })
        .returning('id').executeTakeFirstOrThrow();
      ownersId = team.id;
    } else {
      // Quay's add_user_as_admin: the organization's first admin team.
      const team = await tx.selectFrom('teams').select('id').where('org_id', '=', entity.id).where('role', '=', 'admin')
        .orderBy(sql`case when name = 'owners' then 0 else 1 end`).orderBy('id').executeTakeFirst();
      ownersId = team?.id ?? (await tx.insertInto('teams').values({ org_id: entity.id, name: 'owners', role: 'admin', description: '' })
        .returning('id').executeTakeFirstOrThrow()).id;
    }
    const member = await tx.selectFrom('team_members').select('id').where('team_id', '=', ownersId).where('user_id', '=', performer.userId).executeTakeFirst();
    if (!member) await tx.insertInto('team_members').values({ team_id: ownersId, user_id: performer.userId }).execute();
    // Quay logs this in the superuser's own namespace.
    await logAction(s, 'take_ownership', {
      namespaceId: performer.userId, performer, ip,
      metadata: { entity_id: entity.id, namespace, was_user: wasUser, superuser: performer.username },
    }, tx);
  });
  return { entityId: entity.id, wasUser };
}

export interface AppTokenListing { uuid: string; title: string; created_at: number; expires_at: number | null; last_accessed: number | null }

/** Quay's convert_to_timedelta for APP_SPECIFIC_TOKEN_EXPIRATION ("4w", "30d", "12h", ...). */
function durationMs(text: string): number | null {
  const m = /^\s*(\d+)\s*([smhdw])\s*$/.exec(text);
  if (!m) return null;
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2] as 's' | 'm' | 'h' | 'd' | 'w'];
  return Number(m[1]) * unit * 1000;
}

/**
 * Every user's app-specific tokens; with `expiringOnly`, those expiring within a tenth of the
 * configured token lifetime (APP_SPECIFIC_TOKEN_EXPIRATION, default four weeks), as Quay does.
 */
export async function listAllAppTokens(s: Services, expiringOnly: boolean): Promise<AppTokenListing[]> {
  let q = s.db.selectFrom('app_tokens').select(['uuid', 'title', 'created_at', 'expires_at', 'last_accessed']).orderBy('id');
  if (expiringOnly) {
    const configured = s.config.raw.APP_SPECIFIC_TOKEN_EXPIRATION;
    const lifetime = (typeof configured === 'string' ? durationMs(configured) : null) ?? durationMs('4w')!;
    const now = s.now();
    const soon = now + Math.max(1000, Math.ceil(lifetime * 0.1 / 1000) * 1000);
    q = q.where('expires_at', 'is not', null).where('expires_at', '>', now).where('expires_at', '<=', soon);
  }
  return q.execute();
}

const CHANGELOG_URL = new URL('../../CHANGELOG.md', import.meta.url);

/** The installation's change log (Quayside's CHANGELOG.md), as Quay's superuser panel shows it. */
export async function changelog(): Promise<string> {
  try {
    return await readFile(CHANGELOG_URL, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Quay's scShutdownContainer check: superusers only; DEBUGGING: true turns the call into a no-op.
 * Quay also lets anyone in while the database has no accounts (its config tool restarts the
 * container before the first user exists) or under TESTING; Quayside has neither tool nor test
 * mode, and both would let any caller keep a fresh install down.
 */
export async function shutdownDecision(s: Services, p: Principal): Promise<'denied' | 'ignored' | 'allowed'> {
  if (superuserAccess(s, p) !== 'full') return 'denied';
  return s.config.raw.DEBUGGING === true ? 'ignored' : 'allowed';
}

/** Quay's scRegistryStatus: Quayside is configured once it runs, unless SETUP_COMPLETE says otherwise. */
export function registryStatus(s: Services): { status: 'ready'; provider_id: string } | { status: 'setup-incomplete' } {
  if (s.config.raw.SETUP_COMPLETE === false) return { status: 'setup-incomplete' };
  return { status: 'ready', provider_id: 'file' };
}

// Users, organizations and robots: one namespace space, like Quay's `user` table.
import { randomUUID } from 'node:crypto';
import { hash as bcryptHash, verify as bcryptVerify } from '@node-rs/bcrypt';
import type { Selectable, Transaction } from 'kysely';
import type { Database, UsersTable } from '../db/schema.ts';
import type { Services } from './context.ts';
import { DomainError } from './errors.ts';
import { validNamespace, NAMESPACE_RE } from './names.ts';
import { randomCode, sha256Hex, safeEqual } from './crypto.ts';

export type User = Selectable<UsersTable>;
type Tx = Transaction<Database> | Services['db'];

const BCRYPT_COST = 12;
// Spent on unknown users too, so timing does not reveal which usernames exist.
let dummyHash: Promise<string> | undefined;

export async function findUser(s: Services, username: string, db: Tx = s.db): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
}

export async function findUserById(s: Services, id: number): Promise<User | undefined> {
  return s.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export function isSuperuser(s: Services, user: Pick<User, 'username' | 'superuser' | 'kind'>): boolean {
  if (user.kind !== 'user' || !s.config.features.SUPER_USERS) return false;
  return user.superuser === 1 || s.config.superUsers.includes(user.username);
}

export function isGlobalReadonlySuperuser(s: Services, user: Pick<User, 'username' | 'kind'>): boolean {
  return user.kind === 'user' && s.config.features.SUPER_USERS && s.config.globalReadonlySuperUsers.includes(user.username);
}

export async function hashPassword(password: string): Promise<string> {
  return bcryptHash(password, BCRYPT_COST);
}

export function validatePassword(password: unknown): asserts password is string {
  if (typeof password !== 'string' || password.length < 8) {
    throw new DomainError('invalid_request', 'Password must be at least 8 characters and contain no whitespace.');
  }
  if (/\s/.test(password)) throw new DomainError('invalid_request', 'Password must be at least 8 characters and contain no whitespace.');
}

export async function createUser(
  s: Services,
  input: { username: string; password?: string | null; email?: string | null; superuser?: boolean; verified?: boolean },
  db: Tx = s.db,
): Promise<User> {
  const { username } = input;
  if (!validNamespace(username)) {
    throw new DomainError('invalid_request', `Invalid namespace ${username}: namespaces must be 2-255 characters of lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit`);
  }
  if (input.password !== undefined && input.password !== null) validatePassword(input.password);
  if (input.email !== undefined && input.email !== null && !/^[^@\s]+@[^@\s]+$/.test(input.email)) {
    throw new DomainError('invalid_request', 'Invalid email address');
  }
  const password_hash = input.password ? await hashPassword(input.password) : null;
  if (await findUser(s, username, db)) throw new DomainError('invalid_request', 'The username already exists');
  if (input.email) {
    const taken = await db.selectFrom('users').select('id').where('email', '=', input.email).where('kind', '=', 'user').executeTakeFirst();
    if (taken) throw new DomainError('invalid_request', 'Email has already been used');
  }
  try {
    return await db.insertInto('users').values({
      uuid: randomUUID(), username, email: input.email ?? null, password_hash, kind: 'user',
      superuser: input.superuser ? 1 : 0, verified: input.verified === false ? 0 : 1, created_at: s.now(),
      tag_expiration_s: s.config.defaultTagExpirationSeconds,
    }).returningAll().executeTakeFirstOrThrow();
  } catch (e) {
    if (isUniqueViolation(e)) throw new DomainError('invalid_request', 'The username already exists');
    throw e;
  }
}

export function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** Password check for humans; null for unknown users, disabled users or a wrong password. */
export async function verifyPassword(s: Services, username: string, password: string): Promise<User | null> {
  const user = await findUser(s, username);
  const hash = user?.kind === 'user' && user.password_hash ? user.password_hash : await (dummyHash ??= bcryptHash('not-a-password', BCRYPT_COST));
  const ok = await bcryptVerify(password, hash).catch(() => false);
  if (!user || user.kind !== 'user' || !user.password_hash || !ok || !user.enabled) return null;
  return user;
}

export async function createOrganization(s: Services, name: string, owner: User, email: string | null = null): Promise<User> {
  if (!validNamespace(name)) throw new DomainError('invalid_request', `Invalid namespace ${name}`);
  return s.db.transaction().execute(async (tx) => {
    if (await findUser(s, name, tx)) throw new DomainError('invalid_request', 'A user or organization with this name already exists');
    const org = await tx.insertInto('users').values({
      uuid: randomUUID(), username: name, email, kind: 'org', created_at: s.now(), tag_expiration_s: s.config.defaultTagExpirationSeconds,
    }).returningAll().executeTakeFirstOrThrow();
    const team = await tx.insertInto('teams').values({ org_id: org.id, name: 'owners', role: 'admin', description: '' }).returning('id').executeTakeFirstOrThrow();
    await tx.insertInto('team_members').values({ team_id: team.id, user_id: owner.id }).execute();
    return org;
  });
}

// ---- Robots: "<namespace>+<shortname>", tokens of 64 [A-Z0-9], encrypted because Quay shows them again.

export const ROBOT_SHORTNAME_RE = NAMESPACE_RE;

export async function createRobot(
  s: Services, owner: User, shortname: string, description = '', unstructuredMetadata: Record<string, unknown> | null = null,
): Promise<{ robot: User; token: string }> {
  if (!ROBOT_SHORTNAME_RE.test(shortname)) {
    throw new DomainError('invalid_request', `The name for the robot '${shortname}' is invalid: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`);
  }
  if (!validNamespace(shortname)) {
    throw new DomainError('invalid_request', `The name for the robot '${shortname}' is invalid: Namespace must be between 2 and 255 characters in length`);
  }
  const username = `${owner.username}+${shortname}`;
  const token = randomCode(64);
  return s.db.transaction().execute(async (tx) => {
    if (await findUser(s, username, tx)) throw new DomainError('invalid_request', `Existing robot with name: ${username}`);
    // Quay keeps the first 255 characters of the description and {} for absent metadata.
    const robot = await tx.insertInto('users').values({
      uuid: randomUUID(), username, kind: 'robot', robot_owner_id: owner.id, description: description.slice(0, 255),
      metadata: JSON.stringify(unstructuredMetadata ?? {}), created_at: s.now(),
    }).returningAll().executeTakeFirstOrThrow();
    await tx.insertInto('robot_tokens').values({ robot_id: robot.id, token_enc: s.box.encrypt(token), token_hash: sha256Hex(token) }).execute();
    return { robot, token };
  });
}

export async function verifyRobotToken(s: Services, username: string, token: string): Promise<User | null> {
  if (!username.includes('+')) return null;
  const row = await s.db.selectFrom('users').innerJoin('robot_tokens', 'robot_tokens.robot_id', 'users.id')
    .selectAll('users').select('robot_tokens.token_hash')
    .where('users.username', '=', username).where('users.kind', '=', 'robot').executeTakeFirst();
  if (!row || !safeEqual(row.token_hash, sha256Hex(token)) || !row.enabled) return null;
  const { token_hash: _h, ...user } = row;
  return user;
}

/** Quay's last_accessed (FEATURE_USER_LAST_ACCESSED): written at most once a minute per account, so logins stay cheap. */
export async function touchLastAccessed(s: Services, userId: number): Promise<void> {
  if (s.config.features.USER_LAST_ACCESSED === false) return;
  const now = s.now();
  await s.db.updateTable('users').set({ last_accessed: now }).where('id', '=', userId)
    .where((eb) => eb.or([eb('last_accessed', 'is', null), eb('last_accessed', '<', now - 60_000)])).execute();
}

export async function robotToken(s: Services, robotId: number): Promise<string | null> {
  const row = await s.db.selectFrom('robot_tokens').select('token_enc').where('robot_id', '=', robotId).executeTakeFirst();
  return row ? s.box.decrypt(row.token_enc) : null;
}

// ---- App-specific tokens: 120 chars, the first 60 a lookup prefix in clear, the rest the secret.

export async function createAppToken(s: Services, user: User, title: string, expiresAt: number | null = null): Promise<{ uuid: string; token: string }> {
  const token = randomCode(120);
  const uuid = randomUUID();
  await s.db.insertInto('app_tokens').values({
    uuid, user_id: user.id, title, token_prefix: token.slice(0, 60), token_secret_enc: s.box.encrypt(token.slice(60)),
    created_at: s.now(), expires_at: expiresAt,
  }).execute();
  return { uuid, token };
}

export async function verifyAppToken(s: Services, token: string): Promise<User | null> {
  if (token.length !== 120) return null;
  const row = await s.db.selectFrom('app_tokens').selectAll().where('token_prefix', '=', token.slice(0, 60)).executeTakeFirst();
  if (!row || (row.expires_at !== null && row.expires_at <= s.now())) return null;
  if (!safeEqual(s.box.decrypt(row.token_secret_enc), token.slice(60))) return null;
  const user = await findUserById(s, row.user_id);
  // A disabled account, or one a superuser turned into an organization, no longer signs in.
  if (!user || !user.enabled || user.kind !== 'user') return null;
  await s.db.updateTable('app_tokens').set({ last_accessed: s.now() }).where('id', '=', row.id).execute();
  return user;
}

// ---- OAuth access tokens: 40 chars, the first 20 a public lookup prefix, the rest hashed.

export async function createOAuthToken(
  s: Services, applicationId: number, user: User, scope: string, expiresInSeconds: number | null = null,
  extra: { name?: string | null; data?: string | null } = {},
): Promise<{ uuid: string; token: string }> {
  const token = randomCode(40, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789');
  const uuid = randomUUID();
  await s.db.insertInto('oauth_access_tokens').values({
    uuid, application_id: applicationId, user_id: user.id, token_prefix: token.slice(0, 20), token_hash: sha256Hex(token.slice(20)),
    scope, created_at: s.now(), expires_at: expiresInSeconds === null ? null : s.now() + expiresInSeconds * 1000,
    name: extra.name ?? null, data: extra.data ?? null,
  }).execute();
  return { uuid, token };
}

export async function verifyOAuthToken(s: Services, token: string): Promise<{ user: User; scopes: string[] } | null> {
  if (token.length !== 40) return null;
  const row = await s.db.selectFrom('oauth_access_tokens').selectAll().where('token_prefix', '=', token.slice(0, 20)).executeTakeFirst();
  if (!row || (row.expires_at !== null && row.expires_at <= s.now())) return null;
  if (!safeEqual(row.token_hash, sha256Hex(token.slice(20)))) return null;
  const user = await findUserById(s, row.user_id);
  if (!user || !user.enabled || user.kind !== 'user') return null;
  // Quay's last_accessed for OAuth tokens, written at most once per threshold (60 s by default).
  const now = s.now();
  const threshold = Number(s.config.raw.OAUTH_TOKEN_LAST_ACCESSED_UPDATE_THRESHOLD_S ?? 60) * 1000;
  if (row.last_accessed === null || now - row.last_accessed >= threshold) {
    await s.db.updateTable('oauth_access_tokens').set({ last_accessed: now }).where('id', '=', row.id).execute();
  }
  return { user, scopes: row.scope.split(/[\s,]+/).filter(Boolean) };
}

/** Quay's `/api/v1/user/initialize` "automation" application, created in the user's namespace. */
export async function createOAuthApplication(s: Services, org: User, name: string, fields: { description?: string; application_uri?: string; redirect_uri?: string } = {}): Promise<number> {
  const row = await s.db.insertInto('oauth_applications').values({
    uuid: randomUUID(), org_id: org.id, client_id: randomCode(20), client_secret_enc: s.box.encrypt(randomCode(40)), name,
    description: fields.description ?? '', application_uri: fields.application_uri ?? '', redirect_uri: fields.redirect_uri ?? '',
  }).returning('id').executeTakeFirstOrThrow();
  return row.id;
}

export const ALL_OAUTH_SCOPES = ['org:admin', 'repo:admin', 'repo:create', 'repo:read', 'repo:write', 'super:user', 'user:admin', 'user:read'];

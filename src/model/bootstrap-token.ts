// Programmatic bootstrap (Quay's FEATURE_PROGRAMMATIC_BOOTSTRAP): at startup the configured
// BOOTSTRAP_TOKEN_OWNER (a superuser) gets one OAuth application, `__quay_bootstrap_app`, with one
// token whose secret is written to BOOTSTRAP_TOKEN_PATH for automation to pick up. The holder
// rotates it with POST /api/v1/bootstrap/renew. Turning the feature off revokes everything.
//
// Bootstrap tokens are ordinary OAuth tokens marked in `data` ({"kind": "bootstrap", "owner",
// "application_name"}), so other tokens of the same application are never touched by rotation.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql, type Selectable, type Transaction } from 'kysely';
import type { Database, OauthAccessTokensTable, OauthApplicationsTable } from '../db/schema.ts';
import type { Services } from './context.ts';
import { ALL_OAUTH_SCOPES, createOAuthApplication, createOAuthToken, findUser, type User } from './accounts.ts';
import { safeEqual, sha256Hex } from './crypto.ts';

export const BOOTSTRAP_APP_NAME = '__quay_bootstrap_app';
export const BOOTSTRAP_APP_DESCRIPTION = 'Auto-created by bootstrap token provisioning';
const BOOTSTRAP_KIND = 'bootstrap';
// PostgreSQL advisory lock serializing provisioning (every replica at startup) and renewals.
const LOCK_ID = 7261003;

type Token = Selectable<OauthAccessTokensTable>;
type App = Selectable<OauthApplicationsTable>;
type Db = Transaction<Database> | Services['db'];

/** Raised when a renewal cannot finish; the database changes are rolled back. */
export class TokenRotationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenRotationError';
  }
}

export interface BootstrapSettings {
  owner: string | null;
  scope: string;
  expirationSeconds: number;
  /** Where the current secret is written: {"access_token": "…"}, mode 0600. */
  path: string;
  appName: string;
}

export function bootstrapSettings(s: Services): BootstrapSettings {
  const raw = s.config.raw;
  const exp = Number(raw.BOOTSTRAP_TOKEN_EXPIRATION);
  return {
    owner: typeof raw.BOOTSTRAP_TOKEN_OWNER === 'string' && raw.BOOTSTRAP_TOKEN_OWNER ? raw.BOOTSTRAP_TOKEN_OWNER : null,
    scope: typeof raw.BOOTSTRAP_TOKEN_SCOPE === 'string' && raw.BOOTSTRAP_TOKEN_SCOPE.trim() ? raw.BOOTSTRAP_TOKEN_SCOPE.trim() : ALL_OAUTH_SCOPES.join(' '),
    expirationSeconds: Number.isInteger(exp) && exp > 0 ? exp : 3600,
    // Quay's default is /var/lib/quay/quay-machine-token.json; Quayside keeps its state in the data dir.
    path: typeof raw.BOOTSTRAP_TOKEN_PATH === 'string' && raw.BOOTSTRAP_TOKEN_PATH ? raw.BOOTSTRAP_TOKEN_PATH : join(s.config.dataDir, 'quay-machine-token.json'),
    appName: typeof raw.BOOTSTRAP_APP_NAME === 'string' && raw.BOOTSTRAP_APP_NAME ? raw.BOOTSTRAP_APP_NAME : BOOTSTRAP_APP_NAME,
  };
}

function tokenData(owner: User, app: App): string {
  return JSON.stringify({ kind: BOOTSTRAP_KIND, owner: owner.username, application_name: app.name });
}

function isBootstrapToken(t: Token, owner?: User, app?: App): boolean {
  let d: { kind?: unknown; owner?: unknown; application_name?: unknown };
  try {
    d = JSON.parse(t.data ?? '{}') as typeof d;
  } catch {
    return false;
  }
  if (!d || d.kind !== BOOTSTRAP_KIND) return false;
  if (owner && (d.owner !== owner.username || t.user_id !== owner.id)) return false;
  if (app && d.application_name !== app.name) return false;
  return true;
}

async function lock(s: Services, tx: Transaction<Database>): Promise<void> {
  if (s.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${LOCK_ID})`.execute(tx);
}

/** Applications with the reserved name that carry bootstrap tokens, newest first. */
async function managedApps(db: Db, name: string): Promise<{ app: App; tokens: Token[] }[]> {
  const apps = await db.selectFrom('oauth_applications').selectAll().where('name', '=', name).orderBy('id', 'desc').execute();
  const out: { app: App; tokens: Token[] }[] = [];
  for (const app of apps) {
    const tokens = (await db.selectFrom('oauth_access_tokens').selectAll().where('application_id', '=', app.id).execute()).filter((t) => isBootstrapToken(t));
    if (tokens.length) out.push({ app, tokens });
  }
  return out;
}

/** The configured owner, when it names an existing superuser of the config's SUPER_USERS list. */
async function configuredOwner(s: Services, db: Db): Promise<User | null> {
  const { owner } = bootstrapSettings(s);
  if (!owner || !s.config.superUsers.includes(owner)) return null;
  const user = await findUser(s, owner, db);
  return user && user.kind === 'user' ? user : null;
}

/** The owner's newest bootstrap application holding one of the owner's bootstrap tokens. */
async function canonicalApp(s: Services, db: Db, owner: User): Promise<App | null> {
  const found = (await managedApps(db, bootstrapSettings(s).appName))
    .find(({ app, tokens }) => app.org_id === owner.id && tokens.some((t) => isBootstrapToken(t, owner)));
  return found?.app ?? null;
}

async function tokenBySecret(db: Db, secret: string): Promise<Token | undefined> {
  if (secret.length !== 40) return undefined;
  const row = await db.selectFrom('oauth_access_tokens').selectAll().where('token_prefix', '=', secret.slice(0, 20)).executeTakeFirst();
  return row && safeEqual(row.token_hash, sha256Hex(secret.slice(20))) ? row : undefined;
}

/** Quay's validate_bootstrap_token: the owner's current bootstrap token, expired or not. */
export async function findBootstrapToken(s: Services, secret: string, db: Db = s.db): Promise<Token | null> {
  const token = await tokenBySecret(db, secret);
  if (!token) return null;
  const owner = await configuredOwner(s, db);
  if (!owner) return null;
  const app = await canonicalApp(s, db, owner);
  if (!app || token.application_id !== app.id || !isBootstrapToken(token, owner, app)) return null;
  return token;
}

/** Writes {"access_token": …} next to its final place, then renames it there (mode 0600). */
async function writeTokenFile(path: string, secret: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `{"access_token": "${secret}"}`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export type RenewResult = { ok: true } | { ok: false; reason: 'not_bootstrap' | 'expired' };

/**
 * Quay's BootstrapTokenRenew: a new bootstrap token replaces every other bootstrap token of the
 * application and is written to the token file, all or nothing. An expired token renews only when
 * the caller proved it is local (`allowExpired`).
 */
export async function renewBootstrapToken(s: Services, secret: string, opts: { allowExpired: boolean }): Promise<RenewResult> {
  const usable = (t: Token): boolean => opts.allowExpired || t.expires_at === null || t.expires_at > s.now();
  const first = await findBootstrapToken(s, secret);
  if (!first) return { ok: false, reason: 'not_bootstrap' };
  if (!usable(first)) return { ok: false, reason: 'expired' };
  const settings = bootstrapSettings(s);
  return s.db.transaction().execute(async (tx) => {
    await lock(s, tx);
    // Another renewal may have rotated this token while we waited for the lock.
    const current = await findBootstrapToken(s, secret, tx);
    if (!current || !usable(current)) return { ok: false, reason: 'expired' } as const;
    const ts: Services = { ...s, db: tx };
    const owner = (await configuredOwner(s, tx))!;
    const app = await tx.selectFrom('oauth_applications').selectAll().where('id', '=', current.application_id).executeTakeFirstOrThrow();
    const fresh = await createOAuthToken(ts, app.id, owner, settings.scope, settings.expirationSeconds, { data: tokenData(owner, app) });
    try {
      const stale = (await tx.selectFrom('oauth_access_tokens').selectAll().where('application_id', '=', app.id).where('uuid', '!=', fresh.uuid).execute())
        .filter((t) => isBootstrapToken(t));
      if (stale.length) await tx.deleteFrom('oauth_access_tokens').where('id', 'in', stale.map((t) => t.id)).execute();
    } catch (e) {
      s.log.error({ err: e }, 'bootstrap token renewal failed while deleting stale tokens');
      throw new TokenRotationError('Token rotation failed: could not clean up tokens');
    }
    try {
      await writeTokenFile(settings.path, fresh.token);
    } catch (e) {
      s.log.error({ err: e }, 'bootstrap token renewal failed while writing token');
      throw new TokenRotationError('Token rotation failed: could not write token');
    }
    return { ok: true } as const;
  });
}

async function deleteApps(db: Db, apps: App[]): Promise<void> {
  if (apps.length) await db.deleteFrom('oauth_applications').where('id', 'in', apps.map((a) => a.id)).execute();
}

/**
 * Quay's boot-time setup_bootstrap_token: with the feature on, make sure the owner has a bootstrap
 * application and token (creating and writing it only when none exists: the secret cannot be
 * recovered from the database); with the feature explicitly off, revoke every bootstrap token.
 * Never throws: a misconfiguration is logged and startup goes on, as in Quay.
 */
export async function setupBootstrapToken(s: Services): Promise<void> {
  if (s.config.registryState === 'readonly') return;
  if (!('FEATURE_PROGRAMMATIC_BOOTSTRAP' in s.config.raw)) return;
  const settings = bootstrapSettings(s);
  try {
    if (!s.config.features.PROGRAMMATIC_BOOTSTRAP) {
      await s.db.transaction().execute(async (tx) => {
        await lock(s, tx);
        await deleteApps(tx, (await managedApps(tx, settings.appName)).map((m) => m.app));
      });
      await rm(settings.path, { force: true });
      return;
    }
    if (!settings.owner) return void s.log.error('BOOTSTRAP_TOKEN_OWNER must be set when FEATURE_PROGRAMMATIC_BOOTSTRAP is enabled');
    if (!s.config.superUsers.includes(settings.owner)) return void s.log.error('BOOTSTRAP_TOKEN_OWNER must be listed in SUPER_USERS');
    await s.db.transaction().execute(async (tx) => {
      await lock(s, tx);
      const owner = await configuredOwner(s, tx);
      if (!owner) return void s.log.error({ owner: settings.owner }, 'bootstrap token owner not found in the database; skipping bootstrap token provisioning');
      const managed = await managedApps(tx, settings.appName);
      const canonical = managed.find(({ app, tokens }) => app.org_id === owner.id && tokens.some((t) => isBootstrapToken(t, owner)));
      await deleteApps(tx, managed.filter((m) => m !== canonical).map((m) => m.app));
      if (canonical) return;
      const ts: Services = { ...s, db: tx };
      const appId = await createOAuthApplication(ts, owner, settings.appName, { description: BOOTSTRAP_APP_DESCRIPTION });
      const app = await tx.selectFrom('oauth_applications').selectAll().where('id', '=', appId).executeTakeFirstOrThrow();
      const created = await createOAuthToken(ts, app.id, owner, settings.scope, settings.expirationSeconds, { data: tokenData(owner, app) });
      // A token nobody can read is useless: failing to write the file undoes the provisioning.
      await writeTokenFile(settings.path, created.token);
      s.log.info('bootstrap token provisioned');
    });
  } catch (e) {
    s.log.error({ err: e }, 'bootstrap token setup failed');
  }
}

// First-user bootstrap (Quay's POST /api/v1/user/initialize): creates the superuser of an empty
// installation and, on request, an "automation" OAuth application with an all-scopes token.
import { sql } from 'kysely';
import type { Services } from './context.ts';
import { principalFor } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import {
  ALL_OAUTH_SCOPES, createAppToken, createOAuthApplication, createOAuthToken, createUser, type User,
} from './accounts.ts';

/** Quay mints the initialize token with create_user_access_token's default lifetime (2.5 hours). */
export const INITIALIZE_TOKEN_TTL_SECONDS = 9000;
export const INITIALIZE_APP_TOKEN_TITLE = 'Initial credentials (user/initialize)';
export const NON_EMPTY_MESSAGE = 'Cannot initialize user in a non-empty database';

export interface InitializeResult {
  user: User;
  /** Quay returns an "encrypted password" usable as the docker login password. See user.ts. */
  encryptedPassword: string;
  accessToken: string | null;
}

export async function initializeFirstUser(
  s: Services,
  input: { username: string; password: string; email?: string | null; accessToken?: boolean; ip?: string | null },
): Promise<InitializeResult> {
  return s.db.transaction().execute(async (tx) => {
    // Concurrent initialize calls must not both find the table empty. SQLite transactions already
    // serialize writers; PostgreSQL needs an explicit lock for the check-then-insert.
    if (s.dialect === 'postgres') await sql`select pg_advisory_xact_lock(7261002)`.execute(tx);
    const existing = await tx.selectFrom('users').select('id').limit(1).executeTakeFirst();
    if (existing) throw new DomainError('conflict', NON_EMPTY_MESSAGE);

    const ts: Services = { ...s, db: tx };
    const user = await createUser(ts, { username: input.username, password: input.password, email: input.email ?? null, superuser: true, verified: true }, tx);
    await logAction(ts, 'user_create', { namespaceId: user.id, ip: input.ip, metadata: { email: input.email ?? null, username: user.username } }, tx);
    const me = principalFor(user, 'password', { superuser: true });

    let encryptedPassword = '';
    if (s.config.features.APP_SPECIFIC_TOKENS) {
      const t = await createAppToken(ts, user, INITIALIZE_APP_TOKEN_TITLE);
      encryptedPassword = t.token;
      await logAction(ts, 'create_app_specific_token', {
        namespaceId: user.id, performer: me, ip: input.ip,
        metadata: { app_specific_token_title: INITIALIZE_APP_TOKEN_TITLE, app_specific_token: t.uuid },
      }, tx);
    }

    let accessToken: string | null = null;
    if (input.accessToken) {
      const appId = await createOAuthApplication(ts, user, 'automation', { description: 'Application token generated via /api/v1/user/initialize' });
      // Quay names the automation application's client_id after the user.
      await tx.updateTable('oauth_applications').set({ client_id: user.username }).where('id', '=', appId).execute();
      await logAction(ts, 'create_application', {
        namespaceId: user.id, performer: me, ip: input.ip,
        metadata: { application_name: 'automation', client_id: user.username },
      }, tx);
      accessToken = (await createOAuthToken(ts, appId, user, ALL_OAUTH_SCOPES.join(' '), INITIALIZE_TOKEN_TTL_SECONDS)).token;
    }
    return { user, encryptedPassword, accessToken };
  });
}

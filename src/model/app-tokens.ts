// App-specific tokens (FEATURE_APP_SPECIFIC_TOKENS): per-user passwords for docker/podman/skopeo,
// 120 characters of which the first 60 are a lookup prefix and the rest a secret kept encrypted,
// because Quay shows the full token again (GET /api/v1/user/apptoken/{uuid}).
import type { Selectable } from 'kysely';
import type { AppTokensTable } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { createAppToken, findUserById } from './accounts.ts';
import { DomainError } from './errors.ts';
import { parseDuration } from './labels.ts';
import { logAction } from './logs.ts';

export type AppToken = Selectable<AppTokensTable>;
type UserPrincipal = Exclude<Principal, { kind: 'anonymous' }>;

/** Quay's default window for ?expiring=true when APP_SPECIFIC_TOKEN_EXPIRATION is unset. */
const DEFAULT_EXPIRING_WINDOW = '4w';

function configuredLifetimeSeconds(s: Services): number | null {
  const raw = s.config.raw.APP_SPECIFIC_TOKEN_EXPIRATION;
  if (raw === undefined || raw === null || raw === '') return null;
  const secs = parseDuration(String(raw));
  return secs !== null && secs > 0 ? secs : null;
}

/** New tokens expire after APP_SPECIFIC_TOKEN_EXPIRATION when it is set; never otherwise. */
export function defaultAppTokenExpiry(s: Services): number | null {
  const secs = configuredLifetimeSeconds(s);
  return secs === null ? null : s.now() + secs * 1000;
}

/** The token string exactly as it was issued (prefix in clear + decrypted secret). */
export function fullTokenCode(s: Services, t: AppToken): string {
  return t.token_prefix + s.box.decrypt(t.token_secret_enc);
}

/** All of the user's tokens, or with `expiringOnly` those expiring within a tenth of the lifetime (Quay). */
export async function listAppTokens(s: Services, userId: number, expiringOnly: boolean): Promise<AppToken[]> {
  let q = s.db.selectFrom('app_tokens').selectAll().where('user_id', '=', userId);
  if (expiringOnly) {
    const lifetime = configuredLifetimeSeconds(s) ?? parseDuration(DEFAULT_EXPIRING_WINDOW)!;
    const soonMs = (Math.ceil(lifetime * 0.1) || 1) * 1000;
    const now = s.now();
    q = q.where('expires_at', '<=', now + soonMs).where('expires_at', '>', now);
  }
  return q.orderBy('id').execute();
}

/** One unexpired token of the user (Quay hides expired ones here), or undefined. */
export async function getAppToken(s: Services, userId: number, uuid: string): Promise<AppToken | undefined> {
  return s.db.selectFrom('app_tokens').selectAll().where('uuid', '=', uuid).where('user_id', '=', userId)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', s.now())]))
    .executeTakeFirst();
}

export async function issueAppToken(s: Services, p: UserPrincipal, title: string, ip: string | null): Promise<AppToken> {
  const user = await findUserById(s, p.userId);
  if (!user || user.kind !== 'user') throw new DomainError('unauthorized', 'Requires authentication');
  if (title.trim() === '') throw new DomainError('invalid_request', 'The token title must not be empty');
  if (title.length > 255) throw new DomainError('invalid_request', 'The token title must be at most 255 characters');
  const { uuid } = await createAppToken(s, user, title, defaultAppTokenExpiry(s));
  await logAction(s, 'create_app_specific_token', {
    namespaceId: user.id, performer: p, ip, metadata: { app_specific_token_title: title, app_specific_token: uuid },
  });
  return (await s.db.selectFrom('app_tokens').selectAll().where('uuid', '=', uuid).executeTakeFirstOrThrow());
}

/** Deletes the token (expired ones too, like Quay); undefined when the user has no such token. */
export async function revokeAppToken(s: Services, p: UserPrincipal, uuid: string, ip: string | null): Promise<AppToken | undefined> {
  return s.db.transaction().execute(async (tx) => {
    const t = await tx.selectFrom('app_tokens').selectAll().where('uuid', '=', uuid).where('user_id', '=', p.userId).executeTakeFirst();
    if (!t) return undefined;
    await tx.deleteFrom('app_tokens').where('id', '=', t.id).execute();
    await logAction(s, 'revoke_app_specific_token', {
      namespaceId: p.userId, performer: p, ip, metadata: { app_specific_token_title: t.title, app_specific_token: t.uuid },
    }, tx);
    return t;
  });
}

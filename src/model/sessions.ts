// Web sessions: password sign-in, sign-out, re-verification for fresh-login endpoints.
//
// A session is a server-side row keyed by the SHA-256 of a random id the browser holds in its
// cookie. Rows (rather than a self-contained signed cookie) let sign-out, a password change or an
// account deletion end every session of the user everywhere, like Quay's invalidate_all_sessions.
import { randomBytes } from 'node:crypto';
import { hash as bcryptHash, verify as bcryptVerify } from '@node-rs/bcrypt';
import type { Principal, Services } from './context.ts';
import { principalFor } from './context.ts';
import { sha256Hex } from './crypto.ts';
import { findUser, findUserById, type User } from './accounts.ts';
import { parseDuration } from './labels.ts';
import { logAction } from './logs.ts';

export const INVALID_CREDENTIALS = 'Invalid Username or Password';
const DISABLED = 'This user has been disabled. Please contact your administrator.';

export interface SessionRow { id: number; userId: number; loginTime: number; expiresAt: number }

/** A duration config value (Quay's "10m", "31d", or seconds) in milliseconds. */
export function configDurationMs(s: Services, key: string, dflt: string): number {
  const raw = s.config.raw[key];
  const secs = parseDuration(typeof raw === 'string' || typeof raw === 'number' ? String(raw) : dflt) ?? parseDuration(dflt)!;
  return secs * 1000;
}

/** How long a signed-in session lives (Quay's SESSION_TIMEOUT, 31 days by default). */
export function sessionLifetimeMs(s: Services): number {
  return configDurationMs(s, 'SESSION_TIMEOUT', '31d');
}

/** How old a login may be for fresh-login endpoints (Quay's FRESH_LOGIN_TIMEOUT, 10 minutes). */
export function freshLoginTimeoutMs(s: Services): number {
  return configDurationMs(s, 'FRESH_LOGIN_TIMEOUT', '10m');
}

function auditEnabled(s: Services, key: string): boolean {
  return s.config.raw[key] !== false;
}

export async function createSession(s: Services, user: User): Promise<{ sid: string; row: SessionRow }> {
  const now = s.now();
  const sid = randomBytes(32).toString('base64url');
  const expiresAt = now + sessionLifetimeMs(s);
  // Expired rows are swept here rather than by a worker: sign-ins are rare and the index is cheap.
  await s.db.deleteFrom('sessions').where('expires_at', '<=', now).execute();
  const row = await s.db.insertInto('sessions').values({
    token_hash: sha256Hex(sid), user_id: user.id, login_time: now, created_at: now, expires_at: expiresAt,
  }).returning('id').executeTakeFirstOrThrow();
  return { sid, row: { id: row.id, userId: user.id, loginTime: now, expiresAt } };
}

/** The live session for a cookie's session id, with its user (who must still be able to sign in). */
export async function findSession(s: Services, sid: string): Promise<{ row: SessionRow; user: User } | null> {
  const row = await s.db.selectFrom('sessions').selectAll().where('token_hash', '=', sha256Hex(sid)).executeTakeFirst();
  if (!row || row.expires_at <= s.now()) return null;
  const user = await findUserById(s, row.user_id);
  if (!user || user.kind !== 'user' || !user.enabled || !user.verified) return null;
  return { row: { id: row.id, userId: row.user_id, loginTime: row.login_time, expiresAt: row.expires_at }, user };
}

export async function endSession(s: Services, sessionId: number): Promise<void> {
  await s.db.deleteFrom('sessions').where('id', '=', sessionId).execute();
}

/** Ends every session of the user (sign-out, password change, account deletion or conversion). */
export async function endAllSessions(s: Services, userId: number): Promise<void> {
  await s.db.deleteFrom('sessions').where('user_id', '=', userId).execute();
}

let dummyHash: Promise<string> | undefined;

/** Password check that says why it failed; unknown users cost a bcrypt too (no username oracle). */
async function checkPassword(s: Services, usernameOrEmail: string, password: string): Promise<{ user: User } | { user: User | null; message: string }> {
  let user = await findUser(s, usernameOrEmail);
  if (!user && usernameOrEmail.includes('@')) {
    user = await s.db.selectFrom('users').selectAll().where('email', '=', usernameOrEmail).where('kind', '=', 'user').executeTakeFirst();
  }
  const candidate = user && user.kind === 'user' && user.password_hash ? user.password_hash : null;
  const ok = await bcryptVerify(password, candidate ?? await (dummyHash ??= bcryptHash('not-a-password', 12))).catch(() => false);
  if (!user || user.kind !== 'user') return { user: null, message: INVALID_CREDENTIALS };
  if (!candidate || !ok) return { user, message: INVALID_CREDENTIALS };
  if (!user.enabled) return { user, message: DISABLED };
  return { user };
}

export type SignInResult =
  | { ok: true; user: User; sid: string; session: SessionRow }
  | { ok: false; needsEmailVerification: boolean; invalidCredentials: boolean; message: string | null };

/** Quay's conduct_signin: verifies the password, opens a session and audits both outcomes. */
export async function signIn(
  s: Services, usernameOrEmail: string, password: string, meta: { ip?: string | null; userAgent?: string | null },
): Promise<SignInResult> {
  const checked = await checkPassword(s, usernameOrEmail, password);
  if ('message' in checked) {
    if (auditEnabled(s, 'ACTION_LOG_AUDIT_LOGIN_FAILURES')) {
      const possible = checked.user;
      await logAction(s, 'login_failure', {
        namespaceId: possible?.id ?? null,
        performer: possible ? principalFor(possible, 'password') : null,
        ip: meta.ip,
        metadata: { type: 'quayauth', kind: 'user', useragent: meta.userAgent ?? '', username: usernameOrEmail, message: checked.message },
      });
    }
    return { ok: false, needsEmailVerification: false, invalidCredentials: true, message: checked.message };
  }
  const { user } = checked;
  // Quay's login refuses accounts whose e-mail is not verified yet.
  if (!user.verified) return { ok: false, needsEmailVerification: true, invalidCredentials: false, message: null };
  const { sid, row } = await createSession(s, user);
  if (auditEnabled(s, 'ACTION_LOG_AUDIT_LOGINS')) {
    await logAction(s, 'login_success', {
      namespaceId: user.id,
      performer: principalFor(user, 'session'),
      ip: meta.ip,
      metadata: { type: 'quayauth', useragent: meta.userAgent ?? '' },
    });
  }
  return { ok: true, user, sid, session: row };
}

/** Quay's Signout: every session of the user ends, not just this browser's. */
export async function signOut(s: Services, performer: Principal, ip: string | null): Promise<void> {
  if (performer.kind !== 'user') return;
  await endAllSessions(s, performer.userId);
  await logAction(s, 'logout_success', { namespaceId: performer.userId, performer, ip });
}

/** Re-checks the signed-in user's password; on success the session counts as a fresh login again. */
export async function verifyFreshLogin(s: Services, userId: number, password: string, sessionId: number | null): Promise<{ ok: true } | { ok: false; message: string }> {
  const user = await findUserById(s, userId);
  if (!user) return { ok: false, message: INVALID_CREDENTIALS };
  const checked = await checkPassword(s, user.username, password);
  if ('message' in checked) return { ok: false, message: checked.message };
  if (sessionId !== null) await s.db.updateTable('sessions').set({ login_time: s.now() }).where('id', '=', sessionId).execute();
  return { ok: true };
}

/** True when the session's login is recent enough for fresh-login endpoints (or there is no password to prove). */
export function isFreshLogin(s: Services, session: SessionRow, user: Pick<User, 'password_hash'>): boolean {
  if (!user.password_hash) return true;
  return s.now() - session.loginTime <= freshLoginTimeoutMs(s);
}

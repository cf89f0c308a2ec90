// Password recovery by e-mail (Quay's Recovery resource, SuperUserSendRecoveryEmail and the
// /recovery?code= page). A recovery code is single use and expires after
// USER_RECOVERY_TOKEN_LIFETIME (30 minutes): a 20-character lookup prefix plus a secret of which
// only the SHA-256 is stored, so a database copy cannot be replayed.
import type { Services } from './context.ts';
import { findUserById, type User } from './accounts.ts';
import { randomCode, safeEqual, sha256Hex } from './crypto.ts';
import { DomainError } from './errors.ts';
import { escapeHtml, mailTitle, sendMail, type MailMessage } from './mailer.ts';
import { configDurationMs } from './sessions.ts';

const CODE_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const PREFIX = 20;
const CODE_LENGTH = 60;

export type RecoveryOutcome = { status: 'sent' } | { status: 'org'; orgemail: string; orgname: string };

/** Quay's redact(): the first and last third of the name (at least one character) stay readable. */
export function redactName(value: string): string {
  const threshold = Math.max(value.length / 3 - 1, 1);
  let out = '';
  for (let i = 0; i < value.length; i++) out += i < threshold || i >= value.length - threshold ? value[i] : '\u2022';
  return out;
}

export function recoveryLifetimeMs(s: Services): number {
  return configDurationMs(s, 'USER_RECOVERY_TOKEN_LIFETIME', '30m');
}

/** A new single-use code for the user (expired codes of anyone are swept on the way). */
export async function createRecoveryCode(s: Services, user: User): Promise<string> {
  const now = s.now();
  const code = randomCode(CODE_LENGTH, CODE_ALPHABET);
  await s.db.deleteFrom('recovery_codes').where('expires_at', '<=', now).execute();
  await s.db.insertInto('recovery_codes').values({
    user_id: user.id, code_prefix: code.slice(0, PREFIX), code_hash: sha256Hex(code.slice(PREFIX)), created_at: now, expires_at: now + recoveryLifetimeMs(s),
  }).execute();
  return code;
}

/**
 * Quay's validate_reset_code: the code's user, or null when the code is unknown, expired or
 * already used. The code is spent either way, and the e-mail address counts as verified.
 */
export async function consumeRecoveryCode(s: Services, code: string): Promise<User | null> {
  if (code.length !== CODE_LENGTH) return null;
  const row = await s.db.selectFrom('recovery_codes').selectAll().where('code_prefix', '=', code.slice(0, PREFIX)).executeTakeFirst();
  if (!row || !safeEqual(row.code_hash, sha256Hex(code.slice(PREFIX)))) return null;
  // Deleting is what claims the code: of two concurrent uses only one deletes the row.
  const claimed = await s.db.deleteFrom('recovery_codes').where('id', '=', row.id).returning('id').execute();
  if (claimed.length === 0 || row.expires_at <= s.now()) return null;
  await s.db.updateTable('users').set({ verified: 1 }).where('id', '=', row.user_id).where('verified', '=', 0).execute();
  const user = await findUserById(s, row.user_id);
  return user && user.kind === 'user' ? user : null;
}

function layout(s: Services, heading: string, bodyHtml: string, bodyText: string): { html: string; text: string } {
  const title = escapeHtml(mailTitle(s));
  return {
    html: `<h3>${heading}</h3><hr>${bodyHtml}<p>Best Wishes,<br>The ${title} Team</p>`,
    text: `${bodyText}\n\nBest Wishes,\nThe ${mailTitle(s)} Team\n`,
  };
}

/** Quay's recovery.html e-mail. */
export function recoveryEmail(s: Services, email: string, code: string, appUrl: string): MailMessage {
  const link = `${appUrl}/recovery?code=${code}`;
  const app = mailTitle(s);
  const { html, text } = layout(s, 'Account recovery',
    `<p>A user at ${escapeHtml(app)} has attempted to recover their access to the account registered to this email address.</p>`
    + `<p><a href="${escapeHtml(link)}">Recover Account</a></p>`
    + '<p>If you did not request this password reset, you can safely ignore this message and the account password and access will not change.</p>',
    `A user at ${app} has attempted to recover their access to the account registered to this email address.\n\n`
    + `Recover Account: ${link}\n\n`
    + 'If you did not request this password reset, you can safely ignore this message and the account password and access will not change.');
  return { to: email, subject: `[${app}] Account recovery`, html, text };
}

/** Quay's orgrecovery.html e-mail: organizations have no password, their admins can sign in. */
export function orgRecoveryEmail(s: Services, org: User, admins: string[], appUrl: string): MailMessage {
  const app = mailTitle(s);
  const orgName = escapeHtml(org.username);
  const { html, text } = layout(s, `Organization recovery: <strong>${orgName}</strong>`,
    `<p>A user at <a href="${escapeHtml(appUrl)}">${escapeHtml(appUrl)}</a> has attempted to recover access to organization <strong>${orgName}</strong> via this email address.</p>`
    + `<p>Please login with one of the following user accounts to access this organization:</p><ul>${admins.map((a) => `<li>${escapeHtml(a)}</li>`).join('')}</ul>`
    + `<p><a href="${escapeHtml(appUrl)}/signin/">Login to Recover</a></p>`
    + '<p>If you did not make this request, your organization has not been compromised and the user was not given access. You can safely ignore this message.</p>',
    `A user at ${appUrl} has attempted to recover access to organization ${org.username} via this email address.\n\n`
    + `Please login with one of the following user accounts to access this organization:\n${admins.map((a) => `  - ${a}`).join('\n')}\n\n`
    + `Login to Recover: ${appUrl}/signin/\n\n`
    + 'If you did not make this request, your organization has not been compromised and the user was not given access. You can safely ignore this message.');
  return { to: org.email!, subject: `[${app}] Organization ${org.username} recovery`, html, text };
}

async function orgAdminNames(s: Services, orgId: number): Promise<string[]> {
  const rows = await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .innerJoin('users', 'users.id', 'team_members.user_id')
    .select('users.username').distinct().where('teams.org_id', '=', orgId).where('teams.role', '=', 'admin').where('users.kind', '=', 'user')
    .orderBy('users.username').execute();
  return rows.map((r) => r.username);
}

/**
 * Quay's POST /api/v1/recovery. The answer does not depend on whether a user has the address (no
 * account enumeration), and neither does its timing: the e-mail leaves in the background, so a
 * slow or failing mail server cannot tell callers apart either.
 */
export async function requestRecovery(s: Services, email: string, appUrl: string): Promise<RecoveryOutcome> {
  const found = await s.db.selectFrom('users').selectAll().where('email', '=', email).orderBy('id').executeTakeFirst();
  if (!found || found.kind === 'robot') return { status: 'sent' };
  let message: MailMessage;
  if (found.kind === 'org') {
    message = orgRecoveryEmail(s, found, await orgAdminNames(s, found.id), appUrl);
  } else {
    message = recoveryEmail(s, email, await createRecoveryCode(s, found), appUrl);
  }
  void sendMail(s, message).catch((err: unknown) => s.log.error({ err }, 'cannot send recovery e-mail'));
  return found.kind === 'org' ? { status: 'org', orgemail: email, orgname: redactName(found.username) } : { status: 'sent' };
}

/** Quay's SuperUserSendRecoveryEmail, after its permission checks: mails the user a code now. */
export async function sendRecoveryForUser(s: Services, user: User, appUrl: string): Promise<string> {
  if (!user.email) throw new DomainError('invalid_request', 'Email address was not found');
  await sendMail(s, recoveryEmail(s, user.email, await createRecoveryCode(s, user), appUrl));
  return user.email;
}

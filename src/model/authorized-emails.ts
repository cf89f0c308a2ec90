// E-mail addresses authorized to receive a repository's notifications (Quay's
// RepositoryAuthorizedEmail, FEATURE_MAILING). A repository admin asks for an address; the address
// receives a link with a one-time code (stored as its SHA-256); following it confirms the address.
import { randomBytes } from 'node:crypto';
import type { Principal, Services } from './context.ts';
import { sha256Hex } from './crypto.ts';
import { escapeHtml, mailTitle, sendMail, type MailMessage } from './mailer.ts';
import { accessRepo } from './repository-api.ts';
import { DomainError } from './errors.ts';

export interface AuthorizedEmailView {
  email: string;
  repository: string;
  namespace: string;
  confirmed: boolean;
}

/** True when the address has confirmed its authorization for the repository. */
export async function isEmailAuthorizedForRepo(s: Services, repositoryId: number, email: string): Promise<boolean> {
  const row = await s.db.selectFrom('repo_authorized_emails').select('confirmed')
    .where('repository_id', '=', repositoryId).where('email', '=', email).executeTakeFirst();
  return row !== undefined && Number(row.confirmed) === 1;
}

export async function getAuthorizedEmail(s: Services, p: Principal, namespace: string, name: string, email: string): Promise<AuthorizedEmailView> {
  const { repo } = await accessRepo(s, p, namespace, name, 'admin', { readonlySuperuser: true });
  const row = await s.db.selectFrom('repo_authorized_emails').select('confirmed')
    .where('repository_id', '=', repo.id).where('email', '=', email).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  return { email, repository: repo.name, namespace: repo.namespace, confirmed: Number(row.confirmed) === 1 };
}

/**
 * Starts (or restarts) the authorization of an address: a confirmed one is answered as is;
 * otherwise a fresh code replaces any earlier one and the link is mailed. `appUrl` is the
 * registry's external URL, for the link.
 */
export async function requestEmailAuthorization(
  s: Services, p: Principal, namespace: string, name: string, email: string, appUrl: string,
): Promise<AuthorizedEmailView> {
  const { repo } = await accessRepo(s, p, namespace, name, 'admin');
  if (!/^[^@\s]+@[^@\s]+$/.test(email) || email.length > 255) throw new DomainError('invalid_request', 'Invalid e-mail address');
  const view = { email, repository: repo.name, namespace: repo.namespace };
  const code = randomBytes(24).toString('base64url');
  const confirmed = await s.db.transaction().execute(async (tx) => {
    const row = await tx.selectFrom('repo_authorized_emails').select(['id', 'confirmed'])
      .where('repository_id', '=', repo.id).where('email', '=', email).executeTakeFirst();
    if (row && Number(row.confirmed) === 1) return true;
    if (row) await tx.updateTable('repo_authorized_emails').set({ code_hash: sha256Hex(code), created_at: s.now() }).where('id', '=', row.id).execute();
    else await tx.insertInto('repo_authorized_emails').values({ repository_id: repo.id, email, code_hash: sha256Hex(code), confirmed: 0, created_at: s.now() }).execute();
    return false;
  });
  if (confirmed) return { ...view, confirmed: true };
  await sendMail(s, authorizationEmail(s, email, `${repo.namespace}/${repo.name}`, `${appUrl}/authrepoemail?code=${encodeURIComponent(code)}`));
  return { ...view, confirmed: false };
}

function authorizationEmail(s: Services, email: string, repository: string, link: string): MailMessage {
  const title = mailTitle(s);
  const html = `<p>A request has been made to send notifications to this email address for the repository `
    + `<strong>${escapeHtml(repository)}</strong> on ${escapeHtml(title)}.</p>`
    + `<p>To confirm this email address, please click the following link:</p>`
    + `<p><a href="${escapeHtml(link)}">${escapeHtml(link)}</a></p>`;
  const text = `A request has been made to send notifications to this email address for the repository ${repository} on ${title}.\n\n`
    + `To confirm this email address, open the following link:\n\n${link}\n`;
  return { to: email, subject: `[${title}] Verify e-mail address for repository ${repository}`, html, text };
}

/** The mailed link: confirms the address the code was sent to. Null for an unknown code. */
export async function confirmEmailAuthorization(s: Services, code: string): Promise<{ email: string; repository: string } | null> {
  const row = await s.db.selectFrom('repo_authorized_emails')
    .innerJoin('repositories', 'repositories.id', 'repo_authorized_emails.repository_id')
    .innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select(['repo_authorized_emails.id', 'repo_authorized_emails.email', 'repositories.name', 'users.username'])
    .where('repo_authorized_emails.code_hash', '=', sha256Hex(code)).executeTakeFirst();
  if (!row) return null;
  // The code works once: a fresh random hash takes its place.
  await s.db.updateTable('repo_authorized_emails').set({ confirmed: 1, code_hash: sha256Hex(randomBytes(24)) }).where('id', '=', row.id).execute();
  return { email: row.email, repository: `${row.username}/${row.name}` };
}

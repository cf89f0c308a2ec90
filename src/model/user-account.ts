// What a signed-in user does to their own account: change details (PUT /api/v1/user/), delete it,
// convert it into an organization, mint a docker client key, unlink an external login.
import type { Services } from './context.ts';
import type { Principal } from './context.ts';
import { DomainError } from './errors.ts';
import { DataModelError } from './data-errors.ts';
import { logAction } from './logs.ts';
import { validNamespace } from './names.ts';
import { createAppToken, findUser, findUserById, hashPassword, validatePassword, verifyPassword, type User } from './accounts.ts';
import { deleteNamespaceRows } from './namespace-deletion.ts';
import { hasUserPrompt, removeUserPrompts } from './user-prompts.ts';
import { INVALID_CREDENTIALS, signIn, type SignInResult } from './sessions.ts';
import { defaultAppTokenExpiry } from './app-tokens.ts';

type UserPrincipal = Exclude<Principal, { kind: 'anonymous' }>;

export interface UserDetailsChange {
  password?: string;
  invoice_email?: boolean;
  email?: string;
  tag_expiration_s?: number;
  username?: string;
  invoice_email_address?: string | null;
  given_name?: string | null;
  family_name?: string | null;
  company?: string | null;
  location?: string | null;
}

const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

function featureOn(s: Services, name: string, dflt: boolean): boolean {
  const v = s.config.features[name];
  return v === undefined ? dflt : v === true;
}

async function requireHuman(s: Services, p: UserPrincipal): Promise<User> {
  const user = await findUserById(s, p.userId);
  if (!user || user.kind !== 'user') throw new DomainError('unauthorized', 'Requires authentication');
  return user;
}

/**
 * Quay's changeUserDetails. Everything is validated before anything is written, so a request with
 * one bad field changes nothing. Returns the user afterwards, their name before a rename, and
 * whether the password changed (every session then ends; the HTTP layer signs this browser in again).
 */
export async function changeUserDetails(
  s: Services, p: UserPrincipal, change: UserDetailsChange, ip: string | null,
): Promise<{ user: User; previousUsername: string | null; passwordChanged: boolean }> {
  const user = await requireHuman(s, p);
  if (change.password !== undefined) validatePassword(change.password);

  const emailChanging = change.email !== undefined && change.email !== user.email;
  if (emailChanging) {
    if (!EMAIL_RE.test(change.email!)) throw new DomainError('invalid_request', `Invalid email address: ${change.email}`);
    const taken = await s.db.selectFrom('users').select('id').where('email', '=', change.email!).where('id', '!=', user.id).executeTakeFirst();
    if (taken) throw new DomainError('invalid_request', 'E-mail address already used');
  }
  if (change.tag_expiration_s !== undefined && featureOn(s, 'CHANGE_TAG_EXPIRATION', true) && !s.config.tagExpirationOptions.includes(change.tag_expiration_s)) {
    throw new DataModelError('Invalid tag expiration option');
  }
  const invoiceAddressChanging = change.invoice_email_address !== undefined && change.invoice_email_address !== user.invoice_email_address;
  if (invoiceAddressChanging && change.invoice_email_address !== null && !EMAIL_RE.test(change.invoice_email_address!)) {
    throw new DomainError('invalid_request', `Invalid email address: ${change.invoice_email_address}`);
  }

  // Quay renames only with FEATURE_USER_RENAME, or while the confirm_username prompt of an account
  // created by an external login is pending (FEATURE_USERNAME_CONFIRMATION); otherwise the field
  // is ignored, but sending it answers the prompt.
  const newName = change.username;
  const confirmPending = hasUserPrompt(user, 'confirm_username');
  const renameAllowed = featureOn(s, 'USER_RENAME', false) || (confirmPending && featureOn(s, 'USERNAME_CONFIRMATION', true));
  const renaming = renameAllowed && !!newName && newName !== user.username;
  if (renaming) {
    if (!validNamespace(newName!)) throw new DomainError('invalid_request', `Invalid username ${newName}: namespaces must be 2-255 characters of lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit`);
    if (await findUser(s, newName!)) throw new DomainError('invalid_request', 'Username is already in use');
  }
  const passwordHash = change.password !== undefined ? await hashPassword(change.password) : null;
  const metadata: Record<string, string | null> = {};
  if (featureOn(s, 'USER_METADATA', false)) {
    for (const f of ['given_name', 'family_name', 'company', 'location'] as const) if (change[f] !== undefined) metadata[f] = change[f] ?? null;
  }

  await s.db.transaction().execute(async (tx) => {
    if (passwordHash !== null) {
      await tx.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', user.id).execute();
      await tx.deleteFrom('sessions').where('user_id', '=', user.id).execute();
      await tx.deleteFrom('user_notifications').where('user_id', '=', user.id).where('kind', '=', 'password_required').execute();
      await logAction(s, 'account_change_password', { namespaceId: user.id, performer: p, ip }, tx);
    }
    if (change.invoice_email !== undefined) {
      await tx.updateTable('users').set({ invoice_email: change.invoice_email ? 1 : 0 }).where('id', '=', user.id).execute();
      await logAction(s, 'user_change_invoicing', { namespaceId: user.id, performer: p, ip, metadata: { invoice_email: change.invoice_email } }, tx);
    }
    if (change.tag_expiration_s !== undefined && featureOn(s, 'CHANGE_TAG_EXPIRATION', true)) {
      await tx.updateTable('users').set({ tag_expiration_s: change.tag_expiration_s }).where('id', '=', user.id).execute();
      await logAction(s, 'user_change_tag_expiration', { namespaceId: user.id, performer: p, ip, metadata: { tag_expiration: change.tag_expiration_s } }, tx);
    }
    if (invoiceAddressChanging) {
      await tx.updateTable('users').set({ invoice_email_address: change.invoice_email_address ?? null }).where('id', '=', user.id).execute();
      await logAction(s, 'user_change_invoicing', { namespaceId: user.id, performer: p, ip, metadata: { invoice_email_address: change.invoice_email_address ?? null } }, tx);
    }
    if (emailChanging) {
      // Without a confirmation mail flow the address is taken as verified, like Quay without MAILING.
      await tx.updateTable('users').set({ email: change.email!, verified: 1 }).where('id', '=', user.id).execute();
      await logAction(s, 'user_change_email', { namespaceId: user.id, performer: p, ip, metadata: { email: change.email, old_email: user.email } }, tx);
    }
    if (Object.keys(metadata).length > 0) {
      await tx.updateTable('users').set(metadata).where('id', '=', user.id).execute();
      await logAction(s, 'user_change_metadata', { namespaceId: user.id, performer: p, ip, metadata }, tx);
      await removeUserPrompts(s, user.id, ['enter_name', 'enter_company'], tx);
    }
    if (change.username !== undefined && confirmPending) await removeUserPrompts(s, user.id, ['confirm_username'], tx);
    if (renaming) {
      await tx.updateTable('users').set({ username: newName! }).where('id', '=', user.id).execute();
      const robots = await tx.selectFrom('users').select(['id', 'username']).where('robot_owner_id', '=', user.id).execute();
      for (const r of robots) {
        await tx.updateTable('users').set({ username: `${newName}+${r.username.slice(r.username.indexOf('+') + 1)}` }).where('id', '=', r.id).execute();
      }
      await logAction(s, 'user_change_name', { namespaceId: user.id, performer: p, ip, metadata: { old_username: user.username } }, tx);
    }
  });
  const after = (await findUserById(s, user.id))!;
  return { user: after, previousUsername: change.username !== undefined ? user.username : null, passwordChanged: passwordHash !== null };
}

/** Quay's deleteCurrentUser: the namespace and everything in it go (sessions and tokens cascade). */
export async function deleteCurrentUser(s: Services, p: UserPrincipal, ip: string | null): Promise<void> {
  const user = await requireHuman(s, p);
  await s.db.transaction().execute(async (tx) => {
    // Logged first: the namespace (and the log's account) is gone afterwards.
    await logAction(s, 'user_delete', { namespaceId: user.id, performer: p, ip, metadata: { username: user.username } }, tx);
    await deleteNamespaceRows(s, user.id, tx);
  });
}

/**
 * Quay's convertUserToOrganization: the account becomes an organization owned by another user
 * (who proves their password), and can no longer sign in. Returns the admin's sign-in, which the
 * HTTP layer turns into their session, as Quay does.
 */
export async function convertToOrganization(
  s: Services, p: UserPrincipal, adminUsername: string, adminPassword: string, meta: { ip: string | null; userAgent: string | null },
): Promise<SignInResult> {
  const user = await requireHuman(s, p);
  const admin = await verifyPassword(s, adminUsername, adminPassword);
  if (!admin) throw new DomainError('invalid_request', 'The admin user credentials are not valid', { reason: 'invaliduser' });
  if (admin.id === user.id) throw new DomainError('invalid_request', 'The admin user is not valid', { reason: 'invaliduser' });
  await s.db.transaction().execute(async (tx) => {
    await tx.updateTable('users').set({ kind: 'org', password_hash: null }).where('id', '=', user.id).execute();
    await tx.deleteFrom('federated_logins').where('user_id', '=', user.id).execute();
    await tx.deleteFrom('repo_permissions').where('user_id', '=', user.id).execute();
    // An organization is no team member and holds no personal credentials.
    await tx.deleteFrom('team_members').where('user_id', '=', user.id).execute();
    await tx.deleteFrom('app_tokens').where('user_id', '=', user.id).execute();
    await tx.deleteFrom('oauth_access_tokens').where('user_id', '=', user.id).execute();
    await tx.deleteFrom('oauth_assigned_tokens').where('assigned_user_id', '=', user.id).execute();
    await tx.deleteFrom('stars').where('user_id', '=', user.id).execute();
    await tx.deleteFrom('sessions').where('user_id', '=', user.id).execute();
    const team = await tx.insertInto('teams').values({ org_id: user.id, name: 'owners', role: 'admin', description: '' }).returning('id').executeTakeFirstOrThrow();
    await tx.insertInto('team_members').values({ team_id: team.id, user_id: admin.id }).execute();
    await logAction(s, 'account_convert', { namespaceId: user.id, performer: p, ip: meta.ip }, tx);
  });
  return signIn(s, adminUsername, adminPassword, meta);
}

export const CLIENT_KEY_TITLE = 'Docker CLI client key (user/clientkey)';

/**
 * Quay's generateUserClientKey returns an "encrypted password" for `docker login`. Quayside hands
 * out an app-specific token of the user instead (same use, but listed and revocable), so the
 * endpoint exists only with FEATURE_APP_SPECIFIC_TOKENS.
 */
export async function generateClientKey(s: Services, p: UserPrincipal, password: string, ip: string | null): Promise<string> {
  const user = await requireHuman(s, p);
  if (!(await verifyPassword(s, user.username, password))) throw new DomainError('invalid_request', INVALID_CREDENTIALS);
  const t = await createAppToken(s, user, CLIENT_KEY_TITLE, defaultAppTokenExpiry(s));
  await logAction(s, 'user_generate_client_key', { namespaceId: user.id, performer: p, ip });
  await logAction(s, 'create_app_specific_token', {
    namespaceId: user.id, performer: p, ip, metadata: { app_specific_token_title: CLIENT_KEY_TITLE, app_specific_token: t.uuid },
  });
  return t.token;
}

/** Quay's detach_external_login: forgets the user's link to an external login service. */
export async function detachFederatedLogin(s: Services, p: UserPrincipal, service: string, _ip: string | null): Promise<void> {
  await s.db.deleteFrom('federated_logins').where('user_id', '=', p.userId).where('service', '=', service).execute();
}

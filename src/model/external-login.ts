// Signing in with an external login service (Quay's endpoints/oauth/login.py), from the
// authorization URL to the session:
//
// 1. beginExternalLogin: a random `state` (with a nonce and, for PKCE, a code verifier) is stored as
//    a row keyed by its hash and bound to the browser that asked (the hash of its session cookie's
//    CSRF token, as Quay keeps it in the Flask session); the provider's authorization URL carries it.
// 2. finishExternalLogin, at /oauth2/<service>/callback[/attach]: the row is deleted as it is read
//    (single use; wrong browser, service, kind or an expired row is a CSRF failure), the code is
//    exchanged for the identity (login-providers.ts), and then — as Quay's _conduct_oauth_login —
//    the account linked to that identity signs in, or a new account is created and linked when
//    user creation allows, or (attach) the identity is linked to the signed-in account.
import { randomBytes } from 'node:crypto';
import type { Services } from './context.ts';
import { sha256Hex } from './crypto.ts';
import { DomainError } from './errors.ts';
import { createUser, findUserById, isUniqueViolation, touchLastAccessed, type User } from './accounts.ts';
import { validNamespace } from './names.ts';
import { createSession, endSession, type SessionRow } from './sessions.ts';
import { createUserNotification } from './user-notifications.ts';
import { addUserPrompts, defaultFederatedPrompts, userPrompts } from './user-prompts.ts';
import {
  authorizeUrl, exchangeCodeForIdentity, LoginFailure, newCodeVerifier, pkceMethod, serviceName, type ExternalIdentity, type LoginService,
} from './login-providers.ts';

/** `cli` (an id_token to use as a password under AUTHENTICATION_TYPE OIDC) has no use in Quayside. */
export type LoginKind = 'login' | 'attach';

const STATE_TTL_MS = 10 * 60 * 1000;
/** Unfinished logins kept per browser; older ones are dropped. */
const PENDING_PER_BROWSER = 10;
const DEFAULT_ERROR = 'Could not load user data. The token may have expired';

/** The path a provider sends the browser back to (Quay's get_redirect_uri). */
export function callbackPath(svc: LoginService, kind: LoginKind): string {
  return `/oauth2/${svc.id}/callback${kind === 'login' ? '' : `/${kind}`}`;
}

/**
 * Quay's ExternalLoginInformation: stores a fresh single-use state for this browser and returns the
 * provider's authorization URL. `browserSecret` is the session cookie's CSRF token; `userId` the
 * signed-in user (an attach is completed only by them).
 */
export async function beginExternalLogin(
  s: Services, svc: LoginService, input: { baseUrl: string; kind: LoginKind; browserSecret: string; userId: number | null },
): Promise<string> {
  const state = randomBytes(48).toString('base64url');
  const nonce = randomBytes(32).toString('base64url');
  const codeVerifier = pkceMethod(svc) ? newCodeVerifier() : null;
  const redirectUri = `${input.baseUrl}${callbackPath(svc, input.kind)}`;
  const url = await authorizeUrl(s, svc, { redirectUri, state, nonce, codeVerifier });
  const now = s.now();
  const browserHash = sha256Hex(input.browserSecret);
  await s.db.deleteFrom('external_login_states').where('expires_at', '<=', now).execute();
  await s.db.insertInto('external_login_states').values({
    state_hash: sha256Hex(state), browser_hash: browserHash, service: svc.id, kind: input.kind, user_id: input.userId,
    redirect_uri: redirectUri, nonce, code_verifier: codeVerifier, created_at: now, expires_at: now + STATE_TTL_MS,
  }).execute();
  const keep = s.db.selectFrom('external_login_states').select('id').where('browser_hash', '=', browserHash).orderBy('id', 'desc').limit(PENDING_PER_BROWSER);
  await s.db.deleteFrom('external_login_states').where('browser_hash', '=', browserHash).where('id', 'not in', keep).execute();
  return url;
}

export type CallbackResult =
  | { kind: 'signed_in'; user: User; sid: string; session: SessionRow; redirect: '/' | '/updateuser' }
  | { kind: 'attached'; user: User }
  | { kind: 'login_required' }
  | { kind: 'bad_state' }
  | { kind: 'error'; serviceName: string; message: string; registerRedirect: boolean };

export interface CallbackInput {
  kind: LoginKind;
  state: string | undefined;
  code: string | undefined;
  /** The provider's `error` parameter (the user denied access, …). */
  error: string | undefined;
  /** The CSRF token of the browser's session cookie (null without a valid cookie). */
  browserSecret: string | null;
  sessionUser: User | null;
  sessionId: number | null;
}

function failure(svc: LoginService, message: string, registerRedirect = false): CallbackResult {
  return { kind: 'error', serviceName: serviceName(svc), message: message || DEFAULT_ERROR, registerRedirect };
}

function registryTitleShort(s: Services): string {
  const t = s.config.raw.REGISTRY_TITLE_SHORT;
  return typeof t === 'string' && t ? t : s.config.registryTitle;
}

/** Deletes and returns the pending login for this state and browser, if it is still good. */
async function consumeState(s: Services, svc: LoginService, input: CallbackInput) {
  if (!input.state || !input.browserSecret) return null;
  const row = await s.db.deleteFrom('external_login_states')
    .where('state_hash', '=', sha256Hex(input.state)).where('browser_hash', '=', sha256Hex(input.browserSecret))
    .returningAll().executeTakeFirst();
  if (!row || row.expires_at <= s.now() || row.service !== svc.id || row.kind !== input.kind) return null;
  if (input.kind === 'attach' && row.user_id !== input.sessionUser?.id) return null;
  return row;
}

/** The callback of /oauth2/<service>/callback[/attach]: state, code exchange, then sign-in or attach. */
export async function finishExternalLogin(s: Services, svc: LoginService, input: CallbackInput): Promise<CallbackResult> {
  // Quay checks the session login of an attach before the CSRF state.
  if (input.kind === 'attach' && !input.sessionUser) return { kind: 'login_required' };
  const pending = await consumeState(s, svc, input);
  if (!pending) return { kind: 'bad_state' };
  if (input.error) return failure(svc, input.error);
  if (!input.code) return failure(svc, DEFAULT_ERROR);

  let identity: ExternalIdentity;
  try {
    identity = await exchangeCodeForIdentity(s, svc, {
      code: input.code, redirectUri: pending.redirect_uri, nonce: pending.nonce, codeVerifier: pending.code_verifier,
    });
  } catch (e) {
    if (e instanceof LoginFailure) {
      s.log.info({ service: svc.id, err: e.message }, 'external login failed');
      return failure(svc, e.message);
    }
    throw e;
  }

  if (input.kind === 'attach') {
    const attached = await attachIdentity(s, svc, input.sessionUser!, identity);
    return attached ? { kind: 'attached', user: input.sessionUser! } : failure(svc, alreadyAttached(s, svc, identity));
  }

  const found = await linkedUser(s, svc, identity) ?? await createFederatedUser(s, svc, identity);
  if ('message' in found) return failure(svc, found.message, found.registerRedirect);
  const user = found.user;
  if (!user.enabled || !user.verified || user.kind !== 'user') return failure(svc, 'Could not login. Account may be disabled');
  if (input.sessionId !== null) await endSession(s, input.sessionId);
  const { sid, row } = await createSession(s, user);
  return { kind: 'signed_in', user, sid, session: row, redirect: userPrompts(user).length ? '/updateuser' : '/' };
}

// ---- Accounts behind identities

type Found = { user: User } | { message: string; registerRedirect: boolean };

/** Quay's verify_federated_login: the account linked to this identity (its last access noted). */
async function linkedUser(s: Services, svc: LoginService, identity: ExternalIdentity): Promise<Found | null> {
  const link = await s.db.selectFrom('federated_logins').select('user_id')
    .where('service', '=', svc.id).where('service_ident', '=', identity.id).executeTakeFirst();
  if (!link) return null;
  const user = await findUserById(s, link.user_id);
  if (!user) return null;
  await touchLastAccessed(s, user.id);
  return { user };
}

function alreadyAttached(s: Services, svc: LoginService, identity: ExternalIdentity): string {
  return `${serviceName(svc)} account ${identity.username} is already attached to a ${registryTitleShort(s)} account`;
}

/** Quay's attach_federated_login: false when the identity, or this service, is already linked. */
async function attachIdentity(s: Services, svc: LoginService, user: User, identity: ExternalIdentity): Promise<boolean> {
  const taken = await s.db.selectFrom('federated_logins').select('id').where('service', '=', svc.id)
    .where((eb) => eb.or([eb('service_ident', '=', identity.id), eb('user_id', '=', user.id)])).executeTakeFirst();
  if (taken) return false;
  try {
    await s.db.insertInto('federated_logins').values({
      user_id: user.id, service: svc.id, service_ident: identity.id, metadata: JSON.stringify({ service_username: identity.username }),
    }).execute();
    return true;
  } catch (e) {
    if (isUniqueViolation(e)) return false;
    throw e;
  }
}

function emailDomainBlocked(s: Services, email: string | null): boolean {
  if (s.config.features.BLACKLISTED_EMAILS !== true || !email || !email.includes('@')) return false;
  const domain = email.slice(email.indexOf('@') + 1).toLowerCase();
  const blocked = Array.isArray(s.config.raw.BLACKLISTED_EMAIL_DOMAINS) ? s.config.raw.BLACKLISTED_EMAIL_DOMAINS : [];
  return blocked.some((d) => typeof d === 'string' && (domain === d.toLowerCase() || domain.endsWith(`.${d.toLowerCase()}`)));
}

/** Quay's can_create_user. */
async function canCreateUser(s: Services, email: string | null): Promise<boolean> {
  if (emailDomainBlocked(s, email)) return false;
  if (!s.config.features.USER_CREATION) return false;
  if (s.config.features.INVITE_ONLY_USER_CREATION === true) {
    if (!email) return false;
    return !!(await s.db.selectFrom('team_invites').select('id').where('email', '=', email).executeTakeFirst());
  }
  return true;
}

const FILLER = '0123456789abcdefghijklmnopqrstuvwxyz';

function fillers(n: number): string[] {
  let out = [''];
  for (let i = 0; i < n; i++) out = out.flatMap((p) => [...FILLER].map((c) => p + c));
  return out;
}

/** Quay's generate_valid_usernames: the wanted name made valid, then with 1, 2 … filler characters. */
export function usernamePrefix(wanted: string): string {
  let p = wanted.normalize('NFKD').replace(/[^\x20-\x7e]/g, '').trim().toLowerCase();
  p = p.replace(/[^a-z0-9_]/g, '_').slice(0, 255).replace(/_{2,}/g, '_');
  if (p.endsWith('_')) p = p.slice(0, -1);
  return p.replace(/^_+/, '');
}

async function freeUsername(s: Services, wanted: string): Promise<string> {
  const prefix = usernamePrefix(wanted);
  for (let n = Math.max(0, 2 - prefix.length); n <= 2 && prefix.length + n <= 255; n++) {
    const names = fillers(n).map((f) => prefix + f).filter(validNamespace);
    if (names.length === 0) continue;
    const taken = new Set((await s.db.selectFrom('users').select('username').where('username', 'in', names).execute()).map((r) => r.username));
    const free = names.find((x) => !taken.has(x));
    if (free) return free;
  }
  throw new DomainError('invalid_request', `Could not find a free username for ${wanted}`);
}

/** Quay's create_federated_user: a verified account without password, linked to the identity. */
async function createFederatedUser(s: Services, svc: LoginService, identity: ExternalIdentity): Promise<Found> {
  if (!(await canCreateUser(s, identity.email))) return { message: 'User creation is disabled. Please contact your administrator', registerRedirect: false };
  if (identity.email) {
    const taken = await s.db.selectFrom('users').select('id').where('email', '=', identity.email).where('kind', '=', 'user').executeTakeFirst();
    if (taken) {
      return {
        registerRedirect: true,
        message: `The e-mail address ${identity.email} is already associated with an existing ${registryTitleShort(s)} account. \n`
          + `Please log in with your username and password and associate your ${serviceName(svc)} account to use it in the future.`,
      };
    }
  }
  let user: User;
  try {
    const username = await freeUsername(s, identity.username);
    user = await s.db.transaction().execute(async (tx) => {
      const created = await createUser(s, { username, email: identity.email, password: null, verified: true }, tx);
      await tx.insertInto('federated_logins').values({
        user_id: created.id, service: svc.id, service_ident: identity.id, metadata: JSON.stringify({ service_username: identity.username }),
      }).execute();
      await addUserPrompts(s, created.id, defaultFederatedPrompts(s), tx);
      return created;
    });
  } catch (e) {
    // A concurrent first login of the same identity won the race: sign in to its account.
    if (isUniqueViolation(e) || (e instanceof DomainError && e.message === 'The username already exists')) {
      const again = await linkedUser(s, svc, identity);
      if (again) return again;
    }
    if (e instanceof DomainError) return { message: e.message, registerRedirect: false };
    throw e;
  }
  // Without a password the docker CLI needs one (or an app token): Quay's password_required notice.
  await createUserNotification(s, user.id, 'password_required');
  return { user: (await findUserById(s, user.id))! };
}

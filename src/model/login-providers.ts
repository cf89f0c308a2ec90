// External login providers (Quay's oauth/loginmanager.py and oauth/services): every
// `<NAME>_LOGIN_CONFIG` block of the config is one — GitHub (FEATURE_GITHUB_LOGIN), Google
// (FEATURE_GOOGLE_LOGIN), or any other name as a generic OpenID Connect provider whose service id
// is the part before the first underscore. This file speaks the providers' protocols: the
// authorization URL, the code exchange, and the identity behind the code (an id_token verified
// against the provider's JWKS, or the provider's user API).
//
// Every request goes through the SSRF guard (outbound.ts). The hosts the operator named in the
// provider's block (OIDC_SERVER, GITHUB_ENDPOINT, API_ENDPOINT) are allowed even on private
// addresses, as identity providers usually are; any other URL a provider hands out (token,
// userinfo, JWKS endpoints of a discovery document) must be public or on the configured allowlist.
import { createHash, randomBytes } from 'node:crypto';
import { decodeProtectedHeader, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { Services } from './context.ts';
import { makeOutboundPolicy, outboundPolicy, outboundRequest, type OutboundPolicy, type OutboundResponse } from './outbound.ts';

export interface LoginService {
  id: string;
  type: 'github' | 'google' | 'oidc';
  config: Record<string, unknown>;
}

/** The identity an authorization code stands for (Quay's lid, lusername, lemail). */
export interface ExternalIdentity { id: string; username: string; email: string | null }

/** Raised when an OpenID Connect provider's discovery document cannot be used (Quay: 520). */
export class DiscoveryFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryFailure';
  }
}

/** Quay's OAuthLoginException: the login failed; the message is shown to the user. */
export class LoginFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoginFailure';
  }
}

const RESERVED_PREFIXES = new Set(['ldap', 'jwt', 'keystone']);
const GOOGLE = {
  authorize: 'https://accounts.google.com/o/oauth2/auth',
  token: 'https://accounts.google.com/o/oauth2/token',
  user: 'https://www.googleapis.com/oauth2/v1/userinfo',
};
const CACHE_TTL_MS = 60 * 60 * 1000;
const CLOCK_SKEW_S = 30;

function block(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v ? v : null;
}

export function loginServices(s: Services): LoginService[] {
  const out: LoginService[] = [];
  for (const [key, value] of Object.entries(s.config.raw)) {
    if (!key.endsWith('_LOGIN_CONFIG')) continue;
    const config = block(value);
    if (key === 'GITHUB_LOGIN_CONFIG') {
      if (s.config.raw.FEATURE_GITHUB_LOGIN === true) out.push({ id: 'github', type: 'github', config });
    } else if (key === 'GOOGLE_LOGIN_CONFIG') {
      if (s.config.raw.FEATURE_GOOGLE_LOGIN === true) out.push({ id: 'google', type: 'google', config });
    } else {
      const id = key.slice(0, key.indexOf('_')).toLowerCase();
      if (id && !RESERVED_PREFIXES.has(id)) out.push({ id, type: 'oidc', config });
    }
  }
  return out;
}

export function findLoginService(s: Services, id: string): LoginService | undefined {
  return loginServices(s).find((x) => x.id === id);
}

/** Quay's util.slash_join: one slash between parts, none doubled. */
function slashJoin(...parts: string[]): string {
  return parts.map((p) => p.replace(/^\//, '').replace(/\/$/, '')).join('/');
}

function githubEndpoint(svc: LoginService): string {
  return str(svc.config.GITHUB_ENDPOINT) ?? 'https://github.com';
}

function githubApi(svc: LoginService): string {
  return str(svc.config.API_ENDPOINT) ?? slashJoin(githubEndpoint(svc), '/api/v3/');
}

/** Quay's service_name(): what the user sees on buttons and error pages. */
export function serviceName(svc: LoginService): string {
  if (svc.type === 'github') return githubApi(svc).includes('.github.com') ? 'GitHub' : 'GitHub Enterprise';
  if (svc.type === 'google') return 'Google';
  return str(svc.config.SERVICE_NAME) ?? svc.id;
}

/** Quay's external_login entries of GET /config: what the web UI needs to draw the buttons. */
export function publicLoginConfig(s: Services): { id: string; title: string; config: Record<string, unknown>; icon: string }[] {
  return loginServices(s).map((svc) => {
    const clientId = svc.config.CLIENT_ID ?? null;
    if (svc.type === 'github') {
      return {
        id: svc.id, title: serviceName(svc), icon: 'fa-github',
        config: { CLIENT_ID: clientId, AUTHORIZE_ENDPOINT: slashJoin(githubEndpoint(svc), '/login/oauth/authorize'), GITHUB_ENDPOINT: githubEndpoint(svc), ORG_RESTRICT: svc.config.ORG_RESTRICT ?? false },
      };
    }
    if (svc.type === 'google') {
      return { id: svc.id, title: serviceName(svc), icon: 'fa-google', config: { CLIENT_ID: clientId, AUTHORIZE_ENDPOINT: `${GOOGLE.authorize}?response_type=code` } };
    }
    return { id: svc.id, title: serviceName(svc), icon: str(svc.config.SERVICE_ICON) ?? 'fa-user-circle', config: { CLIENT_ID: clientId, OIDC: true } };
  });
}

// ---- The SSRF guard for one provider

function hostEntry(raw: unknown): string | null {
  try {
    const u = new URL(String(raw));
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return `${u.hostname}:${port}`;
  } catch {
    return null;
  }
}

function providerPolicy(s: Services, svc: LoginService): OutboundPolicy {
  const base = outboundPolicy(s.config);
  const keys = svc.type === 'oidc' ? ['OIDC_SERVER'] : svc.type === 'github' ? ['GITHUB_ENDPOINT', 'API_ENDPOINT'] : [];
  const named = keys.map((k) => (typeof svc.config[k] === 'string' ? hostEntry(svc.config[k]) : null)).filter((x): x is string => !!x);
  let extra: OutboundPolicy['allow'] = [];
  try {
    extra = makeOutboundPolicy(named).allow;
  } catch {
    // an unparseable endpoint gets no exemption; the request itself will fail
  }
  return { allow: [...base.allow, ...extra], lookup: base.lookup };
}

/** A request to a provider; null when it cannot be made (refused by the guard, unreachable, timed out). */
async function request(s: Services, policy: OutboundPolicy, url: string, init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }): Promise<OutboundResponse | null> {
  try {
    return await outboundRequest(policy, url, { maxRedirects: init.method === 'POST' ? 0 : 5, timeoutMs: 10_000, ...init });
  } catch (e) {
    // The user sees a generic message; the operator needs the reason (an SSRF refusal names the address).
    let shown = url;
    try {
      const u = new URL(url);
      shown = `${u.origin}${u.pathname}`;
    } catch { /* keep as given */ }
    s.log.warn({ url: shown, err: (e as Error).message }, 'external login: request to the provider failed');
    return null;
  }
}

async function readJson(res: OutboundResponse): Promise<unknown> {
  try {
    return JSON.parse(await res.text());
  } catch {
    return undefined;
  }
}

// ---- OpenID Connect discovery and keys (cached for an hour, like Quay's public-key cache)

interface OidcDiscovery {
  issuer?: unknown; authorization_endpoint?: unknown; token_endpoint?: unknown; userinfo_endpoint?: unknown;
  jwks_uri?: unknown; scopes_supported?: unknown;
}

const discoveryCache = new Map<string, { at: number; doc: OidcDiscovery }>();
const keyCache = new Map<string, { at: number; keys: JWK[] }>();

async function discover(s: Services, svc: LoginService): Promise<OidcDiscovery> {
  const server = str(svc.config.OIDC_SERVER);
  if (!server) return {};
  if (!server.startsWith('https://') && s.config.raw.DEBUGGING !== true) throw new DiscoveryFailure('OIDC server must be accessed over SSL');
  const cached = discoveryCache.get(server);
  if (cached && s.now() - cached.at < CACHE_TTL_MS) return cached.doc;
  let url: string;
  try {
    url = new URL('.well-known/openid-configuration', server).href;
  } catch {
    throw new DiscoveryFailure('Could not load OIDC discovery information');
  }
  const res = await request(s, providerPolicy(s, svc), url, { timeoutMs: 5000 });
  if (!res || res.status < 200 || res.status >= 300) {
    res?.body.resume();
    throw new DiscoveryFailure('Could not load OIDC discovery information');
  }
  const doc = await readJson(res);
  if (doc === undefined) throw new DiscoveryFailure('Could not parse OIDC discovery information');
  const out = block(doc) as OidcDiscovery;
  discoveryCache.set(server, { at: s.now(), doc: out });
  return out;
}

async function signingKey(s: Services, svc: LoginService, jwksUri: unknown, kid: string, refresh: boolean): Promise<CryptoKey | Uint8Array> {
  if (typeof jwksUri !== 'string' || !jwksUri) throw new LoginFailure('Could find public OIDC key');
  let entry = keyCache.get(jwksUri);
  if (refresh || !entry || s.now() - entry.at >= CACHE_TTL_MS) {
    const res = await request(s, providerPolicy(s, svc), jwksUri, { timeoutMs: 5000 });
    const body = res && res.status === 200 ? block(await readJson(res)) : null;
    res?.body.resume();
    if (!body || !Array.isArray(body.keys)) throw new LoginFailure('Could find public OIDC key');
    entry = { at: s.now(), keys: body.keys.filter((k): k is JWK => !!k && typeof k === 'object') };
    keyCache.set(jwksUri, entry);
  }
  // Only keys the provider publishes count: a key embedded in the token's header never does.
  const jwk = entry.keys.find((k) => k.kid === kid && k.kty === 'RSA' && k.use !== 'enc');
  if (!jwk) throw new LoginFailure('Could find public OIDC key');
  try {
    return await importJWK({ kty: jwk.kty, n: jwk.n, e: jwk.e }, 'RS256');
  } catch {
    throw new LoginFailure('Could find public OIDC key');
  }
}

function stringList(v: unknown): string[] | null {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
}

// ---- Authorization URL

/** Python's urllib.parse.quote_plus, so URLs come out byte for byte as Quay's urlencode builds them. */
function quotePlus(v: string): string {
  return encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

function withParams(base: string, params: [string, string][]): string {
  const u = new URL(base);
  const existing = [...u.searchParams.entries()];
  const hash = u.hash;
  u.search = '';
  u.hash = '';
  const all = [...existing, ...params];
  return `${u.toString()}?${all.map(([k, v]) => `${quotePlus(k)}=${quotePlus(v)}`).join('&')}${hash}`;
}

/** Quay's USE_PKCE / PKCE_METHOD for OpenID Connect providers. */
export function pkceMethod(svc: LoginService): 'S256' | 'plain' | null {
  if (svc.type !== 'oidc' || svc.config.USE_PKCE !== true) return null;
  return String(svc.config.PKCE_METHOD ?? 'S256').toUpperCase() === 'PLAIN' ? 'plain' : 'S256';
}

/** A PKCE code_verifier: 64 characters from the unreserved set (RFC 7636). */
export function newCodeVerifier(): string {
  return randomBytes(48).toString('base64url');
}

function codeChallenge(verifier: string, method: 'S256' | 'plain'): string {
  return method === 'plain' ? verifier : createHash('sha256').update(verifier).digest('base64url');
}

export interface AuthorizeParams { redirectUri: string; state: string; nonce: string; codeVerifier: string | null }

/** Quay's get_auth_url: the provider's authorize endpoint with client_id, redirect_uri, scope, state. */
export async function authorizeUrl(s: Services, svc: LoginService, p: AuthorizeParams): Promise<string> {
  const clientId = str(svc.config.CLIENT_ID) ?? '';
  let endpoint: string;
  let first: [string, string][] = [];
  let last: [string, string][] = [];
  let scopes: string[];
  if (svc.type === 'github') {
    endpoint = slashJoin(githubEndpoint(svc), '/login/oauth/authorize');
    scopes = svc.config.ORG_RESTRICT ? ['user:email', 'read:org'] : ['user:email'];
  } else if (svc.type === 'google') {
    endpoint = GOOGLE.authorize;
    first = [['response_type', 'code']];
    scopes = ['openid', 'email'];
  } else {
    const doc = await discover(s, svc);
    if (typeof doc.authorization_endpoint !== 'string' || !doc.authorization_endpoint) {
      throw new DiscoveryFailure('Could not load OIDC discovery information');
    }
    endpoint = doc.authorization_endpoint;
    const custom = block(block(svc.config.OIDC_ENDPOINT_CUSTOM_PARAMS).authorization_endpoint);
    first = [...Object.entries(custom).map(([k, v]) => [k, String(v)] as [string, string]), ['response_type', 'code']];
    const dflt = ['openid', ...(typeof doc.userinfo_endpoint === 'string' && doc.userinfo_endpoint ? ['profile'] : []), ...(s.config.features.MAILING ? ['email'] : [])];
    const supported = stringList(doc.scopes_supported) ?? dflt;
    const wanted = stringList(svc.config.LOGIN_SCOPES)?.length ? stringList(svc.config.LOGIN_SCOPES)! : supported;
    scopes = [...new Set(wanted.filter((x) => supported.includes(x)))];
    // Beyond Quay: the nonce ties the id_token to this very request.
    last = [['nonce', p.nonce]];
    const method = pkceMethod(svc);
    if (method && p.codeVerifier) last.push(['code_challenge', codeChallenge(p.codeVerifier, method)], ['code_challenge_method', method]);
  }
  try {
    return withParams(endpoint, [...first, ['client_id', clientId], ['redirect_uri', p.redirectUri], ['scope', scopes.join(' ')], ['state', p.state], ...last]);
  } catch {
    throw new DiscoveryFailure(`Invalid authorization endpoint for ${svc.id}`);
  }
}

// ---- Code exchange and identity

export interface ExchangeParams { code: string; redirectUri: string; nonce: string; codeVerifier: string | null }

/** Quay's exchange_code: the token endpoint's JSON answer for an authorization code. */
async function exchangeCode(s: Services, svc: LoginService, policy: OutboundPolicy, tokenUrl: string, p: ExchangeParams): Promise<Record<string, unknown>> {
  const form = new URLSearchParams({ code: p.code, grant_type: 'authorization_code', redirect_uri: p.redirectUri, client_id: str(svc.config.CLIENT_ID) ?? '' });
  if (!(svc.type === 'oidc' && svc.config.PUBLIC_CLIENT === true)) form.set('client_secret', str(svc.config.CLIENT_SECRET) ?? '');
  if (p.codeVerifier && pkceMethod(svc)) form.set('code_verifier', p.codeVerifier);
  const res = await request(s, policy, tokenUrl, {
    method: 'POST', timeoutMs: 5000, body: form.toString(),
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
  });
  if (!res) throw new LoginFailure('Received too many ConnectionErrors during code exchange');
  if (res.status < 200 || res.status >= 300) {
    res.body.resume();
    throw new LoginFailure(`Got non-2XX response for code exchange: ${res.status}`);
  }
  const json = block(await readJson(res));
  if (Object.keys(json).length === 0) throw new LoginFailure('Got non-JSON response for code exchange');
  if ('error' in json) throw new LoginFailure(String(json.error_description ?? json.error));
  return json;
}

async function getJson(s: Services, policy: OutboundPolicy, url: string, headers: Record<string, string>, what: string): Promise<unknown> {
  const res = await request(s, policy, url, { headers: { accept: 'application/json', ...headers } });
  if (!res) throw new LoginFailure('Could not load user data. The token may have expired');
  if (res.status < 200 || res.status >= 300) {
    res.body.resume();
    throw new LoginFailure(`${what}: ${res.status}`);
  }
  const body = await readJson(res);
  if (body === undefined || body === null) throw new LoginFailure('Could not load user data. The token may have expired');
  return body;
}

/** Quay's get_user_info: the user endpoint, with the access token as a bearer token. */
function userInfo(s: Services, policy: OutboundPolicy, endpoint: string, token: string): Promise<unknown> {
  const u = new URL(endpoint);
  u.searchParams.set('alt', 'json');
  return getJson(s, policy, u.href, { authorization: `Bearer ${token}` }, 'Non-2XX response for user_info call');
}

function requireMail(s: Services, email: string | null): void {
  if (s.config.features.MAILING && !email) throw new LoginFailure('A verified email address is required to login with this service');
}

async function githubIdentity(s: Services, svc: LoginService, p: ExchangeParams): Promise<ExternalIdentity> {
  const policy = providerPolicy(s, svc);
  const json = await exchangeCode(s, svc, policy, slashJoin(githubEndpoint(svc), '/login/oauth/access_token'), p);
  const token = str(json.access_token);
  if (!token) throw new LoginFailure('Missing `access_token` in OAuth response');
  const info = block(await userInfo(s, policy, slashJoin(githubApi(svc), 'user'), token));
  if (info.id === undefined || info.id === null) throw new LoginFailure('Missing `id` column in returned user information');
  const auth = { authorization: `token ${token}` };

  const allowed = svc.config.ORG_RESTRICT && Array.isArray(svc.config.ALLOWED_ORGANIZATIONS)
    ? svc.config.ALLOWED_ORGANIZATIONS.map((o) => String(o).toLowerCase()) : null;
  if (allowed) {
    const orgs = await getJson(s, policy, slashJoin(githubApi(svc), 'user/orgs'), { ...auth, accept: 'application/vnd.github.moondragon+json' }, 'Got non-2XX response for org lookup');
    const mine = Array.isArray(orgs) ? orgs.map((o) => String(block(o).login ?? '').toLowerCase()) : [];
    if (!mine.some((o) => allowed.includes(o))) {
      throw new LoginFailure('You are not a member of an allowed GitHub organization. Please contact your system administrator if you believe this is in error.');
    }
  }

  const emails = await getJson(s, policy, slashJoin(githubApi(svc), 'user/emails'), { ...auth, accept: 'application/vnd.github.v3' }, 'Got non-2XX status code for emails endpoint');
  const list = Array.isArray(emails) ? emails.map(block).filter((e) => typeof e.email === 'string') : [];
  const verified = list.filter((e) => e.verified === true);
  // Quay prefers the primary address; Quayside only takes it unverified on GitHub Enterprise,
  // where addresses carry no verification (as Quay's special case says).
  const enterprise = serviceName(svc) === 'GitHub Enterprise';
  const pick = verified.find((e) => e.primary === true) ?? verified[0] ?? (enterprise ? list.find((e) => e.primary === true) : undefined);
  const email = pick ? String(pick.email) : null;
  requireMail(s, email);
  return { id: String(info.id), username: String(info.login ?? info.id), email };
}

async function googleIdentity(s: Services, svc: LoginService, p: ExchangeParams): Promise<ExternalIdentity> {
  const policy = providerPolicy(s, svc);
  const json = await exchangeCode(s, svc, policy, GOOGLE.token, p);
  const token = str(json.access_token);
  if (!token) throw new LoginFailure('Missing `access_token` in OAuth response');
  return googleUserIdentity(s, await userInfo(s, policy, GOOGLE.user, token));
}

/** Google's v1 userinfo answer as an identity (Quay's GoogleOAuthService). */
export function googleUserIdentity(s: Services, raw: unknown): ExternalIdentity {
  const info = block(raw);
  if (info.id === undefined || info.id === null) throw new LoginFailure('Missing `id` column in returned user information');
  const address = str(info.email);
  const email = address && info.verified_email === true ? address : null;
  requireMail(s, email);
  const at = address ? address.indexOf('@') : -1;
  return { id: String(info.id), username: address ? (at > 0 ? address.slice(0, at) : address) : String(info.id), email };
}

async function oidcIdentity(s: Services, svc: LoginService, p: ExchangeParams): Promise<ExternalIdentity> {
  const policy = providerPolicy(s, svc);
  let doc: OidcDiscovery;
  try {
    doc = await discover(s, svc);
  } catch (e) {
    throw new LoginFailure((e as Error).message);
  }
  if (typeof doc.token_endpoint !== 'string' || !doc.token_endpoint) throw new LoginFailure('Could not load OIDC discovery information');
  const json = await exchangeCode(s, svc, policy, doc.token_endpoint, p);
  const accessToken = str(json.access_token);
  if (!accessToken) throw new LoginFailure('Missing `access_token` in OIDC response');
  const idToken = str(json.id_token);
  if (!idToken) throw new LoginFailure('Missing `id_token` in OIDC response');

  const claims = await verifyIdToken(s, svc, doc, idToken, p.nonce);
  const info = typeof doc.userinfo_endpoint === 'string' && doc.userinfo_endpoint
    ? block(await userInfo(s, policy, doc.userinfo_endpoint, accessToken)) : claims as Record<string, unknown>;
  if (info.impersonated === true) throw new LoginFailure('Requests from impersonated principals are not supported');
  if (info.sub !== claims.sub) throw new LoginFailure('Mismatch in `sub` returned by OIDC user info endpoint');

  const emailClaim = str(svc.config.VERIFIED_EMAIL_CLAIM_NAME);
  const email = emailClaim ? str(info[emailClaim]) : (info.email_verified === true ? str(info.email) : null);
  requireMail(s, email);
  const nameClaim = str(svc.config.PREFERRED_USERNAME_CLAIM_NAME);
  let username = nameClaim ? str(info[nameClaim]) : (str(info.preferred_username) ?? str(info.unique_name) ?? str(info.upn));
  username ??= claims.sub!;
  if (username.includes('@')) username = username.slice(0, username.indexOf('@'));
  return { id: claims.sub!, username, email };
}

/** Quay's decode_user_jwt: RS256 only, the provider's key by `kid`, issuer, audience, expiry; plus the nonce. */
async function verifyIdToken(s: Services, svc: LoginService, doc: OidcDiscovery, token: string, nonce: string): Promise<JWTPayload> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch {
    throw new LoginFailure('Could not decode OIDC token');
  }
  if (!kid) throw new LoginFailure('Could not decode OIDC token');
  const issuer = str(svc.config.OIDC_ISSUER) ?? str(doc.issuer) ?? str(svc.config.OIDC_SERVER) ?? '';
  const verify = async (refresh: boolean): Promise<JWTPayload> => {
    const key = await signingKey(s, svc, doc.jwks_uri, kid, refresh);
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['RS256'], issuer, audience: str(svc.config.CLIENT_ID) ?? '', clockTolerance: CLOCK_SKEW_S,
      requiredClaims: ['exp', 'sub'], currentDate: new Date(s.now()),
    });
    return payload;
  };
  let payload: JWTPayload;
  try {
    payload = await verify(false);
  } catch {
    // The provider may have rotated its keys: fetch them again once (Quay does the same).
    try {
      payload = await verify(true);
    } catch (e) {
      throw e instanceof LoginFailure ? e : new LoginFailure('Could not decode OIDC token');
    }
  }
  if (typeof payload.sub !== 'string' || !payload.sub || payload.nonce !== nonce) throw new LoginFailure('Could not decode OIDC token');
  return payload;
}

/** Quay's exchange_code_for_login: the identity an authorization code stands for. */
export function exchangeCodeForIdentity(s: Services, svc: LoginService, p: ExchangeParams): Promise<ExternalIdentity> {
  if (svc.type === 'github') return githubIdentity(s, svc, p);
  if (svc.type === 'google') return googleIdentity(s, svc, p);
  return oidcIdentity(s, svc, p);
}

// Real, minimal identity providers for external-login tests, on 127.0.0.1:
//
// - OidcProvider: discovery, /authorize (redirects straight back with a code, like a provider whose
//   user is already signed in and consented), /token (RS256 id_token + access token; checks the
//   client, the redirect URI, single-use codes and PKCE), /jwks and /userinfo. `tamper` bends the
//   next id_tokens (audience, issuer, expiry, nonce, signing key) to test the relying party's checks.
// - GithubProvider: GitHub's OAuth endpoints and the /user, /user/emails and /user/orgs API.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

export interface OidcUser {
  sub: string;
  preferred_username?: string;
  email?: string;
  email_verified?: boolean;
  [claim: string]: unknown;
}

export interface Tamper {
  aud?: string;
  iss?: string;
  /** Seconds added to the expiry (negative: already expired). */
  expOffset?: number;
  nonce?: string | null;
  /** Sign with a key the provider does not publish, under the published kid, with it embedded as `jwk`. */
  foreignKey?: boolean;
  /** A different `sub` from /userinfo than in the id_token. */
  userinfoSub?: string;
}

interface Grant { clientId: string; redirectUri: string; nonce: string | undefined; user: OidcUser; challenge?: string; method?: string }

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export class OidcProvider {
  url = '';
  readonly clientId: string;
  readonly clientSecret: string;
  /** Who is signed in at the provider: the identity the next /authorize hands out. */
  user: OidcUser = { sub: 'sub-alice', preferred_username: 'alice', email: 'alice@idp.example.com', email_verified: true };
  tamper: Tamper = {};
  /** When set, /authorize answers with this `error` instead of a code. */
  deny: string | null = null;
  /** Require PKCE (S256) from clients. */
  requirePkce = false;
  /** The client is public: it must authenticate with PKCE alone and send no secret. */
  publicClient = false;
  /** Every request, as "METHOD /path". */
  readonly hits: string[] = [];
  /** Every form the token endpoint received. */
  readonly tokenRequests: URLSearchParams[] = [];
  private server!: Server;
  private key!: CryptoKey;
  private jwk!: JWK;
  private readonly kid = 'key-1';
  private readonly codes = new Map<string, Grant>();
  private readonly tokens = new Map<string, OidcUser>();

  constructor(opts: { clientId?: string; clientSecret?: string } = {}) {
    this.clientId = opts.clientId ?? 'quayside-client';
    this.clientSecret = opts.clientSecret ?? 'quayside-secret';
  }

  get issuer(): string {
    return this.url;
  }

  async start(): Promise<this> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    this.key = privateKey;
    this.jwk = { ...(await exportJWK(publicKey)), kid: this.kid, use: 'sig', alg: 'RS256' };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => sendJson(res, 500, { error: String(e) }));
    });
    this.url = await listen(this.server);
    return this;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }

  private async idToken(user: OidcUser, nonce: string | undefined): Promise<string> {
    const t = this.tamper;
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = { ...user };
    const n = t.nonce === undefined ? nonce : t.nonce;
    if (n !== null && n !== undefined) claims.nonce = n;
    let key = this.key;
    const header: Record<string, unknown> = { alg: 'RS256', kid: this.kid };
    if (t.foreignKey) {
      const other = await generateKeyPair('RS256', { extractable: true });
      key = other.privateKey;
      header.jwk = await exportJWK(other.publicKey);
    }
    return new SignJWT(claims).setProtectedHeader(header as { alg: string }).setIssuer(t.iss ?? this.issuer).setAudience(t.aud ?? this.clientId)
      .setIssuedAt(now).setExpirationTime(now + 300 + (t.expOffset ?? 0)).sign(key);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', this.url);
    this.hits.push(`${req.method} ${u.pathname}`);
    if (u.pathname === '/.well-known/openid-configuration') {
      return sendJson(res, 200, {
        issuer: this.issuer, authorization_endpoint: `${this.url}/authorize`, token_endpoint: `${this.url}/token`,
        userinfo_endpoint: `${this.url}/userinfo`, jwks_uri: `${this.url}/jwks`,
        scopes_supported: ['openid', 'profile', 'email'], response_types_supported: ['code'],
        id_token_signing_alg_values_supported: ['RS256'], code_challenge_methods_supported: ['S256', 'plain'],
      });
    }
    if (u.pathname === '/jwks') return sendJson(res, 200, { keys: [this.jwk] });
    if (u.pathname === '/authorize' && req.method === 'GET') {
      const q = u.searchParams;
      const redirect = q.get('redirect_uri');
      if (q.get('client_id') !== this.clientId || !redirect || q.get('response_type') !== 'code') return sendJson(res, 400, { error: 'invalid_request' });
      const back = new URL(redirect);
      if (this.deny) {
        back.searchParams.set('error', this.deny);
      } else {
        if (this.requirePkce && q.get('code_challenge_method') !== 'S256') return sendJson(res, 400, { error: 'invalid_request', error_description: 'PKCE required' });
        const code = randomBytes(16).toString('hex');
        this.codes.set(code, {
          clientId: this.clientId, redirectUri: redirect, nonce: q.get('nonce') ?? undefined, user: { ...this.user },
          challenge: q.get('code_challenge') ?? undefined, method: q.get('code_challenge_method') ?? undefined,
        });
        back.searchParams.set('code', code);
      }
      back.searchParams.set('state', q.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (u.pathname === '/token' && req.method === 'POST') {
      const f = await readForm(req);
      this.tokenRequests.push(f);
      const code = f.get('code') ?? '';
      const grant = this.codes.get(code);
      this.codes.delete(code);
      if (f.get('grant_type') !== 'authorization_code' || !grant) return sendJson(res, 400, { error: 'invalid_grant' });
      const secretOk = this.publicClient ? !f.has('client_secret') : f.get('client_secret') === this.clientSecret;
      if (f.get('client_id') !== grant.clientId || !secretOk) return sendJson(res, 401, { error: 'invalid_client' });
      if (f.get('redirect_uri') !== grant.redirectUri) return sendJson(res, 400, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' });
      if (grant.challenge) {
        const verifier = f.get('code_verifier') ?? '';
        const expected = grant.method === 'S256' ? createHash('sha256').update(verifier).digest('base64url') : verifier;
        if (expected !== grant.challenge) return sendJson(res, 400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
      }
      const access = randomBytes(16).toString('hex');
      this.tokens.set(access, grant.user);
      return sendJson(res, 200, { access_token: access, token_type: 'Bearer', expires_in: 300, id_token: await this.idToken(grant.user, grant.nonce) });
    }
    if (u.pathname === '/userinfo') {
      const user = this.tokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
      if (!user) return sendJson(res, 401, { error: 'invalid_token' });
      return sendJson(res, 200, { ...user, ...(this.tamper.userinfoSub ? { sub: this.tamper.userinfoSub } : {}) });
    }
    sendJson(res, 404, { error: 'not_found' });
  }
}

export interface GithubUser { id: number; login: string; emails: { email: string; primary: boolean; verified: boolean }[]; orgs?: string[] }

/** GitHub (Enterprise) as Quay's GitHub login sees it: OAuth under /login/oauth, the REST API under /api/v3. */
export class GithubProvider {
  url = '';
  readonly clientId = 'gh-client';
  readonly clientSecret = 'gh-secret';
  user: GithubUser = { id: 4242, login: 'Octo.Cat', emails: [{ email: 'octo@github.example.com', primary: true, verified: true }], orgs: ['quay'] };
  readonly hits: string[] = [];
  private server!: Server;
  private readonly codes = new Map<string, { redirectUri: string; user: GithubUser }>();
  private readonly tokens = new Map<string, GithubUser>();

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => sendJson(res, 500, { message: String(e) }));
    });
    this.url = await listen(this.server);
    return this;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', this.url);
    this.hits.push(`${req.method} ${u.pathname}`);
    if (u.pathname === '/login/oauth/authorize') {
      const redirect = u.searchParams.get('redirect_uri');
      if (u.searchParams.get('client_id') !== this.clientId || !redirect) return sendJson(res, 404, { message: 'Not Found' });
      const code = randomBytes(10).toString('hex');
      this.codes.set(code, { redirectUri: redirect, user: this.user });
      const back = new URL(redirect);
      back.searchParams.set('code', code);
      back.searchParams.set('state', u.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (u.pathname === '/login/oauth/access_token' && req.method === 'POST') {
      const f = await readForm(req);
      const grant = this.codes.get(f.get('code') ?? '');
      this.codes.delete(f.get('code') ?? '');
      // GitHub answers 200 with an error object for bad codes.
      if (!grant || f.get('client_id') !== this.clientId || f.get('client_secret') !== this.clientSecret || f.get('redirect_uri') !== grant.redirectUri) {
        return sendJson(res, 200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      }
      const token = `gho_${randomBytes(12).toString('hex')}`;
      this.tokens.set(token, grant.user);
      return sendJson(res, 200, { access_token: token, token_type: 'bearer', scope: 'user:email' });
    }
    const user = this.tokens.get((req.headers.authorization ?? '').replace(/^(Bearer|token) /, ''));
    if (u.pathname.startsWith('/api/v3/') && !user) return sendJson(res, 401, { message: 'Bad credentials' });
    if (u.pathname === '/api/v3/user') return sendJson(res, 200, { id: user!.id, login: user!.login });
    if (u.pathname === '/api/v3/user/emails') return sendJson(res, 200, user!.emails);
    if (u.pathname === '/api/v3/user/orgs') return sendJson(res, 200, (user!.orgs ?? []).map((login) => ({ login })));
    sendJson(res, 404, { message: 'Not Found' });
  }
}

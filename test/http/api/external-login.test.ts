// POST /api/v1/externallogin/{service_id}: authorization URLs of configured external login services
// (GitHub, Google, and OpenID Connect providers discovered over HTTP from a local server), and the
// state each one stores. The whole sign-in flow is in test/http/web/external-login.test.ts.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { call, isApiError } from './client.ts';
import { sha256Hex } from '../../../src/model/crypto.ts';

let idp: Server;
let idpUrl: string;
const discoveryHits: string[] = [];

before(async () => {
  idp = createServer((req, res) => {
    discoveryHits.push(req.url ?? '');
    if (req.url === '/realms/quay/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        issuer: `${idpUrl}/realms/quay`, authorization_endpoint: 'https://idp.example.com/realms/quay/auth',
        userinfo_endpoint: 'https://idp.example.com/userinfo', scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      }));
    } else if (req.url === '/garbled/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{not json');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
  idpUrl = `http://127.0.0.1:${(idp.address() as AddressInfo).port}`;
});
after(async () => { await new Promise((r) => idp?.close(r)); });

const login = (t: TestApp, service: string, kind: unknown = 'login') => call(t, 'POST', `/api/v1/externallogin/${service}`, { json: { kind } });

function parse(url: string): { base: string; params: [string, string][]; raw: string } {
  const [base, query] = url.split('?') as [string, string];
  return { base, params: query.split('&').map((kv) => kv.split('=').map(decodeURIComponent) as [string, string]), raw: query };
}

describe('with external login services configured', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({
      SERVER_HOSTNAME: 'registry.example.com', PREFERRED_URL_SCHEME: 'https', DEBUGGING: true,
      FEATURE_GITHUB_LOGIN: true, GITHUB_LOGIN_CONFIG: { CLIENT_ID: 'gh-client', CLIENT_SECRET: 'gh-secret' },
      FEATURE_GOOGLE_LOGIN: true, GOOGLE_LOGIN_CONFIG: { CLIENT_ID: 'g-client', CLIENT_SECRET: 'g-secret' },
      KEYCLOAK_LOGIN_CONFIG: { OIDC_SERVER: `${idpUrl}/realms/quay/`, CLIENT_ID: 'kc-client', CLIENT_SECRET: 'kc', LOGIN_SCOPES: ['openid', 'email', 'groups'] },
      MISSING_LOGIN_CONFIG: { OIDC_SERVER: `${idpUrl}/nothing-here/`, CLIENT_ID: 'x' },
      GARBLED_LOGIN_CONFIG: { OIDC_SERVER: `${idpUrl}/garbled/`, CLIENT_ID: 'x' },
    });
  });
  after(async () => { await t?.close(); });

  test('GitHub: its authorize endpoint, the callback for the kind, the login scopes and a fresh state', async () => {
    const a = await login(t, 'github');
    assert.equal(a.status, 200);
    assert.deepEqual(Object.keys(a.body), ['auth_url']);
    const u = parse(a.body.auth_url);
    assert.equal(u.base, 'https://github.com/login/oauth/authorize');
    assert.deepEqual(u.params.map(([k]) => k), ['client_id', 'redirect_uri', 'scope', 'state']);
    assert.match(u.raw, /^client_id=gh-client&redirect_uri=https%3A%2F%2Fregistry\.example\.com%2Foauth2%2Fgithub%2Fcallback&scope=user%3Aemail&state=[A-Za-z0-9_-]{64}$/);
    const b = await login(t, 'github', 'attach');
    assert.equal(parse(b.body.auth_url).params[1]![1], 'https://registry.example.com/oauth2/github/callback/attach');
    assert.notEqual(parse(b.body.auth_url).params[3]![1], u.params[3]![1], 'every URL carries its own state');
  });

  test('Google: response_type=code first, openid and email scopes', async () => {
    const a = await login(t, 'google', 'attach');
    assert.equal(a.status, 200);
    assert.match(a.body.auth_url, /^https:\/\/accounts\.google\.com\/o\/oauth2\/auth\?response_type=code&client_id=g-client&redirect_uri=https%3A%2F%2Fregistry\.example\.com%2Foauth2%2Fgoogle%2Fcallback%2Fattach&scope=openid\+email&state=[A-Za-z0-9_-]{64}$/);
  });

  test('OpenID Connect: the endpoint comes from discovery; scopes are the configured ones the provider supports', async () => {
    const a = await login(t, 'keycloak');
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.match(a.body.auth_url, /^https:\/\/idp\.example\.com\/realms\/quay\/auth\?response_type=code&client_id=kc-client&redirect_uri=https%3A%2F%2Fregistry\.example\.com%2Foauth2%2Fkeycloak%2Fcallback&scope=openid\+email&state=[A-Za-z0-9_-]{64}&nonce=[A-Za-z0-9_-]{43}$/);
    assert.ok(discoveryHits.includes('/realms/quay/.well-known/openid-configuration'));
  });

  test('the state is stored only as a hash, bound to the browser\'s session cookie (minted when missing), for ten minutes', async () => {
    const r = await login(t, 'github');
    const state = new URL(r.body.auth_url).searchParams.get('state')!;
    const cookie = r.headers.getSetCookie().find((c) => c.startsWith('_csrf_token='));
    assert.ok(cookie, 'an anonymous caller gets a session cookie to bind the state to');
    assert.match(cookie!, /HttpOnly/);
    assert.match(cookie!, /SameSite=Lax/);
    const row = await t.app.services.db.selectFrom('external_login_states').selectAll().where('state_hash', '=', sha256Hex(state)).executeTakeFirstOrThrow();
    assert.equal(row.service, 'github');
    assert.equal(row.kind, 'login');
    assert.equal(row.user_id, null);
    assert.equal(row.redirect_uri, 'https://registry.example.com/oauth2/github/callback');
    assert.equal(row.expires_at - row.created_at, 10 * 60 * 1000);
    const all = await t.app.services.db.selectFrom('external_login_states').select(['state_hash', 'browser_hash']).execute();
    assert.ok(all.every((x) => x.state_hash !== state && x.browser_hash.length === 64));
  });

  test('kind cli is refused: its id_token would serve only AUTHENTICATION_TYPE OIDC', async () => {
    const r = await login(t, 'keycloak', 'cli');
    assert.equal(r.status, 400);
    assert.ok(isApiError(r.body, 400, 'invalid_request', 'https://registry.example.com'));
  });

  test('a provider whose discovery fails is a 520 downstream_issue', async () => {
    for (const [service, detail] of [['missing', 'Could not load OIDC discovery information'], ['garbled', 'Could not parse OIDC discovery information']]) {
      const r = await login(t, service!);
      assert.equal(r.status, 520, service);
      assert.ok(isApiError(r.body, 520, 'downstream_issue', 'https://registry.example.com'));
      assert.equal(r.body.detail, detail);
    }
  });

  test('an unknown service is a 400, and so is an unknown kind', async () => {
    const r = await login(t, 'gitlab');
    assert.equal(r.status, 400);
    assert.ok(isApiError(r.body, 400, 'invalid_request', 'https://registry.example.com'));
    const k = await login(t, 'github', 'logout');
    assert.equal(k.status, 400);
    assert.equal(k.body.error_type, 'invalid_request');
  });
});

describe('defaults and gates', () => {
  test('no services by default: every id is unknown', async () => {
    const t = await startTestApp();
    try {
      const r = await login(t, 'github');
      assert.equal(r.status, 400);
      assert.ok(isApiError(r.body, 400, 'invalid_request', t.url));
    } finally {
      await t.close();
    }
  });

  test('GitHub needs FEATURE_GITHUB_LOGIN; OIDC needs https unless DEBUGGING; anonymous and read-only callers are served', async () => {
    const t = await startTestApp({
      FEATURE_ANONYMOUS_ACCESS: false, REGISTRY_STATE: 'readonly',
      GITHUB_LOGIN_CONFIG: { CLIENT_ID: 'gh' },
      FEATURE_GOOGLE_LOGIN: true, GOOGLE_LOGIN_CONFIG: { CLIENT_ID: 'g' },
      PLAIN_LOGIN_CONFIG: { OIDC_SERVER: `${idpUrl}/realms/quay/`, CLIENT_ID: 'p' },
    });
    try {
      assert.equal((await login(t, 'github')).status, 400);
      const g = await login(t, 'google');
      assert.equal(g.status, 200);
      assert.ok(g.body.auth_url.includes(encodeURIComponent(`${t.url}/oauth2/google/callback`)), 'the redirect is built from the request host without SERVER_HOSTNAME');
      const p = await login(t, 'plain');
      assert.equal(p.status, 520);
      assert.equal(p.body.detail, 'OIDC server must be accessed over SSL');
    } finally {
      await t.close();
    }
  });
});

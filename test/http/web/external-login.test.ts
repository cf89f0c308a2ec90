// External login end to end, over real HTTP against real (minimal) providers: POST
// /api/v1/externallogin → the provider's authorize URL → /oauth2/<service>/callback → a session
// cookie that works on /api/v1/user/. And every way the callback must refuse: unknown, replayed,
// foreign-browser or expired state, id_tokens with the wrong audience, issuer, expiry, nonce or
// key, user creation turned off, a taken e-mail, a disabled account.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { GithubProvider, OidcProvider } from '../../support/oidc-provider.ts';
import { Browser } from '../api/browser.ts';
import { createUser, findUser } from '../../../src/model/accounts.ts';
import { googleUserIdentity, LoginFailure } from '../../../src/model/login-providers.ts';
import { usernamePrefix } from '../../../src/model/external-login.ts';

let idp: OidcProvider;
let gh: GithubProvider;

before(async () => {
  idp = await new OidcProvider().start();
  gh = await new GithubProvider().start();
});
after(async () => {
  await idp?.close();
  await gh?.close();
});

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    DEBUGGING: true,
    KEYCLOAK_LOGIN_CONFIG: { OIDC_SERVER: `${idp.url}/`, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, SERVICE_NAME: 'Keycloak' },
    FEATURE_GITHUB_LOGIN: true,
    GITHUB_LOGIN_CONFIG: { GITHUB_ENDPOINT: gh.url, CLIENT_ID: gh.clientId, CLIENT_SECRET: gh.clientSecret },
    ...extra,
  };
}

async function authUrl(b: Browser, service: string, kind = 'login'): Promise<string> {
  if (!b.csrf) await b.fetchCsrf();
  const r = await b.request('POST', `/api/v1/externallogin/${service}`, { json: { kind }, csrf: true });
  assert.equal(r.status, 200, r.text);
  return r.body.auth_url;
}

/** The browser at the provider: it redirects straight back; returns the callback's path and query. */
async function atProvider(url: string): Promise<string> {
  const r = await fetch(url, { redirect: 'manual' });
  assert.equal(r.status, 302, await r.text());
  const back = new URL(r.headers.get('location')!);
  return back.pathname + back.search;
}

async function signInVia(b: Browser, service: string) {
  return b.request('GET', await atProvider(await authUrl(b, service)));
}

function clone(b: Browser): Browser {
  const c = new Browser(b.base);
  c.cookies = new Map(b.cookies);
  c.csrf = b.csrf;
  return c;
}

const CSRF_FAILURE = { error: 'CSRF token was invalid or missing.' };

describe('OpenID Connect login', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(config()); });
  after(async () => { await t?.close(); });

  test('a new identity gets an account: signed in, linked, asked to confirm its username', async () => {
    idp.user = { sub: 'sub-alice', preferred_username: 'Alice.Smith@corp', email: 'alice@idp.example.com', email_verified: true };
    const b = new Browser(t.url);
    const url = await authUrl(b, 'keycloak');
    const u = new URL(url);
    assert.equal(u.origin + u.pathname, `${idp.url}/authorize`);
    assert.equal(u.searchParams.get('redirect_uri'), `${t.url}/oauth2/keycloak/callback`);
    assert.match(u.searchParams.get('nonce')!, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(u.searchParams.get('code_challenge'), null, 'no PKCE unless USE_PKCE');

    const tokenCalls = idp.tokenRequests.length;
    const cb = await b.request('GET', await atProvider(url));
    assert.equal(cb.status, 302, cb.text);
    assert.equal(cb.headers.get('location'), `${t.url}/updateuser`);
    assert.ok(cb.headers.get('x-next-csrf-token'));
    assert.equal(idp.tokenRequests.length, tokenCalls + 1);
    const form = idp.tokenRequests.at(-1)!;
    assert.equal(form.get('redirect_uri'), `${t.url}/oauth2/keycloak/callback`);
    assert.equal(form.get('client_secret'), idp.clientSecret);

    // The session cookie works on the API.
    const me = await b.request('GET', '/api/v1/user/');
    assert.equal(me.status, 200, me.text);
    assert.equal(me.body.username, 'alice_smith', 'Quay derives the name from preferred_username, cut at the @');
    assert.equal(me.body.email, 'alice@idp.example.com');
    assert.equal(me.body.verified, true);
    assert.equal(me.body.has_password_set, false);
    assert.deepEqual(me.body.prompts, ['confirm_username']);
    assert.deepEqual(me.body.logins, [{ service: 'keycloak', service_identifier: 'sub-alice', metadata: { service_username: 'Alice.Smith' } }]);

    const user = (await findUser(t.app.services, 'alice_smith'))!;
    assert.equal(user.password_hash, null);
    const notes = await t.app.services.db.selectFrom('user_notifications').select('kind').where('user_id', '=', user.id).execute();
    assert.deepEqual(notes.map((n) => n.kind), ['password_required']);

    // Confirming the username (a rename is allowed while the prompt is pending) clears the prompt.
    const put = await b.request('PUT', '/api/v1/user/', { json: { username: 'alice' }, csrf: true });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.username, 'alice');
    assert.deepEqual(put.body.prompts, []);
    const again = await b.request('PUT', '/api/v1/user/', { json: { username: 'alice2' }, csrf: true });
    assert.equal(again.status, 200);
    assert.equal(again.body.username, 'alice', 'no further renames without FEATURE_USER_RENAME');
  });

  test('the same identity signs in to the same account, straight to the index', async () => {
    const b = new Browser(t.url);
    const cb = await signInVia(b, 'keycloak');
    assert.equal(cb.status, 302);
    assert.equal(cb.headers.get('location'), `${t.url}/`);
    const me = await b.request('GET', '/api/v1/user/');
    assert.equal(me.body.username, 'alice');
    const count = await t.app.services.db.selectFrom('federated_logins').select('id').where('service', '=', 'keycloak').execute();
    assert.equal(count.length, 1);
  });

  test('a state is single use: replaying the callback with the same browser cookie is refused', async () => {
    const b = new Browser(t.url);
    const path = await atProvider(await authUrl(b, 'keycloak'));
    const before = clone(b);
    assert.equal((await b.request('GET', path)).status, 302);
    const calls = idp.tokenRequests.length;
    const replay = await before.request('GET', path);
    assert.equal(replay.status, 403);
    assert.deepEqual(replay.body, CSRF_FAILURE);
    assert.equal(replay.headers.get('set-cookie'), null, 'no session for a replay');
    assert.equal(idp.tokenRequests.length, calls, 'the code is not even exchanged');
  });

  test('a state only works in the browser that asked for it (login CSRF), and is not burnt by others', async () => {
    const attacker = new Browser(t.url);
    const path = await atProvider(await authUrl(attacker, 'keycloak'));
    for (const victim of [new Browser(t.url), await (async () => { const v = new Browser(t.url); await v.fetchCsrf(); return v; })()]) {
      const r = await victim.request('GET', path);
      assert.equal(r.status, 403);
      assert.deepEqual(r.body, CSRF_FAILURE);
      assert.equal((await victim.request('GET', '/api/v1/user/')).status, 401);
    }
    assert.equal((await attacker.request('GET', path)).status, 302, 'still usable by its own browser');
  });

  test('unknown, missing and expired states are refused', async () => {
    const b = new Browser(t.url);
    const path = await atProvider(await authUrl(b, 'keycloak'));
    const u = new URL(path, t.url);
    u.searchParams.set('state', 'A'.repeat(64));
    assert.deepEqual((await b.request('GET', u.pathname + u.search)).body, CSRF_FAILURE);
    u.searchParams.delete('state');
    assert.equal((await b.request('GET', u.pathname + u.search)).status, 403);

    await t.app.services.db.updateTable('external_login_states').set({ expires_at: Date.now() - 1 }).execute();
    const expired = await b.request('GET', path);
    assert.equal(expired.status, 403);
    assert.deepEqual(expired.body, CSRF_FAILURE);
  });

  test('a browser keeps at most ten unfinished logins; the oldest go first', async () => {
    gh.user = { id: 31337, login: 'pruner', emails: [] };
    const b = new Browser(t.url);
    const urls: string[] = [];
    for (let i = 0; i < 12; i++) urls.push(await authUrl(b, 'github'));
    const oldest = await atProvider(urls[0]!);
    assert.equal((await b.request('GET', oldest)).status, 403);
    const newest = await b.request('GET', await atProvider(urls[11]!));
    assert.equal(newest.status, 302, newest.text);
  });

  test('a state made for one service does not complete another', async () => {
    const b = new Browser(t.url);
    const path = await atProvider(await authUrl(b, 'keycloak'));
    const r = await b.request('GET', path.replace('/oauth2/keycloak/', '/oauth2/github/'));
    assert.equal(r.status, 403);
  });

  for (const [name, tamper] of [
    ['another audience', { aud: 'someone-else' }],
    ['another issuer', { iss: 'https://evil.example.com' }],
    ['an expired token', { expOffset: -3600 }],
    ['a wrong nonce', { nonce: 'not-the-nonce' }],
    ['no nonce', { nonce: null }],
    ['a key the provider does not publish (embedded in the header)', { foreignKey: true }],
  ] as const) {
    test(`an id_token with ${name} is refused`, async () => {
      idp.user = { sub: `sub-${name}`, preferred_username: 'mallory', email: 'mallory@idp.example.com', email_verified: true };
      idp.tamper = tamper;
      try {
        const b = new Browser(t.url);
        const r = await signInVia(b, 'keycloak');
        assert.equal(r.status, 400);
        assert.match(r.headers.get('content-type')!, /^text\/html/);
        assert.match(r.text, /There was an error signing in with Keycloak/);
        assert.match(r.text, /Could not decode OIDC token/);
        assert.equal(r.headers.get('set-cookie'), null);
        assert.equal((await b.request('GET', '/api/v1/user/')).status, 401);
        assert.equal(await findUser(t.app.services, 'mallory'), undefined);
      } finally {
        idp.tamper = {};
      }
    });
  }

  test('userinfo naming another subject than the id_token is refused', async () => {
    idp.user = { sub: 'sub-eve', preferred_username: 'eve' };
    idp.tamper = { userinfoSub: 'sub-alice' };
    try {
      const r = await signInVia(new Browser(t.url), 'keycloak');
      assert.equal(r.status, 400);
      assert.match(r.text, /Mismatch in `sub` returned by OIDC user info endpoint/);
      assert.equal(await findUser(t.app.services, 'eve'), undefined);
    } finally {
      idp.tamper = {};
    }
  });

  test('the provider\'s error comes back as the error page', async () => {
    idp.deny = 'access_denied';
    try {
      const r = await signInVia(new Browser(t.url), 'keycloak');
      assert.equal(r.status, 400);
      assert.match(r.text, /access_denied/);
    } finally {
      idp.deny = null;
    }
  });

  test('an e-mail address already used by another account is not taken over', async () => {
    await createUser(t.app.services, { username: 'bob', password: 'password123', email: 'bob@idp.example.com' });
    idp.user = { sub: 'sub-bob', preferred_username: 'bob', email: 'bob@idp.example.com', email_verified: true };
    const r = await signInVia(new Browser(t.url), 'keycloak');
    assert.equal(r.status, 400);
    assert.match(r.text, /The e-mail address bob@idp\.example\.com is already associated with an existing Quayside account/);
    const links = await t.app.services.db.selectFrom('federated_logins').select('service_ident').where('service_ident', '=', 'sub-bob').execute();
    assert.equal(links.length, 0);
  });

  test('a taken username gets a filler character; an unverified e-mail is not stored', async () => {
    idp.user = { sub: 'sub-alice-2', preferred_username: 'alice', email: 'other-alice@idp.example.com', email_verified: false };
    const b = new Browser(t.url);
    assert.equal((await signInVia(b, 'keycloak')).status, 302);
    const me = await b.request('GET', '/api/v1/user/');
    assert.equal(me.body.username, 'alice0');
    assert.equal(me.body.email, null);
  });

  test('a disabled account cannot sign in', async () => {
    idp.user = { sub: 'sub-alice', preferred_username: 'alice' };
    await t.app.services.db.updateTable('users').set({ enabled: 0 }).where('username', '=', 'alice').execute();
    try {
      const b = new Browser(t.url);
      const r = await signInVia(b, 'keycloak');
      assert.equal(r.status, 400);
      assert.match(r.text, /Could not login. Account may be disabled/);
      assert.equal((await b.request('GET', '/api/v1/user/')).status, 401);
    } finally {
      await t.app.services.db.updateTable('users').set({ enabled: 1 }).where('username', '=', 'alice').execute();
    }
  });

  test('attach links an identity to the signed-in account; detach removes it', async () => {
    await createUser(t.app.services, { username: 'carol', password: 'password123', email: 'carol@example.com' });
    gh.user = { id: 4242, login: 'Octo.Cat', emails: [{ email: 'octo@github.example.com', primary: true, verified: true }] };
    const b = new Browser(t.url);
    assert.equal((await b.signIn('carol', 'password123')).status, 200);
    const url = await authUrl(b, 'github', 'attach');
    assert.equal(new URL(url).searchParams.get('redirect_uri'), `${t.url}/oauth2/github/callback/attach`);
    const path = await atProvider(url);

    // Without the session the attach callback needs a login; another user's session fails the state.
    assert.deepEqual((await new Browser(t.url).request('GET', path)).body, { error: 'Method requires login and no valid login could be loaded.' });
    const dave = new Browser(t.url);
    await createUser(t.app.services, { username: 'dave', password: 'password123' });
    assert.equal((await dave.signIn('dave', 'password123')).status, 200);
    assert.equal((await dave.request('GET', path)).status, 403);

    const r = await b.request('GET', path);
    assert.equal(r.status, 302, r.text);
    assert.equal(r.headers.get('location'), `${t.url}/user/carol?tab=external`);
    const me = await b.request('GET', '/api/v1/user/');
    assert.deepEqual(me.body.logins, [{ service: 'github', service_identifier: '4242', metadata: { service_username: 'Octo.Cat' } }]);

    // The identity now signs in to carol.
    const other = new Browser(t.url);
    assert.equal((await signInVia(other, 'github')).headers.get('location'), `${t.url}/`);
    assert.equal((await other.request('GET', '/api/v1/user/')).body.username, 'carol');

    // It cannot be attached to a second account.
    const second = await dave.request('GET', await atProvider(await authUrl(dave, 'github', 'attach')));
    assert.equal(second.status, 400);
    assert.match(second.text, /GitHub Enterprise account Octo\.Cat is already attached to a Quayside account/);

    const d = await b.request('POST', '/api/v1/detachexternal/github', { csrf: true });
    assert.equal(d.status, 200);
    assert.deepEqual(d.body, { success: true });
    assert.deepEqual((await b.request('GET', '/api/v1/user/')).body.logins, []);
  });

  test('GitHub login: a new account from the GitHub user and its verified primary address', async () => {
    gh.user = { id: 777, login: 'gh-user', emails: [{ email: 'unverified@x.example', primary: false, verified: false }, { email: 'gh@x.example', primary: true, verified: true }] };
    const b = new Browser(t.url);
    const url = await authUrl(b, 'github');
    assert.match(url, new RegExp(`^${gh.url}/login/oauth/authorize\\?client_id=gh-client&redirect_uri=`));
    const r = await b.request('GET', await atProvider(url));
    assert.equal(r.status, 302, r.text);
    const me = await b.request('GET', '/api/v1/user/');
    assert.equal(me.body.username, 'gh_user');
    assert.equal(me.body.email, 'gh@x.example');
    assert.deepEqual(me.body.logins, [{ service: 'github', service_identifier: '777', metadata: { service_username: 'gh-user' } }]);
    assert.ok(gh.hits.includes('GET /api/v3/user/emails'));
  });

  test('kind cli is refused: Quayside has no OIDC password login for its id_token', async () => {
    const b = new Browser(t.url);
    await b.fetchCsrf();
    const r = await b.request('POST', '/api/v1/externallogin/keycloak', { json: { kind: 'cli' }, csrf: true });
    assert.equal(r.status, 400);
    assert.equal(r.body.error_type, 'invalid_request');
  });

  test('callbacks of services that are not configured do not exist', async () => {
    const r = await new Browser(t.url).request('GET', '/oauth2/gitlab/callback?code=x&state=y');
    assert.equal(r.status, 404);
  });

  test('GET /config lists the services for the web UI', async () => {
    const r = await new Browser(t.url).request('GET', '/config');
    assert.deepEqual(r.body.external_login, [
      { id: 'keycloak', title: 'Keycloak', icon: 'fa-user-circle', config: { CLIENT_ID: idp.clientId, OIDC: true } },
      {
        id: 'github', title: 'GitHub Enterprise', icon: 'fa-github',
        config: { CLIENT_ID: gh.clientId, AUTHORIZE_ENDPOINT: `${gh.url}/login/oauth/authorize`, GITHUB_ENDPOINT: gh.url, ORG_RESTRICT: false },
      },
    ]);
  });
});

describe('gates and variants', () => {
  test('user creation disabled: new identities are refused, linked ones still sign in', async () => {
    const t = await startTestApp(config({ FEATURE_USER_CREATION: false }));
    try {
      idp.user = { sub: 'sub-nobody', preferred_username: 'nobody', email: 'nobody@idp.example.com', email_verified: true };
      const r = await signInVia(new Browser(t.url), 'keycloak');
      assert.equal(r.status, 400);
      assert.match(r.text, /User creation is disabled. Please contact your administrator/);
      assert.equal(await findUser(t.app.services, 'nobody'), undefined);

      const erin = await createUser(t.app.services, { username: 'erin', password: 'password123' });
      await t.app.services.db.insertInto('federated_logins').values({ user_id: erin.id, service: 'keycloak', service_ident: 'sub-erin', metadata: '{}' }).execute();
      idp.user = { sub: 'sub-erin', preferred_username: 'whatever' };
      const b = new Browser(t.url);
      assert.equal((await signInVia(b, 'keycloak')).headers.get('location'), `${t.url}/`);
      assert.equal((await b.request('GET', '/api/v1/user/')).body.username, 'erin');
    } finally {
      await t.close();
    }
  });

  test('FEATURE_MAILING requires a verified e-mail; USERNAME_CONFIRMATION off means no prompt', async () => {
    const t = await startTestApp(config({ FEATURE_MAILING: true, FEATURE_USERNAME_CONFIRMATION: false, MAIL_SERVER: '127.0.0.1' }));
    try {
      idp.user = { sub: 'sub-frank', preferred_username: 'frank', email: 'frank@idp.example.com', email_verified: false };
      const r = await signInVia(new Browser(t.url), 'keycloak');
      assert.equal(r.status, 400);
      assert.match(r.text, /A verified email address is required to login with this service/);

      idp.user = { ...idp.user, email_verified: true };
      const b = new Browser(t.url);
      const ok = await signInVia(b, 'keycloak');
      assert.equal(ok.headers.get('location'), `${t.url}/`);
      assert.deepEqual((await b.request('GET', '/api/v1/user/')).body.prompts, []);
    } finally {
      await t.close();
    }
  });

  test('PKCE (USE_PKCE) sends an S256 challenge and the matching verifier', async () => {
    const t = await startTestApp(config({
      PKCE_LOGIN_CONFIG: { OIDC_SERVER: `${idp.url}/`, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret, USE_PKCE: true },
    }));
    idp.requirePkce = true;
    try {
      idp.user = { sub: 'sub-grace', preferred_username: 'grace' };
      const b = new Browser(t.url);
      const url = await authUrl(b, 'pkce');
      assert.equal(new URL(url).searchParams.get('code_challenge_method'), 'S256');
      assert.match(new URL(url).searchParams.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
      const r = await b.request('GET', await atProvider(url));
      assert.equal(r.status, 302, r.text);
      assert.match(idp.tokenRequests.at(-1)!.get('code_verifier')!, /^[A-Za-z0-9_-]{43,128}$/);
      assert.equal((await b.request('GET', '/api/v1/user/')).body.username, 'grace');
    } finally {
      idp.requirePkce = false;
      await t.close();
    }
  });

  test('PUBLIC_CLIENT sends no client secret, only the PKCE verifier', async () => {
    const t = await startTestApp(config({
      PUBLIC_LOGIN_CONFIG: { OIDC_SERVER: `${idp.url}/`, CLIENT_ID: idp.clientId, USE_PKCE: true, PUBLIC_CLIENT: true },
    }));
    idp.requirePkce = true;
    idp.publicClient = true;
    try {
      idp.user = { sub: 'sub-heidi', preferred_username: 'heidi' };
      const b = new Browser(t.url);
      const r = await signInVia(b, 'public');
      assert.equal(r.status, 302, r.text);
      assert.equal(idp.tokenRequests.at(-1)!.has('client_secret'), false);
      assert.equal((await b.request('GET', '/api/v1/user/')).body.username, 'heidi');
    } finally {
      idp.requirePkce = false;
      idp.publicClient = false;
      await t.close();
    }
  });

  test('GitHub ORG_RESTRICT: members of an allowed organization only', async () => {
    const t = await startTestApp(config({
      GITHUB_LOGIN_CONFIG: { GITHUB_ENDPOINT: gh.url, CLIENT_ID: gh.clientId, CLIENT_SECRET: gh.clientSecret, ORG_RESTRICT: true, ALLOWED_ORGANIZATIONS: ['Quay'] },
    }));
    try {
      gh.user = { id: 9001, login: 'outsider', emails: [], orgs: ['elsewhere'] };
      const url = await authUrl(new Browser(t.url), 'github');
      assert.match(url, /&scope=user%3Aemail\+read%3Aorg&/);
      const denied = await signInVia(new Browser(t.url), 'github');
      assert.equal(denied.status, 400);
      assert.match(denied.text, /You are not a member of an allowed GitHub organization/);

      gh.user = { id: 9002, login: 'insider', emails: [], orgs: ['quay'] };
      const b = new Browser(t.url);
      assert.equal((await signInVia(b, 'github')).status, 302);
      assert.equal((await b.request('GET', '/api/v1/user/')).body.username, 'insider');
    } finally {
      await t.close();
    }
  });

  test('a provider on a private address the operator did not name is refused (SSRF guard)', async () => {
    // The discovery document (from the named server) points its token endpoint at another local port.
    const t = await startTestApp(config({
      KEYCLOAK_LOGIN_CONFIG: { OIDC_SERVER: `${idp.url.replace('127.0.0.1', 'localhost')}/`, CLIENT_ID: idp.clientId, CLIENT_SECRET: idp.clientSecret },
    }));
    try {
      idp.user = { sub: 'sub-ssrf', preferred_username: 'ssrf' };
      // Discovery at localhost:<port> is allowed (named); its token_endpoint at 127.0.0.1:<port> is not.
      const r = await signInVia(new Browser(t.url), 'keycloak');
      assert.equal(r.status, 400);
      assert.match(r.text, /Received too many ConnectionErrors during code exchange/);
      assert.equal(await findUser(t.app.services, 'ssrf'), undefined);
    } finally {
      await t.close();
    }
  });
});

describe('provider mappings', () => {
  test('Google: the v1 userinfo id, the verified address and its local part as the username', async () => {
    const t = await startTestApp();
    try {
      const s = t.app.services;
      assert.deepEqual(googleUserIdentity(s, { id: '1234', email: 'Jane.Doe@gmail.com', verified_email: true }), { id: '1234', username: 'Jane.Doe', email: 'Jane.Doe@gmail.com' });
      assert.deepEqual(googleUserIdentity(s, { id: '1234', email: 'x@gmail.com', verified_email: false }), { id: '1234', username: 'x', email: null });
      assert.throws(() => googleUserIdentity(s, { email: 'x@gmail.com' }), (e) => e instanceof LoginFailure && /Missing `id`/.test(e.message));
    } finally {
      await t.close();
    }
  });

  test('usernames are made valid the way Quay does', () => {
    assert.equal(usernamePrefix('Alice.Smith'), 'alice_smith');
    assert.equal(usernamePrefix('__José  Núñez__'), 'jose_nunez');
    assert.equal(usernamePrefix('a'), 'a');
  });
});

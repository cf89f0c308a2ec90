// Cookie sessions over real HTTP: /csrf_token, /api/v1/signin, /signin/verify, /signout, the CSRF
// guard, fresh-login and BROWSER_API_CALLS_XHR_ONLY, checked against Quay's bodies.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { createUser, findUser } from '../../../src/model/accounts.ts';
import { Browser } from './browser.ts';
import { call, isApiError, logKinds, userWithToken } from './client.ts';

const PASSWORD = 'password123';
const CSRF_RE = /^[A-Za-z0-9_-]{64}$/;
const CSRF_FAIL = 'CSRF token was invalid or missing.';

async function sessionCount(t: TestApp, username: string): Promise<number> {
  const u = await findUser(t.app.services, username);
  const rows = await t.app.services.db.selectFrom('sessions').select('id').where('user_id', '=', u!.id).execute();
  return rows.length;
}

describe('cookie sessions', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp();
    const s = t.app.services;
    await createUser(s, { username: 'alice', password: PASSWORD, email: 'alice@example.com' });
    await createUser(s, { username: 'bob', password: PASSWORD, email: 'bob@example.com' });
    await createUser(s, { username: 'newbie', password: PASSWORD, email: 'newbie@example.com', verified: false });
  });
  after(async () => { await t?.close(); });

  test('GET /csrf_token mints an anonymous session cookie once, with a 64-character urlsafe token', async () => {
    const b = new Browser(t.url);
    const r = await b.request('GET', '/csrf_token');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['csrf_token']);
    assert.match(r.body.csrf_token, CSRF_RE);
    const cookie = r.headers.getSetCookie()[0]!;
    assert.match(cookie, /^_csrf_token=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/, 'session cookie, not Secure over plain http');
    const again = await b.request('GET', '/csrf_token');
    assert.equal(again.body.csrf_token, r.body.csrf_token, 'the session keeps its token');
    assert.equal(again.headers.getSetCookie().length, 0, 'no new cookie for an existing session');
    const opts = await b.request('OPTIONS', '/csrf_token');
    assert.equal(opts.status, 200);
  });

  test('the cookie is Secure when the client came over TLS (via the trusted proxy)', async () => {
    const r = await fetch(`${t.url}/csrf_token`, { headers: { 'x-forwarded-proto': 'https' } });
    assert.match(r.headers.getSetCookie()[0]!, /; Secure$/);
  });

  test('signin needs the CSRF token of the session; success rotates it and logs login_success', async () => {
    const b = new Browser(t.url);
    const first = await b.fetchCsrf();
    const missing = await b.request('POST', '/api/v1/signin', { json: { username: 'alice', password: PASSWORD } });
    assert.equal(missing.status, 403);
    assert.deepEqual(missing.body, { error: CSRF_FAIL });
    const wrong = await b.request('POST', '/api/v1/signin', { json: { username: 'alice', password: PASSWORD }, csrf: 'x'.repeat(64) });
    assert.equal(wrong.status, 403);
    assert.deepEqual(wrong.body, { error: CSRF_FAIL });
    assert.equal(await sessionCount(t, 'alice'), 0, 'nothing signed in');

    const ok = await b.request('POST', '/api/v1/signin', { json: { username: 'alice', password: PASSWORD }, csrf: first });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { success: true });
    const next = ok.headers.get('x-next-csrf-token');
    assert.match(next!, CSRF_RE);
    assert.notEqual(next, first);
    const cookie = ok.headers.getSetCookie()[0]!;
    assert.match(cookie, /^_csrf_token=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=2678400; Expires=/);
    assert.doesNotMatch(cookie, /Secure/);

    const me = await b.request('GET', '/api/v1/user/');
    assert.equal(me.status, 200);
    assert.equal(me.body.username, 'alice');
    assert.equal(me.body.is_me, true);
    assert.equal(me.body.email, 'alice@example.com');

    const token = await b.request('GET', '/csrf_token');
    assert.equal(token.body.csrf_token, next, '/csrf_token reports the rotated token');

    const logs = (await logKinds(t)).filter((l) => l.kind === 'login_success');
    assert.equal(logs.length, 1);
    const alice = await findUser(t.app.services, 'alice');
    assert.equal(logs[0]!.account_id, alice!.id);
    assert.equal(logs[0]!.performer_id, alice!.id);
    assert.equal(logs[0]!.metadata.type, 'quayauth');
  });

  test('signin failures answer 403 with Quay flags, log login_failure and open no session', async () => {
    const b = new Browser(t.url);
    await b.fetchCsrf();
    const bad = await b.request('POST', '/api/v1/signin', { json: { username: 'bob', password: 'wrong-password' }, csrf: true });
    assert.equal(bad.status, 403);
    assert.deepEqual(bad.body, { needsEmailVerification: false, invalidCredentials: true, message: 'Invalid Username or Password' });
    assert.equal(bad.headers.getSetCookie().length, 0);
    const unknown = await b.request('POST', '/api/v1/signin', { json: { username: 'nobody', password: PASSWORD }, csrf: true });
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body.message, 'Invalid Username or Password');
    const unverified = await b.request('POST', '/api/v1/signin', { json: { username: 'newbie', password: PASSWORD }, csrf: true });
    assert.equal(unverified.status, 403);
    assert.deepEqual(unverified.body, { needsEmailVerification: true, invalidCredentials: false, message: null });
    assert.equal(await sessionCount(t, 'bob'), 0);
    assert.equal(await sessionCount(t, 'newbie'), 0);
    const failures = (await logKinds(t)).filter((l) => l.kind === 'login_failure');
    const bob = await findUser(t.app.services, 'bob');
    const forBob = failures.find((l) => l.metadata.username === 'bob')!;
    assert.equal(forBob.account_id, bob!.id);
    assert.deepEqual(Object.keys(forBob.metadata).sort(), ['kind', 'message', 'type', 'useragent', 'username']);
    assert.equal(forBob.metadata.message, 'Invalid Username or Password');
    const forNobody = failures.find((l) => l.metadata.username === 'nobody')!;
    assert.equal(forNobody.account_id, null);

    const schema = await b.request('POST', '/api/v1/signin', { json: { username: 'bob' }, csrf: true });
    assert.equal(schema.status, 400);
    assert.ok(isApiError(schema.body, 400, 'invalid_request', t.url));
    assert.equal(schema.body.detail, "'password' is a required property");
  });

  test('signing in by e-mail address works; a second signin replaces the browser session', async () => {
    const b = new Browser(t.url);
    const r = await b.signIn('bob@example.com', PASSWORD);
    assert.equal(r.status, 200, r.text);
    assert.equal((await b.request('GET', '/api/v1/user/')).body.username, 'bob');
    assert.equal(await sessionCount(t, 'bob'), 1);
    const again = await b.signIn('bob', PASSWORD);
    assert.equal(again.status, 200);
    assert.equal(await sessionCount(t, 'bob'), 1, 'the previous session of this browser ended');
  });

  test('mutating calls with the cookie need the token (header, query or body); bearer tokens do not', async () => {
    const b = new Browser(t.url);
    await b.signIn('alice', PASSWORD);
    const noToken = await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'x' } });
    assert.equal(noToken.status, 403);
    assert.deepEqual(noToken.body, { error: `${CSRF_FAIL} (authorized: user alice)` });
    const viaHeader = await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'header' }, csrf: true });
    assert.equal(viaHeader.status, 200, viaHeader.text);
    const viaQuery = await b.request('POST', `/api/v1/user/apptoken?_csrf_token=${b.csrf}`, { json: { title: 'query' } });
    assert.equal(viaQuery.status, 200, viaQuery.text);
    const viaBody = await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'body', _csrf_token: b.csrf } });
    assert.equal(viaBody.status, 200, viaBody.text);
    // GETs never need it.
    assert.equal((await b.request('GET', '/api/v1/user/apptoken')).status, 200);

    const { token } = await userWithToken(t, 'alice', ['user:admin']);
    const bearer = await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'bearer' }, headers: { authorization: `Bearer ${token}` } });
    assert.equal(bearer.status, 200, 'an OAuth token skips CSRF even with a cookie present');
  });

  test('a tampered cookie is no session, and still needs a CSRF token to mutate', async () => {
    const b = new Browser(t.url);
    await b.signIn('alice', PASSWORD);
    const [name, value] = [...b.cookies][0]!;
    b.cookies.set(name, value.slice(0, -2) + (value.endsWith('A') ? 'BB' : 'AA'));
    const me = await b.request('GET', '/api/v1/user/');
    assert.equal(me.status, 401);
    const post = await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'x' }, csrf: true });
    assert.equal(post.status, 403);
    assert.deepEqual(post.body, { error: CSRF_FAIL });
  });

  test('fresh login: an old login gets 401 fresh_login_required until /signin/verify', async () => {
    const b = new Browser(t.url);
    await b.signIn('alice', PASSWORD);
    const alice = await findUser(t.app.services, 'alice');
    await t.app.services.db.updateTable('sessions').set({ login_time: Date.now() - 11 * 60 * 1000 }).where('user_id', '=', alice!.id).execute();
    const stale = await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'stale' }, csrf: true });
    assert.equal(stale.status, 401);
    assert.ok(isApiError(stale.body, 401, 'fresh_login_required', t.url));
    assert.equal(stale.body.detail, 'Requires fresh login');
    // Reads that are not fresh-login endpoints still work.
    assert.equal((await b.request('GET', '/api/v1/user/apptoken')).status, 200);

    const wrong = await b.request('POST', '/api/v1/signin/verify', { json: { password: 'nope-nope' }, csrf: true });
    assert.equal(wrong.status, 403);
    assert.deepEqual(wrong.body, { message: 'Invalid Username or Password', invalidCredentials: true });
    const old = b.csrf;
    const ok = await b.request('POST', '/api/v1/signin/verify', { json: { password: PASSWORD }, csrf: true });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.body, { success: true });
    assert.notEqual(b.csrf, old, 'verification rotates the CSRF token');
    assert.equal((await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'x' }, csrf: old! })).status, 403);
    const fresh = await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'fresh' }, csrf: true });
    assert.equal(fresh.status, 200, fresh.text);

    // OAuth tokens always count as fresh.
    const { token } = await userWithToken(t, 'alice', ['user:admin']);
    const viaToken = await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 't' }, token });
    assert.equal(viaToken.status, 200);
  });

  test('signout ends every session of the user, clears the cookie and logs logout_success', async () => {
    const one = new Browser(t.url);
    const two = new Browser(t.url);
    await t.app.services.db.deleteFrom('sessions').execute();
    await one.signIn('bob', PASSWORD);
    await two.signIn('bob', PASSWORD);
    assert.equal(await sessionCount(t, 'bob'), 2);
    const noToken = await one.request('POST', '/api/v1/signout');
    assert.equal(noToken.status, 403);
    const out = await one.request('POST', '/api/v1/signout', { csrf: true });
    assert.equal(out.status, 200);
    assert.deepEqual(out.body, { success: true });
    assert.match(out.headers.getSetCookie()[0]!, /^_csrf_token=; Path=\/; HttpOnly; SameSite=Lax; Max-Age=0/);
    assert.equal(one.cookies.size, 0);
    assert.equal(await sessionCount(t, 'bob'), 0);
    assert.equal((await two.request('GET', '/api/v1/user/')).status, 401, 'the other browser is signed out too');
    const bob = await findUser(t.app.services, 'bob');
    const logs = (await logKinds(t)).filter((l) => l.kind === 'logout_success' && l.account_id === bob!.id);
    assert.equal(logs.length, 1);
    // Signing out without a session is harmless.
    const anon = await call(t, 'POST', '/api/v1/signout');
    assert.equal(anon.status, 200);
  });

  test('expired sessions and disabled users are anonymous', async () => {
    const b = new Browser(t.url);
    await b.signIn('bob', PASSWORD);
    const bob = await findUser(t.app.services, 'bob');
    await t.app.services.db.updateTable('sessions').set({ expires_at: Date.now() - 1 }).where('user_id', '=', bob!.id).execute();
    assert.equal((await b.request('GET', '/api/v1/user/')).status, 401);
    await b.signIn('bob', PASSWORD);
    assert.equal((await b.request('GET', '/api/v1/user/')).status, 200);
    await t.app.services.db.updateTable('users').set({ enabled: 0 }).where('id', '=', bob!.id).execute();
    assert.equal((await b.request('GET', '/api/v1/user/')).status, 401);
    const again = await b.signIn('bob', PASSWORD);
    assert.equal(again.status, 403);
    assert.equal(again.body.invalidCredentials, true);
    await t.app.services.db.updateTable('users').set({ enabled: 1 }).where('id', '=', bob!.id).execute();
  });
});

describe('BROWSER_API_CALLS_XHR_ONLY', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp({ BROWSER_API_CALLS_XHR_ONLY: true }); });
  after(async () => { await t?.close(); });
  const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
  const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';
  const EDGE = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0';

  test('browser GETs without X-Requested-With are refused with Quay\'s message', async () => {
    for (const ua of [CHROME, FIREFOX]) {
      const r = await call(t, 'GET', '/api/v1/discovery', { headers: { 'user-agent': ua } });
      assert.equal(r.status, 400, ua);
      assert.deepEqual(r.body, { error: 'API calls must be invoked with an X-Requested-With header if called from a browser' });
      const xhr = await call(t, 'GET', '/api/v1/discovery', { headers: { 'user-agent': ua, 'x-requested-with': 'XMLHttpRequest' } });
      assert.equal(xhr.status, 200);
    }
    // Non-browsers, and families Quay's list does not name, pass; so do non-GET calls.
    for (const ua of ['curl/8.5.0', 'skopeo/1.9.3', EDGE]) {
      assert.equal((await call(t, 'GET', '/api/v1/discovery', { headers: { 'user-agent': ua } })).status, 200, ua);
    }
    const post = await call(t, 'POST', '/api/v1/signout', { headers: { 'user-agent': CHROME } });
    assert.equal(post.status, 200);
    // Web routes are not API calls.
    assert.equal((await call(t, 'GET', '/csrf_token', { headers: { 'user-agent': CHROME } })).status, 200);
  });

  test('DEBUGGING turns the check off', async () => {
    const d = await startTestApp({ BROWSER_API_CALLS_XHR_ONLY: true, DEBUGGING: true });
    try {
      assert.equal((await call(d, 'GET', '/api/v1/discovery', { headers: { 'user-agent': CHROME } })).status, 200);
    } finally {
      await d.close();
    }
  });
});

describe('accounts created over the API are signed in', () => {
  test('POST /api/v1/user/ and /api/v1/user/initialize answer with a session cookie for the new user', async () => {
    const t = await startTestApp();
    try {
      const init = new Browser(t.url);
      const r = await init.request('POST', '/api/v1/user/initialize', { json: { username: 'admin', password: PASSWORD } });
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers.get('x-next-csrf-token')!, CSRF_RE);
      assert.equal((await init.request('GET', '/api/v1/user/')).body.username, 'admin');

      const signup = new Browser(t.url);
      await signup.fetchCsrf();
      const created = await signup.request('POST', '/api/v1/user/', { json: { username: 'carl', password: PASSWORD, email: 'carl@example.com' }, csrf: true });
      assert.equal(created.status, 200, created.text);
      const me = await signup.request('GET', '/api/v1/user/');
      assert.equal(me.body.username, 'carl');
      assert.equal(me.body.is_me, true);
    } finally {
      await t.close();
    }
  });
});

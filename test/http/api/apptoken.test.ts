// /api/v1/user/apptoken over real HTTP, field by field against endpoints.json (area apptoken).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { authenticateBasic } from '../../../src/model/registry-auth.ts';
import { Browser } from './browser.ts';
import { call, isApiError, logKinds, userWithToken } from './client.ts';

const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} -0000$/;

async function tokenCount(t: TestApp): Promise<number> {
  return (await t.app.services.db.selectFrom('app_tokens').select('id').execute()).length;
}

describe('app-specific tokens', () => {
  let t: TestApp;
  let alice: string;
  let bob: string;
  before(async () => {
    t = await startTestApp({ APP_SPECIFIC_TOKEN_EXPIRATION: '10d' });
    alice = (await userWithToken(t, 'alice', ['user:admin'])).token;
    bob = (await userWithToken(t, 'bob', ['user:admin'])).token;
  });
  after(async () => { await t?.close(); });

  test('create returns the full token once with Quay\'s fields, logs it, and the token works as a password', async () => {
    const before = Date.now();
    const r = await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'CI pipeline' }, token: alice });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body), ['token']);
    const tok = r.body.token;
    assert.deepEqual(Object.keys(tok).sort(), ['created', 'expiration', 'last_accessed', 'title', 'token_code', 'uuid']);
    assert.equal(tok.title, 'CI pipeline');
    assert.match(tok.uuid, /^[0-9a-f-]{36}$/);
    assert.equal(tok.last_accessed, null);
    assert.match(tok.created, RFC2822);
    assert.match(tok.expiration, RFC2822);
    const exp = Date.parse(tok.expiration.replace(' -0000', ' GMT'));
    assert.ok(Math.abs(exp - (before + 10 * 86400_000)) < 5000, 'APP_SPECIFIC_TOKEN_EXPIRATION applies');
    assert.match(tok.token_code, /^[A-Z0-9]{120}$/);

    const s = t.app.services;
    const p = await authenticateBasic(s, '$app', tok.token_code);
    assert.equal(p?.kind === 'user' && p.username, 'alice');
    assert.equal((await authenticateBasic(s, 'alice', tok.token_code))?.kind, 'user', 'also as the owner\'s password');
    assert.equal(await authenticateBasic(s, 'bob', tok.token_code), null, 'not as someone else\'s');

    const log = (await logKinds(t)).filter((l) => l.kind === 'create_app_specific_token').at(-1)!;
    assert.deepEqual(log.metadata, { app_specific_token_title: 'CI pipeline', app_specific_token: tok.uuid });
    // The secret is stored encrypted, never in clear.
    const row = await s.db.selectFrom('app_tokens').selectAll().where('uuid', '=', tok.uuid).executeTakeFirstOrThrow();
    assert.equal(row.token_prefix, tok.token_code.slice(0, 60));
    assert.ok(!row.token_secret_enc.includes(tok.token_code.slice(60)));
  });

  test('list shows the caller\'s tokens without their codes; get shows the code; both hide others\' tokens', async () => {
    const made = (await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'laptop' }, token: alice })).body.token;
    const other = (await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'bob-only' }, token: bob })).body.token;
    const list = await call(t, 'GET', '/api/v1/user/apptoken', { token: alice });
    assert.equal(list.status, 200);
    assert.deepEqual(Object.keys(list.body).sort(), ['only_expiring', 'tokens']);
    assert.equal(list.body.only_expiring, null);
    const titles = list.body.tokens.map((x: any) => x.title);
    assert.ok(titles.includes('laptop') && !titles.includes('bob-only'));
    for (const x of list.body.tokens) assert.deepEqual(Object.keys(x).sort(), ['created', 'expiration', 'last_accessed', 'title', 'uuid']);

    const one = await call(t, 'GET', `/api/v1/user/apptoken/${made.uuid}`, { token: alice });
    assert.equal(one.status, 200);
    assert.equal(one.body.token.token_code, made.token_code);
    const theirs = await call(t, 'GET', `/api/v1/user/apptoken/${other.uuid}`, { token: alice });
    assert.equal(theirs.status, 404);
    assert.ok(isApiError(theirs.body, 404, 'not_found', t.url));
  });

  test('last_accessed follows use; ?expiring=true lists only tokens expiring within a tenth of the lifetime', async () => {
    const s = t.app.services;
    const soon = (await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'soon' }, token: bob })).body.token;
    const later = (await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'later' }, token: bob })).body.token;
    const gone = (await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'gone' }, token: bob })).body.token;
    await s.db.updateTable('app_tokens').set({ expires_at: Date.now() + 3600_000 }).where('uuid', '=', soon.uuid).execute();
    await s.db.updateTable('app_tokens').set({ expires_at: Date.now() - 1000 }).where('uuid', '=', gone.uuid).execute();
    await authenticateBasic(s, '$app', soon.token_code);
    const r = await call(t, 'GET', '/api/v1/user/apptoken?expiring=true', { token: bob });
    assert.equal(r.status, 200);
    assert.equal(r.body.only_expiring, true);
    assert.deepEqual(r.body.tokens.map((x: any) => x.title), ['soon']);
    assert.match(r.body.tokens[0].last_accessed, RFC2822);
    const all = await call(t, 'GET', '/api/v1/user/apptoken?expiring=false', { token: bob });
    assert.equal(all.body.only_expiring, false);
    assert.ok(all.body.tokens.some((x: any) => x.uuid === later.uuid) && all.body.tokens.some((x: any) => x.uuid === gone.uuid));
    // An expired token is not shown by uuid and no longer authenticates.
    assert.equal((await call(t, 'GET', `/api/v1/user/apptoken/${gone.uuid}`, { token: bob })).status, 404);
    assert.equal(await authenticateBasic(s, '$app', gone.token_code), null);
  });

  test('revoke answers 204, logs revoke_app_specific_token, and the token stops working', async () => {
    const made = (await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'to-revoke' }, token: alice })).body.token;
    const notMine = await call(t, 'DELETE', `/api/v1/user/apptoken/${made.uuid}`, { token: bob });
    assert.equal(notMine.status, 404);
    const r = await call(t, 'DELETE', `/api/v1/user/apptoken/${made.uuid}`, { token: alice });
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    assert.equal(await authenticateBasic(t.app.services, '$app', made.token_code), null);
    const log = (await logKinds(t)).filter((l) => l.kind === 'revoke_app_specific_token').at(-1)!;
    assert.deepEqual(log.metadata, { app_specific_token_title: 'to-revoke', app_specific_token: made.uuid });
    assert.equal((await call(t, 'DELETE', `/api/v1/user/apptoken/${made.uuid}`, { token: alice })).status, 404);
  });

  test('bad input is refused with a message and creates nothing', async () => {
    const n = await tokenCount(t);
    const missing = await call(t, 'POST', '/api/v1/user/apptoken', { json: {}, token: alice });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.detail, "'title' is a required property");
    const wrongType = await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 7 }, token: alice });
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.body.detail, "7 is not of type 'string' (field 'title')");
    const empty = await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: '   ' }, token: alice });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.detail, 'The token title must not be empty');
    const long = await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'x'.repeat(256) }, token: alice });
    assert.equal(long.status, 400);
    const noBody = await call(t, 'POST', '/api/v1/user/apptoken', { token: alice });
    assert.equal(noBody.body.detail, 'Missing JSON body');
    assert.equal(await tokenCount(t), n);
  });

  test('scopes and callers: user:admin is required; anonymous callers get 401', async () => {
    const { token } = await userWithToken(t, 'alice', ['user:read']);
    const r = await call(t, 'GET', '/api/v1/user/apptoken', { token });
    assert.equal(r.status, 403);
    assert.ok(isApiError(r.body, 403, 'insufficient_scope', t.url));
    const anon = await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'x' } });
    assert.equal(anon.status, 401);
  });

  test('a session must be fresh to read, create or revoke tokens', async () => {
    const b = new Browser(t.url);
    await b.signIn('alice', 'password123');
    const made = (await b.request('POST', '/api/v1/user/apptoken', { json: { title: 'from-browser' }, csrf: true })).body.token;
    await t.app.services.db.updateTable('sessions').set({ login_time: Date.now() - 3600_000 }).execute();
    assert.equal((await b.request('GET', `/api/v1/user/apptoken/${made.uuid}`)).status, 401);
    assert.equal((await b.request('DELETE', `/api/v1/user/apptoken/${made.uuid}`, { csrf: true })).status, 401);
    assert.equal((await b.request('GET', '/api/v1/user/apptoken')).status, 200, 'listing is not a fresh-login endpoint');
  });
});

describe('app-specific tokens turned off', () => {
  test('the endpoints do not exist', async () => {
    const t = await startTestApp({ FEATURE_APP_SPECIFIC_TOKENS: false });
    try {
      const { token } = await userWithToken(t, 'alice', ['user:admin']);
      assert.equal((await call(t, 'GET', '/api/v1/user/apptoken', { token })).status, 404);
      assert.equal((await call(t, 'POST', '/api/v1/user/apptoken', { json: { title: 'x' }, token })).status, 404);
    } finally {
      await t.close();
    }
  });
});

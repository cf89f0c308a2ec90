// The OAuth 2 web flows (implicit and code), consent, exact redirect-URI matching, state
// round-tripping, scope enforcement on the issued token, assignments, and the local handler page.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { sha256Hex } from '../../../src/model/crypto.ts';
import { assignToken } from '../../../src/model/oauth.ts';
import { Browser } from '../api/browser.ts';
import { call, logKinds } from '../api/client.ts';

const CB = 'https://app.example.com/cb';

describe('OAuth authorization flows', () => {
  let w: World;
  let clientId: string;
  let clientSecret: string;
  let admin: Browser;

  before(async () => {
    w = await createWorld({ DIRECT_OAUTH_CLIENTID_WHITELIST: [] });
    const r = await w.api('POST', '/organization/acme/applications', { scopes: ['org:admin'], body: { name: 'webapp', redirect_uri: CB } });
    const app = await r.json() as any;
    clientId = app.client_id;
    clientSecret = app.client_secret;
    admin = new Browser(w.t.url);
    assert.equal((await admin.signIn('orgadmin', PASSWORD)).status, 200);
  });
  after(async () => { await w?.close(); });

  const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
  const fields = (extra: Record<string, string> = {}) => ({ client_id: clientId, redirect_uri: CB, scope: 'repo:read user:read', response_type: 'token', state: 'st-123', ...extra });

  test('implicit flow: consent page, then a redirect with the token in the fragment and state in the query', async () => {
    const page = await admin.request('GET', `/oauth/authorize?${q(fields())}`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    assert.match(page.text, /Authorize webapp/);
    assert.match(page.text, /View all visible repositories/);
    assert.match(page.text, new RegExp(`name="_csrf_token" value="${admin.csrf}"`));
    assert.match(page.text, /name="state" value="st-123"/);

    const noCsrf = await admin.request('POST', '/oauth/authorizeapp', { form: fields() });
    assert.equal(noCsrf.status, 403);
    assert.deepEqual(noCsrf.body, { error: 'CSRF token was invalid or missing.' });

    const r = await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields(), _csrf_token: admin.csrf! } });
    assert.equal(r.status, 302);
    const loc = r.headers.get('location')!;
    const m = /^https:\/\/app\.example\.com\/cb\?scope=repo%3Aread\+user%3Aread&state=st-123#access_token=([A-Za-z0-9]{40})&token_type=Bearer&expires_in=315576000$/.exec(loc);
    assert.ok(m, loc);
    const token = m![1]!;

    // Stored hashed behind a 20-character prefix, with exactly the granted scopes.
    const row = await w.t.app.services.db.selectFrom('oauth_access_tokens').selectAll().where('token_prefix', '=', token.slice(0, 20)).executeTakeFirstOrThrow();
    assert.equal(row.token_hash, sha256Hex(token.slice(20)));
    assert.equal(row.scope, 'repo:read user:read');
    assert.equal(row.user_id, w.users.orgadmin.id);

    // The token works, within its scopes only.
    const me = await call(w.t, 'GET', '/api/v1/user/', { token });
    assert.equal(me.status, 200);
    assert.equal(me.body.username, 'orgadmin');
    const denied = await call(w.t, 'GET', '/api/v1/user/apptoken', { token });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error_type, 'insufficient_scope');
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'create_oauth_api_token').at(-1)!;
    assert.equal(log.metadata.oauth_token_uuid, row.uuid);
    assert.equal(log.metadata.client_id, clientId);

    // Scopes already granted are not asked for again.
    const again = await admin.request('GET', `/oauth/authorize?${q(fields({ scope: 'repo:read' }))}`);
    assert.equal(again.status, 302);
    assert.match(again.headers.get('location')!, /^https:\/\/app\.example\.com\/cb\?scope=repo%3Aread&state=st-123#access_token=/);
  });

  test('the redirect URI must match exactly; mismatches never redirect to the unverified URI', async () => {
    for (const bad of [`${CB}/extra`, `${CB}?x=1`, 'http://app.example.com/cb', 'https://APP.example.com/cb', 'https://app.example.com/c', `${CB}/../cb`]) {
      // (repo:admin was never granted: an already-granted scope would skip the consent step and answer 400.)
      const r = await admin.request('GET', `/oauth/authorize?${q(fields({ redirect_uri: bad, scope: 'repo:admin' }))}`);
      assert.equal(r.status, 302, bad);
      assert.equal(r.headers.get('location'), `${CB}?error=redirect_uri_mismatch&state=st-123`, bad);
      const post = await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ redirect_uri: bad }), _csrf_token: admin.csrf! } });
      assert.equal(post.status, 400, bad);
      assert.deepEqual(post.body, { error: 'invalid_request' });
    }
  });

  test('bad requests: required parameters, unknown clients and scopes, anonymous callers', async () => {
    const missing = await admin.request('GET', `/oauth/authorize?${q({ redirect_uri: CB, scope: 'repo:read' })}`);
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, { error: 'Required param: client_id' });
    assert.equal((await admin.request('GET', `/oauth/authorize?${q(fields({ client_id: 'NOPE' }))}`)).status, 404);
    const badScope = await admin.request('GET', `/oauth/authorize?${q(fields({ scope: 'repo:read,bogus' }))}`);
    assert.equal(badScope.status, 404);
    const post = await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ scope: 'repo:read bogus' }), _csrf_token: admin.csrf! } });
    assert.equal(post.status, 302);
    assert.equal(post.headers.get('location'), `${CB}?error=invalid_scope&state=st-123`);
    const anonymous = new Browser(w.t.url);
    const page = await anonymous.request('GET', `/oauth/authorize?${q(fields({ scope: 'org:admin' }))}`);
    assert.equal(page.status, 401);
    assert.match(page.text, /Sign in required/);
    assert.equal((await anonymous.request('POST', '/oauth/authorizeapp', { form: fields() })).status, 401);
    const weird = await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ response_type: 'id_token' }), _csrf_token: admin.csrf! } });
    assert.equal(weird.headers.get('location'), `${CB}?error=unsupported_response_type&state=st-123`);
  });

  test('deny redirects with Quay\'s error and the state', async () => {
    const r = await admin.request('POST', '/oauth/denyapp', { form: { ...fields(), _csrf_token: admin.csrf! } });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), `${CB}?error=authorization_denied&state=st-123`);
    assert.equal((await admin.request('POST', '/oauth/denyapp', { form: fields() })).status, 403);
  });

  test('only organization admins (or users it was assigned to) may authorize the application', async () => {
    const member = new Browser(w.t.url);
    await member.signIn('member', PASSWORD);
    const r = await member.request('POST', '/oauth/authorizeapp', { form: { ...fields(), _csrf_token: member.csrf! } });
    assert.equal(r.headers.get('location'), `${CB}?error=unauthorized_client&state=st-123`);

    const s = w.t.app.services;
    const app = await s.db.selectFrom('oauth_applications').selectAll().where('client_id', '=', clientId).executeTakeFirstOrThrow();
    const a = await assignToken(s, w.users.orgadmin, app, { username: 'member', redirectUri: CB, scope: 'repo:read', responseType: 'token' });
    const ok = await member.request('POST', '/oauth/authorizeapp', { form: { ...fields({ scope: 'repo:read', assignment_uuid: a.uuid }), _csrf_token: member.csrf! } });
    assert.match(ok.headers.get('location')!, /#access_token=[A-Za-z0-9]{40}&/);
    const left = await s.db.selectFrom('oauth_assigned_tokens').select('id').where('uuid', '=', a.uuid).execute();
    assert.equal(left.length, 0, 'the assignment is used up');
    const reuse = await member.request('POST', '/oauth/authorizeapp', { form: { ...fields({ scope: 'repo:read', assignment_uuid: a.uuid }), _csrf_token: member.csrf! } });
    assert.equal(reuse.headers.get('location'), `${CB}?error=unauthorized_client&state=st-123`);
  });

  test('code flow: a single-use code bound to the redirect URI, exchanged with the client secret', async () => {
    const r = await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ response_type: 'code', scope: 'repo:write' }), _csrf_token: admin.csrf! } });
    assert.equal(r.status, 302);
    const loc = new URL(r.headers.get('location')!);
    assert.equal(`${loc.origin}${loc.pathname}`, CB);
    assert.equal(loc.searchParams.get('state'), 'st-123');
    assert.equal(loc.searchParams.get('scope'), 'repo:write');
    const code = loc.searchParams.get('code')!;
    assert.match(code, /^[A-Za-z0-9]{40}$/);
    assert.equal(loc.hash, '');

    const exchange = (form: Record<string, string>) => call(w.t, 'POST', '/oauth/access_token', {
      raw: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const base = { grant_type: 'authorization_code', client_id: clientId, client_secret: clientSecret, redirect_uri: CB, code };
    const wrongSecret = await exchange({ ...base, client_secret: 'nope' });
    assert.equal(wrongSecret.status, 400);
    assert.deepEqual(wrongSecret.body, { error: 'invalid_client' });
    assert.deepEqual((await exchange({ ...base, grant_type: 'password' })).body, { error: 'unsupported_grant_type' });
    const missing = await exchange({ grant_type: 'authorization_code', client_id: clientId, redirect_uri: CB });
    assert.deepEqual(missing.body, { error: 'Required param: code' });

    const ok = await exchange(base);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(Object.keys(ok.body).sort(), ['access_token', 'expires_in', 'refresh_token', 'scope', 'token_type']);
    assert.match(ok.body.access_token, /^[A-Za-z0-9]{40}$/);
    assert.equal(ok.body.token_type, 'Bearer');
    assert.equal(ok.body.expires_in, 315576000);
    assert.equal(ok.body.refresh_token, null);
    assert.equal(ok.body.scope, 'repo:write');
    assert.equal((await call(w.t, 'GET', '/api/v1/repository/acme/repo', { token: ok.body.access_token })).status, 200);
    assert.deepEqual((await exchange(base)).body, { error: 'invalid_grant' }, 'a code works once');

    // A code exchanged for another redirect URI, or too late, is spent and refused.
    const second = new URL((await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ response_type: 'code', scope: 'repo:read' }), _csrf_token: admin.csrf! } })).headers.get('location')!).searchParams.get('code')!;
    assert.deepEqual((await exchange({ ...base, code: second, redirect_uri: `${CB}/other` })).body, { error: 'invalid_grant' });
    const third = new URL((await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ response_type: 'code', scope: 'repo:read' }), _csrf_token: admin.csrf! } })).headers.get('location')!).searchParams.get('code')!;
    await w.t.app.services.db.updateTable('oauth_auth_codes').set({ created_at: Date.now() - 11 * 60 * 1000 }).execute();
    assert.deepEqual((await exchange({ ...base, code: third })).body, { error: 'invalid_grant' });

    // Client credentials may come as HTTP Basic too.
    const fourth = new URL((await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ response_type: 'code', scope: 'repo:read' }), _csrf_token: admin.csrf! } })).headers.get('location')!).searchParams.get('code')!;
    const basic = await call(w.t, 'POST', '/oauth/access_token', {
      raw: new URLSearchParams({ grant_type: 'authorization_code', redirect_uri: CB, code: fourth }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
    });
    assert.equal(basic.status, 200, basic.text);
  });

  test('the local handler redirect URI is always allowed and serves a page that shows the token', async () => {
    const local = `${w.t.url}/oauth/localapp`;
    const r = await admin.request('POST', '/oauth/authorizeapp', { form: { ...fields({ redirect_uri: local, scope: 'repo:read' }), _csrf_token: admin.csrf! } });
    assert.equal(r.status, 302);
    assert.ok(r.headers.get('location')!.startsWith(`${local}?scope=repo%3Aread&state=st-123#access_token=`));
    const page = await admin.request('GET', '/oauth/localapp');
    assert.equal(page.status, 200);
    assert.match(page.text, /access_token/);
  });

  test('HTTP Basic callers skip CSRF only for whitelisted client ids', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`orgadmin:${PASSWORD}`).toString('base64')}` };
    const refused = await call(w.t, 'POST', '/oauth/authorizeapp', {
      raw: new URLSearchParams(fields()).toString(), headers: { ...basic, 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(refused.status, 403);
    const t2 = await createWorld({ DIRECT_OAUTH_CLIENTID_WHITELIST: ['DIRECTCLIENT'] });
    try {
      await t2.t.app.services.db.updateTable('oauth_applications').set({ client_id: 'DIRECTCLIENT', redirect_uri: CB }).where('id', '=', t2.appId).execute();
      const r = await fetch(`${t2.t.url}/oauth/authorizeapp?${q({ ...fields(), client_id: 'DIRECTCLIENT' })}`, { method: 'POST', headers: basic, redirect: 'manual' });
      assert.equal(r.status, 302);
      assert.match(r.headers.get('location')!, /#access_token=/);
    } finally {
      await t2.close();
    }
  });

  test('org admins assign a token request to another user', async () => {
    const path = `/oauth/authorize/assignuser?${q({ client_id: clientId, redirect_uri: CB, scope: 'repo:read', username: 'creator', response_type: 'token' })}`;
    assert.equal((await admin.request('POST', path)).status, 403, 'CSRF applies to cookie callers');
    const r = await admin.request('POST', path, { csrf: true });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { message: 'Token assigned successfully' });
    const rows = await w.t.app.services.db.selectFrom('oauth_assigned_tokens').selectAll().where('assigned_user_id', '=', w.users.creator.id).execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.scope, 'repo:read');
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'oauth_token_assigned').at(-1)!;
    assert.equal(log.metadata.assigned_user, 'creator');

    const member = new Browser(w.t.url);
    await member.signIn('member', PASSWORD);
    assert.equal((await member.request('POST', path, { csrf: true })).status, 403);
    const unknown = await admin.request('POST', path.replace('username=creator', 'username=ghost'), { csrf: true });
    assert.equal(unknown.status, 404);
  });
});

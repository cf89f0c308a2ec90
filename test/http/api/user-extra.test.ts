// The rest of the user area over real HTTP: PUT/DELETE /user/, /users/{username}, /user/clientkey,
// /user/convert, notifications and starred repositories (endpoints.json area user).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { createOrganization, createRobot, createUser, findUser, verifyOAuthToken, verifyPassword } from '../../../src/model/accounts.ts';
import { authenticateBasic } from '../../../src/model/registry-auth.ts';
import { createUserNotification } from '../../../src/model/user-notifications.ts';
import { Browser } from './browser.ts';
import { call, isApiError, logKinds, userWithToken } from './client.ts';

const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} -0000$/;

describe('PUT /api/v1/user/', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('changes e-mail, invoicing and tag expiration, logging each with Quay\'s kinds', async () => {
    const { token, user } = await userWithToken(t, 'alice', ['user:admin', 'user:read']);
    const r = await call(t, 'PUT', '/api/v1/user/', {
      token, json: { email: 'new@example.com', invoice_email: true, invoice_email_address: 'bills@example.com', tag_expiration_s: 86400 },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.username, 'alice');
    assert.equal(r.body.email, 'new@example.com');
    assert.equal(r.body.invoice_email, true);
    assert.equal(r.body.invoice_email_address, 'bills@example.com');
    assert.equal(r.body.tag_expiration_s, 86400);
    assert.equal(r.body.is_me, true);
    const logs = (await logKinds(t)).filter((l) => l.account_id === user.id);
    const byKind = (k: string) => logs.filter((l) => l.kind === k).map((l) => l.metadata);
    assert.deepEqual(byKind('user_change_email'), [{ email: 'new@example.com', old_email: 'alice@example.com' }]);
    assert.deepEqual(byKind('user_change_invoicing'), [{ invoice_email: true }, { invoice_email_address: 'bills@example.com' }]);
    assert.deepEqual(byKind('user_change_tag_expiration'), [{ tag_expiration: 86400 }]);
  });

  test('bad input changes nothing: taken or invalid e-mail, short password, wrong types', async () => {
    const { token } = await userWithToken(t, 'bob', ['user:admin']);
    await createUser(t.app.services, { username: 'carol', password: PASSWORD, email: 'carol@example.com' });
    const cases: [unknown, string][] = [
      [{ email: 'carol@example.com', invoice_email: true }, 'E-mail address already used'],
      [{ email: 'not-an-email' }, 'Invalid email address: not-an-email'],
      [{ password: 'short', email: 'fine@example.com' }, 'Password must be at least 8 characters and contain no whitespace.'],
      [{ tag_expiration_s: -1 }, "-1 is less than the minimum of 0 (field 'tag_expiration_s')"],
      [{ invoice_email: 'yes' }, "'yes' is not of type 'boolean' (field 'invoice_email')"],
    ];
    for (const [json, detail] of cases) {
      const r = await call(t, 'PUT', '/api/v1/user/', { token, json });
      assert.equal(r.status, 400, JSON.stringify(json));
      assert.ok(isApiError(r.body, 400, 'invalid_request', t.url));
      assert.equal(r.body.detail, detail);
    }
    const bob = await findUser(t.app.services, 'bob');
    assert.equal(bob!.email, 'bob@example.com');
    assert.equal(bob!.invoice_email, 0);
    assert.ok(await verifyPassword(t.app.services, 'bob', 'password123'));
  });

  test('names and renames are ignored unless FEATURE_USER_METADATA / FEATURE_USER_RENAME are on', async () => {
    const { token } = await userWithToken(t, 'dave', ['user:admin']);
    const r = await call(t, 'PUT', '/api/v1/user/', { token, json: { username: 'david', given_name: 'Dave', company: 'ACME' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.username, 'dave');
    assert.equal(r.body.given_name, null);
    assert.equal(r.body.company, null);
  });

  test('a password change ends every session and signs this browser in again', async () => {
    await createUser(t.app.services, { username: 'erin', password: PASSWORD, email: 'erin@example.com' });
    const here = new Browser(t.url);
    const elsewhere = new Browser(t.url);
    await here.signIn('erin', PASSWORD);
    await elsewhere.signIn('erin', PASSWORD);
    const oldCsrf = here.csrf;
    const r = await here.request('PUT', '/api/v1/user/', { json: { password: 'new-password-1' }, csrf: true });
    assert.equal(r.status, 200, r.text);
    assert.notEqual(here.csrf, oldCsrf, 'a new CSRF token comes with the new session');
    assert.equal((await here.request('GET', '/api/v1/user/')).body.username, 'erin');
    assert.equal((await elsewhere.request('GET', '/api/v1/user/')).status, 401);
    assert.ok(await verifyPassword(t.app.services, 'erin', 'new-password-1'));
    assert.equal(await verifyPassword(t.app.services, 'erin', PASSWORD), null);
    assert.ok((await logKinds(t)).some((l) => l.kind === 'account_change_password'));
    // Fresh login applies to this endpoint.
    await t.app.services.db.updateTable('sessions').set({ login_time: Date.now() - 3600_000 }).execute();
    const stale = await here.request('PUT', '/api/v1/user/', { json: { invoice_email: true }, csrf: true });
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error_type, 'fresh_login_required');
  });
});

describe('PUT /api/v1/user/ with renames and metadata', () => {
  test('renames the user with their robots and stores names', async () => {
    const t = await startTestApp({ FEATURE_USER_RENAME: true, FEATURE_USER_METADATA: true });
    try {
      const { token, user } = await userWithToken(t, 'frank', ['user:admin']);
      await createRobot(t.app.services, user, 'builder');
      await createUser(t.app.services, { username: 'taken', password: PASSWORD });
      const clash = await call(t, 'PUT', '/api/v1/user/', { token, json: { username: 'taken' } });
      assert.equal(clash.status, 400);
      assert.equal(clash.body.detail, 'Username is already in use');
      const r = await call(t, 'PUT', '/api/v1/user/', { token, json: { username: 'franklin', given_name: 'Frank', family_name: null, location: 'Here' } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.username, 'franklin');
      assert.equal(r.body.given_name, 'Frank');
      assert.equal(r.body.location, 'Here');
      assert.ok(await findUser(t.app.services, 'franklin+builder'));
      assert.equal(await findUser(t.app.services, 'frank'), undefined);
      const logs = await logKinds(t);
      assert.deepEqual(logs.find((l) => l.kind === 'user_change_name')!.metadata, { old_username: 'frank' });
      assert.deepEqual(logs.find((l) => l.kind === 'user_change_metadata')!.metadata, { given_name: 'Frank', family_name: null, location: 'Here' });
    } finally {
      await t.close();
    }
  });
});

describe('DELETE /api/v1/user/ and GET /api/v1/users/{username}', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });

  test('public user information; superusers also see super_user', async () => {
    const anon = await w.api('GET', '/users/member', { caller: 'anonymous' });
    assert.equal(anon.status, 200);
    const body = await anon.json() as any;
    assert.deepEqual(Object.keys(body).sort(), ['anonymous', 'avatar', 'username']);
    assert.equal(body.anonymous, false);
    assert.equal(body.avatar.kind, 'user');
    const su = await (await w.api('GET', '/users/member', { caller: 'superuser' })).json() as any;
    assert.equal(su.super_user, false);
    for (const name of ['nobody', 'acme', 'acme+bot']) assert.equal((await w.api('GET', `/users/${encodeURIComponent(name)}`)).status, 404, name);
  });

  test('deleting the account removes the namespace, logs user_delete and ends the session', async () => {
    const s = w.t.app.services;
    const victim = await createUser(s, { username: 'leaving', password: PASSWORD, email: 'leaving@example.com' });
    const b = new Browser(w.t.url);
    await b.signIn('leaving', PASSWORD);
    const r = await b.request('DELETE', '/api/v1/user/', { csrf: true });
    assert.equal(r.status, 204, r.text);
    assert.equal(await findUser(s, 'leaving'), undefined);
    assert.equal((await b.request('GET', '/api/v1/user/')).status, 401);
    const log = (await logKinds(w.t)).find((l) => l.kind === 'user_delete' && l.metadata.username === 'leaving')!;
    assert.equal(log.account_id, victim.id);
  });
});

describe('POST /api/v1/user/clientkey and /api/v1/user/convert', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('clientkey checks the password and returns a docker password', async () => {
    const { token } = await userWithToken(t, 'gina', ['user:admin']);
    const bad = await call(t, 'POST', '/api/v1/user/clientkey', { token, json: { password: 'wrong-password' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.detail, 'Invalid Username or Password');
    const r = await call(t, 'POST', '/api/v1/user/clientkey', { token, json: { password: 'password123' } });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['key']);
    const p = await authenticateBasic(t.app.services, 'gina', r.body.key);
    assert.equal(p?.kind === 'user' && p.username, 'gina');
    assert.ok((await logKinds(t)).some((l) => l.kind === 'user_generate_client_key'));
  });

  test('convert turns the account into an organization owned by the admin, who is signed in', async () => {
    const s = t.app.services;
    const { token } = await userWithToken(t, 'henry', ['user:admin']);
    await createUser(s, { username: 'boss', password: PASSWORD, email: 'boss@example.com' });
    const badCreds = await call(t, 'POST', '/api/v1/user/convert', { token, json: { adminUser: 'boss', adminPassword: 'nope-nope' } });
    assert.equal(badCreds.status, 400);
    assert.equal(badCreds.body.detail, 'The admin user credentials are not valid');
    assert.equal(badCreds.body.reason, 'invaliduser');
    const self = await call(t, 'POST', '/api/v1/user/convert', { token, json: { adminUser: 'henry', adminPassword: PASSWORD } });
    assert.equal(self.status, 400);
    assert.equal(self.body.detail, 'The admin user is not valid');
    assert.equal((await findUser(s, 'henry'))!.kind, 'user');

    const r = await call(t, 'POST', '/api/v1/user/convert', { token, json: { adminUser: 'boss', adminPassword: PASSWORD } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { success: true });
    assert.match(r.headers.get('set-cookie')!, /^_csrf_token=/);
    const henry = (await findUser(s, 'henry'))!;
    assert.equal(henry.kind, 'org');
    assert.equal(henry.password_hash, null);
    const owners = await s.db.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
      .select(['teams.name', 'teams.role', 'team_members.user_id']).where('teams.org_id', '=', henry.id).execute();
    assert.deepEqual(owners, [{ name: 'owners', role: 'admin', user_id: (await findUser(s, 'boss'))!.id }]);
    assert.equal(await verifyOAuthToken(s, token), null, 'the account\'s own tokens are gone');
    assert.ok((await logKinds(t)).some((l) => l.kind === 'account_convert' && l.account_id === henry.id));
  });
});

describe('user notifications', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('list (newest first, undismissed, paged), get, and dismiss; organization notifications reach admins', async () => {
    const s = t.app.services;
    const { token, user } = await userWithToken(t, 'ivy', ['user:admin']);
    const { token: other } = await userWithToken(t, 'jack', ['user:admin']);
    const org = await createOrganization(s, 'ivyorg', user);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await createUserNotification(s, user.id, 'repo_push', { n: i }));
    const orgNote = await createUserNotification(s, org.id, 'quota_warning', { q: 1 });
    const list = await call(t, 'GET', '/api/v1/user/notifications', { token });
    assert.equal(list.status, 200);
    assert.deepEqual(Object.keys(list.body).sort(), ['additional', 'notifications']);
    assert.equal(list.body.notifications.length, 5);
    assert.equal(list.body.additional, true);
    const n = list.body.notifications[0];
    assert.deepEqual(Object.keys(n).sort(), ['created', 'dismissed', 'id', 'kind', 'metadata', 'organization']);
    assert.match(n.created, RFC2822);
    const all = await call(t, 'GET', '/api/v1/user/notifications?limit=10', { token });
    assert.equal(all.body.notifications.length, 7);
    assert.equal(all.body.additional, false);
    const fromOrg = all.body.notifications.find((x: any) => x.id === orgNote);
    assert.equal(fromOrg.organization, 'ivyorg');
    assert.deepEqual(fromOrg.metadata, { q: 1 });
    assert.equal(all.body.notifications.find((x: any) => x.id === ids[0]).organization, null);

    const one = await call(t, 'GET', `/api/v1/user/notifications/${ids[2]}`, { token });
    assert.deepEqual(one.body.metadata, { n: 2 });
    assert.equal((await call(t, 'GET', `/api/v1/user/notifications/${ids[2]}`, { token: other })).status, 404);
    const dismiss = await call(t, 'PUT', `/api/v1/user/notifications/${ids[2]}`, { token, json: { dismissed: true } });
    assert.equal(dismiss.status, 200);
    assert.equal(dismiss.body.dismissed, true);
    const after = await call(t, 'GET', '/api/v1/user/notifications?limit=10', { token });
    assert.equal(after.body.notifications.length, 6, 'dismissed notifications leave the list');
    const bad = await call(t, 'PUT', `/api/v1/user/notifications/${ids[3]}`, { token, json: { dismissed: 'yes' } });
    assert.equal(bad.status, 400);
    assert.equal((await call(t, 'PUT', `/api/v1/user/notifications/${ids[3]}`, { token: other, json: { dismissed: true } })).status, 404);
    assert.equal((await call(t, 'GET', '/api/v1/user/notifications?limit=-1', { token })).status, 400);
  });
});

describe('starred repositories', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });

  test('star needs read access, is idempotent, lists with Quay\'s fields, and unstar answers 204', async () => {
    const star = (caller: 'member' | 'outsider', body: unknown) => w.api('POST', '/user/starred', { caller, scopes: ['user:admin', 'repo:read'], body });
    const r = await star('member', { namespace: 'acme', repository: 'repo' });
    assert.equal(r.status, 201);
    assert.deepEqual(await r.json(), { namespace: 'acme', repository: 'repo' });
    assert.equal((await star('member', { namespace: 'acme', repository: 'repo' })).status, 201);
    assert.equal((await star('outsider', { namespace: 'acme', repository: 'repo' })).status, 403);
    assert.equal((await star('member', { namespace: 'acme' })).status, 400);
    const list = await w.api('GET', '/user/starred', { caller: 'member', scopes: ['user:admin'] });
    assert.deepEqual(await list.json(), { repositories: [{ namespace: 'acme', name: 'repo', description: null, is_public: false }] });
    const del = await w.api('DELETE', '/user/starred/acme/repo', { caller: 'member', scopes: ['user:admin'] });
    assert.equal(del.status, 204);
    assert.equal((await w.api('DELETE', '/user/starred/acme/repo', { caller: 'member', scopes: ['user:admin'] })).status, 404);
  });

  test('the list pages by 100 with an opaque next_page token and hides repositories no longer readable', async () => {
    const s = w.t.app.services;
    const now = Date.now();
    const ids: number[] = [];
    for (let i = 0; i < 101; i++) {
      const row = await s.db.insertInto('repositories').values({ namespace_id: w.org.id, name: `pub${i}`, is_public: 1, created_at: now, last_modified: now })
        .returning('id').executeTakeFirstOrThrow();
      ids.push(row.id);
    }
    await s.db.insertInto('stars').values(ids.map((id) => ({ user_id: w.users.outsider.id, repository_id: id, created_at: now }))).execute();
    const first = await (await w.api('GET', '/user/starred', { caller: 'outsider', scopes: ['user:admin'] })).json() as any;
    assert.equal(first.repositories.length, 100);
    assert.equal(typeof first.next_page, 'string');
    const second = await (await w.api('GET', `/user/starred?next_page=${encodeURIComponent(first.next_page)}`, { caller: 'outsider', scopes: ['user:admin'] })).json() as any;
    assert.deepEqual(second.repositories.map((r: any) => r.name), ['pub100']);
    assert.equal(second.next_page, undefined);
    await s.db.updateTable('repositories').set({ is_public: 0 }).where('id', '=', ids[0]!).execute();
    const again = await (await w.api('GET', '/user/starred', { caller: 'outsider', scopes: ['user:admin'] })).json() as any;
    assert.ok(!again.repositories.some((r: any) => r.name === 'pub0'));
  });
});

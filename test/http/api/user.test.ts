// /api/v1/user/initialize, POST /api/v1/user/ and GET /api/v1/user/ over real HTTP, checked
// field by field against Quay's shapes (shared/quay-api/endpoints.json).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { call, countUsers, isApiError, logKinds, userWithToken } from './client.ts';
import { createOrganization, findUser, verifyPassword, ALL_OAUTH_SCOPES } from '../../../src/model/accounts.ts';
import { authenticateBasic } from '../../../src/model/registry-auth.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const colorOf = (hash: string) => AVATAR_COLORS[parseInt(hash.slice(0, 2), 16) % 32];

describe('POST /api/v1/user/initialize', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('rejects bad input with a message and creates nothing', async () => {
    const missing = await call(t, 'POST', '/api/v1/user/initialize', { json: { username: 'admin' } });
    assert.equal(missing.status, 400);
    assert.ok(isApiError(missing.body, 400, 'invalid_request', t.url));
    assert.equal(missing.body.detail, "'password' is a required property");

    const badName = await call(t, 'POST', '/api/v1/user/initialize', { json: { username: 'Admin!', password: 'password123' } });
    assert.equal(badName.status, 400);
    assert.match(badName.body.message, /^Failed to initialize user: Invalid namespace Admin!/);

    const short = await call(t, 'POST', '/api/v1/user/initialize', { json: { username: 'admin', password: 'short' } });
    assert.equal(short.status, 400);
    assert.equal(short.body.message, 'Failed to initialize user: Password must be at least 8 characters and contain no whitespace.');

    const wrongType = await call(t, 'POST', '/api/v1/user/initialize', { json: { username: 'admin', password: 'password123', access_token: 'yes' } });
    assert.equal(wrongType.status, 400);
    assert.equal(wrongType.body.detail, "'yes' is not of type 'boolean' (field 'access_token')");
    assert.equal(await countUsers(t), 0);
  });

  test('creates the first user as superuser with an automation token holding every scope', async () => {
    const before = Date.now();
    const r = await call(t, 'POST', '/api/v1/user/initialize', {
      json: { username: 'admin', password: 'password123', email: 'Admin@Example.com', access_token: true },
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.body).sort(), ['access_token', 'email', 'encrypted_password', 'username']);
    assert.equal(r.body.username, 'admin');
    assert.equal(r.body.email, 'Admin@Example.com');
    assert.equal(typeof r.body.encrypted_password, 'string');
    assert.equal(r.body.access_token.length, 40);

    const s = t.app.services;
    const user = await findUser(s, 'admin');
    assert.equal(user?.superuser, 1);
    assert.equal(user?.verified, 1);
    assert.ok(await verifyPassword(s, 'admin', 'password123'));

    const app = await s.db.selectFrom('oauth_applications').selectAll().executeTakeFirstOrThrow();
    assert.equal(app.name, 'automation');
    assert.equal(app.client_id, 'admin');
    assert.equal(app.org_id, user!.id);
    const tok = await s.db.selectFrom('oauth_access_tokens').selectAll().executeTakeFirstOrThrow();
    assert.deepEqual(tok.scope.split(' ').sort(), [...ALL_OAUTH_SCOPES].sort());
    // Quay's create_user_access_token default lifetime: 9000 s.
    assert.ok(tok.expires_at! >= before + 9000_000 && tok.expires_at! <= Date.now() + 9000_000);

    // The token is a working superuser credential on the API.
    const me = await call(t, 'GET', '/api/v1/user/', { token: r.body.access_token });
    assert.equal(me.status, 200);
    assert.equal(me.body.username, 'admin');
    assert.equal(me.body.super_user, true);

    // encrypted_password logs in like a password (an app-specific token of the new user).
    const p = await authenticateBasic(s, 'admin', r.body.encrypted_password);
    assert.equal(p?.kind, 'user');

    const logs = await logKinds(t);
    assert.deepEqual(logs.map((l) => l.kind).sort(), ['create_app_specific_token', 'create_application', 'user_create']);
    const create = logs.find((l) => l.kind === 'user_create')!;
    assert.equal(create.account_id, user!.id);
    assert.deepEqual(create.metadata, { email: 'Admin@Example.com', username: 'admin' });
  });

  test('refuses once users exist, with Quay\'s plain message', async () => {
    const r = await call(t, 'POST', '/api/v1/user/initialize', { json: { username: 'other', password: 'password123' } });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, { message: 'Cannot initialize user in a non-empty database' });
    assert.equal(await findUser(t.app.services, 'other'), undefined);
  });
});

describe('POST /api/v1/user/initialize variants', () => {
  test('without access_token no application is created; concurrent calls make exactly one user', async () => {
    const t = await startTestApp();
    try {
      const results = await Promise.all(['first', 'second', 'third'].map((u) =>
        call(t, 'POST', '/api/v1/user/initialize', { json: { username: u, password: 'password123' } })));
      const ok = results.filter((r) => r.status === 200);
      assert.equal(ok.length, 1, results.map((r) => r.text).join('\n'));
      assert.equal(ok[0]!.body.access_token, undefined);
      assert.equal(ok[0]!.body.email, null);
      for (const r of results.filter((x) => x.status !== 200)) {
        assert.deepEqual(r.body, { message: 'Cannot initialize user in a non-empty database' });
      }
      assert.equal(await countUsers(t), 1);
      const apps = await t.app.services.db.selectFrom('oauth_applications').selectAll().execute();
      assert.equal(apps.length, 0);
    } finally {
      await t.close();
    }
  });

  test('404 in ApiError shape when FEATURE_USER_INITIALIZE is off', async () => {
    const t = await startTestApp({ FEATURE_USER_INITIALIZE: false });
    try {
      const r = await call(t, 'POST', '/api/v1/user/initialize', { json: { username: 'admin', password: 'password123' } });
      assert.equal(r.status, 404);
      assert.ok(isApiError(r.body, 404, 'not_found', t.url));
      assert.equal(await countUsers(t), 0);
    } finally {
      await t.close();
    }
  });
});

describe('POST /api/v1/user/ (createNewUser)', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('creates a user, logs user_create and answers with the user view', async () => {
    const r = await call(t, 'POST', '/api/v1/user/', { json: { username: 'alice', password: 'password123', email: 'alice@example.com' } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.anonymous, false);
    assert.equal(r.body.username, 'alice');
    assert.equal(r.body.email, 'alice@example.com');
    assert.equal(r.body.is_me, true);
    assert.equal(r.body.verified, true);
    assert.equal(r.body.super_user, undefined);
    assert.deepEqual(r.body.avatar, { name: 'alice', hash: sha256('alice@example.com'), color: colorOf(sha256('alice@example.com')), kind: 'user' });
    const s = t.app.services;
    const user = await findUser(s, 'alice');
    assert.equal(user?.superuser, 0);
    assert.ok(await verifyPassword(s, 'alice', 'password123'));
    const logs = (await logKinds(t)).filter((l) => l.kind === 'user_create');
    assert.equal(logs.length, 1);
    assert.equal(logs[0]!.account_id, user!.id);
    assert.equal(logs[0]!.performer_id, null);
    assert.deepEqual(logs[0]!.metadata, { email: 'alice@example.com', username: 'alice' });
  });

  test('bad input answers 400 invalid_request with the reason, and creates nothing', async () => {
    const n = await countUsers(t);
    const cases: [unknown, string][] = [
      [{ username: 'alice', password: 'password123' }, 'The username already exists'],
      [{ password: 'password123' }, "'username' is a required property"],
      [{ username: 'carol' }, "'password' is a required property"],
      [{ username: 42, password: 'password123' }, "42 is not of type 'string' (field 'username')"],
      [{ username: 'carol', password: ['x'] }, "['x'] is not of type 'string' (field 'password')"],
      [{ username: 'carol', password: 'password123', email: false }, "False is not of type 'string' (field 'email')"],
      [['carol'], "['carol'] is not of type 'object'"],
      [{ username: 'carol', password: 'short' }, 'Password must be at least 8 characters and contain no whitespace.'],
      [{ username: 'carol', password: 'has space 123' }, 'Password must be at least 8 characters and contain no whitespace.'],
      [{ username: 'carol', password: 'password123', email: 'not-an-email' }, 'Invalid email address'],
      [{ username: 'alice2', password: 'password123', email: 'alice@example.com' }, 'Email has already been used'],
    ];
    for (const [json, detail] of cases) {
      const r = await call(t, 'POST', '/api/v1/user/', { json });
      assert.equal(r.status, 400, JSON.stringify(json));
      assert.ok(isApiError(r.body, 400, 'invalid_request', t.url), r.text);
      assert.equal(r.body.detail, detail, JSON.stringify(json));
    }
    for (const name of ['Carol', 'c', 'carol..x', '-carol', 'carol_', 'a'.repeat(256), 'ca rol']) {
      const r = await call(t, 'POST', '/api/v1/user/', { json: { username: name, password: 'password123' } });
      assert.equal(r.status, 400, name);
      assert.match(r.body.detail, /^Invalid namespace /, name);
    }
    const noBody = await call(t, 'POST', '/api/v1/user/');
    assert.equal(noBody.status, 400);
    assert.equal(noBody.body.detail, 'Missing JSON body');
    const textBody = await call(t, 'POST', '/api/v1/user/', { raw: 'username=carol', headers: { 'content-type': 'text/plain' } });
    assert.equal(textBody.status, 400);
    assert.equal(textBody.body.detail, 'Missing JSON body');
    const broken = await call(t, 'POST', '/api/v1/user/', { raw: '{"username": ', headers: { 'content-type': 'application/json' } });
    assert.equal(broken.status, 400);
    assert.ok(isApiError(broken.body, 400, 'invalid_request', t.url));
    assert.equal(await countUsers(t), n);
  });

  test('robot names cannot be registered, and robots do not block a human name check', async () => {
    const r = await call(t, 'POST', '/api/v1/user/', { json: { username: 'alice+bot', password: 'password123' } });
    assert.equal(r.status, 400);
    assert.match(r.body.detail, /^Invalid namespace alice\+bot/);
  });
});

describe('createNewUser feature gates', () => {
  test('FEATURE_USER_CREATION off: 404; ANONYMOUS_ACCESS off: 401 plain message; readonly: 503', async () => {
    const off = await startTestApp({ FEATURE_USER_CREATION: false });
    try {
      const r = await call(off, 'POST', '/api/v1/user/', { json: { username: 'alice', password: 'password123' } });
      assert.equal(r.status, 404);
      assert.ok(isApiError(r.body, 404, 'not_found', off.url));
      assert.equal(await countUsers(off), 0);
    } finally {
      await off.close();
    }
    const closed = await startTestApp({ FEATURE_ANONYMOUS_ACCESS: false, REGISTRY_STATE: 'normal' });
    try {
      const r = await call(closed, 'POST', '/api/v1/user/', { json: { username: 'alice', password: 'password123' } });
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { message: 'Anonymous access is not allowed' });
      // getLoggedInUser is @anon_allowed: still the ApiError 401.
      const me = await call(closed, 'GET', '/api/v1/user/');
      assert.ok(isApiError(me.body, 401, 'invalid_token', closed.url));
      assert.equal(await countUsers(closed), 0);
    } finally {
      await closed.close();
    }
    const ro = await startTestApp({ REGISTRY_STATE: 'readonly' });
    try {
      const r = await call(ro, 'POST', '/api/v1/user/', { json: { username: 'alice', password: 'password123' } });
      assert.equal(r.status, 503);
      assert.equal(r.body.is_readonly, true);
      assert.match(r.body.message, /read-only/);
      assert.equal(await countUsers(ro), 0);
    } finally {
      await ro.close();
    }
  });
});

describe('GET /api/v1/user/ (getLoggedInUser)', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('anonymous, bad tokens and Basic credentials get 401 invalid_token', async () => {
    const anon = await call(t, 'GET', '/api/v1/user/');
    assert.equal(anon.status, 401);
    assert.ok(isApiError(anon.body, 401, 'invalid_token', t.url));
    assert.equal(anon.body.detail, 'Requires authentication');
    assert.equal(anon.body.session_required, false);

    const bogus = await call(t, 'GET', '/api/v1/user/', { token: 'x'.repeat(40) });
    assert.equal(bogus.status, 401);

    const { token: expired } = await userWithToken(t, 'olduser', ['user:read'], { expiresIn: -10 });
    assert.equal((await call(t, 'GET', '/api/v1/user/', { token: expired })).status, 401);

    // Quay does not accept Basic auth on /api/v1.
    const basic = await call(t, 'GET', '/api/v1/user/', { headers: { authorization: `Basic ${Buffer.from('olduser:password123').toString('base64')}` } });
    assert.equal(basic.status, 401);
  });

  test('an OAuth token without user:read gets 403 insufficient_scope', async () => {
    const { token } = await userWithToken(t, 'scoped', ['repo:read', 'repo:write']);
    const r = await call(t, 'GET', '/api/v1/user/', { token });
    assert.equal(r.status, 403);
    assert.ok(isApiError(r.body, 403, 'insufficient_scope', t.url), r.text);
  });

  test('user:admin sees every field of its own account, typed as Quay types them', async () => {
    const { user, token } = await userWithToken(t, 'dora', ['user:admin'], { email: 'Dora@Example.COM' });
    await createOrganization(t.app.services, 'acme', user);
    const r = await call(t, 'GET', '/api/v1/user/', { token });
    assert.equal(r.status, 200, r.text);
    const b = r.body;
    assert.equal(b.anonymous, false);
    assert.equal(b.username, 'dora');
    const hash = sha256('dora@example.com');
    assert.deepEqual(b.avatar, { name: 'dora', hash, color: colorOf(hash), kind: 'user' });
    assert.equal(b.can_create_repo, true);
    assert.equal(b.is_me, true);
    assert.equal(b.verified, true);
    assert.equal(b.email, 'Dora@Example.COM');
    assert.deepEqual(b.logins, []);
    assert.equal(b.invoice_email, false);
    assert.equal(b.invoice_email_address, null);
    assert.equal(b.preferred_namespace, false);
    assert.equal(Number.isInteger(b.tag_expiration_s), true);
    assert.deepEqual(b.prompts, []);
    for (const k of ['company', 'family_name', 'given_name', 'location']) assert.equal(b[k], null, k);
    assert.equal(b.is_free_account, true);
    assert.equal(b.has_password_set, true);
    assert.equal(b.super_user, undefined);
    assert.equal(b.quotas, undefined);
    assert.equal(b.organizations.length, 1);
    const org = b.organizations[0];
    const orgHash = sha256('acme');
    assert.deepEqual(org, {
      name: 'acme', avatar: { name: 'acme', hash: orgHash, color: colorOf(orgHash), kind: 'org' },
      // The token lacks repo:create and org:admin, so neither power is reported.
      can_create_repo: false, public: false, is_org_admin: false, preferred_namespace: false,
    });
  });

  test('a full-rights token reports org admin rights and creation', async () => {
    const { token } = await userWithToken(t, 'dora', ['user:admin', 'org:admin', 'repo:create']);
    const r = await call(t, 'GET', '/api/v1/user/', { token });
    assert.equal(r.body.organizations[0].is_org_admin, true);
    assert.equal(r.body.organizations[0].can_create_repo, true);
  });

  test('user:read alone sees only the public part and organizations', async () => {
    const { token } = await userWithToken(t, 'dora', ['user:read']);
    const r = await call(t, 'GET', '/api/v1/user/', { token });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['anonymous', 'avatar', 'organizations', 'username']);
    assert.deepEqual(Object.keys(r.body.organizations[0]).sort(), ['avatar', 'can_create_repo', 'name', 'public']);
  });

  test('super_user appears only for superusers whose token carries super:user', async () => {
    const su = await userWithToken(t, 'root', ['user:read', 'super:user'], { superuser: true });
    assert.equal((await call(t, 'GET', '/api/v1/user/', { token: su.token })).body.super_user, true);
    const noScope = await userWithToken(t, 'root', ['user:read']);
    assert.equal((await call(t, 'GET', '/api/v1/user/', { token: noScope.token })).body.super_user, undefined);
    const plain = await userWithToken(t, 'pleb', ['user:read', 'super:user']);
    assert.equal((await call(t, 'GET', '/api/v1/user/', { token: plain.token })).body.super_user, undefined);
  });
});

describe('avatar configuration', () => {
  test('AVATAR_KIND gravatar hashes with MD5; quota fields appear with quota management', async () => {
    const t = await startTestApp({ AVATAR_KIND: 'gravatar', FEATURE_QUOTA_MANAGEMENT: true });
    try {
      const { token } = await userWithToken(t, 'erin', ['user:admin'], { email: 'erin@example.com' });
      const r = await call(t, 'GET', '/api/v1/user/', { token });
      const hash = md5('erin@example.com');
      assert.deepEqual(r.body.avatar, { name: 'erin', hash, color: colorOf(hash), kind: 'user' });
      assert.deepEqual(r.body.quotas, []);
      assert.deepEqual(r.body.quota_report, { quota_bytes: 0, configured_quota: null, running_backfill: 'waiting', backfill_status: 'waiting' });
    } finally {
      await t.close();
    }
  });
});

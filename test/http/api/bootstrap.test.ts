// Programmatic bootstrap (FEATURE_PROGRAMMATIC_BOOTSTRAP) across restarts of a real server on one
// database: the startup provisioning of the owner's token file, POST /api/v1/bootstrap/renew and
// its failures, CSRF around it, and revocation when the feature is turned off.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createTestDatabase, startTestApp, type TestApp, type TestDatabase } from '../../support/app.ts';
import { createOAuthApplication, createOAuthToken, createUser, findUser } from '../../../src/model/accounts.ts';
import { BOOTSTRAP_APP_DESCRIPTION, BOOTSTRAP_APP_NAME } from '../../../src/model/bootstrap-token.ts';
import { Browser } from './browser.ts';
import { isApiError } from './client.ts';

const RENEW = '/api/v1/bootstrap/renew';
const INVALID = 'Requires valid bootstrap bearer token';

let dir: string;
let db: TestDatabase;
let tokenPath: string;
let t: TestApp | null = null;

function config(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    FEATURE_PROGRAMMATIC_BOOTSTRAP: true, SUPER_USERS: ['admin'], BOOTSTRAP_TOKEN_OWNER: 'admin', BOOTSTRAP_TOKEN_PATH: tokenPath,
    BOOTSTRAP_TOKEN_SCOPE: 'user:read super:user', BOOTSTRAP_TOKEN_EXPIRATION: 3600, ...extra,
  };
}

/** (Re)starts the registry on the shared database and data directory. */
async function restart(extra: Record<string, unknown> = {}): Promise<TestApp> {
  await t?.close();
  t = await startTestApp(config(extra), { dataDir: dir, dbUri: db.uri });
  return t;
}

const fileToken = () => (JSON.parse(readFileSync(tokenPath, 'utf8')) as { access_token: string }).access_token;

async function renew(headers: Record<string, string>): Promise<{ status: number; body: any }> {
  const r = await fetch(`${t!.url}${RENEW}`, { method: 'POST', headers });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

async function whoami(token: string): Promise<number> {
  const r = await fetch(`${t!.url}/api/v1/user/`, { headers: { authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status;
}

async function bootstrapTokens(): Promise<{ uuid: string; data: string | null; scope: string; expires_at: number | null; created_at: number }[]> {
  const s = t!.app.services;
  return s.db.selectFrom('oauth_access_tokens').innerJoin('oauth_applications', 'oauth_applications.id', 'oauth_access_tokens.application_id')
    .select(['oauth_access_tokens.uuid', 'oauth_access_tokens.data', 'oauth_access_tokens.scope', 'oauth_access_tokens.expires_at', 'oauth_access_tokens.created_at'])
    .where('oauth_applications.name', '=', BOOTSTRAP_APP_NAME).execute();
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quayside-bootstrap-'));
  db = await createTestDatabase(dir);
  tokenPath = join(dir, 'machine', 'token.json');
});
after(async () => {
  await t?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('provisioning at startup', () => {
  test('nothing while the owner does not exist; the next start writes the owner a token file (0600)', async () => {
    await restart();
    assert.equal(existsSync(tokenPath), false);
    await createUser(t!.app.services, { username: 'admin', password: 'password123', email: 'admin@example.com' });
    await restart();
    assert.equal(statSync(tokenPath).mode & 0o777, 0o600);
    assert.match(readFileSync(tokenPath, 'utf8'), /^\{"access_token": "[A-Za-z0-9]{40}"\}$/);
    const token = fileToken();
    assert.equal(await whoami(token), 200);
    const s = t!.app.services;
    const admin = (await findUser(s, 'admin'))!;
    const apps = await s.db.selectFrom('oauth_applications').selectAll().where('name', '=', BOOTSTRAP_APP_NAME).execute();
    assert.equal(apps.length, 1);
    assert.equal(apps[0]!.org_id, admin.id);
    assert.equal(apps[0]!.description, BOOTSTRAP_APP_DESCRIPTION);
    const [row, ...more] = await bootstrapTokens();
    assert.equal(more.length, 0);
    assert.deepEqual(JSON.parse(row!.data!), { kind: 'bootstrap', owner: 'admin', application_name: BOOTSTRAP_APP_NAME });
    assert.equal(row!.scope, 'user:read super:user');
    assert.equal(row!.expires_at! - row!.created_at, 3600_000);
  });

  test('a restart keeps the provisioned token (its secret cannot be rebuilt from the database)', async () => {
    const token = fileToken();
    await restart();
    assert.equal(fileToken(), token);
    assert.equal((await bootstrapTokens()).length, 1);
    assert.equal(await whoami(token), 200);
  });
});

describe('POST /api/v1/bootstrap/renew', () => {
  test('rotates: a new token in the file, the old one dead, other tokens of the application kept', async () => {
    const s = t!.app.services;
    const old = fileToken();
    const app = await s.db.selectFrom('oauth_applications').select('id').where('name', '=', BOOTSTRAP_APP_NAME).executeTakeFirstOrThrow();
    const admin = (await findUser(s, 'admin'))!;
    const unmarked = await createOAuthToken(s, app.id, admin, 'user:read', 3600);
    const r = await renew({ authorization: `Bearer ${old}` });
    assert.deepEqual(r, { status: 200, body: { status: 'rotated' } });
    const fresh = fileToken();
    assert.notEqual(fresh, old);
    assert.equal(await whoami(old), 401);
    assert.equal(await whoami(fresh), 200);
    assert.equal((await bootstrapTokens()).filter((x) => x.data).length, 1);
    assert.equal(await whoami(unmarked.token), 200, 'a token without the bootstrap marker is not rotated away');
  });

  test('no bearer, a blank one, an unknown one or Basic credentials: 401 invalid_token', async () => {
    for (const authorization of [undefined, 'Bearer    ', `Bearer ${'x'.repeat(40)}`, `Basic ${Buffer.from('admin:password123').toString('base64')}`]) {
      const r = await renew(authorization ? { authorization } : {});
      assert.equal(r.status, 401, authorization);
      assert.ok(isApiError(r.body, 401, 'invalid_token', t!.url));
      assert.equal(r.body.detail, INVALID);
    }
  });

  test('a valid OAuth token that is not the bootstrap token: 403 (Quay\'s Unauthorized)', async () => {
    const s = t!.app.services;
    const admin = (await findUser(s, 'admin'))!;
    const other = await createOAuthToken(s, await createOAuthApplication(s, admin, 'regular-app'), admin, 'user:read super:user');
    const before = fileToken();
    const r = await renew({ authorization: `Bearer ${other.token}` });
    assert.equal(r.status, 403);
    assert.ok(isApiError(r.body, 403, 'insufficient_scope', t!.url));
    assert.equal(fileToken(), before);
  });

  test('an expired token renews only from a local, unproxied caller that says so', async () => {
    const s = t!.app.services;
    const token = fileToken();
    await s.db.updateTable('oauth_access_tokens').set({ expires_at: Date.now() - 1000 }).where('token_prefix', '=', token.slice(0, 20)).execute();
    const attempts: Record<string, string>[] = [{}, { 'x-quay-bootstrap-renewal-location': 'local', 'x-forwarded-for': '203.0.113.50' }, { 'x-quay-bootstrap-renewal-location': 'remote' }];
    for (const headers of attempts) {
      const r = await renew({ authorization: `Bearer ${token}`, ...headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.body.error_type, 'invalid_token');
      assert.equal(fileToken(), token, 'not rotated');
    }
    // The test client connects over loopback: with the header, the expired token renews.
    const ok = await renew({ authorization: `Bearer ${token}`, 'x-quay-bootstrap-renewal-location': 'local' });
    assert.deepEqual(ok, { status: 200, body: { status: 'rotated' } });
    assert.notEqual(fileToken(), token);
    assert.equal(await whoami(fileToken()), 200);
  });

  test('CSRF: a signed-in browser session keeps the normal check even with a bearer header', async () => {
    const token = fileToken();
    const signedIn = new Browser(t!.url);
    assert.equal((await signedIn.signIn('admin', 'password123')).status, 200);
    const refused = await signedIn.request('POST', RENEW, { headers: { authorization: `Bearer ${token}x` } });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error, 'CSRF token was invalid or missing. (authorized: user admin)');
    // An anonymous cookie with a bearer header is automation: exempt, and answered by the handler.
    const anon = new Browser(t!.url);
    await anon.fetchCsrf();
    const handled = await anon.request('POST', RENEW, { headers: { authorization: `Bearer ${'y'.repeat(40)}` } });
    assert.equal(handled.status, 401);
    assert.equal(handled.body.error_type, 'invalid_token');
    assert.equal(fileToken(), token);
  });

  test('a token file that cannot be written: 500 token_rotation_failed, nothing changed', async () => {
    const token = fileToken();
    const blocked = join(dir, 'blocked');
    mkdirSync(join(blocked, 'occupied'), { recursive: true });
    writeFileSync(join(blocked, 'occupied', 'x'), 'x');
    await restart({ BOOTSTRAP_TOKEN_PATH: join(blocked, 'occupied') });
    const before = await bootstrapTokens();
    const r = await renew({ authorization: `Bearer ${token}` });
    assert.equal(r.status, 500);
    assert.ok(isApiError(r.body, 500, 'token_rotation_failed', t!.url));
    assert.equal(r.body.detail, 'Token rotation failed: could not write token');
    assert.deepEqual(await bootstrapTokens(), before, 'the new token was rolled back');
    assert.equal(await whoami(token), 200);
    await restart();
  });
});

describe('turning the feature off', () => {
  test('revokes every bootstrap application and token, deletes the file, and removes the route', async () => {
    const token = fileToken();
    await restart({ FEATURE_PROGRAMMATIC_BOOTSTRAP: false });
    assert.equal(existsSync(tokenPath), false);
    assert.deepEqual(await bootstrapTokens(), []);
    assert.equal(await whoami(token), 401);
    const r = await renew({ authorization: `Bearer ${token}` });
    assert.equal(r.status, 404);
  });

  test('an owner outside SUPER_USERS gets nothing', async () => {
    await restart({ SUPER_USERS: [] });
    assert.equal(existsSync(tokenPath), false);
    assert.deepEqual(await bootstrapTokens(), []);
  });
});

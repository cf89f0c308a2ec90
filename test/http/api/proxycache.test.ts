// /api/v1 proxy-cache configuration (endpoints.json area proxycache) over real HTTP, field by
// field: get (empty and configured), create with its log entry and encrypted credentials, the 400s
// Quay answers, delete, and validation against real upstream registries (Distribution, anonymous
// and with htpasswd, and a second Quayside for Docker token auth).
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { startDistribution, type Distribution } from '../../support/distribution.ts';
import { json, logsOf } from './images.ts';

const BASE = '/organization/acme/proxycache';
const VALIDATE = '/organization/acme/validateproxycache';

let w: World;
let open: Distribution;
let locked: Distribution;
before(async () => {
  w = await createWorld({ FEATURE_PROXY_CACHE: true, FEATURE_IMMUTABLE_TAGS: true, QUAYSIDE_OUTBOUND_ALLOWLIST: ['127.0.0.1'] });
  open = await startDistribution();
  locked = await startDistribution({ htpasswd: { puller: 'sesame' } });
});
after(async () => {
  await w?.close();
  await open?.stop();
  await locked?.stop();
});
beforeEach(async () => {
  await w.t.app.services.db.deleteFrom('proxy_cache_configs').execute();
});

function apiError(status: number, type: string, detail: string) {
  return { status, error_message: detail, title: type, error_type: type, detail, type: `${w.t.url}/api/v1/error/${type}` };
}

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await w.api('POST', path, { body });
  return { status: res.status, body: await json(res) };
}

describe('proxycache configuration', () => {
  test('an organization without a configuration answers empty strings', async () => {
    const res = await w.api('GET', BASE);
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { upstream_registry: '', expiration_s: '', insecure: '' });
    const member = await w.api('GET', BASE, { caller: 'member' });
    assert.equal(member.status, 200);
  });

  test('create, get, log entry, encrypted credentials, duplicate, delete', async () => {
    const before = (await logsOf(w, 'create_proxy_cache_config')).length;
    const created = await post(BASE, {
      upstream_registry: `${open.host}/library`, upstream_registry_username: 'puller', upstream_registry_password: 'sesame',
      expiration_s: 3600, insecure: true,
    });
    assert.equal(created.status, 201);
    assert.equal(created.body, 'Created');
    const got = await w.api('GET', BASE, { caller: 'member' });
    assert.deepEqual(await json(got), { upstream_registry: `${open.host}/library`, expiration_s: 3600, insecure: true });
    const logs = (await logsOf(w, 'create_proxy_cache_config')).slice(before);
    assert.equal(logs.length, 1);
    assert.equal(logs[0]!.metadata.upstream_registry, `${open.host}/library`);
    assert.equal(logs[0]!.performer_id, w.users.orgadmin.id);

    const row = await w.t.app.services.db.selectFrom('proxy_cache_configs').selectAll().executeTakeFirstOrThrow();
    assert.ok(row.username_enc && !row.username_enc.includes('puller'));
    assert.ok(row.password_enc && !row.password_enc.includes('sesame'));
    assert.equal(w.t.app.services.box.decrypt(row.password_enc), 'sesame');

    const again = await post(BASE, { upstream_registry: open.host });
    assert.equal(again.status, 400);
    assert.deepEqual(again.body, apiError(400, 'invalid_request', 'Proxy Cache Configuration already exists'));

    const delLogs = (await logsOf(w, 'delete_proxy_cache_config')).length;
    const del = await w.api('DELETE', BASE);
    assert.equal(del.status, 201);
    assert.equal(await json(del), 'Deleted');
    assert.equal((await logsOf(w, 'delete_proxy_cache_config')).length, delLogs + 1);
    assert.deepEqual(await json(await w.api('GET', BASE)), { upstream_registry: '', expiration_s: '', insecure: '' });
    const gone = await w.api('DELETE', BASE);
    assert.equal(gone.status, 404);
    assert.deepEqual(await json(gone), apiError(404, 'not_found', 'Not Found'));
  });

  test('defaults: one day, secure, anonymous', async () => {
    assert.equal((await post(BASE, { upstream_registry: 'quay.io/projectquay' })).status, 201);
    assert.deepEqual(await json(await w.api('GET', BASE)), { upstream_registry: 'quay.io/projectquay', expiration_s: 86400, insecure: false });
    const row = await w.t.app.services.db.selectFrom('proxy_cache_configs').selectAll().executeTakeFirstOrThrow();
    assert.equal(row.username_enc, null);
    assert.equal(row.password_enc, null);
  });

  test('bad input is refused with a 400', async () => {
    assert.equal((await post(BASE, {})).status, 400);
    assert.equal((await post(BASE, { upstream_registry: 42 })).status, 400);
    assert.equal((await post(BASE, { upstream_registry: 'quay.io', expiration_s: 'soon' })).status, 400);
    const scheme = await post(BASE, { upstream_registry: 'https://quay.io' });
    assert.equal(scheme.status, 400);
    assert.equal(scheme.body.error_message, 'Invalid upstream registry: https://quay.io');
    const neg = await post(BASE, { upstream_registry: 'quay.io', expiration_s: -1 });
    assert.equal(neg.status, 400);
    // A private address that is not allowlisted (SSRF guard).
    const internal = await post(BASE, { upstream_registry: '10.1.2.3:5000' });
    assert.equal(internal.status, 400);
    assert.match(internal.body.error_message, /^Invalid upstream registry: outbound request to .* refused/);
    assert.deepEqual(await json(await w.api('GET', BASE)), { upstream_registry: '', expiration_s: '', insecure: '' });
  });

  test('an organization with immutable tags cannot become a proxy cache', async () => {
    const s = w.t.app.services;
    const repo = await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', w.org.id).where('name', '=', 'repo').executeTakeFirstOrThrow();
    const m = await s.db.insertInto('manifests').values({
      repository_id: repo.id, digest: `sha256:${'e'.repeat(64)}`, media_type: 'application/vnd.oci.image.manifest.v1+json', bytes: Buffer.from('{}'), size: 2,
      config_digest: null, config_media_type: null, artifact_type: null, subject_digest: null, annotations: null, layers_size: 0, created_at: s.now(),
    }).returning('id').executeTakeFirstOrThrow();
    await s.db.insertInto('tags').values({ repository_id: repo.id, name: 'frozen', manifest_id: m.id, lifetime_start: s.now(), lifetime_end: null, hidden: 0, immutable: 1, reversion: 0 }).execute();
    try {
      const res = await post(BASE, { upstream_registry: 'quay.io' });
      assert.deepEqual(res.body, apiError(400, 'invalid_request', 'Cannot convert organization to proxy cache: immutable tags exist'));
    } finally {
      await s.db.deleteFrom('tags').where('manifest_id', '=', m.id).execute();
      await s.db.deleteFrom('manifests').where('id', '=', m.id).execute();
    }
  });

  test('a missing organization is a 404 for whoever may manage any organization', async () => {
    assert.equal((await w.api('GET', '/organization/nosuch/proxycache', { caller: 'orgadmin' })).status, 403);
    assert.equal((await w.api('DELETE', '/organization/nosuch/proxycache')).status, 403);
  });
});

describe('validateproxycache', () => {
  test('an open registry is Valid', async () => {
    const res = await post(VALIDATE, { upstream_registry: open.host, insecure: true });
    assert.equal(res.status, 202);
    assert.equal(res.body, 'Valid');
  });

  test('Basic auth: right credentials are Valid, none are Anonymous, wrong ones fail to log in', async () => {
    const ok = await post(VALIDATE, { upstream_registry: locked.host, insecure: true, upstream_registry_username: 'puller', upstream_registry_password: 'sesame' });
    assert.deepEqual(ok, { status: 202, body: 'Valid' });
    const anon = await post(VALIDATE, { upstream_registry: locked.host, insecure: true });
    assert.deepEqual(anon, { status: 202, body: 'Anonymous' });
    const bad = await post(VALIDATE, { upstream_registry: locked.host, insecure: true, upstream_registry_username: 'puller', upstream_registry_password: 'wrong' });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body, apiError(400, 'invalid_request', 'Failed login to remote registry. Please verify entered details and try again.'));
  });

  test('Docker token auth (a Quay-like upstream): credentials are exchanged for a token', async () => {
    const host = new URL(w.t.url).host;
    const ok = await post(VALIDATE, { upstream_registry: host, insecure: true, upstream_registry_username: 'orgadmin', upstream_registry_password: PASSWORD });
    assert.deepEqual(ok, { status: 202, body: 'Valid' });
    const bad = await post(VALIDATE, { upstream_registry: host, insecure: true, upstream_registry_username: 'orgadmin', upstream_registry_password: 'nope' });
    assert.deepEqual(bad.body, apiError(400, 'invalid_request', 'Failed login to remote registry. Please verify entered details and try again.'));
    // This upstream allows anonymous access: its token service hands out an anonymous token and
    // /v2/ then answers 200, so Quay's check says Valid too.
    const anon = await post(VALIDATE, { upstream_registry: host, insecure: true });
    assert.deepEqual(anon, { status: 202, body: 'Valid' });
  });

  test('an unreachable upstream fails to log in; nothing is stored', async () => {
    const res = await post(VALIDATE, { upstream_registry: '127.0.0.1:1', insecure: true });
    assert.equal(res.status, 400);
    assert.equal(res.body.error_message, 'Failed login to remote registry. Please verify entered details and try again.');
    assert.equal((await w.t.app.services.db.selectFrom('proxy_cache_configs').select('id').execute()).length, 0);
  });
});

test('the routes do not exist with FEATURE_PROXY_CACHE off', async () => {
  const off = await createWorld({});
  try {
    assert.equal((await off.api('GET', BASE)).status, 404);
    assert.equal((await off.api('POST', VALIDATE, { body: { upstream_registry: 'quay.io' } })).status, 404);
  } finally {
    await off.close();
  }
});

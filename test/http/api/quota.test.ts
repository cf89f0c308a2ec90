// /api/v1 quotas field by field: organization quotas and their limits, the caller's own quotas,
// the superuser's per-namespace quotas, the system default, and the quota_report figures.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type Caller, type World } from '../../support/world.ts';
import { json } from '../../support/api-expect.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { startTestApp } from '../../support/app.ts';
import { logKinds } from './client.ts';
import { createOrganization } from '../../../src/model/accounts.ts';

let w: World;
before(async () => { w = await createWorld({ FEATURE_QUOTA_MANAGEMENT: true }); });
after(async () => { await w?.close(); });

/** Quay's ApiError envelope. */
function apiError(status: number, type: string, message: string) {
  return { status, error_message: message, title: type, error_type: type, detail: message, type: `${w.t.url}/api/v1/error/${type}` };
}

async function call(method: string, path: string, caller: Caller, body?: unknown) {
  return json(await w.api(method, path, { caller, scopes: ['super:user', 'user:admin', 'org:admin'], body }));
}

async function quotaIdOf(name: string): Promise<number> {
  const r = await w.t.app.services.db.selectFrom('quotas').innerJoin('users', 'users.id', 'quotas.namespace_id').select('quotas.id')
    .where('users.username', '=', name).executeTakeFirstOrThrow();
  return r.id;
}

const view = (id: number | null, limitBytes: number, limit: string, limits: unknown[] = [], extra: Record<string, unknown> = {}) => ({
  id, limit_bytes: limitBytes, limit, default_config: false, limits, default_config_exists: false, ...extra,
});

describe('organization quota', () => {
  test('create, read, change and delete', async () => {
    assert.deepEqual(await call('GET', '/organization/acme/quota', 'member'), { status: 200, body: [] });
    assert.deepEqual(await call('POST', '/organization/acme/quota', 'superuser', { limit_bytes: 1000 }), { status: 201, body: 'Created' });
    const id = await quotaIdOf('acme');
    assert.deepEqual(await call('GET', '/organization/acme/quota', 'member'), { status: 200, body: [view(id, 1000, '1000.0 Byte')] });
    assert.deepEqual(await call('GET', `/organization/acme/quota/${id}`, 'readonlySuperuser'), { status: 200, body: view(id, 1000, '1000.0 Byte') });
    assert.deepEqual(await call('POST', '/organization/acme/quota', 'superuser', { limit: '5 GiB' }),
      { status: 400, body: apiError(400, 'invalid_request', "Organization quota for 'acme' already exists") });

    const put = (body: unknown) => call('PUT', `/organization/acme/quota/${id}`, 'superuser', body);
    assert.deepEqual(await put({ limit: '10 GiB' }), { status: 200, body: view(id, 10 * 2 ** 30, '10.0 GiB') });
    assert.deepEqual(await put({ limit: '5 G' }), { status: 200, body: view(id, 5e9, '4.7 GiB') });
    // Quay skips a zero or missing limit ("if limit_bytes:"), "0" included.
    for (const body of [{ limit_bytes: 0 }, {}, { limit: '0' }]) assert.deepEqual(await put(body), { status: 200, body: view(id, 5e9, '4.7 GiB') });
    assert.deepEqual(await put({ limit_bytes: -5 }), { status: 400, body: apiError(400, 'invalid_request', "Invalid quota size limit value: '-5'") });
    assert.deepEqual(await put({ limit: '10 B' }),
      { status: 400, body: apiError(400, 'invalid_request', 'Invalid limit format, use a number followed by a unit (e.g. 1GiB)') });
    assert.deepEqual(await put({ limit: '9 EiB' }), { status: 400, body: apiError(400, 'invalid_request', 'Unsupported quota size limit.') });
    for (const body of [{ limit: '1.5 GiB' }, { limit_bytes: 5, limit: '1 GiB' }, { limit_bytes: '5' }, { other: 1 }]) {
      const r = await put(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error_type, 'invalid_request');
    }
    assert.deepEqual(await call('GET', `/organization/acme/quota/${id}`, 'member'), { status: 200, body: view(id, 5e9, '4.7 GiB') });
    for (const bad of ['abc', '999999', '1e3']) assert.equal((await call('GET', `/organization/acme/quota/${bad}`, 'member')).status, 404);
    assert.equal((await call('GET', '/organization/nosuchorg/quota', 'superuser')).status, 404);
    assert.equal((await call('POST', '/organization/nosuchorg/quota', 'superuser', { limit_bytes: 5 })).status, 404);

    assert.deepEqual(await call('DELETE', `/organization/acme/quota/${id}`, 'superuser'), { status: 204, body: undefined });
    assert.equal((await call('GET', `/organization/acme/quota/${id}`, 'member')).status, 404);
    assert.deepEqual(await call('GET', '/organization/acme/quota', 'member'), { status: 200, body: [] });
    const logs = (await logKinds(w.t)).filter((l) => l.kind.includes('quota'));
    assert.deepEqual(logs.map((l) => [l.kind, l.account_id, l.performer_id, l.metadata]), [
      ['org_create_quota', w.org.id, w.users.root.id, { namespace: 'acme', quota_id: id, limit_bytes: 1000 }],
      ['org_change_quota', w.org.id, w.users.root.id, { namespace: 'acme', quota_id: id, limit_bytes: 10 * 2 ** 30 }],
      ['org_change_quota', w.org.id, w.users.root.id, { namespace: 'acme', quota_id: id, limit_bytes: 5e9 }],
      ['org_delete_quota', w.org.id, w.users.root.id, { namespace: 'acme', quota_id: id }],
    ]);
  });

  test('limits: create, list, read, change, delete, with Quay\'s errors', async () => {
    assert.equal((await call('POST', '/organization/acme/quota', 'superuser', { limit: '1000' })).status, 201);
    const id = await quotaIdOf('acme');
    const base = `/organization/acme/quota/${id}/limit`;
    const post = (body: unknown) => call('POST', base, 'superuser', body);
    assert.deepEqual(await post({ type: 'Warning', threshold_percent: 80 }), { status: 201, body: 'Created' });
    assert.deepEqual(await post({ type: 'reject', threshold_percent: 100 }), { status: 201, body: 'Created' });
    const limits = await w.t.app.services.db.selectFrom('quota_limits').select('id').where('quota_id', '=', id).orderBy('id').execute();
    const [warn, reject] = limits.map((l) => l.id);
    assert.deepEqual(await post({ type: 'Warning', threshold_percent: 80 }), { status: 400, body: apiError(400, 'invalid_request', 'Quota limit already exists') });
    // Quay's lookup ignores a zero threshold: any Warning limit is then "already there".
    assert.deepEqual(await post({ type: 'Warning', threshold_percent: 0 }), { status: 400, body: apiError(400, 'invalid_request', 'Quota limit already exists') });
    // Errors Quay's handler does not catch: the bare {"message"} body.
    assert.deepEqual(await post({ type: 'Reject', threshold_percent: 150 }), { status: 400, body: { message: 'Quota limit threshold must be between 1 and 100' } });
    assert.deepEqual(await post({ type: 'Bogus', threshold_percent: 50 }), { status: 400, body: { message: 'Quota type must be one of [Warning, Reject]' } });
    assert.equal((await post({ type: 'Warning' })).status, 400);

    const lv = (lid: number | undefined, type: string, pct: number) => ({ id: lid, type, limit_percent: pct });
    assert.deepEqual(await call('GET', base, 'member'), { status: 200, body: [lv(warn, 'Warning', 80), lv(reject, 'Reject', 100)] });
    assert.deepEqual(await call('GET', `${base}/${reject}`, 'creator'), { status: 200, body: lv(reject, 'Reject', 100) });
    assert.deepEqual(await call('GET', `/organization/acme/quota/${id}`, 'member'),
      { status: 200, body: view(id, 1000, '1000.0 Byte', [lv(warn, 'Warning', 80), lv(reject, 'Reject', 100)]) });

    // PUT answers with the parent quota.
    assert.deepEqual(await call('PUT', `${base}/${warn}`, 'superuser', { threshold_percent: 85, type: 'warning' }),
      { status: 200, body: view(id, 1000, '1000.0 Byte', [lv(warn, 'Warning', 85), lv(reject, 'Reject', 100)]) });
    assert.deepEqual(await call('PUT', `${base}/${warn}`, 'superuser', { type: 'Reject', threshold_percent: 0 }),
      { status: 400, body: { message: 'Quota limit threshold must be between 1 and 100' } });
    assert.deepEqual(await call('PUT', `${base}/${warn}`, 'superuser', { type: 'nope' }), { status: 400, body: { message: 'Quota type must be one of [Warning, Reject]' } });
    assert.deepEqual(await call('GET', `${base}/${warn}`, 'member'), { status: 200, body: lv(warn, 'Warning', 85) }, 'refused changes wrote nothing');

    // A limit of another namespace's quota: Quay's bare 400 with an empty message.
    const s = w.t.app.services;
    await createOrganization(s, 'otherorg', w.users.orgadmin);
    assert.equal((await call('POST', '/organization/otherorg/quota', 'superuser', { limit_bytes: 10 })).status, 201);
    const other = await quotaIdOf('otherorg');
    assert.equal((await call('POST', `/organization/otherorg/quota/${other}/limit`, 'superuser', { type: 'Reject', threshold_percent: 90 })).status, 201);
    const foreign = (await s.db.selectFrom('quota_limits').select('id').where('quota_id', '=', other).executeTakeFirstOrThrow()).id;
    assert.deepEqual(await call('GET', `${base}/${foreign}`, 'member'), { status: 400, body: { message: '' } });
    assert.deepEqual(await call('DELETE', `${base}/${foreign}`, 'superuser'), { status: 400, body: { message: '' } });
    assert.equal((await call('GET', `${base}/123456`, 'member')).status, 404);
    assert.equal((await call('GET', `/organization/acme/quota/${other}/limit`, 'orgadmin')).status, 404, 'a quota of another namespace');

    assert.deepEqual(await call('DELETE', `${base}/${warn}`, 'superuser'), { status: 204, body: undefined });
    assert.equal((await call('GET', `${base}/${warn}`, 'member')).status, 404);
    // Several Reject limits may coexist (Quay's duplicate check only compares type and threshold).
    assert.deepEqual(await post({ type: 'Reject', threshold_percent: 90 }), { status: 201, body: 'Created' });
    assert.deepEqual((await call('GET', base, 'member')).body.map((l: { type: string; limit_percent: number }) => [l.type, l.limit_percent]), [['Reject', 100], ['Reject', 90]]);
    const kinds = (await logKinds(w.t)).map((l) => l.kind).filter((k) => k.includes('quota_limit'));
    assert.deepEqual(kinds, ['org_create_quota_limit', 'org_create_quota_limit', 'org_change_quota_limit', 'org_create_quota_limit', 'org_delete_quota_limit', 'org_create_quota_limit']);
    // Deleting the quota takes its limits with it.
    assert.equal((await call('DELETE', `/organization/acme/quota/${id}`, 'superuser')).status, 204);
    assert.equal((await s.db.selectFrom('quota_limits').select('id').where('quota_id', '=', id).execute()).length, 0);
  });
});

describe('user quotas and the superuser endpoints', () => {
  test('a superuser sets a user\'s quota; the user reads it (and only theirs)', async () => {
    const su = (method: string, path: string, body?: unknown) => call(method, path, 'superuser', body);
    assert.deepEqual(await su('GET', '/superuser/users/member/quota'), { status: 200, body: [] });
    assert.deepEqual(await su('POST', '/superuser/users/member/quota', { limit: '1 GiB' }), { status: 201, body: 'Created' });
    const id = await quotaIdOf('member');
    assert.deepEqual(await su('POST', '/superuser/users/member/quota', { limit_bytes: 5 }),
      { status: 400, body: apiError(400, 'invalid_request', "Quota for 'member' already exists") });
    assert.deepEqual(await su('POST', '/superuser/users/creator/quota', { limit: '10 B' }), { status: 400, body: apiError(400, 'invalid_request', 'Invalid limit format') });
    assert.deepEqual(await su('POST', '/superuser/users/creator/quota', { limit: '0 Gi' }),
      { status: 400, body: apiError(400, 'invalid_request', "Invalid quota size limit value: '0.0'") });
    assert.equal((await su('POST', '/superuser/users/nosuchuser/quota', { limit_bytes: 5 })).status, 404);
    assert.equal((await su('GET', '/superuser/users/nosuchuser/quota')).status, 404);
    assert.equal((await su('POST', '/superuser/users/acme+bot/quota', { limit_bytes: 5 })).status, 404, 'robots have no quota');

    const gib = view(id, 2 ** 30, '1.0 GiB');
    assert.deepEqual(await call('GET', '/superuser/users/member/quota', 'readonlySuperuser'), { status: 200, body: [gib] });
    assert.deepEqual(await call('GET', '/user/quota', 'member'), { status: 200, body: [gib] });
    assert.deepEqual(await call('GET', `/user/quota/${id}`, 'member'), { status: 200, body: gib });
    assert.deepEqual(await call('GET', `/user/quota/${id}/limit`, 'member'), { status: 200, body: [] });
    assert.deepEqual(await call('GET', '/user/quota', 'creator'), { status: 200, body: [] });
    assert.equal((await call('GET', `/user/quota/${id}`, 'creator')).status, 404, 'another user\'s quota');

    // Limits on a user quota go through the organization path, as in Quay.
    assert.equal((await su('POST', `/organization/member/quota/${id}/limit`, { type: 'Warning', threshold_percent: 70 })).status, 201);
    const lid = (await w.t.app.services.db.selectFrom('quota_limits').select('id').where('quota_id', '=', id).executeTakeFirstOrThrow()).id;
    const withLimit = view(id, 2 ** 30, '1.0 GiB', [{ id: lid, type: 'Warning', limit_percent: 70 }]);
    assert.deepEqual(await call('GET', `/user/quota/${id}/limit`, 'member'), { status: 200, body: [{ id: lid, type: 'Warning', limit_percent: 70 }] });
    // endpoints.json: getUserQuotaLimit answers with the quota, not the limit.
    assert.deepEqual(await call('GET', `/user/quota/${id}/limit/${lid}`, 'member'), { status: 200, body: withLimit });
    assert.equal((await call('GET', `/user/quota/${id}/limit/999999`, 'member')).status, 404);
    assert.deepEqual(await call('GET', `/organization/member/quota/${id}`, 'member'), { status: 200, body: withLimit }, 'a user administers their own namespace');
    assert.equal((await call('GET', '/organization/member/quota', 'member')).status, 404, 'the list is for organizations only');

    assert.deepEqual(await su('PUT', `/superuser/users/member/quota/${id}`, { limit_bytes: 2048 }), { status: 200, body: view(id, 2048, '2.0 KiB', withLimit.limits) });
    assert.deepEqual(await su('PUT', `/superuser/users/member/quota/${id}`, { limit: '3 Ki' }), { status: 200, body: view(id, 3072, '3.0 KiB', withLimit.limits) });
    assert.equal((await su('PUT', `/superuser/users/member/quota/${id}`, { limit: 'x' })).status, 400);
    assert.equal((await su('PUT', `/superuser/users/creator/quota/${id}`, { limit_bytes: 5 })).status, 404, 'the quota of another namespace');
    assert.deepEqual(await su('DELETE', `/superuser/users/member/quota/${id}`), { status: 204, body: undefined });
    assert.deepEqual(await call('GET', '/user/quota', 'member'), { status: 200, body: [] });
  });

  test('the organization path of the superuser endpoints', async () => {
    const su = (method: string, path: string, body?: unknown) => call(method, path, 'superuser', body);
    const raw = await w.api('POST', '/superuser/organization/acme/quota', { caller: 'superuser', scopes: ['super:user'], body: { limit_bytes: 4096 } });
    assert.equal(raw.status, 201);
    assert.match(raw.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await raw.text(), '"Created"');
    const id = await quotaIdOf('acme');
    assert.deepEqual(await su('GET', '/superuser/organization/acme/quota'), { status: 200, body: [view(id, 4096, '4.0 KiB')] });
    assert.deepEqual(await su('PUT', `/superuser/organization/acme/quota/${id}`, {}), { status: 200, body: view(id, 4096, '4.0 KiB') });
    assert.deepEqual(await su('DELETE', `/superuser/organization/acme/quota/${id}`), { status: 204, body: undefined });
    assert.deepEqual(await su('GET', '/superuser/organization/acme/quota'), { status: 200, body: [] });
  });
});

describe('usage figures in quota_report', () => {
  test('organization, user and repository views report the exact bytes in use', async () => {
    const s = w.t.app.services;
    const c = new RegistryClient(w.t.url, 'orgadmin', PASSWORD);
    const img = await c.pushImage('acme/sized', 'v1', 'q');
    await c.pushImage('acme/sized2', 'v1', 'r');
    const sizes = await s.db.selectFrom('manifest_blobs').innerJoin('repositories', 'repositories.id', 'manifest_blobs.repository_id')
      .innerJoin('blobs', 'blobs.id', 'manifest_blobs.blob_id').select(['repositories.name', 'blobs.size', 'blobs.digest'])
      .where('repositories.namespace_id', '=', w.org.id).execute();
    const inRepo = (name: string) => sizes.filter((r) => r.name === name).reduce((n, r) => n + Number(r.size), 0);
    const total = inRepo('sized') + inRepo('sized2');
    assert.ok(sizes.some((r) => r.digest === img.config), 'config blobs are counted');
    assert.equal((await call('POST', '/organization/acme/quota', 'superuser', { limit_bytes: 100_000 })).status, 201);

    const org = await call('GET', '/organization/acme', 'member');
    assert.deepEqual(org.body.quota_report, { quota_bytes: total, configured_quota: 100_000, running_backfill: 'complete', backfill_status: 'complete' });
    const repos = await call('GET', '/repository?namespace=acme', 'orgadmin');
    const byName = Object.fromEntries(repos.body.repositories.map((r: { name: string; quota_report: unknown }) => [r.name, r.quota_report]));
    assert.deepEqual(byName.sized, { quota_bytes: inRepo('sized'), configured_quota: 100_000 });
    assert.deepEqual(byName.sized2, { quota_bytes: inRepo('sized2'), configured_quota: 100_000 });
    assert.deepEqual(byName.repo, { quota_bytes: 0, configured_quota: 100_000 });

    const mc = new RegistryClient(w.t.url, 'member', PASSWORD);
    await mc.pushImage('member/own', 'v1', 'm');
    const mine = await s.db.selectFrom('manifest_blobs').innerJoin('blobs', 'blobs.id', 'manifest_blobs.blob_id')
      .innerJoin('repositories', 'repositories.id', 'manifest_blobs.repository_id').select('blobs.size').where('repositories.namespace_id', '=', w.users.member.id).execute();
    const me = await call('GET', '/user/', 'member');
    assert.deepEqual(me.body.quota_report, {
      quota_bytes: mine.reduce((n, r) => n + Number(r.size), 0), configured_quota: null, running_backfill: 'complete', backfill_status: 'complete',
    });
    await call('DELETE', `/organization/acme/quota/${await quotaIdOf('acme')}`, 'superuser');
  });
});

describe('system default quota and feature flags', () => {
  test('DEFAULT_SYSTEM_REJECT_QUOTA_BYTES is listed for organizations without a quota and rejects pushes at the limit', async () => {
    const d = await createWorld({ FEATURE_QUOTA_MANAGEMENT: true, DEFAULT_SYSTEM_REJECT_QUOTA_BYTES: 5000 });
    try {
      const get = async (path: string) => json(await d.api('GET', path, { caller: 'member' }));
      assert.deepEqual(await get('/organization/acme/quota'), {
        status: 200, body: [{ id: null, limit_bytes: 5000, limit: '4.9 KiB', default_config: true, limits: [], default_config_exists: true }],
      });
      assert.equal((await get('/organization/acme')).body.quota_report.configured_quota, 5000);
      const c = new RegistryClient(d.t.url, 'orgadmin', PASSWORD);
      const big = Buffer.alloc(6000, 7);
      const digest = await c.pushBlob('acme/big', big);
      const cfg = Buffer.from('{"architecture":"amd64","os":"linux"}');
      const cfgDigest = await c.pushBlob('acme/big', cfg);
      const manifest = JSON.stringify({
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: cfg.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: big.length }],
      });
      const r = await c.pushManifest('acme/big', 'v1', manifest);
      assert.equal(r.status, 403);
      assert.deepEqual(await r.json(), { errors: [{ code: 'DENIED', message: 'Quota has been exceeded on namespace', detail: {} }] });

      // A quota of its own replaces the default.
      assert.equal((await d.api('POST', '/organization/acme/quota', { caller: 'superuser', scopes: ['super:user'], body: { limit_bytes: 10_000 } })).status, 201);
      const own = (await get('/organization/acme/quota')).body;
      assert.deepEqual(own.map((q: { default_config: boolean; default_config_exists: boolean; limit_bytes: number }) => [q.limit_bytes, q.default_config, q.default_config_exists]), [[10_000, false, true]]);
      assert.equal((await c.pushManifest('acme/big', 'v1', manifest)).status, 201, 'a quota without limits does not reject');
    } finally {
      await d.close();
    }
  });

  test('without FEATURE_QUOTA_MANAGEMENT (or FEATURE_EDIT_QUOTA) the endpoints do not exist', async () => {
    for (const overrides of [{}, { FEATURE_QUOTA_MANAGEMENT: true, FEATURE_EDIT_QUOTA: false }]) {
      const t = await startTestApp(overrides);
      try {
        for (const path of ['/api/v1/user/quota', '/api/v1/organization/acme/quota', '/api/v1/superuser/users/x/quota']) {
          const r = await fetch(`${t.url}${path}`);
          assert.equal(r.status, 404, `${JSON.stringify(overrides)} ${path}`);
          await r.arrayBuffer();
        }
      } finally {
        await t.close();
      }
    }
  });
});

describe('discovery', () => {
  test('lists the 22 quota operations under Quay\'s nicknames', async () => {
    const d = (await json(await fetch(`${w.t.url}/api/v1/discovery`))).body;
    const ops: Record<string, string> = {};
    for (const [path, item] of Object.entries(d.paths as Record<string, Record<string, { operationId?: string }>>)) {
      if (!path.includes('quota')) continue;
      for (const [method, op] of Object.entries(item)) if (op && typeof op === 'object' && op.operationId) ops[`${method.toUpperCase()} ${path}`] = op.operationId;
    }
    assert.deepEqual(ops, {
      'GET /api/v1/organization/{orgname}/quota': 'listOrganizationQuota',
      'POST /api/v1/organization/{orgname}/quota': 'createOrganizationQuota',
      'GET /api/v1/organization/{orgname}/quota/{quota_id}': 'getOrganizationQuota',
      'PUT /api/v1/organization/{orgname}/quota/{quota_id}': 'changeOrganizationQuota',
      'DELETE /api/v1/organization/{orgname}/quota/{quota_id}': 'deleteOrganizationQuota',
      'GET /api/v1/organization/{orgname}/quota/{quota_id}/limit': 'listOrganizationQuotaLimit',
      'POST /api/v1/organization/{orgname}/quota/{quota_id}/limit': 'createOrganizationQuotaLimit',
      'GET /api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}': 'getOrganizationQuotaLimit',
      'PUT /api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}': 'changeOrganizationQuotaLimit',
      'DELETE /api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}': 'deleteOrganizationQuotaLimit',
      'GET /api/v1/user/quota': 'listUserQuota',
      'GET /api/v1/user/quota/{quota_id}': 'getUserQuota',
      'GET /api/v1/user/quota/{quota_id}/limit': 'listUserQuotaLimit',
      'GET /api/v1/user/quota/{quota_id}/limit/{limit_id}': 'getUserQuotaLimit',
      'GET /api/v1/superuser/users/{namespace}/quota': 'listUserQuotaSuperUser',
      'POST /api/v1/superuser/users/{namespace}/quota': 'createUserQuotaSuperUser',
      'PUT /api/v1/superuser/users/{namespace}/quota/{quota_id}': 'changeUserQuotaSuperUser',
      'DELETE /api/v1/superuser/users/{namespace}/quota/{quota_id}': 'deleteUserQuotaSuperUser',
      'GET /api/v1/superuser/organization/{namespace}/quota': 'listOrganizationQuotaSuperUser',
      'POST /api/v1/superuser/organization/{namespace}/quota': 'createOrganizationQuotaSuperUser',
      'PUT /api/v1/superuser/organization/{namespace}/quota/{quota_id}': 'changeOrganizationQuotaSuperUser',
      'DELETE /api/v1/superuser/organization/{namespace}/quota/{quota_id}': 'deleteOrganizationQuotaSuperUser',
    });
    const create = d.paths['/api/v1/organization/{orgname}/quota'].post;
    assert.deepEqual(create.security, [{ oauth2_implicit: ['super:user'] }]);
    assert.equal(d.definitions.NewOrgQuota.oneOf.length, 2);
  });
});

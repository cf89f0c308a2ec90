// Quota usage and enforcement, driven through /v2 like a client would: usage is exactly the unique
// blobs of the namespace's manifest rows, kept up to date on push and garbage collection (also when
// both race), repaired by the recount job, and enforced as Quay does on manifests and uploads.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { createOrganization, createUser, type User } from '../../src/model/accounts.ts';
import type { Services } from '../../src/model/context.ts';
import { collectGarbage } from '../../src/model/gc.ts';
import { claim, complete } from '../../src/model/queue.ts';
import { humanSize, parseHumanSize } from '../../src/model/quota.ts';
import { enqueueQuotaRecount, QUOTA_RECOUNT_QUEUE } from '../../src/model/quota-usage.ts';
import { workerHandlers } from '../../src/workers/index.ts';

let t: TestApp;
let s: Services;
let alice: User;
let corp: User;
let c: RegistryClient;
let offset = 0;
const HOUR = 3600_000;

before(async () => {
  t = await startTestApp({ FEATURE_QUOTA_MANAGEMENT: true });
  s = t.app.services;
  const real = s.now;
  s.now = () => real() + offset;
  alice = await createUser(s, { username: 'alice', password: 'password1' });
  corp = await createOrganization(s, 'corp', alice);
  // Deleted tags are collectable at once: no time machine in these namespaces.
  await s.db.updateTable('users').set({ tag_expiration_s: 0 }).where('id', 'in', [alice.id, corp.id]).execute();
  c = new RegistryClient(t.url, 'alice', 'password1');
});
after(() => t.close());

/** Moves the clock (and renews the client, whose tokens were issued in the old time). */
function advance(ms: number): void {
  offset += ms;
  c = new RegistryClient(t.url, 'alice', 'password1');
}

interface Pushed { digest: string; manifest: string; config: string; layers: string[]; bytes: number }

/** Uploads an image's blobs (layers of the given sizes, or existing layer bytes) without its manifest. */
async function uploadImage(repo: string, layers: (number | Buffer)[]): Promise<Pushed> {
  const layerData = layers.map((l) => (typeof l === 'number' ? randomBytes(l) : l));
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layerData.map((d) => sha256(d)) }, nonce: Math.random() }));
  const digests: string[] = [];
  for (const d of layerData) digests.push(await c.pushBlob(repo, d));
  const config = await c.pushBlob(repo, configBytes);
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configBytes.length },
    layers: layerData.map((d, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digests[i], size: d.length })),
  });
  const bytes = configBytes.length + [...new Map(layerData.map((d) => [sha256(d), d.length]))].reduce((n, [, l]) => n + l, 0);
  return { digest: sha256(manifest), manifest, config, layers: digests, bytes };
}

async function putManifest(repo: string, ref: string, img: Pushed): Promise<Response> {
  return c.pushManifest(repo, ref, img.manifest);
}

async function pushImage(repo: string, ref: string, layers: (number | Buffer)[]): Promise<Pushed> {
  const img = await uploadImage(repo, layers);
  const r = await putManifest(repo, ref, img);
  assert.equal(r.status, 201, await r.text());
  return img;
}

async function deleteTag(repo: string, ref: string): Promise<void> {
  const r = await c.req('DELETE', `/v2/${repo}/manifests/${ref}`, { scope: `repository:${repo}:*` });
  assert.equal(r.status, 202, await r.text());
}

/** What usage must be, computed independently from the manifest rows. */
async function truth(namespaceId: number): Promise<{ ns: number; repos: Record<string, number> }> {
  const rows = await s.db.selectFrom('manifest_blobs').innerJoin('repositories', 'repositories.id', 'manifest_blobs.repository_id')
    .innerJoin('blobs', 'blobs.id', 'manifest_blobs.blob_id')
    .select(['repositories.id as repo', 'blobs.id as blob', 'blobs.size']).where('repositories.namespace_id', '=', namespaceId).execute();
  const ns = new Map<number, number>();
  const repos: Record<string, Map<number, number>> = {};
  for (const r of rows) {
    ns.set(r.blob, Number(r.size));
    (repos[r.repo] ??= new Map()).set(r.blob, Number(r.size));
  }
  const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const all = await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', namespaceId).execute();
  return { ns: sum(ns), repos: Object.fromEntries(all.map((r) => [String(r.id), repos[r.id] ? sum(repos[r.id]!) : 0])) };
}

/** The figures the incremental accounting keeps. */
async function figures(namespaceId: number): Promise<{ ns: number; repos: Record<string, number> }> {
  const ns = await s.db.selectFrom('namespace_sizes').select('size_bytes').where('namespace_id', '=', namespaceId).executeTakeFirst();
  const all = await s.db.selectFrom('repositories').leftJoin('repository_sizes', 'repository_sizes.repository_id', 'repositories.id')
    .select(['repositories.id', 'repository_sizes.size_bytes']).where('repositories.namespace_id', '=', namespaceId).execute();
  return { ns: Number(ns?.size_bytes ?? 0), repos: Object.fromEntries(all.map((r) => [String(r.id), Number(r.size_bytes ?? 0)])) };
}

async function assertExact(namespaceId: number): Promise<number> {
  const want = await truth(namespaceId);
  assert.deepEqual(await figures(namespaceId), want);
  return want.ns;
}

/** Claims and runs the due recount jobs with the registered handler; returns how many ran. */
async function runRecountJobs(): Promise<number> {
  const handler = workerHandlers(s)[QUOTA_RECOUNT_QUEUE];
  assert.ok(handler, 'the recount handler is registered in workerHandlers()');
  const jobs = await claim(s, QUOTA_RECOUNT_QUEUE, { leaseMs: 60_000, limit: 10 });
  for (const job of jobs) {
    await handler(job, new AbortController().signal, pino({ level: 'silent' }));
    assert.equal(await complete(s, job), true);
  }
  return jobs.length;
}

async function repoId(ns: string, name: string): Promise<number> {
  const r = await s.db.selectFrom('repositories').innerJoin('users', 'users.id', 'repositories.namespace_id').select('repositories.id')
    .where('users.username', '=', ns).where('repositories.name', '=', name).executeTakeFirstOrThrow();
  return r.id;
}

describe('sizes in Quay\'s notation', () => {
  test('human limits parse as bitmath does', () => {
    const cases: [string, number | null][] = [
      ['10 GiB', 10 * 2 ** 30], ['10Gi', 10 * 2 ** 30], ['10 G', 1e10], ['10 GB', 1e10], ['10 K', 10_000], ['10 KB', 10_000],
      ['10 Ki', 10_240], ['1 Pi', 2 ** 50], ['2 T', 2e12], ['100', 100], ['5 Y', 5 * 1e24 /* a float product, as in Python */], ['10 B', null], ['10B', null], ['GiB', null],
    ];
    for (const [text, want] of cases) assert.equal(parseHumanSize(text), want, text);
  });

  test('sizes print with the best binary prefix and one decimal, ties to even', () => {
    const cases: [number, string][] = [
      [1000, '1000.0 Byte'], [1024, '1.0 KiB'], [1536, '1.5 KiB'], [10 * 2 ** 30, '10.0 GiB'], [1.25 * 2 ** 30, '1.2 GiB'],
      [1.75 * 2 ** 20, '1.8 MiB'], [5e9, '4.7 GiB'], [2 ** 50 - 1, '1.0 PiB'], [2 ** 80, '1.0 YiB'], [2 ** 90, '1024.0 YiB'], [0, '0.0 Bit'],
    ];
    for (const [n, want] of cases) assert.equal(humanSize(n), want, String(n));
  });
});

describe('usage', () => {
  test('a blob shared by two repositories of a namespace counts once; config blobs count', async () => {
    const img = await pushImage('alice/one', 'v1', [3000, 2000]);
    // The same image in a second repository: its blobs are mounted, not uploaded again.
    for (const d of [...img.layers, img.config]) {
      const m = await c.req('POST', `/v2/alice/two/blobs/uploads/?mount=${d}&from=alice/one`, { scope: ['repository:alice/two:pull,push', 'repository:alice/one:pull'] });
      assert.equal(m.status, 201, await m.text());
    }
    assert.equal((await putManifest('alice/two', 'v1', img)).status, 201);
    const f = await figures(alice.id);
    assert.equal(f.ns, img.bytes);
    assert.equal(f.repos[await repoId('alice', 'one')], img.bytes);
    assert.equal(f.repos[await repoId('alice', 'two')], img.bytes);
    // Another image reusing one layer adds only its new config and layer.
    const layer = randomBytes(2000);
    const other = await pushImage('alice/two', 'v2', [layer, 500]);
    assert.equal((await figures(alice.id)).ns, img.bytes + other.bytes);
    await assertExact(alice.id);
  });

  test('usage goes back down once deleted tags are collected, and only for blobs nothing else uses', async () => {
    const shared = randomBytes(4000);
    const a = await pushImage('alice/gc', 'a', [shared, 100]);
    const b = await pushImage('alice/gc', 'b', [shared, 200]);
    const before = await assertExact(alice.id);
    await deleteTag('alice/gc', 'a');
    // A deleted tag's manifest row still counts until the collector removes it.
    assert.equal((await figures(alice.id)).ns, before);
    advance(HOUR);
    await collectGarbage(s);
    assert.equal((await figures(alice.id)).ns, before - (a.bytes - shared.length));
    await assertExact(alice.id);
    await deleteTag('alice/gc', 'b');
    advance(HOUR);
    await collectGarbage(s);
    assert.equal((await figures(alice.id)).ns, before - a.bytes - b.bytes + shared.length);
    assert.equal((await figures(alice.id)).repos[await repoId('alice', 'gc')], 0);
    await assertExact(alice.id);
  });

  test('concurrent pushes sharing a new layer, and collection racing pushes, keep the figures exact', async () => {
    for (let round = 0; round < 3; round++) {
      const layer = randomBytes(1000 + round);
      const x = await uploadImage('corp/x', [layer]);
      const y = await uploadImage('corp/y', [layer]);
      const z = await uploadImage('corp/z', [layer, 300]);
      const res = await Promise.all([putManifest('corp/x', `r${round}`, x), putManifest('corp/y', `r${round}`, y), putManifest('corp/z', `r${round}`, z)]);
      assert.deepEqual(res.map((r) => r.status), [201, 201, 201], (await Promise.all(res.map((r) => r.text()))).join('\n'));
      await assertExact(corp.id);
      // Drop the previous round while pushing the next one's manifests.
      if (round > 0) {
        await deleteTag('corp/x', `r${round - 1}`);
        await deleteTag('corp/y', `r${round - 1}`);
      }
      advance(HOUR);
      const again = await uploadImage('corp/w', [layer, 50]);
      const [, pushed] = await Promise.all([collectGarbage(s), putManifest('corp/w', `r${round}`, again)]);
      assert.equal(pushed.status, 201);
      await assertExact(corp.id);
    }
  });

  test('a namespace without figures (data from before quotas) is counted from scratch on its next change', async () => {
    await pushImage('alice/legacy', 'v1', [700]);
    await s.db.deleteFrom('namespace_sizes').where('namespace_id', '=', alice.id).execute();
    await s.db.deleteFrom('repository_sizes').where('repository_id', 'in', s.db.selectFrom('repositories').select('id').where('namespace_id', '=', alice.id)).execute();
    await pushImage('alice/legacy', 'v2', [800]);
    // The namespace and the pushed repository are exact at once; the other repositories' figures
    // wait for the recount job the push queued (Quay's "waiting" backfill).
    const want = await truth(alice.id);
    const now = await figures(alice.id);
    assert.equal(now.ns, want.ns);
    const legacy = String(await repoId('alice', 'legacy'));
    assert.equal(now.repos[legacy], want.repos[legacy]);
    const status = () => s.db.selectFrom('namespace_sizes').select('backfill_status').where('namespace_id', '=', alice.id).executeTakeFirstOrThrow();
    assert.equal((await status()).backfill_status, 'waiting');
    assert.equal(await runRecountJobs(), 1);
    await assertExact(alice.id);
    assert.equal((await status()).backfill_status, 'complete');
  });

  test('the recount job agrees with the incremental figures after a mixed sequence, and repairs drift', async () => {
    const shared = randomBytes(1500);
    await pushImage('alice/mix1', 'a', [shared, 10]);
    await pushImage('alice/mix2', 'b', [shared]);
    await pushImage('alice/mix2', 'c', [20, 30]);
    await deleteTag('alice/mix1', 'a');
    advance(HOUR);
    await collectGarbage(s);
    await pushImage('alice/mix1', 'd', [shared, 40]);
    await deleteTag('alice/mix2', 'c');
    const incremental = await figures(alice.id);
    assert.deepEqual(incremental, await truth(alice.id));

    assert.equal(await enqueueQuotaRecount(s), true);
    assert.equal(await enqueueQuotaRecount(s), false, 'one live recount of everything at a time');
    assert.equal(await runRecountJobs(), 1);
    assert.deepEqual(await figures(alice.id), incremental, 'the recount finds nothing to change');

    // Drift (a lost update, a restore from backup): the job puts it right.
    await s.db.updateTable('namespace_sizes').set({ size_bytes: 12345 }).where('namespace_id', '=', alice.id).execute();
    await s.db.deleteFrom('repository_sizes').where('repository_id', '=', await repoId('alice', 'mix1')).execute();
    await s.db.updateTable('repository_sizes').set({ size_bytes: 1 }).where('repository_id', '=', await repoId('alice', 'mix2')).execute();
    assert.equal(await enqueueQuotaRecount(s, alice.id), true);
    assert.equal(await runRecountJobs(), 1);
    assert.deepEqual(await figures(alice.id), incremental);
  });
});

describe('enforcement', () => {
  let quotaId: number;

  async function notifications(kind: string): Promise<{ user_id: number; metadata: unknown }[]> {
    const rows = await s.db.selectFrom('user_notifications').select(['user_id', 'metadata']).where('kind', '=', kind).orderBy('id').execute();
    return rows.map((r) => ({ user_id: r.user_id, metadata: JSON.parse(r.metadata) }));
  }

  async function ociError(r: Response): Promise<unknown> {
    assert.equal(r.status, 403);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    return r.json();
  }

  const DENIED = { errors: [{ code: 'DENIED', message: 'Quota has been exceeded on namespace', detail: {} }] };

  before(async () => {
    const q = await s.db.insertInto('quotas').values({ namespace_id: corp.id, limit_bytes: 0 }).returning('id').executeTakeFirstOrThrow();
    quotaId = q.id;
    await s.db.insertInto('quota_limits').values([{ quota_id: quotaId, type: 'Warning', percent: 50 }, { quota_id: quotaId, type: 'Reject', percent: 100 }]).execute();
  });

  test('a push over Warning succeeds and tells the admins once; a push over Reject fails with nothing written', async () => {
    const start = await assertExact(corp.id);
    await s.db.updateTable('quotas').set({ limit_bytes: start + 10_000 }).where('id', '=', quotaId).execute();
    // Both images' blobs are uploaded while there is room; the manifests decide.
    const a = await uploadImage('corp/app', [6000]);
    const b = await uploadImage('corp/app', [4500]);
    const r1 = await putManifest('corp/app', 'a', a);
    assert.equal(r1.status, 201, await r1.text());
    assert.deepEqual(await notifications('quota_warning'), [{ user_id: alice.id, metadata: { namespace: 'corp' } }]);
    const again = await pushImage('corp/app', 'small', [10]);
    assert.equal((await notifications('quota_warning')).length, 1, 'no second notification while the first is undismissed');

    const logsBefore = await s.db.selectFrom('logs').select('id').where('kind', '=', 'push_repo').execute();
    const r2 = await putManifest('corp/app', 'b', b);
    assert.deepEqual(await ociError(r2), DENIED);
    assert.equal(await s.db.selectFrom('manifests').select('id').where('digest', '=', b.digest).executeTakeFirst(), undefined);
    assert.equal(await s.db.selectFrom('tags').select('id').where('name', '=', 'b').where('repository_id', '=', await repoId('corp', 'app')).executeTakeFirst(), undefined);
    assert.equal((await s.db.selectFrom('logs').select('id').where('kind', '=', 'push_repo').execute()).length, logsBefore.length);
    assert.equal(await assertExact(corp.id), start + a.bytes + again.bytes);
    assert.deepEqual(await notifications('quota_error'), [{ user_id: alice.id, metadata: { namespace: 'corp' } }]);
    // Pushed by digest it is refused just the same.
    assert.deepEqual(await ociError(await c.pushManifest('corp/app', b.digest, b.manifest)), DENIED);
  });

  test('over Reject, new uploads and re-pushes are refused; an upload that would cross it is cancelled at its PUT', async () => {
    const used = await assertExact(corp.id);
    await s.db.updateTable('quotas').set({ limit_bytes: used - 1 }).where('id', '=', quotaId).execute();
    const scope = 'repository:corp/app:pull,push';
    assert.deepEqual(await ociError(await c.req('POST', '/v2/corp/app/blobs/uploads/', { scope })), DENIED);
    const tagged = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id').select('manifests.bytes')
      .where('tags.name', '=', 'a').where('tags.repository_id', '=', await repoId('corp', 'app')).executeTakeFirstOrThrow();
    assert.deepEqual(await ociError(await c.pushManifest('corp/app', 'a-again', Buffer.from(tagged.bytes).toString('utf8'))), DENIED);

    await s.db.updateTable('quotas').set({ limit_bytes: used + 1000 }).where('id', '=', quotaId).execute();
    const start = await c.req('POST', '/v2/corp/app/blobs/uploads/', { scope });
    assert.equal(start.status, 202);
    const loc = start.headers.get('location')!;
    const data = randomBytes(1500);
    const patch = await c.req('PATCH', loc, { scope, body: data, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(patch.status, 202, await patch.text());
    assert.deepEqual(await ociError(await c.req('PUT', `${loc}?digest=${sha256(data)}`, { scope })), DENIED);
    const gone = await c.req('GET', loc, { scope });
    assert.equal(gone.status, 404);
    await gone.arrayBuffer();
    assert.equal(await s.db.selectFrom('blobs').select('id').where('digest', '=', sha256(data)).executeTakeFirst(), undefined);
  });

  test('without limits a quota does not block; without enforcement nothing does, and usage is still counted', async () => {
    await s.db.deleteFrom('quota_limits').where('quota_id', '=', quotaId).execute();
    await pushImage('corp/free', 'v1', [20_000]);
    await assertExact(corp.id);
    const off = await startTestApp({ FEATURE_QUOTA_MANAGEMENT: false });
    try {
      const os = off.app.services;
      const bob = await createUser(os, { username: 'bob', password: 'password1' });
      const q = await os.db.insertInto('quotas').values({ namespace_id: bob.id, limit_bytes: 10 }).returning('id').executeTakeFirstOrThrow();
      await os.db.insertInto('quota_limits').values({ quota_id: q.id, type: 'Reject', percent: 100 }).execute();
      const bc = new RegistryClient(off.url, 'bob', 'password1');
      await bc.pushImage('bob/app', 'v1');
      const size = await os.db.selectFrom('namespace_sizes').select('size_bytes').where('namespace_id', '=', bob.id).executeTakeFirstOrThrow();
      assert.ok(Number(size.size_bytes) > 10);
    } finally {
      await off.close();
    }
  });
});

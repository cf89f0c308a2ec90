// kill -9 of the collector at each named point of a pass (QUAYSIDE_GC_CRASH_AT in src/model/gc.ts):
// the server process runs its collector over fresh garbage and live content and dies at the step;
// right after, nothing points at anything missing; restarted, live content pulls whole; one more
// pass removes all the garbage, sweeps the orphans the crash left, and keeps the live content.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/server/app.ts';
import { principalFor, type Services } from '../../src/model/context.ts';
import type { Db } from '../../src/db/db.ts';
import { createUser } from '../../src/model/accounts.ts';
import { collectGarbage } from '../../src/model/gc.ts';
import { sweepOrphanUploads } from '../../src/model/upload-expiry.ts';
import { enqueue, periodicKey } from '../../src/model/queue.ts';
import { QUEUES } from '../../src/workers/index.ts';
import { findRepo } from '../../src/model/repositories.ts';
import { markRepositoryForDeletion } from '../../src/model/repository-api.ts';
import { layout } from '../../src/storage/driver.ts';
import { createTestDatabase, TEST_DB, type TestDatabase } from '../support/database.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { allProblems } from '../support/integrity.ts';
import { danglingReferences, garbageLeft, pullProblems } from '../support/gc-audit.ts';

/** Every named point, in the order a pass reaches them. */
const STEPS = [
  'repo-tags-deleted', 'tags-deleted', 'manifests-in-tx', 'manifests-deleted', 'repo-links-deleted', 'repo-uploads-deleted',
  'repo-row-deleted', 'links-deleted', 'blob-row-deleted', 'blob-object-deleted', 'orphan-swept',
];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let dataDir: string;
let db: TestDatabase;
let overrides: Record<string, unknown>;
let s: Services;
let handle: Db;
let server: ServerProcess;
let port: number;
let c: RegistryClient;
let alice: { id: number; username: string; kind: string };

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'quayside-gc-crash-'));
  db = await createTestDatabase(dataDir);
  // One-second grace window, time machine and collector period: garbage is ripe by the time the
  // collector of a freshly started server looks at it.
  overrides = { DB_URI: db.uri, PUSH_TEMP_TAG_EXPIRATION_SEC: 1, GARBAGE_COLLECTION_FREQUENCY: 1, QUAYSIDE_GC_SWEEP_SECONDS: 1 };
  const config = loadConfig({ dataDir, port: 0, host: '127.0.0.1', overrides, env: {}, warn: () => {} });
  ({ services: s, handle } = await openServices(config, pino({ level: 'silent' })));
  const u = await createUser(s, { username: 'alice', password: 'password1' });
  alice = { id: u.id, username: 'alice', kind: 'user' };
  await s.db.updateTable('users').set({ tag_expiration_s: 1 }).where('id', '=', u.id).execute();
  server = await startServerProcess({ dataDir, overrides });
  port = Number(new URL(server.url).port);
  c = new RegistryClient(server.url, 'alice', 'password1');
});

after(async () => {
  await server?.stop();
  await handle?.close();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Image { digest: string; body: string; blobs: string[] }

/** An image over the given layers (plus a fresh config), pushed by tag or, when ref is null, by digest. */
async function image(repo: string, ref: string | null, layers: Buffer[], extra: Record<string, unknown> = {}): Promise<Image> {
  const digests: string[] = [];
  for (const l of layers) digests.push(await c.pushBlob(repo, l));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: digests }, nonce: randomBytes(8).toString('hex') }));
  const cfg = await c.pushBlob(repo, config);
  const body = JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: config.length },
    layers: layers.map((l, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digests[i], size: l.length })), ...extra,
  });
  const res = await c.pushManifest(repo, ref ?? sha256(body), body);
  assert.equal(res.status, 201, await res.clone().text());
  return { digest: sha256(body), body, blobs: [...digests, cfg] };
}

async function index(repo: string, tag: string, children: Image[]): Promise<string> {
  const body = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((m) => ({ mediaType: OCI_MANIFEST, digest: m.digest, size: Buffer.byteLength(m.body) })) });
  const res = await c.pushManifest(repo, tag, body, OCI_INDEX);
  assert.equal(res.status, 201, await res.clone().text());
  return sha256(body);
}

async function referrer(repo: string, subject: Image): Promise<Image> {
  return image(repo, null, [randomBytes(300)], { subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: Buffer.byteLength(subject.body) } });
}

async function untag(repo: string, tag: string): Promise<void> {
  const res = await c.req('DELETE', `/v2/${repo}/manifests/${tag}`, { scope: `repository:${repo}:*` });
  assert.equal(res.status, 202);
}

interface World {
  /** repo:ref that must pull whole. */
  live: [string, string][];
  /** Blobs only garbage uses. */
  garbageBlobs: string[];
  garbageManifests: string[];
  doomedRepoId: number;
  doomedUpload: string;
  /** An object without a row, as a crashed upload leaves one. */
  orphan: string;
}

/** Live content and garbage of every kind, in repositories of their own. */
async function prepare(n: number): Promise<World> {
  // The same repositories every time (a deleted one's name is free at once): the client's tokens
  // stay valid, and the live content of earlier tests must survive every later crash too.
  const live = 'alice/live';
  const gone = 'alice/gone';
  const doomed = 'alice/doomed';
  const shared = randomBytes(2000);
  const garbageBlobs: string[] = [];
  const garbageManifests: string[] = [];

  // Live: a tagged image with a layer garbage also uses, an index of two digest-pushed children,
  // a referrer of the image.
  const v1 = await image(live, `v${n}`, [shared, randomBytes(1500)]);
  await index(live, `list${n}`, [await image(live, null, [randomBytes(900)]), await image(live, null, [randomBytes(900), shared])]);
  const sig1 = await referrer(live, v1);

  // Garbage: a deleted tag, a deleted index with its children, a referrer of a deleted image, a
  // manifest pushed by digest only, a blob nothing uses.
  const old = await image(gone, `old${n}`, [shared, randomBytes(1200)]);
  const sig = await referrer(gone, old);
  const kids = [await image(gone, null, [randomBytes(800)]), await image(gone, null, [randomBytes(800)])];
  const oldList = await index(gone, `oldlist${n}`, kids);
  const loose = await image(live, null, [randomBytes(700)]);
  const unused = await c.pushBlob(live, randomBytes(600));
  await untag(gone, `old${n}`);
  await untag(gone, `oldlist${n}`);
  for (const m of [old, sig, ...kids, loose]) {
    garbageManifests.push(m.digest);
    garbageBlobs.push(...m.blobs.filter((d) => d !== sha256(shared)));
  }
  garbageManifests.push(oldList);
  garbageBlobs.push(unused);

  // A repository deleted as DELETE /api/v1/repository does it, with an upload in progress.
  const doomedImage = await image(doomed, 'v1', [randomBytes(1000)]);
  garbageBlobs.push(...doomedImage.blobs);
  const up = await c.req('POST', `/v2/${doomed}/blobs/uploads/`, { scope: `repository:${doomed}:pull,push` });
  assert.equal(up.status, 202);
  const loc = up.headers.get('location')!;
  const patch = await c.req('PATCH', loc, { scope: `repository:${doomed}:pull,push`, body: randomBytes(700), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(patch.status, 202);
  const repo = (await findRepo(s, 'alice', 'doomed'))!;
  await markRepositoryForDeletion(s, repo, { performer: principalFor(alice, 'password'), ip: null });

  // An object a crashed upload left without a row.
  const orphan = randomBytes(500);
  await s.storage.write(layout.blob(sha256(orphan)), orphan);

  return {
    live: [[live, `v${n}`], [live, `list${n}`], [live, sig1.digest]], garbageBlobs, garbageManifests,
    doomedRepoId: repo.id, doomedUpload: loc.split('/').pop()!, orphan: sha256(orphan),
  };
}

/** Live content of this test and of every earlier one. */
const allLive: [string, string][] = [];

async function assertLiveWhole(when: string): Promise<void> {
  for (const [repo, ref] of allLive) assert.deepEqual((await pullProblems(c, repo, ref)).problems, [], `${when}: ${repo}:${ref}`);
}

async function uploadObjects(uuid: string): Promise<number> {
  let n = 0;
  for await (const _ of s.storage.list(`${layout.upload(uuid)}/`)) n++;
  return n;
}

for (const [n, step] of STEPS.entries()) {
  test(`kill -9 at ${step} (${TEST_DB}): no dangling reference, live content whole, the next pass finishes`, async (t) => {
    const w = await prepare(n);
    allLive.push(...w.live);
    await assertLiveWhole('before');
    await server.stop();
    // Trigger the collector at once. (A runner killed in an earlier test still holds the periodic
    // jobs' leases for a minute: drop them.)
    await s.db.deleteFrom('jobs').execute();
    for (const q of [QUEUES.gc, QUEUES.gcSweep]) await enqueue(s, q, {}, { dedupeKey: periodicKey(q) });
    const crashing = await startServerProcess({ dataDir, overrides, port, workers: true, env: { QUAYSIDE_GC_CRASH_AT: step } });
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      crashing.exited,
      new Promise<null>((r) => { timer = setTimeout(() => r(null), 30_000); }),
    ]);
    clearTimeout(timer);
    if (!exit) await crashing.kill('SIGKILL');
    assert.ok(exit, `the collector never reached ${step}:\n${crashing.stderr().slice(-4000)}`);
    assert.equal(exit.signal, 'SIGKILL');

    // Right after the crash: whatever was committed, nothing points at anything missing.
    assert.deepEqual(await danglingReferences(s), []);
    const blobsLeft = (await s.db.selectFrom('blobs').select('id').where('digest', 'in', w.garbageBlobs).execute()).length;
    const manifestsLeft = (await s.db.selectFrom('manifests').select('id').where('digest', 'in', w.garbageManifests).execute()).length;
    t.diagnostic(`killed at ${step}: the pass had removed ${w.garbageManifests.length - manifestsLeft}/${w.garbageManifests.length} garbage manifests and ${w.garbageBlobs.length - blobsLeft}/${w.garbageBlobs.length} garbage blob rows`);
    server = await startServerProcess({ dataDir, overrides, port });
    await assertLiveWhole(`after the crash at ${step}`);

    // The next pass (and the sweeps, whose grace window the clock skips) completes the work.
    const later = { ...s, now: () => Date.now() + 60_000 };
    await collectGarbage(later, { sweep: true });
    await sweepOrphanUploads(later, 1000);
    assert.deepEqual(await garbageLeft(later, later.now()), []);
    assert.equal((await s.storage.stat(layout.blob(w.orphan))).exists, false, 'the orphan object');
    for (const d of w.garbageBlobs) {
      assert.equal(await s.db.selectFrom('blobs').select('id').where('digest', '=', d).executeTakeFirst(), undefined, `blob row ${d}`);
      assert.equal((await s.storage.stat(layout.blob(d))).exists, false, `object ${d}`);
    }
    for (const d of w.garbageManifests) {
      assert.equal(await s.db.selectFrom('manifests').select('id').where('digest', '=', d).executeTakeFirst(), undefined, `manifest ${d}`);
    }
    assert.equal(await s.db.selectFrom('repositories').select('id').where('id', '=', w.doomedRepoId).executeTakeFirst(), undefined);
    assert.equal(await uploadObjects(w.doomedUpload), 0, 'the deleted repository\'s upload data');
    assert.deepEqual([...(await danglingReferences(s)), ...(await allProblems(s))], []);
    await assertLiveWhole('after the next pass');
  });
}

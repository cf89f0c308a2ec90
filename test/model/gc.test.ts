import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { createUser } from '../../src/model/accounts.ts';
import { collectGarbage, sweepOrphanObjects } from '../../src/model/gc.ts';
import { layout } from '../../src/storage/driver.ts';
import type { Services } from '../../src/model/context.ts';

let t: TestApp;
let s: Services;
let c: RegistryClient;
let offset = 0;
// Moving the clock also renews the client: its cached tokens were issued in the old time.
function setOffset(ms: number): void {
  offset = ms;
  c = new RegistryClient(t.url, 'alice', 'password1');
}
const HOUR = 3600 * 1000;
const WINDOW = 1209600 * 1000; // default time machine: two weeks

before(async () => {
  t = await startTestApp();
  s = t.app.services;
  const real = s.now;
  s.now = () => real() + offset;
  await createUser(s, { username: 'alice', password: 'password1' });
  c = new RegistryClient(t.url, 'alice', 'password1');
});
after(() => t.close());

async function objectExists(digest: string): Promise<boolean> {
  return (await s.storage.stat(layout.blob(digest))).exists;
}

async function blobRow(digest: string): Promise<boolean> {
  return !!(await s.db.selectFrom('blobs').select('id').where('digest', '=', digest).executeTakeFirst());
}

/** No row without its object, and every object's bytes match its digest. */
async function assertNoDanglingRows(): Promise<void> {
  const rows = await s.db.selectFrom('blobs').select(['digest', 'size']).execute();
  for (const r of rows) {
    const stream = await s.storage.read(layout.blob(r.digest));
    const h = createHash('sha256');
    let n = 0;
    for await (const chunk of stream) {
      h.update(chunk as Buffer);
      n += (chunk as Buffer).length;
    }
    assert.equal(`sha256:${h.digest('hex')}`, r.digest);
    assert.equal(n, r.size);
  }
}

async function pull(repo: string, ref: string): Promise<number> {
  const res = await c.req('GET', `/v2/${repo}/manifests/${ref}`, { scope: `repository:${repo}:pull` });
  await res.arrayBuffer();
  return res.status;
}

test('I1: tagged content survives; a deleted tag keeps its content through the time machine window', async () => {
  setOffset(0);
  const img = await c.pushImage('alice/one', 'v1');
  setOffset(2 * HOUR); // past the upload grace window: only references protect now
  await collectGarbage(s);
  assert.equal(await pull('alice/one', 'v1'), 200);
  assert.ok(await objectExists(img.layer));
  const del = await c.req('DELETE', '/v2/alice/one/manifests/v1', { scope: 'repository:alice/one:*' });
  assert.equal(del.status, 202);
  setOffset(3 * HOUR);
  await collectGarbage(s);
  const m = await s.db.selectFrom('manifests').select('id').where('digest', '=', img.digest).executeTakeFirst();
  assert.ok(m, 'manifest kept while its tag is restorable');
  assert.ok(await objectExists(img.layer));
  setOffset(3 * HOUR + WINDOW + HOUR);
  const stats = await collectGarbage(s);
  assert.ok(stats.tagsPurged >= 1 && stats.manifestsDeleted >= 1 && stats.blobsDeleted >= 2, JSON.stringify(stats));
  assert.equal(await blobRow(img.layer), false);
  assert.equal(await objectExists(img.layer), false);
  assert.equal(await objectExists(img.config), false);
  await assertNoDanglingRows();
});

test('I1: children of a tagged index are kept; a blob shared with another repository stays', async () => {
  setOffset(0);
  const child = await c.pushImage('alice/idx', 'child');
  const idx = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child.digest, size: Buffer.byteLength(child.manifest) }] });
  assert.equal((await c.pushManifest('alice/idx', 'list', idx, 'application/vnd.oci.image.index.v1+json')).status, 201);
  // The same layer mounted into a second repository.
  const mount = await c.req('POST', `/v2/alice/other/blobs/uploads/?mount=${child.layer}&from=alice/idx`, { scope: ['repository:alice/other:pull,push', 'repository:alice/idx:pull'] });
  assert.equal(mount.status, 201);
  const mountCfg = await c.req('POST', `/v2/alice/other/blobs/uploads/?mount=${child.config}&from=alice/idx`, { scope: ['repository:alice/other:pull,push', 'repository:alice/idx:pull'] });
  assert.equal(mountCfg.status, 201);
  assert.equal((await c.pushManifest('alice/other', 'v1', child.manifest)).status, 201);
  // Drop the child's own tag for good: only the index keeps it.
  await c.req('DELETE', '/v2/alice/idx/manifests/child', { scope: 'repository:alice/idx:*' });
  setOffset(WINDOW + 2 * HOUR);
  await collectGarbage(s);
  assert.equal(await pull('alice/idx', child.digest), 200);
  // Now drop everything in alice/idx; alice/other still holds the layer.
  await c.req('DELETE', '/v2/alice/idx/manifests/list', { scope: 'repository:alice/idx:*' });
  setOffset(2 * WINDOW + 4 * HOUR);
  await collectGarbage(s);
  const inIdx = await s.db.selectFrom('manifests').innerJoin('repositories', 'repositories.id', 'manifests.repository_id')
    .select('manifests.id').where('repositories.name', '=', 'idx').execute();
  assert.equal(inIdx.length, 0);
  assert.ok(await objectExists(child.layer));
  const blob = await c.req('GET', `/v2/alice/other/blobs/${child.layer}`, { scope: 'repository:alice/other:pull' });
  assert.equal(blob.status, 200);
  await blob.arrayBuffer();
  await assertNoDanglingRows();
});

test('I2: an uploaded but unreferenced blob survives the grace window, then goes', async () => {
  setOffset(0);
  const data = randomBytes(2048);
  const digest = await c.pushBlob('alice/grace', data);
  setOffset(30 * 60 * 1000);
  await collectGarbage(s);
  assert.ok(await blobRow(digest));
  // A manifest can still use it.
  setOffset(2 * HOUR);
  await collectGarbage(s);
  assert.equal(await blobRow(digest), false);
  assert.equal(await objectExists(digest), false);
  // Pushing it again afterwards works from scratch.
  assert.equal(await c.pushBlob('alice/grace', data), digest);
  assert.ok(await objectExists(digest));
});

test('I4: a crash after the row commit leaves only an orphan object, which the sweep removes', async () => {
  setOffset(0);
  const data = randomBytes(1024);
  const digest = await c.pushBlob('alice/crash', data);
  setOffset(2 * HOUR);
  await assert.rejects(collectGarbage(s, { checkpoint: (step) => { if (step === 'blob-row-deleted') throw new Error('crash'); } }), /crash/);
  assert.equal(await blobRow(digest), false);
  assert.ok(await objectExists(digest), 'object outlives its row: acceptable');
  await assertNoDanglingRows();
  // A fresh orphan is kept (an upload may be about to insert its row); an old one is swept.
  const realNow = s.now;
  s.now = () => Date.now() + 10 * 60 * 1000; // only minutes after the object was written
  assert.equal(await sweepOrphanObjects(s), 0);
  s.now = () => Date.now() + 2 * HOUR;
  assert.ok((await sweepOrphanObjects(s)) >= 1);
  s.now = realNow;
  assert.equal(await objectExists(digest), false);
});

test('referrers live as long as their subject', async () => {
  setOffset(0);
  const subject = await c.pushImage('alice/refs', 'v1');
  const payload = Buffer.from('signature');
  const layer = await c.pushBlob('alice/refs', payload);
  const empty = await c.pushBlob('alice/refs', Buffer.from('{}'));
  const art = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.sig',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
    layers: [{ mediaType: 'application/octet-stream', digest: layer, size: payload.length }],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.digest, size: Buffer.byteLength(subject.manifest) },
  });
  assert.equal((await c.pushManifest('alice/refs', sha256(art), art)).status, 201);
  setOffset(3 * HOUR);
  await collectGarbage(s);
  assert.equal(await pull('alice/refs', sha256(art)), 200, 'a referrer outlives the push grace window');
  await c.req('DELETE', '/v2/alice/refs/manifests/v1', { scope: 'repository:alice/refs:*' });
  setOffset(3 * HOUR + WINDOW + HOUR);
  await collectGarbage(s);
  const left = await s.db.selectFrom('manifests').select('digest').where('digest', 'in', [subject.digest, sha256(art)]).execute();
  assert.deepEqual(left, []);
  assert.equal(await objectExists(layer), false);
  await assertNoDanglingRows();
});

test('a referrer pushed before its subject is kept through the push grace window', async () => {
  setOffset(0);
  const layer = await c.pushBlob('alice/early', Buffer.from('early signature'));
  const empty = await c.pushBlob('alice/early', Buffer.from('{}'));
  const subject = 'sha256:' + 'ab'.repeat(32); // not pushed yet
  const art = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.example.sig',
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: empty, size: 2 },
    layers: [{ mediaType: 'application/octet-stream', digest: layer, size: 15 }],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject, size: 100 },
  });
  assert.equal((await c.pushManifest('alice/early', sha256(art), art)).status, 201);
  setOffset(10 * 60 * 1000);
  await collectGarbage(s);
  assert.equal(await pull('alice/early', sha256(art)), 200, 'the subject may still be on its way');
  setOffset(2 * HOUR);
  await collectGarbage(s);
  assert.equal(await pull('alice/early', sha256(art)), 404, 'a referrer whose subject never came is collected');
  assert.equal(await blobRow(layer), false);
});

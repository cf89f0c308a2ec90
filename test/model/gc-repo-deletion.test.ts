// I5: a repository marked for deletion (DELETE /api/v1/repository/…) is purged by the collector:
// tags at once (inside the time-machine window), then manifests, labels, links, upload sessions,
// permissions, stars and the row; its blobs go unless another repository still uses them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { blobProblems } from '../support/integrity.ts';
import { createUser } from '../../src/model/accounts.ts';
import { collectGarbage } from '../../src/model/gc.ts';
import { findRepo } from '../../src/model/repositories.ts';
import { markRepositoryForDeletion } from '../../src/model/repository-api.ts';
import { principalFor, type Services } from '../../src/model/context.ts';
import { layout } from '../../src/storage/driver.ts';

let t: TestApp;
let s: Services;
let c: RegistryClient;
let alice: { id: number; username: string; kind: string };
let offset = 0;
const HOUR = 3600 * 1000;

before(async () => {
  t = await startTestApp();
  s = t.app.services;
  const real = s.now;
  s.now = () => real() + offset;
  const a = await createUser(s, { username: 'alice', password: 'password1' });
  alice = { id: a.id, username: 'alice', kind: 'user' };
  await createUser(s, { username: 'bob', password: 'password1' });
  c = new RegistryClient(t.url, 'alice', 'password1');
});
after(() => t.close());

/** Moving the clock renews the client: its cached tokens were issued in the old time. */
function setOffset(ms: number): void {
  offset = ms;
  c = new RegistryClient(t.url, 'alice', 'password1');
}

async function markDeleted(name: string): Promise<number> {
  const repo = (await findRepo(s, 'alice', name))!;
  await markRepositoryForDeletion(s, repo, { performer: principalFor(alice, 'password'), ip: null });
  return repo.id;
}

async function rowsOf(repoId: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of ['tags', 'manifests', 'manifest_blobs', 'manifest_children', 'repo_blobs', 'uploads', 'repo_permissions', 'stars'] as const) {
    const r = await s.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).where('repository_id', '=', repoId).executeTakeFirstOrThrow();
    out[table] = Number(r.n);
  }
  out.repositories = (await s.db.selectFrom('repositories').select('id').where('id', '=', repoId).execute()).length;
  return out;
}

const NONE = { tags: 0, manifests: 0, manifest_blobs: 0, manifest_children: 0, repo_blobs: 0, uploads: 0, repo_permissions: 0, stars: 0, repositories: 0 };

async function uploadObjects(uuid: string): Promise<number> {
  let n = 0;
  for await (const _ of s.storage.list(`${layout.upload(uuid)}/`)) n++;
  return n;
}

async function blobRow(digest: string): Promise<boolean> {
  return !!(await s.db.selectFrom('blobs').select('id').where('digest', '=', digest).executeTakeFirst());
}

test('I5: a repository marked for deletion goes with everything in it; shared blobs stay', async () => {
  setOffset(0);
  const doomed = await c.pushImage('alice/doomed', 'v1');
  const idx = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: doomed.digest, size: Buffer.byteLength(doomed.manifest) }] });
  assert.equal((await c.pushManifest('alice/doomed', 'list', idx, 'application/vnd.oci.image.index.v1+json')).status, 201);
  // An image both repositories hold (mounted from the doomed one), and one only the doomed one has.
  for (const d of [doomed.layer, doomed.config]) {
    const mount = await c.req('POST', `/v2/alice/keep/blobs/uploads/?mount=${d}&from=alice/doomed`, { scope: ['repository:alice/keep:pull,push', 'repository:alice/doomed:pull'] });
    assert.equal(mount.status, 201);
  }
  assert.equal((await c.pushManifest('alice/keep', 'v1', doomed.manifest)).status, 201);
  const solo = await c.pushImage('alice/doomed', 'solo');
  // An upload in progress, a label, a permission and a star.
  const up = await c.req('POST', '/v2/alice/doomed/blobs/uploads/', { scope: 'repository:alice/doomed:pull,push' });
  assert.equal(up.status, 202);
  const loc = up.headers.get('location')!;
  assert.equal((await c.req('PATCH', loc, { scope: 'repository:alice/doomed:pull,push', body: randomBytes(500), headers: { 'content-type': 'application/octet-stream' } })).status, 202);
  const uuid = loc.split('/').pop()!;
  const doomedRepo = (await findRepo(s, 'alice', 'doomed'))!;
  const manifest = (await s.db.selectFrom('manifests').select('id').where('repository_id', '=', doomedRepo.id).where('digest', '=', doomed.digest).executeTakeFirstOrThrow()).id;
  await s.db.insertInto('labels').values({ uuid: 'label-doomed', manifest_id: manifest, key: 'k', value: 'v', media_type: 'text/plain', source_type: 'api', created_at: s.now() }).execute();
  const bob = (await s.db.selectFrom('users').select('id').where('username', '=', 'bob').executeTakeFirstOrThrow()).id;
  await s.db.insertInto('repo_permissions').values({ repository_id: doomedRepo.id, user_id: bob, team_id: null, role: 'read' }).execute();

  assert.ok((await uploadObjects(uuid)) > 0);
  const id = await markDeleted('doomed');
  // Well inside the two-week time machine, past the push grace window.
  setOffset(2 * HOUR);
  const stats = await collectGarbage(s);
  assert.equal(stats.repositoriesDeleted, 1, JSON.stringify(stats));
  assert.deepEqual(await rowsOf(id), NONE);
  assert.equal((await s.db.selectFrom('labels').select('id').where('uuid', '=', 'label-doomed').execute()).length, 0);
  assert.equal(await uploadObjects(uuid), 0, 'upload session data removed');
  for (const d of [solo.layer, solo.config]) {
    assert.equal(await blobRow(d), false, `${d} only the deleted repository used`);
    assert.equal((await s.storage.stat(layout.blob(d))).exists, false);
  }
  const pull = await c.req('GET', `/v2/alice/keep/manifests/v1`, { scope: 'repository:alice/keep:pull' });
  assert.equal(pull.status, 200);
  assert.equal(sha256(Buffer.from(await pull.arrayBuffer())), doomed.digest);
  for (const d of [doomed.layer, doomed.config]) {
    const blob = await c.req('GET', `/v2/alice/keep/blobs/${d}`, { scope: 'repository:alice/keep:pull' });
    assert.equal(blob.status, 200, 'a blob another repository uses stays');
    assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), d);
  }
  assert.deepEqual(await blobProblems(s), []);
  // The name is free for a new repository.
  await c.pushImage('alice/doomed', 'v1');
  assert.notEqual((await findRepo(s, 'alice', 'doomed'))!.id, id);
});

test('I5: a manifest that lands in a marked repository mid-pass keeps the row until a later pass purges it', async () => {
  setOffset(0);
  await c.pushImage('alice/racy', 'v1');
  const id = await markDeleted('racy');
  setOffset(2 * HOUR);
  // A push that resolved the repository before it was marked commits after its links are gone.
  const stats = await collectGarbage(s, {
    checkpoint: async (step) => {
      if (step !== 'repo-links-deleted') return;
      const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
      const m = await s.db.insertInto('manifests').values({
        repository_id: id, digest: sha256(bytes), media_type: 'application/vnd.oci.image.index.v1+json', bytes, size: bytes.length,
        config_digest: null, config_media_type: null, artifact_type: null, subject_digest: null, annotations: null, layers_size: null, created_at: s.now(),
      }).returning('id').executeTakeFirstOrThrow();
      await s.db.insertInto('tags').values({ repository_id: id, name: 'late', manifest_id: m.id, lifetime_start: s.now(), lifetime_end: null, hidden: 0, immutable: 0 }).execute();
    },
  });
  assert.equal(stats.repositoriesDeleted, 0);
  assert.equal((await rowsOf(id)).repositories, 1, 'the row stays while it holds a tag');
  assert.equal((await collectGarbage(s)).repositoriesDeleted, 1);
  assert.deepEqual(await rowsOf(id), NONE);
  assert.deepEqual(await blobProblems(s), []);
});

test('I5: a repository that is not marked keeps its history inside the time machine window', async () => {
  setOffset(0);
  const img = await c.pushImage('alice/normal', 'v1');
  assert.equal((await c.req('DELETE', '/v2/alice/normal/manifests/v1', { scope: 'repository:alice/normal:*' })).status, 202);
  setOffset(2 * HOUR);
  await collectGarbage(s);
  assert.ok(await s.db.selectFrom('manifests').select('id').where('digest', '=', img.digest).executeTakeFirst());
  assert.ok(await blobRow(img.layer));
  assert.ok(await findRepo(s, 'alice', 'normal'));
});

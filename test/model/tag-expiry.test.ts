// Tag expiration end to end in the model, with a movable clock: a tag leaves the live set at its
// expiration instant, stays in the time machine (history, restore) for its namespace's window, and
// the garbage-collection worker purges it after the window. Also the quay.expires-after label on
// every new lifetime of a labelled manifest.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../support/app.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { createOrganization, createUser, type User } from '../../src/model/accounts.ts';
import { principalFor, type Services } from '../../src/model/context.ts';
import { findRepo, type Repo } from '../../src/model/repositories.ts';
import { deleteTag, findLiveTag, listTagNames } from '../../src/model/tags.ts';
import { changeTag, listTagHistory, restoreTag } from '../../src/model/tag-history.ts';
import { labelExpirySeconds, parseDuration, timeMachineWindowMs } from '../../src/model/tag-expiry.ts';
import { enqueue } from '../../src/model/queue.ts';
import { QUEUES, startWorkers } from '../../src/workers/index.ts';
import { DomainError } from '../../src/model/errors.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const TWO_WEEKS = 14 * DAY;

let t: TestApp;
let s: Services;
let alice: User;
let offset = 0;
let c: RegistryClient;

// Moving the clock also renews the /v2 client: its cached tokens were issued in the old time.
function advance(ms: number): void {
  offset += ms;
  c = new RegistryClient(t.url, 'alice', 'password1');
}

before(async () => {
  t = await startTestApp();
  s = t.app.services;
  const real = s.now;
  s.now = () => real() + offset;
  alice = await createUser(s, { username: 'alice', password: 'password1' });
  c = new RegistryClient(t.url, 'alice', 'password1');
});
after(() => t.close());

const who = () => ({ performer: principalFor(alice, 'password'), ip: null, canAdmin: true });
const repoOf = async (ns: string, name: string): Promise<Repo> => (await findRepo(s, ns, name))!;
const history = async (repo: Repo, tag: string) =>
  (await listTagHistory(s, repo.id, { page: 1, limit: 100, specificTag: tag, filterTagName: null, onlyActive: false })).tags;
const tagRows = async (repo: Repo, tag: string) =>
  s.db.selectFrom('tags').selectAll().where('repository_id', '=', repo.id).where('name', '=', tag).orderBy('id').execute();
const manifestExists = async (digest: string) => !!(await s.db.selectFrom('manifests').select('id').where('digest', '=', digest).executeTakeFirst());

/** Pushes a one-layer image whose config carries `labels`. */
async function pushLabelled(repo: string, ref: string, labels: Record<string, string> = {}): Promise<{ digest: string; manifest: string }> {
  const layer = new TextEncoder().encode(`layer-${Math.random()}`);
  const config = new TextEncoder().encode(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Labels: labels }, rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
  }));
  const layerDigest = await c.pushBlob(repo, layer);
  const configDigest = await c.pushBlob(repo, config);
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  });
  const res = await c.pushManifest(repo, ref, manifest);
  assert.equal(res.status, 201, await res.text());
  return { digest: sha256(manifest), manifest };
}

/** Runs one garbage-collection pass through the real worker: a queued `gc` job. */
async function gcThroughWorker(): Promise<void> {
  const workers = startWorkers(s, { pollMs: 10 });
  try {
    await enqueue(s, QUEUES.gc, {});
    for (let i = 0; i < 500; i++) {
      const pending = await s.db.selectFrom('jobs').select('id').where('queue', '=', QUEUES.gc).where('dedupe_key', 'is', null).executeTakeFirst();
      if (!pending) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail('gc job did not finish');
  } finally {
    await workers.stop();
  }
}

test('durations and the quay.expires-after label', async () => {
  assert.equal(parseDuration('2w'), 2 * 604800);
  assert.equal(parseDuration('90'), 90);
  assert.equal(parseDuration('1d'), 86400);
  assert.equal(parseDuration('soon'), null);
  const labelled = await pushLabelled('alice/labels', 'a', { 'quay.expires-after': '2h' });
  const zero = await pushLabelled('alice/labels', 'b', { 'quay.expires-after': '0s' });
  const junk = await pushLabelled('alice/labels', 'c', { 'quay.expires-after': 'soon' });
  const none = await pushLabelled('alice/labels', 'd');
  const id = async (digest: string) => (await s.db.selectFrom('manifests').select('id').where('digest', '=', digest).executeTakeFirstOrThrow()).id;
  assert.equal(await labelExpirySeconds(s.db, await id(labelled.digest)), 7200);
  assert.equal(await labelExpirySeconds(s.db, await id(zero.digest)), null);
  assert.equal(await labelExpirySeconds(s.db, await id(junk.digest)), null);
  assert.equal(await labelExpirySeconds(s.db, await id(none.digest)), null);
  assert.equal(await timeMachineWindowMs(s.db, alice.id), TWO_WEEKS, 'DEFAULT_TAG_EXPIRATION 2w for new users');
});

test('an expired tag leaves the live set, stays restorable through the window, then the GC worker purges it', async () => {
  const img = await pushLabelled('alice/life', 'v1');
  const repo = await repoOf('alice', 'life');
  const startS = Math.floor(s.now() / 1000);
  await changeTag(s, repo, 'v1', { expiration: startS + 2 * 3600 }, who());
  const [row] = await tagRows(repo, 'v1');
  assert.equal(row!.lifetime_end, row!.lifetime_start + 2 * HOUR, 'expiration is kept relative to the lifetime start');

  advance(HOUR);
  assert.ok(await findLiveTag(s, repo.id, 'v1'), 'alive before its expiration');
  assert.deepEqual(await listTagNames(s, repo.id, 100, null), ['v1']);

  advance(HOUR + 1000);
  assert.equal(await findLiveTag(s, repo.id, 'v1'), undefined, 'gone from the live set once expired');
  assert.deepEqual(await listTagNames(s, repo.id, 100, null), []);
  const h = await history(repo, 'v1');
  assert.equal(h.length, 1, 'still in the history');
  assert.equal(h[0]!.lifetimeEnd, row!.lifetime_end);

  // Inside the window GC keeps the row and the manifest, and the tag can be restored.
  await gcThroughWorker();
  assert.equal((await tagRows(repo, 'v1')).length, 1);
  assert.ok(await manifestExists(img.digest));
  await restoreTag(s, repo, 'v1', img.digest, principalFor(alice, 'password'), null);
  assert.ok(await findLiveTag(s, repo.id, 'v1'));
  assert.equal((await history(repo, 'v1'))[0]!.reversion, true);

  // Deleted again and left past the two-week window: no restore, and GC removes it all.
  await deleteTag(s, repo, 'v1', principalFor(alice, 'password'), null);
  advance(TWO_WEEKS + HOUR);
  await assert.rejects(restoreTag(s, repo, 'v1', img.digest, principalFor(alice, 'password'), null),
    (e: unknown) => e instanceof DomainError && e.code === 'not_found');
  await gcThroughWorker();
  assert.equal((await tagRows(repo, 'v1')).length, 0, 'history purged');
  assert.equal(await manifestExists(img.digest), false, 'manifest collected');
});

test('a namespace window of 0: a deleted tag cannot be restored, and the next GC pass purges it', async () => {
  const org = await createOrganization(s, 'nowindow', alice);
  await s.db.updateTable('users').set({ tag_expiration_s: 0 }).where('id', '=', org.id).execute();
  const img = await pushLabelled('nowindow/app', 'v1');
  const repo = await repoOf('nowindow', 'app');
  await deleteTag(s, repo, 'v1', principalFor(alice, 'password'), null);
  advance(1000);
  await assert.rejects(restoreTag(s, repo, 'v1', img.digest, principalFor(alice, 'password'), null),
    (e: unknown) => e instanceof DomainError && e.code === 'not_found');
  assert.equal((await history(repo, 'v1')).length, 1, 'visible in history until GC runs');
  await gcThroughWorker();
  assert.equal((await tagRows(repo, 'v1')).length, 0);
  assert.equal(await manifestExists(img.digest), false);
});

test('each namespace keeps its own window: GC purges past a short one and keeps within a long one', async () => {
  const short = await createOrganization(s, 'shortwin', alice);
  await s.db.updateTable('users').set({ tag_expiration_s: 86400 }).where('id', '=', short.id).execute();
  await pushLabelled('shortwin/app', 'v1');
  await pushLabelled('alice/longwin', 'v1');
  const shortRepo = await repoOf('shortwin', 'app');
  const longRepo = await repoOf('alice', 'longwin');
  await deleteTag(s, shortRepo, 'v1', principalFor(alice, 'password'), null);
  await deleteTag(s, longRepo, 'v1', principalFor(alice, 'password'), null);
  advance(2 * DAY);
  await gcThroughWorker();
  assert.equal((await tagRows(shortRepo, 'v1')).length, 0, 'one-day window passed');
  assert.equal((await tagRows(longRepo, 'v1')).length, 1, 'two-week window not yet');
});

test('quay.expires-after gives every new lifetime on the manifest an expiration', async () => {
  const img = await pushLabelled('alice/lab', 'first', { 'quay.expires-after': '3h' });
  const repo = await repoOf('alice', 'lab');
  const expiresIn = async (tag: string) => {
    const r = (await tagRows(repo, tag)).at(-1)!;
    return r.lifetime_end === null ? null : r.lifetime_end - r.lifetime_start;
  };
  assert.equal(await expiresIn('first'), 3 * HOUR, 'on the push that stored the manifest');
  advance(60_000);
  assert.equal((await c.pushManifest('alice/lab', 'second', img.manifest)).status, 201);
  assert.equal(await expiresIn('second'), 3 * HOUR, 'on a push of the same manifest under another tag');
  await changeTag(s, repo, 'third', { manifestDigest: img.digest }, who());
  assert.equal(await expiresIn('third'), 3 * HOUR, 'on an API move');
  await deleteTag(s, repo, 'first', principalFor(alice, 'password'), null);
  await restoreTag(s, repo, 'first', img.digest, principalFor(alice, 'password'), null);
  assert.equal(await expiresIn('first'), 3 * HOUR, 'on a restore');
  // An unlabelled manifest's tags never expire on their own.
  const plain = await pushLabelled('alice/lab', 'plain');
  await changeTag(s, repo, 'plain2', { manifestDigest: plain.digest }, who());
  assert.equal(await expiresIn('plain'), null);
  assert.equal(await expiresIn('plain2'), null);
  // The labelled tags expire on time.
  advance(3 * HOUR);
  assert.deepEqual(await listTagNames(s, repo.id, 100, null), ['plain', 'plain2']);
});

// Pull statistics (FEATURE_IMAGE_PULL_STATS): real /v2 pulls, the batched flush, then
// GET /api/v1/repository/{repository}/tag/{tag}/pull_statistics and
// .../manifest/{manifestref}/pull_statistics checked field by field, and who may read them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix } from '../../support/matrix.ts';
import { startTestApp } from '../../support/app.ts';
import { isApiError, userWithToken } from './client.ts';
import { client, json, OCI, pushImage, pullStatus, type PushedImage } from './images.ts';
import { flushPullLogs } from '../../../src/model/pull-log.ts';
import { recordPullStatistics } from '../../../src/model/pull-stats.ts';
import { findRepo, setVisibility } from '../../../src/model/repositories.ts';
import { ANONYMOUS, type Services } from '../../../src/model/context.ts';
import { formatDate } from '../../../src/http/api/shapes.ts';

let w: World;
let s: Services;
before(async () => {
  w = await createWorld({ FEATURE_IMAGE_PULL_STATS: true });
  s = w.t.app.services;
});
after(async () => { await w?.close(); });

/** Runs fn with the model's clock at `ms` (pulls take their time from it). */
async function at<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const real = s.now;
  s.now = () => ms;
  try {
    return await fn();
  } finally {
    s.now = real;
  }
}

/** A second boundary shortly before now: the instants tests pin pulls to. */
const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;

async function pull(repo: string, ref: string, times = 1): Promise<void> {
  for (let i = 0; i < times; i++) assert.equal(await pullStatus(w, repo, ref), 200);
}

const tagStats = (repo: string, tag: string, caller: Parameters<World['api']>[2] = {}) => w.api('GET', `/repository/${repo}/tag/${tag}/pull_statistics`, caller);
const manifestStats = (repo: string, digest: string, caller: Parameters<World['api']>[2] = {}) => w.api('GET', `/repository/${repo}/manifest/${digest}/pull_statistics`, caller);

test('pulls by tag count for the tag and its manifest, pulls by digest for the manifest only', async () => {
  const img = await pushImage(w, 'acme/repo', 'latest');
  await at(base + 1_000, () => pull('acme/repo', 'latest', 3));
  await at(base + 5_000, () => pull('acme/repo', img.digest, 2));
  // HEAD is not a pull.
  const head = await client(w).req('HEAD', '/v2/acme/repo/manifests/latest', { scope: 'repository:acme/repo:pull', headers: { accept: OCI } });
  assert.equal(head.status, 200);
  await flushPullLogs(s);

  const res = await tagStats('acme/repo', 'latest', { caller: 'member' });
  assert.equal(res.status, 200);
  assert.deepEqual(await json(res), {
    tag_name: 'latest',
    tag_pull_count: 3,
    last_tag_pull_date: formatDate(base + 1_000),
    current_manifest_digest: img.digest,
    manifest_pull_count: 5,
    last_manifest_pull_date: formatDate(base + 5_000),
  });
  const m = await manifestStats('acme/repo', img.digest, { caller: 'member' });
  assert.equal(m.status, 200);
  assert.deepEqual(await json(m), { manifest_digest: img.digest, manifest_pull_count: 5, last_manifest_pull_date: formatDate(base + 5_000) });
  assert.match((await json(await tagStats('acme/repo', 'latest'))).last_tag_pull_date, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} -0000$/);

  // Counts add up across flushes; the pull logs are still written alongside.
  await at(base + 9_000, () => pull('acme/repo', 'latest'));
  await flushPullLogs(s);
  const again = await json(await tagStats('acme/repo', 'latest'));
  assert.equal(again.tag_pull_count, 4);
  assert.equal(again.manifest_pull_count, 6);
  assert.equal(again.last_tag_pull_date, formatDate(base + 9_000));
  const repoId = (await findRepo(s, 'acme', 'repo'))!.id;
  const logs = await s.db.selectFrom('logs').select('id').where('repository_id', '=', repoId).where('kind', '=', 'pull_repo').execute();
  assert.equal(logs.length, 6);
});

test('never pulled: zeros and null dates; the tag reports the manifest it points at', async () => {
  const img = await pushImage(w, 'acme/repo', 'fresh');
  const t = await json(await tagStats('acme/repo', 'fresh'));
  assert.deepEqual(t, {
    tag_name: 'fresh', tag_pull_count: 0, last_tag_pull_date: null, current_manifest_digest: img.digest, manifest_pull_count: 0, last_manifest_pull_date: null,
  });
  assert.deepEqual(await json(await manifestStats('acme/repo', img.digest)), { manifest_digest: img.digest, manifest_pull_count: 0, last_manifest_pull_date: null });
  // As in Quay, a tag without pulls of its own reports no manifest pulls either, even after digest pulls.
  await at(base + 2_000, () => pull('acme/repo', img.digest));
  await flushPullLogs(s);
  const t2 = await json(await tagStats('acme/repo', 'fresh'));
  assert.equal(t2.tag_pull_count, 0);
  assert.equal(t2.manifest_pull_count, 0);
  assert.equal((await json(await manifestStats('acme/repo', img.digest))).manifest_pull_count, 1);
});

test('a moved tag keeps its counters and the digest of its last pull; manifest counts follow the new target', async () => {
  const first = await pushImage(w, 'acme/repo', 'moving');
  await at(base + 3_000, () => pull('acme/repo', 'moving', 2));
  await flushPullLogs(s);
  const second = await pushImage(w, 'acme/repo', 'moving');
  const t = await json(await tagStats('acme/repo', 'moving'));
  assert.equal(t.tag_pull_count, 2);
  assert.equal(t.current_manifest_digest, first.digest);
  assert.equal(t.manifest_pull_count, 0, 'the new manifest has not been pulled');
  assert.equal(t.last_manifest_pull_date, null);
  await at(base + 4_000, () => pull('acme/repo', 'moving'));
  await flushPullLogs(s);
  const t2 = await json(await tagStats('acme/repo', 'moving'));
  assert.equal(t2.tag_pull_count, 3);
  assert.equal(t2.current_manifest_digest, second.digest);
  assert.equal(t2.manifest_pull_count, 1);
  assert.equal(t2.last_manifest_pull_date, formatDate(base + 4_000));
  // The first manifest lost its only tag: like Quay, an unreachable manifest is not found.
  assert.equal((await manifestStats('acme/repo', first.digest)).status, 404);
  const kept = await s.db.selectFrom('manifest_pull_statistics').select('pull_count').where('manifest_digest', '=', first.digest).executeTakeFirstOrThrow();
  assert.equal(kept.pull_count, 2);
});

test('a batch is folded per key; an older batch flushed late neither rewinds the date nor the digest', async () => {
  const repoId = (await findRepo(s, 'acme', 'repo'))!.id;
  const a = `sha256:${'a'.repeat(64)}`;
  const b = `sha256:${'b'.repeat(64)}`;
  await recordPullStatistics(s, [
    { repoId, tag: 'folded', digest: a, at: base + 10_000 },
    { repoId, tag: 'folded', digest: b, at: base + 20_000 },
    { repoId, tag: 'folded', digest: a, at: base + 15_000 },
    { repoId, tag: null, digest: b, at: base + 30_000 },
    // A repository deleted before its pulls were flushed.
    { repoId: 987654, tag: 'gone', digest: a, at: base },
  ]);
  const row = () => s.db.selectFrom('tag_pull_statistics').selectAll().where('repository_id', '=', repoId).where('tag_name', '=', 'folded').executeTakeFirstOrThrow();
  assert.deepEqual(await row(), { repository_id: repoId, tag_name: 'folded', pull_count: 3, last_pull_at: base + 20_000, current_manifest_digest: b });
  await recordPullStatistics(s, [{ repoId, tag: 'folded', digest: a, at: base + 5_000 }]);
  assert.deepEqual(await row(), { repository_id: repoId, tag_name: 'folded', pull_count: 4, last_pull_at: base + 20_000, current_manifest_digest: b });
  const mb = await s.db.selectFrom('manifest_pull_statistics').selectAll().where('repository_id', '=', repoId).where('manifest_digest', '=', b).executeTakeFirstOrThrow();
  assert.deepEqual(mb, { repository_id: repoId, manifest_digest: b, pull_count: 2, last_pull_at: base + 30_000 });
  const gone = await s.db.selectFrom('tag_pull_statistics').select('tag_name').where('repository_id', '=', 987654).execute();
  assert.deepEqual(gone, []);
});

test('unknown tags and manifests are not found; a dead tag is not a tag', async () => {
  for (const res of [
    await tagStats('acme/repo', 'nosuch'),
    await manifestStats('acme/repo', `sha256:${'9'.repeat(64)}`),
    await manifestStats('acme/repo', 'latest'),
    await tagStats('acme/nosuchrepo', 'latest'),
  ]) {
    assert.equal(res.status, 404);
    assert.ok(isApiError(await json(res), 404, 'not_found', w.t.url));
  }
  await pushImage(w, 'acme/repo', 'doomed');
  assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/doomed')).status, 204);
  assert.equal((await tagStats('acme/repo', 'doomed')).status, 404);
});

test('public visibility does not expose pull counts: only callers granted read see them', async () => {
  const img = await pushImage(w, 'acme/pub', 'v1');
  await setVisibility(s, (await findRepo(s, 'acme', 'pub'))!, 'public', ANONYMOUS);
  // The manifest itself is public...
  assert.equal((await w.api('GET', `/repository/acme/pub/manifest/${img.digest}`, { caller: 'anonymous' })).status, 200);
  // ...its counters are not.
  const anon = await tagStats('acme/pub', 'v1', { caller: 'anonymous' });
  assert.equal(anon.status, 401);
  assert.equal((await tagStats('acme/pub', 'v1', { caller: 'outsider' })).status, 403);
  assert.equal((await manifestStats('acme/pub', img.digest, { caller: 'outsider' })).status, 403);
  assert.equal((await tagStats('acme/pub', 'v1', { caller: 'orgadmin' })).status, 200);
  assert.equal((await tagStats('acme/pub', 'v1', { caller: 'readonlySuperuser' })).status, 200);
  // A superuser reads them only with SUPERUSERS_FULL_ACCESS.
  assert.equal((await tagStats('acme/pub', 'v1', { caller: 'superuser' })).status, 403);
  s.config.features.SUPERUSERS_FULL_ACCESS = true;
  try {
    assert.equal((await tagStats('acme/pub', 'v1', { caller: 'superuser' })).status, 200);
  } finally {
    s.config.features.SUPERUSERS_FULL_ACCESS = false;
  }
});

test('pulls are not counted while the feature is off', async () => {
  const img: PushedImage = await pushImage(w, 'acme/repo', 'quiet');
  s.config.features.IMAGE_PULL_STATS = false;
  try {
    await pull('acme/repo', 'quiet');
    await flushPullLogs(s);
  } finally {
    s.config.features.IMAGE_PULL_STATS = true;
  }
  assert.equal((await json(await manifestStats('acme/repo', img.digest))).manifest_pull_count, 0);
});

test('without FEATURE_IMAGE_PULL_STATS the endpoints do not exist', async () => {
  const t = await startTestApp();
  try {
    const { token } = await userWithToken(t, 'alice', ['repo:read']);
    for (const path of ['/api/v1/repository/alice/repo/tag/latest/pull_statistics', `/api/v1/repository/alice/repo/manifest/sha256:${'0'.repeat(64)}/pull_statistics`]) {
      const res = await fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 404, path);
      assert.ok(isApiError(await res.json(), 404, 'not_found', t.url));
    }
    const d = (await (await fetch(`${t.url}/api/v1/discovery`)).json()) as { paths: Record<string, unknown> };
    assert.equal(d.paths['/api/v1/repository/{repository}/tag/{tag}/pull_statistics'], undefined);
  } finally {
    await t.close();
  }
  const d = (await json(await w.api('GET', '/discovery'))) as { paths: Record<string, any> };
  assert.equal(d.paths['/api/v1/repository/{repository}/tag/{tag}/pull_statistics'].get.operationId, 'getTagPullStatistics');
  assert.equal(d.paths['/api/v1/repository/{repository}/manifest/{manifestref}/pull_statistics'].get.operationId, 'getManifestPullStatistics');
});

test('pull statistics endpoints × callers', async () => {
  const img = await pushImage(w, 'acme/repo', 'matrix');
  const readers = ['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'] as const;
  await runMatrix(w, [
    { method: 'GET', path: '/repository/acme/repo/tag/matrix/pull_statistics', scopes: ['repo:read'], expect: expectAll([...readers], 200) },
    { method: 'GET', path: `/repository/acme/repo/manifest/${img.digest}/pull_statistics`, scopes: ['repo:read'], expect: expectAll([...readers], 200) },
    { method: 'GET', path: '/repository/acme/repo/tag/nosuch/pull_statistics', scopes: ['repo:read'], expect: expectAll([...readers], 404) },
    // Public, but only granted callers: anonymous 401, everyone else without a grant 403.
    { method: 'GET', path: '/repository/acme/pub/tag/v1/pull_statistics', scopes: ['repo:read'], expect: expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], 200) },
  ]);
});

// Quay API v1 repositories, tags, manifests and labels around a real client: skopeo pushes a
// labelled busybox image, the API shows the repository, its tags, the manifest's layers and the
// config labels; a tag deleted through the API stops pulling, and restoring it brings back the
// identical image. Runs on the database QUAYSIDE_TEST_DB selects.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copy, createClientContext, inspect, login } from '../support/clients.ts';
import type { ClientContext } from '../support/clients.ts';
import { buildBusyboxImage, MT } from '../support/images.ts';
import type { BuiltImage } from '../support/images.ts';
import { createWorld, PASSWORD, type World } from '../support/world.ts';
import { failure, ociTagDescriptor, reportTimings, timed } from './e2e.ts';

const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} -0000$/;
const LABELS = { 'com.example.a': '1', 'org.example.build': '{"n": 7}', 'quay.expires-after': '' };

let w: World;
let ctx: ClientContext;
let img: BuiltImage;

reportTimings('api repository e2e');

before(async () => {
  w = await timed('start quayside', () => createWorld());
  ctx = await createClientContext('e2e-api-repo-');
  img = await timed('build busybox', () => buildBusyboxImage(join(ctx.dir, 'layouts', 'busybox'), { labels: LABELS }));
  await timed('skopeo login', () => login('skopeo', w.t.host, 'orgadmin', PASSWORD, ctx));
});

after(async () => {
  await ctx?.cleanup();
  await w?.close();
});

const at = (path: string) => `docker://${w.t.host}/${path}`;
const api = async (method: string, path: string, body?: unknown) => {
  const res = await w.api(method, path, { body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
};

test('skopeo push, then repository, tags, layers and config labels through the API', async () => {
  await timed('skopeo copy ->', () => copy(img.ref, at('acme/busybox:1.0'), ctx));

  const repo = await api('GET', '/repository/acme/busybox');
  assert.equal(repo.status, 200);
  assert.equal(repo.body.namespace, 'acme');
  assert.equal(repo.body.name, 'busybox');
  assert.equal(repo.body.is_public, false, 'push-created repositories are private');
  assert.equal(repo.body.can_admin, true);
  assert.equal(repo.body.tags['1.0'].manifest_digest, img.manifestDigest);
  assert.match(repo.body.tags['1.0'].last_modified, RFC2822);
  const m = img.manifests[0]!;
  assert.equal(repo.body.tags['1.0'].size, m.layers.reduce((n, l) => n + l.size, 0));

  const list = await api('GET', '/repository?namespace=acme&last_modified=true');
  assert.ok(list.body.repositories.some((r: any) => r.name === 'busybox' && r.last_modified > 0));

  const tags = await api('GET', '/repository/acme/busybox/tag/');
  assert.equal(tags.body.tags.length, 1);
  assert.equal(tags.body.tags[0].name, '1.0');
  assert.equal(tags.body.tags[0].is_manifest_list, false);
  assert.equal(tags.body.tags[0].end_ts, undefined, 'an empty quay.expires-after sets no expiration');

  const man = await api('GET', `/repository/acme/busybox/manifest/${img.manifestDigest}`);
  assert.equal(man.status, 200);
  assert.equal(man.body.manifest_data, img.raw.toString('utf8'));
  assert.equal(man.body.config_media_type, MT.ociConfig);
  assert.deepEqual(man.body.layers.map((l: any) => l.blob_digest), m.layers.map((l) => l.digest));
  assert.deepEqual(man.body.layers[0].command, ['COPY /bin/busybox /bin/busybox # quayside test fixture']);
  assert.equal(man.body.layers[0].created_datetime, 'Mon, 01 Jan 2024 00:00:00 -0000');

  const labels = await api('GET', `/repository/acme/busybox/manifest/${img.manifestDigest}/labels`);
  const byKey = Object.fromEntries(labels.body.labels.map((l: any) => [l.key, l]));
  assert.deepEqual(Object.keys(byKey).sort(), Object.keys(LABELS).sort());
  assert.ok(labels.body.labels.every((l: any) => l.source_type === 'manifest'));
  assert.equal(byKey['org.example.build'].media_type, 'application/json');
  assert.equal(byKey['com.example.a'].value, '1');
});

test('delete a tag through the API: pulls fail; restore it: the same image pulls again', async () => {
  const del = await api('DELETE', '/repository/acme/busybox/tag/1.0');
  assert.equal(del.status, 204);
  const gone = await timed('skopeo inspect (deleted)', () => inspect(at('acme/busybox:1.0'), { ...ctx, allowFailure: true }));
  assert.notEqual(gone.result.code, 0, 'pull of a deleted tag fails');
  assert.match(failure(gone.result), /manifest unknown|not found/i);

  const history = await api('GET', '/repository/acme/busybox/tag/?specificTag=1.0');
  assert.ok(history.body.tags[0].end_ts > 0, 'the ended lifetime stays in the history');
  const restore = await api('POST', '/repository/acme/busybox/tag/1.0/restore', { manifest_digest: history.body.tags[0].manifest_digest });
  assert.equal(restore.status, 200);

  const layout = join(ctx.dir, 'pulled');
  await timed('skopeo copy <- (restored)', () => copy(at('acme/busybox:1.0'), `oci:${layout}:back`, ctx));
  const desc = await ociTagDescriptor(layout, 'back');
  assert.equal(desc.digest, img.manifestDigest);
  const { json } = await timed('skopeo inspect (restored)', () => inspect<{ Digest: string; Layers: string[]; Labels: Record<string, string> }>(at('acme/busybox:1.0'), ctx));
  assert.equal(json.Digest, img.manifestDigest);
  assert.deepEqual(json.Layers, img.manifests[0]!.layers.map((l) => l.digest));
  assert.deepEqual(json.Labels, LABELS);
  const after = await api('GET', '/repository/acme/busybox/tag/?specificTag=1.0');
  assert.equal(after.body.tags[0].reversion, true);
});

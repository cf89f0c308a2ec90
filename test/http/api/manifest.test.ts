// GET /api/v1/repository/{repository}/manifest/{manifestref}: the stored manifest, and its layers
// with sizes and the build history read from the image config.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError } from './client.ts';
import { json, pushImage, pushIndex, RFC2822 } from './images.ts';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

const get = (repo: string, ref: string, caller: 'orgadmin' | 'member' | 'outsider' = 'orgadmin') => w.api('GET', `/repository/${repo}/manifest/${ref}`, { caller });

test('an image: exact bytes, config type and layers paired with their history entries', async () => {
  const img = await pushImage(w, 'acme/repo', 'hist', {
    layerSizes: [120, 340],
    history: [
      { created: '2024-03-01T10:20:30Z', created_by: '/bin/sh -c #(nop) ADD file:abc in / ', author: 'Jane <jane@example.com>', comment: 'base' },
      { created: '2024-03-01T10:21:00Z', created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
      { created: '2024-03-02T00:00:00.5Z', created_by: '["/bin/sh","-c","echo hi > /x"]' },
    ],
  });
  const res = await get('acme/repo', img.digest, 'member');
  assert.equal(res.status, 200);
  const b = await json(res);
  assert.deepEqual(Object.keys(b).sort(), ['config_media_type', 'digest', 'is_manifest_list', 'layers', 'layers_compressed_size', 'manifest_data']);
  assert.equal(b.digest, img.digest);
  assert.equal(b.is_manifest_list, false);
  assert.equal(b.manifest_data, img.manifest);
  assert.equal(b.config_media_type, 'application/vnd.oci.image.config.v1+json');
  assert.equal(b.layers_compressed_size, 460);
  assert.equal(b.layers.length, 2);
  assert.deepEqual(b.layers[0], {
    index: 0, compressed_size: 120, is_remote: false, urls: null, command: ['/bin/sh -c #(nop) ADD file:abc in / '], comment: 'base',
    author: 'Jane <jane@example.com>', blob_digest: img.layers[0]!.digest, created_datetime: 'Fri, 01 Mar 2024 10:20:30 -0000',
  });
  assert.deepEqual(b.layers[1].command, ['/bin/sh', '-c', 'echo hi > /x'], 'a JSON array command is kept as a list');
  assert.equal(b.layers[1].index, 1);
  assert.equal(b.layers[1].compressed_size, 340);
  assert.equal(b.layers[1].blob_digest, img.layers[1]!.digest);
  assert.equal(b.layers[1].author, null);
  assert.equal(b.layers[1].comment, null);
  assert.match(b.layers[1].created_datetime, RFC2822);
});

test('an image whose config has no history, or is not JSON, still lists its layers', async () => {
  const plain = await pushImage(w, 'acme/repo', 'nohist', { layerSizes: [50] });
  const p = await json(await get('acme/repo', plain.digest));
  assert.equal(p.layers.length, 1);
  assert.equal(p.layers[0].command, null);
  assert.equal(p.layers[0].created_datetime, null);
  const junk = await pushImage(w, 'acme/repo', 'junk', { rawConfig: 'this is not json', layerSizes: [60] });
  const j = await json(await get('acme/repo', junk.digest));
  assert.equal(j.layers.length, 1);
  assert.equal(j.layers[0].compressed_size, 60);
});

test('an index is a manifest list without layers', async () => {
  const a = await pushImage(w, 'acme/repo', null);
  const b = await pushImage(w, 'acme/repo', null);
  const idx = await pushIndex(w, 'acme/repo', 'multi', [a, b]);
  const res = await json(await get('acme/repo', idx.digest));
  assert.equal(res.is_manifest_list, true);
  assert.equal(res.layers, null);
  assert.equal(res.layers_compressed_size, 0);
  assert.equal(res.config_media_type, null);
  assert.equal(res.manifest_data, idx.manifest);
  // Children are reachable through the tagged index.
  assert.equal((await get('acme/repo', a.digest)).status, 200);
});

test('unknown, malformed, foreign and untagged manifests are not found; strangers are refused', async () => {
  const img = await pushImage(w, 'acme/repo', 'temp');
  for (const ref of [`sha256:${'9'.repeat(64)}`, 'latest', 'sha256:xyz']) {
    const res = await get('acme/repo', ref);
    assert.equal(res.status, 404, ref);
    assert.ok(isApiError(await json(res), 404, 'not_found', w.t.url));
  }
  await pushImage(w, 'orgadmin/private', 'x');
  assert.equal((await get('orgadmin/private', img.digest)).status, 404, 'a digest of another repository');
  assert.equal((await get('acme/repo', img.digest, 'outsider')).status, 403);
  assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/temp')).status, 204);
  assert.equal((await get('acme/repo', img.digest)).status, 404, 'no live tag reaches it');
});

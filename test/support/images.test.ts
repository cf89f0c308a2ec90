// The offline image builders must produce layouts that independent tools (GNU tar, umoci,
// skopeo) accept, and must be reproducible so tests can predict digests.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildArtifact, buildBusyboxImage, buildIndex, buildMultiLayerImage, EMPTY_JSON_DIGEST, MT, readBlob, writeLayer } from './images.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'images-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('busybox image: GNU tar reads the layer, digests and diffIDs are right, build is reproducible', async () => {
  const a = await buildBusyboxImage(join(dir, 'a'), { extraFile: 'x' });
  const b = await buildBusyboxImage(join(dir, 'b'), { extraFile: 'x' });
  assert.equal(a.manifestDigest, b.manifestDigest);
  const c = await buildBusyboxImage(join(dir, 'c'), { extraFile: 'y' });
  assert.notEqual(a.manifestDigest, c.manifestDigest);

  const m = a.manifests[0];
  const layerPath = join(a.layoutDir, 'blobs', 'sha256', m.layers[0].digest.slice(7));
  assert.deepEqual(sh('tar', ['-tzf', layerPath]).trim().split('\n'), ['bin/', 'bin/busybox', 'bin/sh', 'etc/', 'etc/quayside-extra']);
  const busybox = execFileSync('tar', ['-xzOf', layerPath, 'bin/busybox'], { maxBuffer: 64 << 20 });
  assert.ok(busybox.equals(readFileSync('/bin/busybox')));

  const layer = await readBlob(a.layoutDir, m.layers[0].digest);
  assert.equal('sha256:' + createHash('sha256').update(layer).digest('hex'), m.layers[0].digest);
  assert.equal(layer.length, m.layers[0].size);
  const config = JSON.parse((await readBlob(a.layoutDir, m.config.digest)).toString());
  const { gunzipSync } = await import('node:zlib');
  assert.equal(config.rootfs.diff_ids[0], 'sha256:' + createHash('sha256').update(gunzipSync(layer)).digest('hex'));
  assert.deepEqual(config.config.Cmd, ['/bin/busybox', 'echo', 'hello']);
  assert.equal(config.history[0].created_by.includes('busybox'), true);
  // No temp files left behind in the layout.
  assert.deepEqual(readdirSync(join(a.layoutDir, 'blobs')), ['sha256']);
});

test('long paths use the ustar prefix field', async () => {
  const long = 'deep/' + 'a'.repeat(90) + '/' + 'b'.repeat(60) + '/file.txt';
  const { path } = await writeLayer(join(dir, 'long'), [{ type: 'file', path: long, content: 'hi' }]);
  assert.equal(sh('tar', ['-tzf', path]).trim(), long);
});

test('multi-layer image unpacks with umoci, applying the whiteout', async () => {
  const img = await buildMultiLayerImage(join(dir, 'multi'), 3, { seed: 's' });
  assert.equal(img.manifests[0].layers.length, 3);
  assert.equal(new Set(img.manifests[0].layers.map((l) => l.digest)).size, 3);
  const bundle = join(dir, 'bundle');
  sh('umoci', ['unpack', '--image', `${img.layoutDir}:${img.tag}`, bundle]);
  const files = readdirSync(join(bundle, 'rootfs', 'data')).sort();
  assert.deepEqual(files, ['layer-2.txt', 'layer-3.txt', 'payload-1.bin', 'payload-2.bin', 'payload-3.bin']);
});

test('index, artifact and all tags in one layout are readable by skopeo and umoci', async () => {
  const layout = join(dir, 'shared');
  const bb = await buildBusyboxImage(layout);
  const idx = await buildIndex(layout);
  const art = await buildArtifact(layout, bb.manifestDigest);
  const tags = sh('umoci', ['ls', '--layout', layout]).trim().split('\n').sort();
  assert.deepEqual(tags, ['latest', 'multiarch', 'sbom']);

  const raw = JSON.parse(sh('skopeo', ['inspect', '--raw', idx.ref]));
  assert.equal(raw.mediaType, MT.ociIndex);
  assert.deepEqual(
    raw.manifests.map((d: { platform: { architecture: string } }) => d.platform.architecture),
    ['amd64', 'arm64'],
  );
  assert.notEqual(idx.manifests[0].digest, idx.manifests[1].digest);
  const arm = JSON.parse(sh('skopeo', ['--override-arch', 'arm64', 'inspect', idx.ref]));
  assert.equal(arm.Architecture, 'arm64');
  // skopeo reports the digest of what the tag points at (the index), not the chosen instance.
  assert.equal(arm.Digest, idx.manifestDigest);
  assert.equal(arm.Layers[0], idx.manifests[1].layers[0].digest);

  const artRaw = JSON.parse(sh('skopeo', ['inspect', '--raw', art.ref]));
  assert.equal(artRaw.artifactType, 'application/vnd.example.sbom.v1+json');
  assert.equal(artRaw.config.digest, EMPTY_JSON_DIGEST);
  assert.deepEqual(artRaw.subject, { mediaType: MT.ociManifest, digest: bb.manifestDigest, size: bb.size });
  assert.ok(existsSync(join(layout, 'blobs', 'sha256', EMPTY_JSON_DIGEST.slice(7))));
});

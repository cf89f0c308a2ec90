// GET /api/v1/repository/{repository}/manifest/{manifestref}?include_modelcard=true: the markdown
// layer of an ML model artifact, chosen by artifactType and annotations as Quay's config keys say
// (UI_MODELCARD_ARTIFACT_TYPE, UI_MODELCARD_ANNOTATION, UI_MODELCARD_LAYER_ANNOTATION).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { sha256 } from '../../support/registry-client.ts';
import { client, json, OCI, pushImage } from './images.ts';
import { MAX_MODELCARD_BYTES } from '../../../src/model/modelcard.ts';
import type { Services } from '../../../src/model/context.ts';

let w: World;
let s: Services;
before(async () => {
  w = await createWorld();
  s = w.t.app.services;
});
after(async () => { await w?.close(); });

const README = '# Granite tiny\n\nA *small* model card — with UTF-8.\n';
const TITLE = 'org.opencontainers.image.title';

interface LayerSpec { bytes: Buffer; mediaType?: string; annotations?: Record<string, string> }

/** Pushes an OCI manifest with an empty config and the given layers; returns its digest. */
async function pushArtifact(repo: string, tag: string, layers: LayerSpec[], extra: { artifactType?: string; annotations?: Record<string, string> } = {}): Promise<string> {
  const c = client(w);
  const empty = Buffer.from('{}');
  const configDigest = await c.pushBlob(repo, empty);
  const descs = [];
  for (const l of layers) {
    descs.push({ mediaType: l.mediaType ?? 'application/octet-stream', digest: await c.pushBlob(repo, l.bytes), size: l.bytes.length, ...(l.annotations ? { annotations: l.annotations } : {}) });
  }
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: OCI, ...(extra.artifactType ? { artifactType: extra.artifactType } : {}),
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: empty.length },
    layers: descs, ...(extra.annotations ? { annotations: extra.annotations } : {}),
  });
  const res = await c.pushManifest(repo, tag, manifest, OCI);
  assert.equal(res.status, 201, await res.text());
  return sha256(manifest);
}

const weights = (): LayerSpec => ({ bytes: Buffer.from(`weights-${Math.random()}`), annotations: { [TITLE]: 'model.safetensors' } });
const readme = (text = README, title = 'README.md'): LayerSpec => ({ bytes: Buffer.from(text), mediaType: 'text/markdown', annotations: { [TITLE]: title } });

async function get(digest: string, query = '?include_modelcard=true'): Promise<any> {
  const res = await w.api('GET', `/repository/acme/repo/manifest/${digest}${query}`, { caller: 'member' });
  assert.equal(res.status, 200);
  return json(res);
}

/** Runs fn with config.yaml keys set (the model reads them per request). */
async function withConfig(keys: Record<string, unknown>, fn: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(keys).map((k) => [k, s.config.raw[k]]));
  Object.assign(s.config.raw, keys);
  try {
    await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete s.config.raw[k];
      else s.config.raw[k] = v;
    }
  }
}

test('an application/x-mlmodel artifact: the layer titled README.md, only when asked for', async () => {
  const digest = await pushArtifact('acme/repo', 'model', [weights(), readme(), readme('# not this one', 'README.md')], { artifactType: 'application/x-mlmodel' });
  const b = await get(digest);
  assert.equal(b.modelcard, README, 'the first layer titled README.md, decoded as UTF-8');
  assert.equal(b.digest, digest);
  assert.equal(b.layers.length, 3);
  assert.deepEqual(Object.keys(b).sort(), ['config_media_type', 'digest', 'is_manifest_list', 'layers', 'layers_compressed_size', 'manifest_data', 'modelcard']);
  assert.equal((await get(digest, '?include_modelcard=1')).modelcard, README);
  for (const q of ['', '?include_modelcard=false', '?include_modelcard=0', '?include_modelcard=']) {
    assert.equal('modelcard' in (await get(digest, q)), false, q);
  }
});

test('a single-layer model artifact needs no annotation; several layers without one have no card', async () => {
  const single = await pushArtifact('acme/repo', 'single', [{ bytes: Buffer.from('# Just me\n') }], { artifactType: 'application/x-mlmodel' });
  assert.equal((await get(single)).modelcard, '# Just me\n');
  const unmarked = await pushArtifact('acme/repo', 'unmarked', [weights(), { bytes: Buffer.from('# unnamed\n') }], { artifactType: 'application/x-mlmodel' });
  assert.equal('modelcard' in (await get(unmarked)), false);
  // Another artifact type, or a plain image, has no model card.
  const other = await pushArtifact('acme/repo', 'sbom', [readme()], { artifactType: 'application/vnd.example.sbom' });
  assert.equal('modelcard' in (await get(other)), false);
  const img = await pushImage(w, 'acme/repo', 'plain');
  assert.equal('modelcard' in (await get(img.digest)), false);
});

test('UI_MODELCARD_ANNOTATION marks a manifest without artifactType; the other keys are honoured', async () => {
  const annotated = await pushArtifact('acme/repo', 'annotated', [weights(), readme()], { annotations: { 'com.example.kind': 'model', other: 'x' } });
  // Quay's default UI_MODELCARD_ANNOTATION is empty: manifest annotations alone select nothing.
  assert.equal('modelcard' in (await get(annotated)), false);
  await withConfig({ UI_MODELCARD_ANNOTATION: { 'com.example.kind': 'model' } }, async () => {
    assert.equal((await get(annotated)).modelcard, README);
  });
  await withConfig({ UI_MODELCARD_ANNOTATION: { 'com.example.kind': 'dataset' } }, async () => {
    assert.equal('modelcard' in (await get(annotated)), false);
  });
  const custom = await pushArtifact('acme/repo', 'custom', [weights(), readme('# card\n', 'CARD.md')], { artifactType: 'application/vnd.example.model' });
  assert.equal('modelcard' in (await get(custom)), false);
  await withConfig({ UI_MODELCARD_ARTIFACT_TYPE: 'application/vnd.example.model', UI_MODELCARD_LAYER_ANNOTATION: { [TITLE]: 'CARD.md' } }, async () => {
    assert.equal((await get(custom)).modelcard, '# card\n');
  });
});

test('FEATURE_UI_MODELCARD off, or a card over the size bound: the field is left out', async () => {
  const digest = await pushArtifact('acme/repo', 'flagged', [weights(), readme()], { artifactType: 'application/x-mlmodel' });
  s.config.features.UI_MODELCARD = false;
  try {
    assert.equal('modelcard' in (await get(digest)), false);
  } finally {
    s.config.features.UI_MODELCARD = true;
  }
  assert.equal((await get(digest)).modelcard, README);
  const huge = await pushArtifact('acme/repo', 'huge', [readme('#'.repeat(MAX_MODELCARD_BYTES + 1))], { artifactType: 'application/x-mlmodel' });
  const b = await get(huge);
  assert.equal('modelcard' in b, false);
  assert.equal(b.layers[0].compressed_size, MAX_MODELCARD_BYTES + 1);
});

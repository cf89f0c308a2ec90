// podman and buildah (Debian 12's 4.3.1 / 1.28.2) against a real Quayside: pulls of images skopeo
// pushed (digests must survive), platform selection, and pushes of locally stored and locally
// built images — those layers are compressed on the fly, so they arrive as chunked PATCHes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildah, copy, createClientContext, inspect, login, podman, pull, push } from '../support/clients.ts';
import type { ClientContext } from '../support/clients.ts';
import { buildBusyboxImage, buildDockerImage, buildIndex, buildMultiLayerImage, MT } from '../support/images.ts';
import type { BuiltImage } from '../support/images.ts';
import { startTestApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { startRecorder, summarize } from '../support/recorder.ts';
import type { Recorder } from '../support/recorder.ts';
import { createUser } from '../../src/model/accounts.ts';
import { failure, ociBlob, ociTagDescriptor, reportTimings, timed } from './e2e.ts';

const PASS = 'podman-pass-1';

let t: TestApp;
let rec: Recorder;
let ctx: ClientContext;
let images: { busybox: BuiltImage; multi: BuiltImage; docker: BuiltImage; index: BuiltImage };

reportTimings('podman/buildah e2e');

before(async () => {
  t = await timed('start quayside', () => startTestApp());
  await createUser(t.app.services, { username: 'alice', password: PASS, email: 'alice@example.com' });
  ctx = await createClientContext('e2e-podman-');
  rec = await startRecorder({ upstream: t.url });
  const dir = join(ctx.dir, 'layouts');
  images = {
    busybox: await buildBusyboxImage(join(dir, 'busybox')),
    multi: await buildMultiLayerImage(join(dir, 'multi'), 3, { seed: 'e2e-podman' }),
    docker: await buildDockerImage(join(dir, 'docker'), { extraFile: 'podman-schema2' }),
    index: await buildIndex(join(dir, 'index'), { extraFile: 'podman-index' }),
  };
  await timed('podman login', () => login('podman', t.host, 'alice', PASS, ctx));
  await timed('podman login (recorder)', () => login('podman', rec.host, 'alice', PASS, ctx));
  await timed('seed with skopeo', async () => {
    await copy(images.busybox.ref, at('alice/busybox:1.0'), ctx);
    await copy(images.multi.ref, at('alice/multi:3'), ctx);
    await copy(images.docker.ref, at('alice/docker:v2s2'), ctx);
    await copy(images.index.ref, at('alice/multiarch:1'), { ...ctx, all: true });
  });
});

after(async () => {
  await rec?.stop();
  await ctx?.cleanup();
  await t?.close();
});

const at = (path: string) => `docker://${t.host}/${path}`;

async function imageField(ref: string, field: string): Promise<string> {
  const r = await podman(['image', 'inspect', '--format', `{{${field}}}`, ref], ctx);
  assert.equal(r.code, 0, failure(r));
  return r.stdout.trim();
}

test('podman pulls OCI, multi-layer and Docker schema2 images with their manifest digests intact', async () => {
  for (const [repo, img] of [['alice/busybox:1.0', images.busybox], ['alice/multi:3', images.multi], ['alice/docker:v2s2', images.docker]] as const) {
    const ref = `${t.host}/${repo}`;
    const r = await timed(`podman pull ${repo}`, () => pull('podman', ref, ctx));
    const configHex = img.manifests[0]!.config.digest.slice('sha256:'.length);
    assert.equal(r.stdout.trim(), configHex, 'podman prints the image ID (config digest)');
    assert.equal(await imageField(ref, '.Digest'), img.manifestDigest, repo);
    assert.match(await imageField(ref, '.RepoDigests'), new RegExp(`${t.host}/${repo.split(':')[0]}@${img.manifestDigest}`));
    assert.equal(await imageField(ref, 'len .RootFS.Layers'), String(img.manifests[0]!.layers.length));
  }
  assert.equal(await imageField(`${t.host}/alice/busybox:1.0`, 'index .Labels "com.example.a"'), '1');

  // Pull by digest too.
  const byDigest = `${t.host}/alice/multi@${images.multi.manifestDigest}`;
  await timed('podman pull by digest', () => pull('podman', byDigest, ctx));
  assert.equal(await imageField(byDigest, '.Digest'), images.multi.manifestDigest);
});

test('podman pulls one platform of an index with --arch', async () => {
  const arm = images.index.manifests.find((m) => m.platform?.architecture === 'arm64')!;
  const amd = images.index.manifests.find((m) => m.platform?.architecture === 'amd64')!;
  const ref = `${t.host}/alice/multiarch:1`;
  const r = await timed('podman pull --arch arm64', () => podman(['pull', '--quiet', '--tls-verify=false', '--authfile', ctx.authFile, '--arch', 'arm64', ref], ctx));
  assert.equal(r.code, 0, failure(r));
  assert.equal(r.stdout.trim(), arm.config.digest.slice('sha256:'.length));
  assert.equal(await imageField(ref, '.Architecture'), 'arm64');
  const repoDigests = await imageField(ref, '.RepoDigests');
  assert.match(repoDigests, new RegExp(arm.digest.slice(7)), 'the arm64 instance');
  assert.doesNotMatch(repoDigests, new RegExp(amd.digest.slice(7)));
});

test('podman push (from local storage, chunked uploads) and push --format v2s2; skopeo reads both back', async () => {
  const local = `${t.host}/alice/busybox:1.0`;
  await pull('podman', local, ctx);
  rec.clear();
  await timed('podman push', () => push('podman', local, `${rec.host}/alice/podman-copy:1`, ctx));
  const log = summarize(rec.requests).join('\n');
  const patches = rec.requests.filter((r) => r.method === 'PATCH');
  assert.ok(patches.length > 0, log);
  assert.ok(patches.every((r) => r.status === 202), log);
  assert.ok(patches.some((r) => r.headers['transfer-encoding'] === 'chunked'), `a chunked PATCH:\n${log}`);
  assert.ok(rec.requests.some((r) => r.method === 'PUT' && r.url.startsWith('/v2/alice/podman-copy/manifests/1') && r.status === 201), log);

  const info = await inspect<{ Digest: string; Labels: Record<string, string>; Layers: string[] }>(at('alice/podman-copy:1'), ctx);
  assert.equal(info.json.Labels['com.example.a'], '1');
  assert.equal(info.json.Layers.length, 1);
  const cfg = await inspect<{ config: { Cmd: string[] }; rootfs: { diff_ids: string[] } }>(at('alice/podman-copy:1'), { ...ctx, config: true });
  assert.deepEqual(cfg.json.config.Cmd, ['/bin/busybox', 'echo', 'hello']);
  // Recompressed layer, same content: the diffID survives.
  const original = JSON.parse((await ociBlob(images.busybox.layoutDir, images.busybox.manifests[0]!.config.digest)).toString()) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(cfg.json.rootfs.diff_ids, original.rootfs.diff_ids);

  await timed('podman push --format v2s2', () => push('podman', local, `${t.host}/alice/podman-copy:v2s2`, { ...ctx, format: 'v2s2' }));
  const raw = await inspect<{ mediaType: string; layers: { mediaType: string }[] }>(at('alice/podman-copy:v2s2'), { ...ctx, raw: true });
  assert.equal(raw.json.mediaType, MT.dockerManifest);
  assert.equal(raw.json.layers[0]!.mediaType, MT.dockerLayerGzip);

  // And back again into a fresh store, by the digest podman's push produced.
  const fresh = await createClientContext('e2e-podman-fresh-');
  try {
    await login('podman', t.host, 'alice', PASS, fresh);
    const ref = `${t.host}/alice/podman-copy@${info.json.Digest}`;
    await timed('podman pull (pushed by podman)', () => pull('podman', ref, fresh));
    const d = await podman(['image', 'inspect', '--format', '{{.Digest}}', ref], fresh);
    assert.equal(d.stdout.trim(), info.json.Digest, failure(d));
  } finally {
    await fresh.cleanup();
  }
});

test('buildah builds from scratch (copy busybox, commit) and pushes; the image reads back', async () => {
  const from = await timed('buildah from scratch', () => buildah(['from', 'scratch'], ctx));
  assert.equal(from.code, 0, failure(from));
  const c = from.stdout.trim();
  for (const args of [
    ['copy', c, '/bin/busybox', '/bin/busybox'],
    ['config', '--cmd', '/bin/busybox echo built', '--label', 'built-by=buildah', '--env', 'PATH=/bin', c],
    ['commit', '--quiet', c, 'localhost/built:1'],
  ]) {
    const r = await timed(`buildah ${args[0]}`, () => buildah(args, ctx));
    assert.equal(r.code, 0, failure(r));
  }
  rec.clear();
  await timed('buildah push', () => push('buildah', 'localhost/built:1', `${rec.host}/alice/built:1`, ctx));
  const log = summarize(rec.requests).join('\n');
  const patches = rec.requests.filter((r) => r.method === 'PATCH');
  assert.ok(patches.some((r) => r.headers['transfer-encoding'] === 'chunked' && r.status === 202), `a chunked PATCH:\n${log}`);
  assert.ok(rec.requests.every((r) => r.status < 500), log);
  assert.ok(rec.requests.some((r) => r.headers['user-agent']?.startsWith('Buildah/')), log);

  const info = await inspect<{ Digest: string; Labels: Record<string, string>; Layers: string[] }>(at('alice/built:1'), ctx);
  assert.equal(info.json.Labels['built-by'], 'buildah');
  assert.equal(info.json.Layers.length, 1);
  const layout = join(ctx.dir, 'built-oci');
  await timed('skopeo copy built -> oci:', () => copy(at('alice/built:1'), `oci:${layout}:b`, ctx));
  assert.equal((await ociTagDescriptor(layout, 'b')).digest, info.json.Digest);
  // The pushed layer really holds the busybox binary buildah copied in.
  const { execFileSync } = await import('node:child_process');
  const layerFile = join(layout, 'blobs', 'sha256', info.json.Layers[0]!.slice('sha256:'.length));
  const listing = execFileSync('tar', ['-tzf', layerFile], { encoding: 'utf8' });
  assert.match(listing, /^(\.\/)?bin\/busybox$/m);

  await timed('buildah pull', () => pull('buildah', `${t.host}/alice/built:1`, ctx));
  const pulled = await buildah(['images', '--format', '{{.Name}}:{{.Tag}}'], ctx);
  assert.match(pulled.stdout, new RegExp(`${t.host}/alice/built:1`));
});

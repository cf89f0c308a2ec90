// Proves the offline image builders and the real-client wrappers against the reference registry
// (Debian's Distribution 2.8.2), so failures in Quayside's client tests point at Quayside.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import {
  buildah,
  copy,
  createClientContext,
  deleteImage,
  inspect,
  listTags,
  login,
  podman,
  pull,
  push,
} from './clients.ts';
import type { ClientContext } from './clients.ts';
import { startDistribution } from './distribution.ts';
import type { Distribution } from './distribution.ts';
import { buildArtifact, buildBusyboxImage, buildDockerImage, buildIndex, buildMultiLayerImage, MT } from './images.ts';
import type { BuiltImage } from './images.ts';
import { startRecorder, summarize } from './recorder.ts';

const timings: [string, number][] = [];
after(() => {
  console.log('timings (ms):\n' + timings.map(([l, ms]) => `  ${String(ms).padStart(6)}  ${l}`).join('\n'));
});
async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([label, Math.round(performance.now() - t0)]);
  }
}

describe('real clients against Distribution 2.8.2', () => {
  let ctx: ClientContext;
  let reg: Distribution;
  let images: { busybox: BuiltImage; multi: BuiltImage; index: BuiltImage; artifact: BuiltImage; docker: BuiltImage };
  const USER = 'alice';
  const PASS = 'wonderland';

  before(async () => {
    ctx = await createClientContext('harness-');
    reg = await timed('start docker-registry', () => startDistribution({ htpasswd: { [USER]: PASS } }));
    images = await timed('build all layouts', async () => {
      const dir = `${ctx.dir}/layouts`;
      const busybox = await buildBusyboxImage(`${dir}/busybox`, { labels: { 'com.example.a': '1', 'quay.expires-after': '' } });
      const multi = await buildMultiLayerImage(`${dir}/multi`, 3);
      const index = await buildIndex(`${dir}/index`);
      const artifact = await buildArtifact(`${dir}/busybox`, busybox.manifestDigest);
      const docker = await buildDockerImage(`${dir}/docker`, { extraFile: 'schema2' });
      return { busybox, multi, index, artifact, docker };
    });
  });

  after(async () => {
    await reg?.stop();
    await ctx?.cleanup();
  });

  const at = (path: string) => `docker://${reg.host}/${path}`;

  test('anonymous push is refused, then skopeo login stores credentials in the isolated auth file', async () => {
    const anon = await timed('skopeo copy (anonymous, refused)', () =>
      copy(images.busybox.ref, at('lib/busybox:anon'), { ...ctx, allowFailure: true }),
    );
    assert.notEqual(anon.code, 0);
    assert.match(anon.stderr, /unauthorized|authentication required/i);
    await timed('skopeo login', () => login('skopeo', reg.host, USER, PASS, ctx));
  });

  test('skopeo copies the busybox image byte-for-byte', async () => {
    await timed('skopeo copy busybox', () => copy(images.busybox.ref, at('lib/busybox:1.0'), ctx));
    const { json, result } = await timed('skopeo inspect --raw', () => inspect(at('lib/busybox:1.0'), { ...ctx, raw: true }));
    assert.equal(result.stdout, images.busybox.raw.toString());
    assert.equal(json.mediaType, MT.ociManifest);
    const info = await timed('skopeo inspect', () => inspect<{ Digest: string; Labels: Record<string, string> }>(at('lib/busybox:1.0'), ctx));
    assert.equal(info.json.Digest, images.busybox.manifestDigest);
    assert.deepEqual(info.json.Labels, { 'com.example.a': '1', 'quay.expires-after': '' });
    const cfg = await inspect<{ config: { Cmd: string[] }; history: { created_by: string }[] }>(at('lib/busybox:1.0'), {
      ...ctx,
      config: true,
    });
    assert.deepEqual(cfg.json.config.Cmd, ['/bin/busybox', 'echo', 'hello']);
    assert.equal(cfg.json.history.length, 1);
  });

  test('skopeo copies a multi-layer image', async () => {
    await timed('skopeo copy multi-layer (3)', () => copy(images.multi.ref, at('lib/multi:3'), ctx));
    const { json } = await inspect<{ Digest: string; Layers: string[] }>(at('lib/multi:3'), ctx);
    assert.equal(json.Digest, images.multi.manifestDigest);
    assert.deepEqual(json.Layers, images.multi.manifests[0].layers.map((l) => l.digest));
  });

  test('skopeo copies a two-platform index with --all', async () => {
    await timed('skopeo copy --all index', () => copy(images.index.ref, at('lib/multiarch:1'), { ...ctx, all: true }));
    const top = await inspect(at('lib/multiarch:1'), { ...ctx, raw: true });
    assert.equal(top.result.stdout, images.index.raw.toString());
    for (const child of images.index.manifests) {
      const got = await inspect(at(`lib/multiarch@${child.digest}`), { ...ctx, raw: true });
      assert.equal(got.result.stdout, child.raw.toString());
    }
    // Without --raw, skopeo resolves the index to this machine's platform.
    const resolved = await inspect<{ Digest: string; Architecture: string }>(at('lib/multiarch:1'), ctx);
    assert.equal(resolved.json.Architecture, 'amd64');
  });

  test('skopeo copies an OCI artifact with a subject unchanged', async () => {
    await timed('skopeo copy artifact', () => copy(images.artifact.ref, at('lib/busybox:sbom'), ctx));
    const got = await inspect<{ artifactType: string; subject: { digest: string } }>(at('lib/busybox:sbom'), { ...ctx, raw: true });
    assert.equal(got.result.stdout, images.artifact.raw.toString());
    assert.equal(got.json.artifactType, 'application/vnd.example.sbom.v1+json');
    assert.equal(got.json.subject.digest, images.busybox.manifestDigest);
  });

  test('skopeo keeps Docker schema2 from dir:, and converts OCI with --format v2s2', async () => {
    await timed('skopeo copy schema2 (dir:)', () => copy(images.docker.ref, at('lib/docker:v2s2'), ctx));
    const kept = await inspect<{ mediaType: string }>(at('lib/docker:v2s2'), { ...ctx, raw: true });
    assert.equal(kept.result.stdout, images.docker.raw.toString());
    assert.equal(kept.json.mediaType, MT.dockerManifest);

    await timed('skopeo copy --format v2s2 (convert)', () => copy(images.busybox.ref, at('lib/converted:1'), { ...ctx, format: 'v2s2' }));
    const conv = await inspect<{ mediaType: string; layers: { mediaType: string; digest: string }[] }>(at('lib/converted:1'), {
      ...ctx,
      raw: true,
    });
    assert.equal(conv.json.mediaType, MT.dockerManifest);
    assert.equal(conv.json.layers[0].mediaType, MT.dockerLayerGzip);
    assert.equal(conv.json.layers[0].digest, images.busybox.manifests[0].layers[0].digest, 'layer blob reused as-is');
  });

  test('podman pulls the busybox image and pushes it to another repository', async () => {
    await timed('podman login', () => login('podman', reg.host, USER, PASS, ctx));
    const pulled = await timed('podman pull', () => pull('podman', `${reg.host}/lib/busybox:1.0`, ctx));
    const configHex = images.busybox.manifests[0].config.digest.slice('sha256:'.length);
    assert.equal(pulled.stdout.trim(), configHex, 'podman prints the image ID (config digest)');
    const listed = await podman(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'], ctx);
    assert.match(listed.stdout, new RegExp(`${reg.host}/lib/busybox:1.0 ${configHex.slice(0, 12)}`));
    await timed('podman push', () => push('podman', `${reg.host}/lib/busybox:1.0`, `${reg.host}/team/podman-copy:1`, ctx));
    const { json } = await inspect<{ Labels: Record<string, string> }>(at('team/podman-copy:1'), ctx);
    assert.equal(json.Labels['com.example.a'], '1');
  });

  test('buildah builds from scratch and pushes; buildah pull works', async () => {
    const from = await timed('buildah from scratch', () => buildah(['from', 'scratch'], ctx));
    assert.equal(from.code, 0, from.stderr);
    const c = from.stdout.trim();
    for (const args of [
      ['copy', c, '/bin/busybox', '/bin/busybox'],
      ['config', '--cmd', '/bin/busybox echo hello', '--label', 'built-by=buildah', c],
      ['commit', '--quiet', c, 'localhost/built:1'],
    ]) {
      const r = await timed(`buildah ${args[0]}`, () => buildah(args, ctx));
      assert.equal(r.code, 0, r.stderr);
    }
    await timed('buildah push', () => push('buildah', 'localhost/built:1', `${reg.host}/team/buildah:1`, ctx));
    const { json } = await inspect<{ Labels: Record<string, string> }>(at('team/buildah:1'), ctx);
    assert.equal(json.Labels['built-by'], 'buildah');
    await timed('buildah pull', () => pull('buildah', `${reg.host}/lib/multi:3`, ctx));
  });

  test('skopeo list-tags and delete', async () => {
    await copy(images.busybox.ref, at('lib/busybox:1.1'), ctx);
    const { tags } = await timed('skopeo list-tags', () => listTags(`${reg.host}/lib/busybox`, ctx));
    assert.deepEqual([...tags].sort(), ['1.0', '1.1', 'sbom']);
    await timed('skopeo delete', () => deleteImage(`${reg.host}/lib/busybox:1.1`, ctx));
    // Distribution deletes the manifest, so every tag pointing at it goes.
    const after = await listTags(`${reg.host}/lib/busybox`, ctx);
    assert.deepEqual(after.tags, ['sbom']);
    const gone = await inspect(at('lib/busybox:1.0'), { ...ctx, allowFailure: true });
    assert.notEqual(gone.result.code, 0);
    assert.match(gone.result.stderr, /manifest unknown|not found/i);
  });
});

describe('client HTTP behaviour behind a Bearer realm on http://127.0.0.1', () => {
  let ctx: ClientContext;
  let reg: Distribution;
  let rec: Awaited<ReturnType<typeof startRecorder>>;

  before(async () => {
    ctx = await createClientContext('harness-bearer-');
    reg = await startDistribution();
    rec = await startRecorder({ upstream: reg.url, auth: 'bearer', users: { bob: 'builder' } });
  });
  after(async () => {
    await rec?.stop();
    await reg?.stop();
    await ctx?.cleanup();
  });

  test('skopeo, podman and buildah fetch tokens from the realm and push/pull through it', async () => {
    const dir = `${ctx.dir}/layouts`;
    const image = await buildMultiLayerImage(`${dir}/m`, 2, { seed: 'bearer', layerBytes: 64 * 1024 });
    const log: string[] = [];
    const step = async (label: string, fn: () => Promise<unknown>) => {
      rec.clear();
      await timed(label, fn);
      log.push(`## ${label}`, ...rec.tokenRequests.map((t) => `TOKEN ${t.method} ${t.credential} scopes=${t.scopes.join(' ')}`));
      log.push(...summarize(rec.requests));
      return { requests: [...rec.requests], tokens: [...rec.tokenRequests] };
    };

    await step('skopeo login (bearer)', () => login('skopeo', rec.host, 'bob', 'builder', ctx));
    const first = await step('skopeo copy (bearer)', () => copy(image.ref, `docker://${rec.host}/org/app:1`, ctx));
    assert.ok(first.tokens.length > 0, 'a token was requested');
    assert.ok(first.tokens.every((t) => t.credential === 'basic' && t.user === 'bob'));
    assert.ok(first.tokens.some((t) => t.scopes.includes('repository:org/app:pull,push')));
    assert.ok(first.requests.some((r) => r.method === 'PUT' && r.url.startsWith('/v2/org/app/manifests/1')));

    const second = await step('skopeo copy to a second repo (mount?)', () => copy(image.ref, `docker://${rec.host}/org/other:1`, ctx));
    assert.ok(second.requests.some((r) => r.method === 'PUT' && r.url.startsWith('/v2/org/other/manifests/1')));

    await step('podman pull (bearer)', () => pull('podman', `${rec.host}/org/app:1`, ctx));
    await step('podman push (bearer)', () => push('podman', `${rec.host}/org/app:1`, `${rec.host}/org/podman:1`, ctx));
    await step('buildah push (bearer)', () => push('buildah', `${rec.host}/org/app:1`, `${rec.host}/org/buildah:1`, ctx));
    await step('skopeo delete (bearer)', () => deleteImage(`${rec.host}/org/other:1`, ctx));

    if (process.env.HARNESS_HTTP_LOG) await writeFile(process.env.HARNESS_HTTP_LOG, log.join('\n') + '\n');
    const pushes = log.filter((l) => l.startsWith('PATCH') || l.startsWith('PUT'));
    assert.ok(pushes.length > 0);
  });
});

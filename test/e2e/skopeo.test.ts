// skopeo (Debian 12's 1.9.3) against a real Quayside: pushes, pulls back byte-for-byte, inspect,
// list-tags, multi-platform indexes, OCI artifacts and the referrers API, cross-repo mounts and
// deletes. Runs on the database QUAYSIDE_TEST_DB selects.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copy, createClientContext, deleteImage, inspect, listTags, login, skopeo } from '../support/clients.ts';
import type { ClientContext } from '../support/clients.ts';
import { buildArtifact, buildBusyboxImage, buildDockerImage, buildIndex, buildMultiLayerImage, DEFAULT_ARTIFACT_TYPE, MT } from '../support/images.ts';
import type { BuiltImage } from '../support/images.ts';
import { startTestApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { RegistryClient } from '../support/registry-client.ts';
import { startRecorder, summarize } from '../support/recorder.ts';
import type { Recorder } from '../support/recorder.ts';
import { createUser } from '../../src/model/accounts.ts';
import { findRepo } from '../../src/model/repositories.ts';
import { dirManifestDigest, failure, ociBlob, ociTagDescriptor, reportTimings, sha256, timed } from './e2e.ts';

const PASS = 'correct-horse-1';

let t: TestApp;
let ctx: ClientContext;
let images: { busybox: BuiltImage; multi: BuiltImage; docker: BuiltImage; index: BuiltImage; artifact: BuiltImage };

reportTimings('skopeo e2e');

before(async () => {
  t = await timed('start quayside', () => startTestApp());
  await createUser(t.app.services, { username: 'alice', password: PASS, email: 'alice@example.com' });
  ctx = await createClientContext('e2e-skopeo-');
  images = await timed('build layouts', async () => {
    const dir = join(ctx.dir, 'layouts');
    const busybox = await buildBusyboxImage(join(dir, 'busybox'));
    return {
      busybox,
      multi: await buildMultiLayerImage(join(dir, 'multi'), 3, { seed: 'e2e-skopeo' }),
      docker: await buildDockerImage(join(dir, 'docker'), { extraFile: 'schema2' }),
      index: await buildIndex(join(dir, 'index')),
      artifact: await buildArtifact(join(dir, 'busybox'), busybox.manifestDigest),
    };
  });
  await timed('skopeo login', () => login('skopeo', t.host, 'alice', PASS, ctx));
});

after(async () => {
  await ctx?.cleanup();
  await t?.close();
});

const at = (path: string) => `docker://${t.host}/${path}`;

interface Inspected {
  Digest: string;
  Layers: string[];
  Architecture: string;
  Labels: Record<string, string> | null;
  RepoTags: string[];
}

test('push busybox (OCI), pull it back into oci: and dir: with the same digest and bytes', async () => {
  const img = images.busybox;
  await timed('skopeo copy busybox ->', () => copy(img.ref, at('alice/busybox:1.0'), ctx));

  const layout = join(ctx.dir, 'pulled-oci');
  await timed('skopeo copy busybox -> oci:', () => copy(at('alice/busybox:1.0'), `oci:${layout}:got`, ctx));
  const desc = await ociTagDescriptor(layout, 'got');
  assert.equal(desc.digest, img.manifestDigest);
  assert.equal(desc.mediaType, MT.ociManifest);
  assert.ok((await ociBlob(layout, img.manifestDigest)).equals(img.raw), 'manifest bytes unchanged');
  for (const blob of img.blobs) assert.equal(sha256(await ociBlob(layout, blob)), blob);

  const dir = join(ctx.dir, 'pulled-dir-busybox');
  await timed('skopeo copy busybox -> dir:', () => copy(at('alice/busybox:1.0'), `dir:${dir}`, ctx));
  assert.equal(await dirManifestDigest(dir), img.manifestDigest);

  const { json } = await timed('skopeo inspect', () => inspect<Inspected>(at('alice/busybox:1.0'), ctx));
  assert.equal(json.Digest, img.manifestDigest);
  assert.deepEqual(json.Layers, img.manifests[0]!.layers.map((l) => l.digest));
  assert.equal(json.Architecture, 'amd64');
  assert.deepEqual(json.Labels, { 'com.example.a': '1', 'quay.expires-after': '' });
  assert.deepEqual(json.RepoTags, ['1.0']);

  const raw = await inspect(at('alice/busybox:1.0'), { ...ctx, raw: true });
  assert.equal(raw.result.stdout, img.raw.toString());
  const cfg = await inspect<{ config: { Cmd: string[] } }>(at('alice/busybox:1.0'), { ...ctx, config: true });
  assert.deepEqual(cfg.json.config.Cmd, ['/bin/busybox', 'echo', 'hello']);
});

test('push the multi-layer image and the Docker schema2 image; pull both back unchanged', async () => {
  await timed('skopeo copy multi ->', () => copy(images.multi.ref, at('alice/multi:3'), ctx));
  const multi = await inspect<Inspected>(at('alice/multi:3'), ctx);
  assert.equal(multi.json.Digest, images.multi.manifestDigest);
  assert.deepEqual(multi.json.Layers, images.multi.manifests[0]!.layers.map((l) => l.digest));
  assert.equal(multi.json.Layers.length, 3);
  const multiDir = join(ctx.dir, 'pulled-dir-multi');
  await copy(at('alice/multi:3'), `dir:${multiDir}`, ctx);
  assert.equal(await dirManifestDigest(multiDir), images.multi.manifestDigest);

  await timed('skopeo copy schema2 ->', () => copy(images.docker.ref, at('alice/docker:v2s2'), ctx));
  const raw = await inspect<{ mediaType: string }>(at('alice/docker:v2s2'), { ...ctx, raw: true });
  assert.equal(raw.json.mediaType, MT.dockerManifest);
  assert.equal(raw.result.stdout, images.docker.raw.toString());
  const dockerDir = join(ctx.dir, 'pulled-dir-docker');
  await timed('skopeo copy schema2 -> dir:', () => copy(at('alice/docker:v2s2'), `dir:${dockerDir}`, ctx));
  assert.equal(await dirManifestDigest(dockerDir), images.docker.manifestDigest);
  const info = await inspect<Inspected>(at('alice/docker:v2s2'), ctx);
  assert.equal(info.json.Digest, images.docker.manifestDigest);
});

test('list-tags shows every tag of a repository, and nothing of other repositories', async () => {
  await copy(images.busybox.ref, at('alice/busybox:1.1'), ctx);
  await copy(images.busybox.ref, at('alice/busybox:latest'), ctx);
  const { tags } = await timed('skopeo list-tags', () => listTags(`${t.host}/alice/busybox`, ctx));
  assert.deepEqual([...tags].sort(), ['1.0', '1.1', 'latest']);
  // As in Quay, a namespace owner may read a repository that does not exist yet: NAME_UNKNOWN (404).
  const unknown = await listTags(`${t.host}/alice/never-pushed`, { ...ctx, allowFailure: true });
  assert.notEqual(unknown.result.code, 0);
  assert.match(unknown.result.stderr, /name unknown|repository name not known|404 \(Not Found\)/i, failure(unknown.result));
  assert.doesNotMatch(unknown.result.stderr, /\b500\b/, failure(unknown.result));
});

test('copy --all of a two-platform index keeps the index bytes; --override-arch picks one platform', async () => {
  const idx = images.index;
  await timed('skopeo copy --all index ->', () => copy(idx.ref, at('alice/multiarch:1'), { ...ctx, all: true }));
  const top = await inspect<{ mediaType: string; manifests: { digest: string }[] }>(at('alice/multiarch:1'), { ...ctx, raw: true });
  assert.equal(top.result.stdout, idx.raw.toString());
  assert.equal(sha256(top.result.stdout), idx.manifestDigest);
  assert.equal(top.json.mediaType, MT.ociIndex);
  for (const child of idx.manifests) {
    const got = await inspect(at(`alice/multiarch@${child.digest}`), { ...ctx, raw: true });
    assert.equal(got.result.stdout, child.raw.toString());
  }
  const resolved = await inspect<Inspected>(at('alice/multiarch:1'), ctx);
  assert.equal(resolved.json.Digest, idx.manifestDigest);
  assert.equal(resolved.json.Architecture, 'amd64');

  const arm = idx.manifests.find((m) => m.platform?.architecture === 'arm64')!;
  const layout = join(ctx.dir, 'pulled-arm64');
  const r = await timed('skopeo --override-arch arm64 copy ->oci:', () =>
    skopeo(['--override-arch', 'arm64', 'copy', '--retry-times', '0', '--src-tls-verify=false', '--authfile', ctx.authFile, at('alice/multiarch:1'), `oci:${layout}:arm`], ctx),
  );
  assert.equal(r.code, 0, failure(r));
  const desc = await ociTagDescriptor(layout, 'arm');
  assert.equal(desc.digest, arm.digest);
  const config = JSON.parse((await ociBlob(layout, arm.config.digest)).toString()) as { architecture: string };
  assert.equal(config.architecture, 'arm64');
  const armInfo = await skopeo(['--override-arch', 'arm64', 'inspect', '--tls-verify=false', '--authfile', ctx.authFile, at('alice/multiarch:1')], ctx);
  assert.equal(armInfo.code, 0, failure(armInfo));
  assert.equal((JSON.parse(armInfo.stdout) as Inspected).Architecture, 'arm64');
});

test('an OCI artifact with a subject is listed by the referrers API, with the artifactType filter', async () => {
  const art = images.artifact;
  await timed('skopeo copy artifact ->', () => copy(art.ref, at('alice/busybox:sbom'), ctx));
  const raw = await inspect<{ artifactType: string; subject: { digest: string } }>(at('alice/busybox:sbom'), { ...ctx, raw: true });
  assert.equal(raw.result.stdout, art.raw.toString());
  assert.equal(raw.json.subject.digest, images.busybox.manifestDigest);

  const client = new RegistryClient(t.url, 'alice', PASS);
  const scope = 'repository:alice/busybox:pull';
  const path = `/v2/alice/busybox/referrers/${images.busybox.manifestDigest}`;
  type Index = { schemaVersion: number; mediaType: string; manifests: { digest: string; mediaType: string; size: number; artifactType?: string; annotations?: Record<string, string> }[] };

  const all = await client.req('GET', path, { scope });
  assert.equal(all.status, 200);
  assert.equal(all.headers.get('content-type'), MT.ociIndex);
  assert.equal(all.headers.get('oci-filters-applied'), null);
  const body = (await all.json()) as Index;
  assert.equal(body.schemaVersion, 2);
  assert.equal(body.mediaType, MT.ociIndex);
  assert.deepEqual(body.manifests.map((m) => ({ digest: m.digest, mediaType: m.mediaType, size: m.size, artifactType: m.artifactType })), [
    { digest: art.manifestDigest, mediaType: MT.ociManifest, size: art.size, artifactType: DEFAULT_ARTIFACT_TYPE },
  ]);
  assert.equal(body.manifests[0]!.annotations?.['org.opencontainers.image.created'], '2024-01-01T00:00:00Z');

  const filtered = await client.req('GET', `${path}?artifactType=${encodeURIComponent(DEFAULT_ARTIFACT_TYPE)}`, { scope });
  assert.equal(filtered.status, 200);
  assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(((await filtered.json()) as Index).manifests.map((m) => m.digest), [art.manifestDigest]);

  const other = await client.req('GET', `${path}?artifactType=${encodeURIComponent('application/vnd.example.other')}`, { scope });
  assert.equal(other.status, 200);
  assert.equal(other.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(((await other.json()) as Index).manifests, []);

  // The artifact itself has no referrers; an unknown subject answers an empty index too.
  const none = await client.req('GET', `/v2/alice/busybox/referrers/${art.manifestDigest}`, { scope });
  assert.equal(none.status, 200);
  assert.deepEqual(((await none.json()) as Index).manifests, []);
});

test('copying between repositories of one namespace mounts the blobs instead of re-uploading them', async () => {
  let rec: Recorder | undefined;
  const mctx = await createClientContext('e2e-mount-');
  try {
    rec = await startRecorder({ upstream: t.url });
    await login('skopeo', rec.host, 'alice', PASS, mctx);
    const via = (p: string) => `docker://${rec!.host}/${p}`;
    const img = images.multi;
    // This context's blob-info cache learns where the blobs live while pulling from alice/multi.
    await timed('skopeo copy (source for mount) ->', () => copy(img.ref, via('alice/mount-src:1'), mctx));
    rec.clear();
    const r = await timed('skopeo copy docker->docker (mount)', () => copy(via('alice/mount-src:1'), via('alice/mount-dst:1'), mctx));
    const log = summarize(rec.requests).join('\n');
    const mounts = rec.requests.filter((q) => q.method === 'POST' && q.url.startsWith('/v2/alice/mount-dst/blobs/uploads/') && q.url.includes('mount='));
    const mounted = new Set(mounts.filter((q) => q.status === 201).map((q) => new URL(q.url, 'http://x').searchParams.get('mount')));
    const layers = img.manifests[0]!.layers.map((l) => l.digest);
    assert.deepEqual([...mounted].sort(), [...layers].sort(), `every layer mounted:\n${log}`);
    for (const q of mounts) assert.equal(new URL(q.url, 'http://x').searchParams.get('from'), 'alice/mount-src', log);
    // containers/image reads the config itself and pushes it as a plain upload (never a mount);
    // the layers must not be uploaded nor even downloaded.
    const config = img.manifests[0]!.config.digest;
    const uploaded = rec.requests.filter((q) => q.method === 'PUT' && q.url.includes('/blobs/uploads/'));
    assert.deepEqual(uploaded.map((q) => new URL(q.url, 'http://x').searchParams.get('digest')), [config], `only the config was uploaded:\n${log}`);
    assert.equal(rec.requests.filter((q) => q.method === 'PATCH').length, 1, log);
    const downloads = rec.requests.filter((q) => q.method === 'GET' && q.url.includes('/blobs/sha256:'));
    assert.deepEqual(downloads.map((q) => q.url), [`/v2/alice/mount-src/blobs/${config}`], `no layer was downloaded:\n${log}`);
    assert.ok(r.durationMs < 20_000);

    // The target repository serves the mounted blobs and the same manifest.
    const info = await inspect<Inspected>(at('alice/mount-dst:1'), ctx);
    assert.equal(info.json.Digest, img.manifestDigest);
    const client = new RegistryClient(t.url, 'alice', PASS);
    for (const blob of img.blobs) {
      const res = await client.req('HEAD', `/v2/alice/mount-dst/blobs/${blob}`, { scope: 'repository:alice/mount-dst:pull' });
      assert.equal(res.status, 200, blob);
    }
    assert.ok(await findRepo(t.app.services, 'alice', 'mount-dst'));
  } finally {
    await rec?.stop();
    await mctx.cleanup();
  }
});

test('skopeo delete by digest and by tag; inspect then fails with manifest unknown', async () => {
  await copy(images.multi.ref, at('alice/deleteme:bytag'), ctx);
  await copy(images.docker.ref, at('alice/deleteme:bydigest'), ctx);

  const byTag = await timed('skopeo delete (tag)', () => deleteImage(`${t.host}/alice/deleteme:bytag`, ctx));
  assert.equal(byTag.code, 0);
  const gone = await inspect(at('alice/deleteme:bytag'), { ...ctx, allowFailure: true });
  assert.notEqual(gone.result.code, 0);
  assert.match(gone.result.stderr, /manifest unknown/i, failure(gone.result));

  const digestRef = `${t.host}/alice/deleteme@${images.docker.manifestDigest}`;
  assert.equal((await inspect<Inspected>(`docker://${digestRef}`, ctx)).json.Digest, images.docker.manifestDigest);
  const byDigest = await timed('skopeo delete (digest)', () => deleteImage(digestRef, ctx));
  assert.equal(byDigest.code, 0);
  for (const ref of [`docker://${digestRef}`, at('alice/deleteme:bydigest')]) {
    const r = await inspect(ref, { ...ctx, allowFailure: true });
    assert.notEqual(r.result.code, 0, ref);
    assert.match(r.result.stderr, /manifest unknown/i, failure(r.result));
  }
  const { tags } = await listTags(`${t.host}/alice/deleteme`, ctx);
  assert.deepEqual(tags, []);
  // The other repositories still hold their copies.
  assert.equal((await inspect<Inspected>(at('alice/multi:3'), ctx)).json.Digest, images.multi.manifestDigest);
  assert.equal((await inspect<Inspected>(at('alice/docker:v2s2'), ctx)).json.Digest, images.docker.manifestDigest);
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { RegistryClient, sha256 } from '../../support/registry-client.ts';
import { createUser } from '../../../src/model/accounts.ts';
import { findRepo, setVisibility } from '../../../src/model/repositories.ts';
import { ANONYMOUS } from '../../../src/model/context.ts';

let t: TestApp;
let c: RegistryClient;
const R = 'repository:alice/m:pull,push';
const OCI = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const D2 = 'application/vnd.docker.distribution.manifest.v2+json';
const DLIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

before(async () => {
  t = await startTestApp();
  await createUser(t.app.services, { username: 'alice', password: 'password1' });
  c = new RegistryClient(t.url, 'alice', 'password1');
});
after(() => t.close());

async function errCode(res: Response): Promise<string> {
  return ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code;
}

async function blobs(repo: string): Promise<{ config: { mediaType: string; digest: string; size: number }; layer: { mediaType: string; digest: string; size: number } }> {
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { a: 'b' } }, rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = randomBytes(256);
  return {
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await c.pushBlob(repo, cfg), size: cfg.length },
    layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await c.pushBlob(repo, layer), size: layer.length },
  };
}

test('PUT by tag then GET/HEAD return the exact bytes with digest, type and length', async () => {
  const b = await blobs('alice/m');
  // Odd whitespace and key order: the registry must keep the bytes as pushed.
  const body = `{"schemaVersion":2,  "mediaType":"${OCI}","config":${JSON.stringify(b.config)},"layers":[${JSON.stringify(b.layer)}]}\n`;
  const put = await c.pushManifest('alice/m', 'v1', body, OCI);
  assert.equal(put.status, 201);
  const digest = sha256(body);
  assert.equal(put.headers.get('docker-content-digest'), digest);
  assert.equal(put.headers.get('location'), `/v2/alice/m/manifests/${digest}`);
  for (const ref of ['v1', digest]) {
    const get = await c.req('GET', `/v2/alice/m/manifests/${ref}`, { scope: R, headers: { accept: OCI } });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), OCI);
    assert.equal(get.headers.get('docker-content-digest'), digest);
    assert.equal(get.headers.get('content-length'), String(Buffer.byteLength(body)));
    assert.equal(await get.text(), body);
    const head = await c.req('HEAD', `/v2/alice/m/manifests/${ref}`, { scope: R });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), digest);
    assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(body)));
  }
});

test('Docker schema2 and manifest lists keep their media types', async () => {
  const b = await blobs('alice/m');
  const m = JSON.stringify({ schemaVersion: 2, mediaType: D2, config: { ...b.config, mediaType: 'application/vnd.docker.container.image.v1+json' }, layers: [{ ...b.layer, mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }] });
  const put = await c.pushManifest('alice/m', 'docker', m, D2);
  assert.equal(put.status, 201);
  const child = put.headers.get('docker-content-digest')!;
  const list = JSON.stringify({ schemaVersion: 2, mediaType: DLIST, manifests: [{ mediaType: D2, digest: child, size: Buffer.byteLength(m), platform: { architecture: 'amd64', os: 'linux' } }] });
  const lput = await c.pushManifest('alice/m', 'list', list, DLIST);
  assert.equal(lput.status, 201);
  const get = await c.req('GET', '/v2/alice/m/manifests/list', { scope: R, headers: { accept: `${DLIST}, ${D2}` } });
  assert.equal(get.headers.get('content-type'), DLIST);
  // A client that cannot read lists gets the linux/amd64 image.
  const old = await c.req('GET', '/v2/alice/m/manifests/list', { scope: R, headers: { accept: D2 } });
  assert.equal(old.headers.get('content-type'), D2);
  assert.equal(old.headers.get('docker-content-digest'), child);
});

test('an OCI index needs its children in the repository', async () => {
  const b = await blobs('alice/m');
  const missing = JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: OCI, digest: sha256('nope'), size: 10, platform: { architecture: 'arm64', os: 'linux' } }] });
  const res = await c.pushManifest('alice/m', 'idx', missing, INDEX);
  assert.equal(res.status, 404);
  assert.equal(await errCode(res), 'MANIFEST_BLOB_UNKNOWN');
  const m = JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: b.config, layers: [b.layer] });
  const byDigest = await c.pushManifest('alice/m', sha256(m), m, OCI);
  assert.equal(byDigest.status, 201);
  // Pushed by digest only: no tag appears, but it is pullable by digest.
  const tags = (await (await c.req('GET', '/v2/alice/m/tags/list', { scope: R })).json()) as { tags: string[] };
  assert.ok(tags.tags.every((x) => !x.startsWith('$')));
  const idx = JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: OCI, digest: sha256(m), size: Buffer.byteLength(m), platform: { architecture: 'arm64', os: 'linux' } }] });
  assert.equal((await c.pushManifest('alice/m', 'idx', idx, INDEX)).status, 201);
  assert.equal((await c.req('GET', `/v2/alice/m/manifests/${sha256(m)}`, { scope: R })).status, 200);
});

test('a manifest that names a blob the repository does not have is MANIFEST_BLOB_UNKNOWN; nothing is stored', async () => {
  const b = await blobs('alice/m');
  const m = JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: b.config, layers: [{ ...b.layer, digest: sha256('absent') }] });
  const res = await c.pushManifest('alice/m', 'broken', m, OCI);
  assert.equal(res.status, 404);
  assert.equal(await errCode(res), 'MANIFEST_BLOB_UNKNOWN');
  assert.equal((await c.req('GET', '/v2/alice/m/manifests/broken', { scope: R })).status, 404);
  const rows = await t.app.services.db.selectFrom('manifests').select('id').where('digest', '=', sha256(m)).execute();
  assert.equal(rows.length, 0);
});

test('a descriptor size that does not match the blob is MANIFEST_INVALID', async () => {
  const b = await blobs('alice/m');
  const m = JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: b.config, layers: [{ ...b.layer, size: b.layer.size + 1 }] });
  const res = await c.pushManifest('alice/m', 'badsize', m, OCI);
  assert.equal(await errCode(res), 'MANIFEST_INVALID');
});

test('malformed manifests, digest mismatches, bad tags and oversize bodies are refused', async () => {
  const cases: [string, string, string, string][] = [
    ['v1', '{not json', OCI, 'MANIFEST_INVALID'],
    ['v1', '[]', OCI, 'MANIFEST_INVALID'],
    ['v1', JSON.stringify({ schemaVersion: 1, name: 'x' }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'MANIFEST_INVALID'],
    ['v1', JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-unknown', config: {}, layers: [] }), 'application/x-unknown', 'MANIFEST_INVALID'],
    ['v1', JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: { digest: 'sha256:zz', size: 1, mediaType: 'x' }, layers: [] }), OCI, 'MANIFEST_INVALID'],
    ['v1', JSON.stringify({ schemaVersion: 2, mediaType: INDEX, config: { digest: sha256('a'), size: 1, mediaType: 'x' }, layers: [] }), OCI, 'MANIFEST_INVALID'],
    [sha256('other'), JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [] }), INDEX, 'DIGEST_INVALID'],
    ['-bad', JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [] }), INDEX, 'TAG_INVALID'],
    ['x'.repeat(129), JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [] }), INDEX, 'TAG_INVALID'],
  ];
  for (const [ref, body, type, code] of cases) {
    const res = await c.pushManifest('alice/m', ref, body, type);
    assert.ok(res.status >= 400 && res.status < 500, `${body.slice(0, 40)} → ${res.status}`);
    assert.equal(await errCode(res), code, body.slice(0, 60));
  }
  const huge = JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [], annotations: { pad: 'x'.repeat(5 * 1024 * 1024) } });
  const res = await c.pushManifest('alice/m', 'huge', huge, INDEX);
  assert.equal(res.status, 413);
  assert.equal(await errCode(res), 'MANIFEST_INVALID');
});

test('re-tagging moves the tag; deleting a tag leaves other tags; deleting by digest removes every tag', async () => {
  const a = await c.pushImage('alice/tags', 'one', 'a');
  const b = await c.pushImage('alice/tags', 'one', 'b');
  const scope = 'repository:alice/tags:pull,push';
  const now = await c.req('GET', '/v2/alice/tags/manifests/one', { scope });
  assert.equal(now.headers.get('docker-content-digest'), b.digest);
  await c.pushManifest('alice/tags', 'two', b.manifest);
  await c.pushManifest('alice/tags', 'three', b.manifest);
  const s = t.app.services;
  const repo = (await findRepo(s, 'alice', 'tags'))!;
  const kinds = (await s.db.selectFrom('logs').select('kind').where('repository_id', '=', repo.id).execute()).map((r) => r.kind);
  assert.ok(kinds.includes('move_tag'));
  const delTag = await c.req('DELETE', '/v2/alice/tags/manifests/three', { scope: 'repository:alice/tags:*' });
  assert.equal(delTag.status, 202);
  assert.equal((await c.req('GET', '/v2/alice/tags/manifests/three', { scope })).status, 404);
  assert.equal((await c.req('GET', '/v2/alice/tags/manifests/two', { scope })).status, 200);
  const del = await c.req('DELETE', `/v2/alice/tags/manifests/${b.digest}`, { scope: 'repository:alice/tags:*' });
  assert.equal(del.status, 202);
  for (const ref of ['one', 'two', b.digest]) assert.equal((await c.req('GET', `/v2/alice/tags/manifests/${ref}`, { scope })).status, 404, ref);
  // The older manifest, no longer tagged, is not pullable either.
  assert.equal((await c.req('GET', `/v2/alice/tags/manifests/${a.digest}`, { scope })).status, 404);
  const again = await c.req('DELETE', `/v2/alice/tags/manifests/${b.digest}`, { scope: 'repository:alice/tags:*' });
  assert.equal(again.status, 404);
  assert.equal(await errCode(again), 'MANIFEST_UNKNOWN');
  // History keeps every lifetime, ended.
  const history = await s.db.selectFrom('tags').select(['name', 'lifetime_end']).where('repository_id', '=', repo.id).where('hidden', '=', 0).execute();
  assert.ok(history.length >= 4);
  assert.ok(history.every((h) => h.lifetime_end !== null));
});

test('subject: OCI-Subject on PUT, listed by the referrers API with artifactType filtering', async () => {
  const subject = await c.pushImage('alice/ref', 'v1');
  const scope = 'repository:alice/ref:pull,push';
  const empty = Buffer.from('{}');
  const emptyDigest = await c.pushBlob('alice/ref', empty);
  const mk = async (artifactType: string, ann: string) => {
    const payload = Buffer.from(ann);
    const layer = await c.pushBlob('alice/ref', payload);
    const m = JSON.stringify({
      schemaVersion: 2, mediaType: OCI, artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
      layers: [{ mediaType: 'application/octet-stream', digest: layer, size: payload.length }],
      subject: { mediaType: OCI, digest: subject.digest, size: Buffer.byteLength(subject.manifest) },
      annotations: { 'org.example.note': ann },
    });
    const res = await c.pushManifest('alice/ref', sha256(m), m, OCI);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('oci-subject'), subject.digest);
    return sha256(m);
  };
  const sbom = await mk('application/vnd.example.sbom', 'sbom');
  const sig = await mk('application/vnd.example.sig', 'sig');
  const all = await c.req('GET', `/v2/alice/ref/referrers/${subject.digest}`, { scope });
  assert.equal(all.status, 200);
  assert.equal(all.headers.get('content-type'), INDEX);
  assert.equal(all.headers.get('oci-filters-applied'), null);
  const idx = (await all.json()) as { schemaVersion: number; mediaType: string; manifests: { digest: string; artifactType: string; annotations: Record<string, string>; mediaType: string; size: number }[] };
  assert.equal(idx.schemaVersion, 2);
  assert.equal(idx.mediaType, INDEX);
  assert.deepEqual(idx.manifests.map((m) => m.digest).sort(), [sbom, sig].sort());
  const sbomEntry = idx.manifests.find((m) => m.digest === sbom)!;
  assert.equal(sbomEntry.artifactType, 'application/vnd.example.sbom');
  assert.equal(sbomEntry.mediaType, OCI);
  assert.deepEqual(sbomEntry.annotations, { 'org.example.note': 'sbom' });
  const filtered = await c.req('GET', `/v2/alice/ref/referrers/${subject.digest}?artifactType=application/vnd.example.sig`, { scope });
  assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
  const f = (await filtered.json()) as { manifests: { digest: string }[] };
  assert.deepEqual(f.manifests.map((m) => m.digest), [sig]);
  // An unknown subject has an empty list, not an error.
  const none = await c.req('GET', `/v2/alice/ref/referrers/${sha256('x')}`, { scope });
  assert.equal(none.status, 200);
  assert.deepEqual(((await none.json()) as { manifests: unknown[] }).manifests, []);
  const bad = await c.req('GET', '/v2/alice/ref/referrers/sha256:123', { scope });
  assert.equal(await errCode(bad), 'DIGEST_INVALID');
});

test('anonymous pulls: public repositories yes, private no — visibility checked again at pull time', async () => {
  const img = await c.pushImage('alice/pub', 'v1');
  const s = t.app.services;
  const repo = (await findRepo(s, 'alice', 'pub'))!;
  await setVisibility(s, repo, 'public', ANONYMOUS);
  const anon = new RegistryClient(t.url);
  const token = await anon.token('repository:alice/pub:pull');
  const get = () => fetch(`${t.url}/v2/alice/pub/manifests/v1`, { headers: { authorization: `Bearer ${token}` } });
  const ok = await get();
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('docker-content-digest'), img.digest);
  await setVisibility(s, repo, 'private', ANONYMOUS);
  const refused = await get();
  assert.equal(refused.status, 401);
  const none = await new RegistryClient(t.url).token('repository:alice/pub:pull');
  const claims = JSON.parse(Buffer.from(none.split('.')[1]!, 'base64url').toString()) as { access: { actions: string[] }[] };
  assert.deepEqual(claims.access[0]!.actions, []);
});

test('pulls are logged as pull_repo', async () => {
  await c.pushImage('alice/logged', 'v1');
  await c.req('GET', '/v2/alice/logged/manifests/v1', { scope: 'repository:alice/logged:pull' });
  const s = t.app.services;
  const repo = (await findRepo(s, 'alice', 'logged'))!;
  const { flushPullLogs } = await import('../../../src/model/pull-log.ts');
  await flushPullLogs(s);
  const rows = await s.db.selectFrom('logs').select(['kind', 'metadata', 'performer_id']).where('repository_id', '=', repo.id).where('kind', '=', 'pull_repo').execute();
  assert.equal(rows.length, 1);
  assert.equal(JSON.parse(rows[0]!.metadata).tag, 'v1');
  assert.notEqual(rows[0]!.performer_id, null);
});

// Proxy cache end to end: a real upstream (Debian's Distribution with htpasswd) holds an image and
// a multi-platform index pushed with skopeo; a Quayside organization configured as its pull-through
// cache serves them to skopeo and to the registry client (same digests and bytes), creates the
// repositories on demand, stores manifests, tags and blobs, keeps serving them once the upstream is
// gone, refuses pushes, and reports a wrong upstream password clearly.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copy, createClientContext, inspect, login, type ClientContext } from '../support/clients.ts';
import { buildBusyboxImage, buildIndex, type BuiltImage } from '../support/images.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { startDistribution, type Distribution } from '../support/distribution.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { createOrganization, createUser, type User } from '../../src/model/accounts.ts';
import { principalFor } from '../../src/model/context.ts';
import { createProxyCacheConfig } from '../../src/model/proxy-cache.ts';
import { findRepo } from '../../src/model/repositories.ts';
import { statBlob } from '../../src/model/blobs.ts';
import { failure } from './e2e.ts';

const PASS = 'correct-horse-1';
const EXPIRATION_S = 3600;

let t: TestApp;
let upstream: Distribution;
let ctx: ClientContext;
let alice: User;
let busybox: BuiltImage;
let index: BuiltImage;

before(async () => {
  upstream = await startDistribution({ htpasswd: { puller: 'sesame' } });
  ctx = await createClientContext('e2e-proxy-');
  busybox = await buildBusyboxImage(join(ctx.dir, 'layouts', 'busybox'), { tag: '1.0' });
  index = await buildIndex(join(ctx.dir, 'layouts', 'index'));
  const creds = ['--dest-creds', 'puller:sesame'];
  await copy(busybox.ref, `docker://${upstream.host}/library/busybox:1.0`, { ...ctx, extraArgs: creds });
  await copy(index.ref, `docker://${upstream.host}/library/multi:latest`, { ...ctx, all: true, extraArgs: creds });

  t = await startTestApp({ FEATURE_PROXY_CACHE: true, QUAYSIDE_OUTBOUND_ALLOWLIST: ['127.0.0.1'] });
  const s = t.app.services;
  alice = await createUser(s, { username: 'alice', password: PASS, email: 'alice@example.com' });
  const actor = { principal: principalFor(alice, 'password'), ip: null };
  await createOrganization(s, 'cache', alice);
  await createProxyCacheConfig(s, actor, 'cache', {
    upstream_registry: `${upstream.host}/library`, upstream_registry_username: 'puller', upstream_registry_password: 'sesame',
    expiration_s: EXPIRATION_S, insecure: true,
  });
  await createOrganization(s, 'shortcache', alice);
  await createProxyCacheConfig(s, actor, 'shortcache', {
    upstream_registry: `${upstream.host}/library`, upstream_registry_username: 'puller', upstream_registry_password: 'sesame', expiration_s: 1, insecure: true,
  });
  await createOrganization(s, 'badcache', alice);
  await createProxyCacheConfig(s, actor, 'badcache', {
    upstream_registry: `${upstream.host}/library`, upstream_registry_username: 'puller', upstream_registry_password: 'wrong', insecure: true,
  });
  await login('skopeo', t.host, 'alice', PASS, ctx);
});

after(async () => {
  await ctx?.cleanup();
  await t?.close();
  await upstream?.stop();
});

async function dirBlobs(dir: string, digests: string[]): Promise<void> {
  for (const d of digests) {
    const bytes = await readFile(join(dir, d.slice('sha256:'.length)));
    assert.equal(sha256(bytes), d);
  }
}

test('skopeo pulls an image through the cache: same manifest bytes, verified blobs, repository and tag created', async () => {
  const ref = `docker://${t.host}/cache/busybox:1.0`;
  const raw = await inspect(ref, { ...ctx, raw: true });
  assert.equal(raw.result.stdout, busybox.raw.toString('utf8'));
  const out = join(ctx.dir, 'pulled-busybox');
  const r = await copy(ref, `dir:${out}`, ctx);
  assert.equal(r.code, 0, failure(r));
  await dirBlobs(out, busybox.blobs);
  assert.deepEqual(await readFile(join(out, 'manifest.json')), busybox.raw);

  const s = t.app.services;
  const repo = await findRepo(s, 'cache', 'busybox');
  assert.ok(repo, 'repository created on pull');
  assert.equal(repo.is_public, 0);
  const tag = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.lifetime_end', 'manifests.digest']).where('tags.repository_id', '=', repo.id).where('tags.name', '=', '1.0').where('tags.hidden', '=', 0)
    .executeTakeFirstOrThrow();
  assert.equal(tag.digest, busybox.manifestDigest);
  assert.ok(tag.lifetime_end !== null && Math.abs(tag.lifetime_end - (Date.now() + EXPIRATION_S * 1000)) < 60_000, 'tag expires after expiration_s');
  // Blobs end up stored here (the store finishes just after the client has them).
  for (let i = 0; i < 50; i++) {
    const stats = await Promise.all(busybox.blobs.map((d) => statBlob(s, repo.id, d)));
    if (stats.every((x) => x.exists)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  for (const d of busybox.blobs) assert.ok((await statBlob(s, repo.id, d)).exists, `${d} stored`);
  const linked = await s.db.selectFrom('manifest_blobs').select('blob_id').where('repository_id', '=', repo.id).execute();
  assert.equal(linked.length, busybox.blobs.length);
});

test('the registry client pulls by tag and digest, HEAD included, bytes and digests equal', async () => {
  const c = new RegistryClient(t.url, 'alice', PASS);
  const scope = 'repository:cache/busybox:pull';
  const head = await c.req('HEAD', '/v2/cache/busybox/manifests/1.0', { scope, headers: { accept: busybox.mediaType } });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('docker-content-digest'), busybox.manifestDigest);
  const byDigest = await c.req('GET', `/v2/cache/busybox/manifests/${busybox.manifestDigest}`, { scope, headers: { accept: busybox.mediaType } });
  assert.equal(byDigest.status, 200);
  assert.deepEqual(Buffer.from(await byDigest.arrayBuffer()), busybox.raw);
  for (const d of busybox.blobs) {
    const res = await c.req('GET', `/v2/cache/busybox/blobs/${d}`, { scope });
    assert.equal(res.status, 200);
    assert.equal(sha256(new Uint8Array(await res.arrayBuffer())), d);
  }
  const missing = await c.req('GET', `/v2/cache/busybox/blobs/sha256:${'0'.repeat(64)}`, { scope });
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { errors: { code: string }[] }).errors[0]!.code, 'BLOB_UNKNOWN');
  const nosuch = await c.req('GET', '/v2/cache/nosuch/manifests/latest', { scope: 'repository:cache/nosuch:pull' });
  assert.equal(nosuch.status, 404);
  assert.equal(((await nosuch.json()) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN');
  assert.equal(await findRepo(t.app.services, 'cache', 'nosuch'), undefined, 'no repository for an image the upstream does not have');
});

test('a multi-platform index is pulled with its children (fetched by digest)', async () => {
  const out = join(ctx.dir, 'pulled-index');
  const r = await copy(`docker://${t.host}/cache/multi:latest`, `dir:${out}`, { ...ctx, all: true });
  assert.equal(r.code, 0, failure(r));
  assert.deepEqual(await readFile(join(out, 'manifest.json')), index.raw);
  await dirBlobs(out, index.blobs);
  const s = t.app.services;
  const repo = (await findRepo(s, 'cache', 'multi'))!;
  const children = await s.db.selectFrom('manifest_children').select('child_id').where('repository_id', '=', repo.id).execute();
  assert.equal(children.length, 2);
});

test('pushing into a proxy-cache organization is refused', async () => {
  const r = await copy(busybox.ref, `docker://${t.host}/cache/pushed:1`, { ...ctx, allowFailure: true });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /unauthorized|denied/i);
  assert.equal(await findRepo(t.app.services, 'cache', 'pushed'), undefined);
});

test('a wrong upstream password gives a clear error', async () => {
  const r = await inspect(`docker://${t.host}/badcache/busybox:1.0`, { ...ctx, raw: true, allowFailure: true });
  assert.notEqual(r.result.code, 0);
  assert.match(r.result.stderr, /manifest unknown/i);
  assert.match(r.result.stderr, /credentials have insufficient rights/);
  assert.equal(await findRepo(t.app.services, 'badcache', 'busybox'), undefined);
});

test('with the upstream gone, cached images are still served — until their tag expires', async () => {
  const short = `docker://${t.host}/shortcache/busybox:1.0`;
  assert.equal((await inspect(short, { ...ctx, raw: true })).result.stdout, busybox.raw.toString('utf8'));
  await upstream.stop();
  await new Promise((res) => setTimeout(res, 1500));
  const expired = await inspect(short, { ...ctx, raw: true, allowFailure: true });
  assert.notEqual(expired.result.code, 0, 'an expired cached tag is not served without the upstream');
  const out = join(ctx.dir, 'pulled-offline');
  const r = await copy(`docker://${t.host}/cache/busybox:1.0`, `dir:${out}`, ctx);
  assert.equal(r.code, 0, failure(r));
  await dirBlobs(out, busybox.blobs);
  const c = new RegistryClient(t.url, 'alice', PASS);
  const res = await c.req('GET', '/v2/cache/multi/manifests/latest', { scope: 'repository:cache/multi:pull', headers: { accept: index.mediaType } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), index.manifestDigest);
  const never = await c.req('GET', '/v2/cache/other/manifests/1.0', { scope: 'repository:cache/other:pull' });
  assert.equal(never.status, 404);
});

test('an upstream blob that does not match its digest is cut off and never stored', async () => {
  // A registry serving wrong bytes for a layer: Distribution would never do that, so a small HTTP
  // server plays the upstream here.
  const { createServer } = await import('node:http');
  const good = Buffer.from('the real layer');
  const layer = sha256(good);
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: good.length }],
  }));
  const server = createServer((req, res) => {
    if (req.url === '/v2/') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (req.url === '/v2/evil/manifests/1') {
      return res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': sha256(manifest) })
        .end(req.method === 'HEAD' ? undefined : manifest);
    }
    if (req.url === `/v2/evil/blobs/${layer}`) return res.writeHead(200, { 'content-length': good.length }).end(Buffer.from('the fake layer'));
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const s = t.app.services;
    const port = (server.address() as { port: number }).port;
    await createOrganization(s, 'evilcache', alice);
    await createProxyCacheConfig(s, { principal: principalFor(alice, 'password'), ip: null }, 'evilcache', { upstream_registry: `127.0.0.1:${port}`, insecure: true });
    const c = new RegistryClient(t.url, 'alice', PASS);
    const scope = 'repository:evilcache/evil:pull';
    const m = await c.req('GET', '/v2/evilcache/evil/manifests/1', { scope, headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(m.status, 200);
    assert.deepEqual(Buffer.from(await m.arrayBuffer()), manifest);
    // The last chunk is held back until the digest checks out: the client gets an error answer
    // (nothing was sent yet) or a cut-off body, never the complete wrong bytes.
    const res = await c.req('GET', `/v2/evilcache/evil/blobs/${layer}`, { scope });
    const body = await res.arrayBuffer().then((b) => Buffer.from(b), () => null);
    assert.ok(res.status !== 200 || body === null, `status ${res.status}, body ${body?.toString()}`);
    assert.ok(body === null || !body.includes('the fake layer'));
    const repo = (await findRepo(s, 'evilcache', 'evil'))!;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await statBlob(s, repo.id, layer)).exists, false);
    assert.equal(await s.db.selectFrom('blobs').select('id').where('digest', '=', layer).executeTakeFirst(), undefined);
    assert.deepEqual(await s.db.selectFrom('uploads').select('uuid').where('repository_id', '=', repo.id).execute(), [], 'the upload session is dropped');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

// Many clients at once on the same content, repository and tag: every push is answered 201/202,
// content is stored once with the right bytes, and the tag ends with one live row and a history of
// lifetimes that follow each other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../support/app.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { createAppToken, createUser } from '../../src/model/accounts.ts';
import { findRepo } from '../../src/model/repositories.ts';
import { allProblems, tagHistoryProblems } from '../support/integrity.ts';

const N = 16;
const OCI = 'application/vnd.oci.image.manifest.v1+json';

let t: TestApp;
/** One client per concurrent pusher, each with its own credential and tokens. */
let clients: RegistryClient[];

before(async () => {
  t = await startTestApp();
  const alice = await createUser(t.app.services, { username: 'alice', password: 'password1' });
  // App tokens, as CI machines would use: cheap to check, so the races are not spread out by bcrypt.
  clients = [];
  for (let i = 0; i < N; i++) clients.push(new RegistryClient(t.url, '$app', (await createAppToken(t.app.services, alice, `machine-${i}`)).token));
});
after(() => t.close());

async function body(res: Response): Promise<string> {
  return `${res.status} ${await res.clone().text()}`;
}

/** POST, two PATCHes, PUT: the long way, so the pushes overlap at every step. */
async function chunkedPush(c: RegistryClient, repo: string, data: Buffer): Promise<void> {
  const scope = `repository:${repo}:pull,push`;
  const digest = sha256(data);
  const open = await c.req('POST', `/v2/${repo}/blobs/uploads/`, { scope });
  assert.equal(open.status, 202, await body(open));
  const loc = open.headers.get('location')!;
  const half = data.length >> 1;
  for (const [start, end] of [[0, half], [half, data.length]] as const) {
    const res = await c.req('PATCH', loc, {
      scope, body: data.subarray(start, end), headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${end - 1}` },
    });
    assert.equal(res.status, 202, await body(res));
  }
  const put = await c.req('PUT', `${loc}?digest=${digest}`, { scope });
  assert.equal(put.status, 201, await body(put));
  assert.equal(put.headers.get('docker-content-digest'), digest);
}

async function blobRows(digest: string) {
  const s = t.app.services;
  const blobs = await s.db.selectFrom('blobs').selectAll().where('digest', '=', digest).execute();
  const links = blobs.length
    ? await s.db.selectFrom('repo_blobs').select('repository_id').where('blob_id', '=', blobs[0]!.id).execute()
    : [];
  return { blobs, links };
}

async function noSessionsLeft(): Promise<void> {
  const s = t.app.services;
  assert.deepEqual(await s.db.selectFrom('uploads').select('uuid').execute(), []);
  const left: string[] = [];
  for await (const p of s.storage.list('uploads/')) left.push(p);
  assert.deepEqual(left, [], 'upload data left in storage');
}

async function pull(c: RegistryClient, repo: string, digest: string): Promise<Buffer> {
  const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull` });
  assert.equal(res.status, 200, await body(res));
  return Buffer.from(await res.arrayBuffer());
}

test(`${N} clients push the same blob into one new repository at once`, async () => {
  const repo = 'alice/same-blob';
  const data = randomBytes(256 * 1024);
  const digest = sha256(data);
  await Promise.all(clients.map((c) => chunkedPush(c, repo, data)));

  const { blobs, links } = await blobRows(digest);
  assert.equal(blobs.length, 1);
  assert.equal(blobs[0]!.size, data.length);
  assert.equal(links.length, 1, 'one link from the repository to the blob');
  assert.ok((await pull(clients[0]!, repo, digest)).equals(data));
  const repos = await t.app.services.db.selectFrom('repositories').select('id').where('name', '=', 'same-blob').execute();
  assert.equal(repos.length, 1, 'the racing first pushes created one repository');
  await noSessionsLeft();
  assert.deepEqual(await allProblems(t.app.services), []);
});

test(`${N} clients push the same blob into ${N} repositories at once`, async () => {
  const data = randomBytes(256 * 1024);
  const digest = sha256(data);
  await Promise.all(clients.map((c, i) => chunkedPush(c, `alice/fan-${i}`, data)));

  const { blobs, links } = await blobRows(digest);
  assert.equal(blobs.length, 1, 'stored once');
  assert.equal(links.length, N, 'linked from every repository');
  for (const [i, c] of clients.entries()) assert.ok((await pull(c, `alice/fan-${i}`, digest)).equals(data));
  await noSessionsLeft();
  assert.deepEqual(await allProblems(t.app.services), []);
});

test(`${N} concurrent PATCHes at the same offset of one session: one wins, the others get 416`, async () => {
  const repo = 'alice/one-session';
  const scope = `repository:${repo}:pull,push`;
  const open = await clients[0]!.req('POST', `/v2/${repo}/blobs/uploads/`, { scope });
  const loc = open.headers.get('location')!;
  const chunks = clients.map(() => randomBytes(64 * 1024));
  const answers = await Promise.all(clients.map((c, i) => c.req('PATCH', loc, {
    scope, body: chunks[i], headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${chunks[i]!.length - 1}` },
  })));
  const won = answers.flatMap((r, i) => (r.status === 202 ? [i] : []));
  assert.equal(won.length, 1, `exactly one PATCH may append at offset 0: ${answers.map((r) => r.status).join(',')}`);
  for (const r of answers.filter((x) => x.status !== 202)) {
    assert.equal(r.status, 416);
    assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]!.code, 'RANGE_INVALID');
  }
  const winner = chunks[won[0]!]!;
  const st = await clients[0]!.req('GET', loc, { scope });
  assert.equal(st.headers.get('range'), `0-${winner.length - 1}`);
  const put = await clients[0]!.req('PUT', `${loc}?digest=${sha256(winner)}`, { scope });
  assert.equal(put.status, 201, await body(put));
  assert.ok((await pull(clients[0]!, repo, sha256(winner))).equals(winner));
  assert.deepEqual(await allProblems(t.app.services), []);
});

test(`${N} clients push different manifests to the same tag at once`, async () => {
  const repo = 'alice/one-tag';
  const scope = `repository:${repo}:pull,push`;
  const layer = randomBytes(4096);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
  const [layerDigest, configDigest] = [await clients[0]!.pushBlob(repo, layer), await clients[0]!.pushBlob(repo, config)];
  const manifests = clients.map((_, i) => Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    annotations: { pusher: String(i) },
  })));
  const digests = manifests.map((m) => sha256(m));

  const answers = await Promise.all(clients.map((c, i) => c.req('PUT', `/v2/${repo}/manifests/latest`, { scope, body: manifests[i], headers: { 'content-type': OCI } })));
  for (const [i, r] of answers.entries()) {
    assert.equal(r.status, 201, await body(r));
    assert.equal(r.headers.get('docker-content-digest'), digests[i]);
  }

  const s = t.app.services;
  const found = await findRepo(s, 'alice', 'one-tag');
  const rows = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.lifetime_start', 'tags.lifetime_end', 'manifests.digest'])
    .where('tags.repository_id', '=', found!.id).where('tags.name', '=', 'latest').orderBy('tags.lifetime_start').orderBy('tags.id').execute();
  assert.equal(rows.length, N, 'each push is one lifetime of the tag');
  assert.deepEqual(new Set(rows.map((r) => r.digest)), new Set(digests));
  const live = rows.filter((r) => r.lifetime_end === null);
  assert.equal(live.length, 1, 'exactly one live row');
  assert.equal(live[0], rows[rows.length - 1], 'the live row is the last lifetime');
  assert.deepEqual(await tagHistoryProblems(s), []);

  const current = await clients[0]!.req('GET', `/v2/${repo}/manifests/latest`, { scope, headers: { accept: OCI } });
  assert.equal(current.status, 200);
  assert.equal(current.headers.get('docker-content-digest'), live[0]!.digest);
  // The live manifest is pullable by digest; the ones the tag moved away from are unreachable
  // (Quay keeps them for the time machine only), never served with other bytes.
  for (const [i, d] of digests.entries()) {
    const res = await clients[0]!.req('GET', `/v2/${repo}/manifests/${d}`, { scope, headers: { accept: OCI } });
    if (d === live[0]!.digest) {
      assert.equal(res.status, 200);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(manifests[i]!));
    } else {
      assert.equal(res.status, 404, await body(res));
      assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN');
    }
  }
  assert.deepEqual(await allProblems(s), []);
});

test(`${N} clients push the same manifest to the same tag and by digest at once`, async () => {
  const repo = 'alice/same-manifest';
  const scope = `repository:${repo}:pull,push`;
  const img = await clients[0]!.pushImage(repo, 'seed');
  const answers = await Promise.all(clients.map((c, i) => c.req('PUT', `/v2/${repo}/manifests/${i % 2 ? 'same' : img.digest}`, {
    scope, body: img.manifest, headers: { 'content-type': OCI },
  })));
  for (const r of answers) assert.equal(r.status, 201, await body(r));
  const s = t.app.services;
  const found = await findRepo(s, 'alice', 'same-manifest');
  const manifests = await s.db.selectFrom('manifests').select('id').where('repository_id', '=', found!.id).execute();
  assert.equal(manifests.length, 1, 'one manifest row');
  const same = await s.db.selectFrom('tags').select('id').where('repository_id', '=', found!.id).where('name', '=', 'same').execute();
  assert.equal(same.length, 1, 'pushing the manifest the tag already holds adds no lifetime');
  assert.deepEqual(await allProblems(s), []);
});

// Hostile and broken input on /v2: never a 500, always the exact OCI error code in the
// {"errors":[...]} envelope, and nothing written — no manifest, tag, blob or upload row, no file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { RegistryClient, sha256 } from '../../support/registry-client.ts';
import { raw, errorCodes } from '../../support/raw-request.ts';
import { allProblems, fileTree, registryRowCounts } from '../../support/integrity.ts';
import { createOrganization, createRobot, createUser, findUser } from '../../../src/model/accounts.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { setRepoPermission } from '../../../src/model/permissions.ts';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const REPO = 'alice/app';
const RW = `repository:${REPO}:pull,push`;

let t: TestApp;
let alice: RegistryClient;
let bob: RegistryClient;
let robot: RegistryClient;
let base: { config: { mediaType: string; digest: string; size: number }; layer: { mediaType: string; digest: string; size: number } };

before(async () => {
  t = await startTestApp();
  const s = t.app.services;
  const a = await createUser(s, { username: 'alice', password: 'password1' });
  await createUser(s, { username: 'bob', password: 'password2' });
  await createOrganization(s, 'shared', a);
  const r = await createRobot(s, (await findUser(s, 'shared'))!, 'ci');
  alice = new RegistryClient(t.url, 'alice', 'password1');
  bob = new RegistryClient(t.url, 'bob', 'password2');
  robot = new RegistryClient(t.url, 'shared+ci', r.token);
  const img = await alice.pushImage(REPO, 'seed');
  const doc = JSON.parse(img.manifest) as { config: typeof base.config; layers: (typeof base.layer)[] };
  base = { config: doc.config, layer: doc.layers[0]! };
  await alice.pushImage('shared/app', 'seed');
  const shared = (await findRepo(s, 'shared', 'app'))!;
  await setRepoPermission(s, shared.id, { userId: (await findUser(s, 'bob'))!.id }, 'write');
  await setRepoPermission(s, shared.id, { userId: r.robot.id }, 'write');
});
after(() => t.close());

const storageDir = () => join(t.dataDir, 'storage');

/** Runs `fn` and asserts it left the database rows and the storage tree exactly as they were. */
async function writesNothing(fn: () => Promise<void>): Promise<void> {
  const rows = await registryRowCounts(t.app.services);
  const files = await fileTree(storageDir());
  await fn();
  assert.deepEqual(await registryRowCounts(t.app.services), rows, 'database rows changed');
  assert.deepEqual(await fileTree(storageDir()), files, 'storage changed');
}

async function codeOf(res: Response): Promise<string> {
  const text = await res.clone().text();
  let body: { errors?: { code?: unknown; message?: unknown }[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`not an OCI error envelope (${res.status}): ${text.slice(0, 200)}`);
  }
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0 && typeof body.errors[0]!.code === 'string' && typeof body.errors[0]!.message === 'string',
    `not an OCI error envelope: ${text.slice(0, 200)}`);
  return body.errors[0]!.code as string;
}

const STATUS: Record<string, number> = {
  MANIFEST_INVALID: 400, MANIFEST_BLOB_UNKNOWN: 404, DIGEST_INVALID: 400, NAME_INVALID: 400, NOT_FOUND: 404, TAG_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404, RANGE_INVALID: 416, DENIED: 403, UNAUTHORIZED: 401, UNSUPPORTED: 405, BLOB_UNKNOWN: 404, SIZE_INVALID: 400,
};

async function expectError(res: Response, codes: string[], label: string): Promise<string> {
  assert.ok(res.status >= 400 && res.status < 500, `${label}: ${res.status} ${await res.clone().text()}`);
  const code = await codeOf(res);
  assert.ok(codes.includes(code), `${label}: got ${code} (${res.status}), expected ${codes.join(' or ')}`);
  if (STATUS[code] !== undefined && code !== 'MANIFEST_INVALID') assert.equal(res.status, STATUS[code], `${label}: status of ${code}`);
  return code;
}

// ---- manifest fuzzing

/** Deterministic PRNG (mulberry32), so a failing mutation can be reproduced from its label. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

function validManifest(): Record<string, unknown> {
  return {
    schemaVersion: 2, mediaType: OCI,
    config: { ...base.config },
    layers: [{ ...base.layer }],
    annotations: { 'org.example.note': 'fuzz' },
  };
}

type Path = (string | number)[];
const DELETE = Symbol('delete');

function mutate(path: Path, value: unknown): Buffer {
  const doc = validManifest();
  let node = doc as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === DELETE) delete node[last];
  else node[last] = value;
  return Buffer.from(JSON.stringify(doc));
}

interface Case {
  label: string;
  bytes: Buffer;
  codes: string[];
  contentType?: string;
}

const hex64 = 'ab'.repeat(32);
const BAD_DIGESTS: unknown[] = [
  null, 1, '', [], {}, 'sha256:abc', `sha256:${'g'.repeat(64)}`, `SHA256:${hex64}`, `sha256:${hex64.toUpperCase()}`, `md5:${'ab'.repeat(16)}`,
  `sha1:${'ab'.repeat(20)}`, `sha256:${hex64}\n`, ` sha256:${hex64}`, hex64, `sha256:${hex64}0`, `sha512:${hex64}`, 'sha256:../../etc/passwd',
];
const BAD_SIZES: unknown[] = [null, '1', -1, 1.5, 2 ** 53, 1e308, true, [], {}, -0.5];
const BAD_MEDIA: unknown[] = [null, 1, '', [], {}, true, 'x'.repeat(256)];
const NOT_OBJECT: unknown[] = [null, 1, 'x', [], true];
const BAD_ANNOTATIONS: unknown[] = [1, 'x', [], true, { a: 1 }, { a: null }, { a: [] }, { a: {} }];
const BAD_URLS: unknown[] = [1, 'x', [1], {}, [null]];

function descriptorCases(at: Path, unknownCode: string): [Path, unknown, string[]][] {
  const invalid = ['MANIFEST_INVALID'];
  const digestInvalid = ['MANIFEST_INVALID', 'DIGEST_INVALID'];
  return [
    ...NOT_OBJECT.map((v): [Path, unknown, string[]] => [at, v, invalid]),
    [at, {}, invalid],
    [at, DELETE, invalid],
    ...BAD_MEDIA.map((v): [Path, unknown, string[]] => [[...at, 'mediaType'], v, invalid]),
    [[...at, 'mediaType'], DELETE, invalid],
    ...BAD_DIGESTS.map((v): [Path, unknown, string[]] => [[...at, 'digest'], v, digestInvalid]),
    [[...at, 'digest'], DELETE, digestInvalid],
    [[...at, 'digest'], sha256('not in the repository'), [unknownCode]],
    [[...at, 'digest'], `sha512:${'cd'.repeat(64)}`, [unknownCode]],
    ...BAD_SIZES.map((v): [Path, unknown, string[]] => [[...at, 'size'], v, invalid]),
    [[...at, 'size'], DELETE, invalid],
    ...BAD_ANNOTATIONS.map((v): [Path, unknown, string[]] => [[...at, 'annotations'], v, invalid]),
    ...BAD_URLS.map((v): [Path, unknown, string[]] => [[...at, 'urls'], v, invalid]),
    ...[1, [], {}, null, true].map((v): [Path, unknown, string[]] => [[...at, 'artifactType'], v, invalid]),
  ];
}

function strictCases(): Case[] {
  const cases: Case[] = [];
  const valid = Buffer.from(JSON.stringify(validManifest()));
  // Truncated JSON, at every 4th cut point and at the last byte.
  for (let cut = 0; cut < valid.length; cut += Math.max(1, Math.floor(valid.length / 80))) {
    cases.push({ label: `truncated at ${cut}`, bytes: valid.subarray(0, cut), codes: ['MANIFEST_INVALID'] });
  }
  cases.push({ label: 'truncated by one byte', bytes: valid.subarray(0, valid.length - 1), codes: ['MANIFEST_INVALID'] });

  const typed: [Path, unknown, string[]][] = [
    ...[null, true, '2', 2.5, 3, 0, -2, 1e308, [], {}, 1, DELETE].map((v): [Path, unknown, string[]] => [['schemaVersion'], v, ['MANIFEST_INVALID']]),
    ...[null, 1, true, [], {}, '', 'application/json', 'text/plain', INDEX, DOCKER, DOCKER_LIST, 'application/vnd.docker.distribution.manifest.v1+json', 'x'.repeat(300)]
      .map((v): [Path, unknown, string[]] => [['mediaType'], v, ['MANIFEST_INVALID']]),
    ...descriptorCases(['config'], 'MANIFEST_BLOB_UNKNOWN'),
    ...[null, 1, 'x', {}, true, DELETE, [null], [1], ['x'], [[]]].map((v): [Path, unknown, string[]] => [['layers'], v, ['MANIFEST_INVALID']]),
    ...descriptorCases(['layers', 0], 'MANIFEST_BLOB_UNKNOWN'),
    ...BAD_ANNOTATIONS.map((v): [Path, unknown, string[]] => [['annotations'], v, ['MANIFEST_INVALID']]),
    ...[1, 'x', [], true, {}, { mediaType: OCI, digest: 'sha256:bad', size: 1 }, { mediaType: OCI, digest: sha256('s'), size: -1 }, { digest: sha256('s'), size: 1 }]
      .map((v): [Path, unknown, string[]] => [['subject'], v, ['MANIFEST_INVALID']]),
    ...[1, [], {}, true, null, 'x'.repeat(256)].map((v): [Path, unknown, string[]] => [['artifactType'], v, ['MANIFEST_INVALID']]),
    ...[[], [{}], [{ mediaType: OCI, digest: sha256('m'), size: 1 }]].map((v): [Path, unknown, string[]] => [['manifests'], v, ['MANIFEST_INVALID']]),
  ];
  for (const [path, value, codes] of typed) {
    const shown = value === DELETE ? 'deleted' : JSON.stringify(value)?.slice(0, 40);
    cases.push({ label: `${path.join('.')} = ${shown}`, bytes: mutate(path, value), codes });
  }

  // Numbers JSON.stringify cannot produce.
  const text = valid.toString('utf8');
  const sizeField = `"size":${base.layer.size}`;
  for (const n of ['1e400', '-1e400', '99999999999999999999999', '1.0e1', '0x10', 'NaN', 'Infinity', '-0', '01', '+1']) {
    cases.push({ label: `layer size ${n}`, bytes: Buffer.from(text.replace(sizeField, `"size":${n}`)), codes: ['MANIFEST_INVALID'] });
  }
  // Not an object at the top.
  for (const doc of ['', ' ', 'null', '2', '"x"', '[]', 'true', '[{}]']) cases.push({ label: `document ${JSON.stringify(doc)}`, bytes: Buffer.from(doc), codes: ['MANIFEST_INVALID'] });
  // Deep nesting, at the top and in typed fields.
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  cases.push({ label: 'nested 100000 deep at the top', bytes: Buffer.from(deep(100_000)), codes: ['MANIFEST_INVALID'] });
  cases.push({ label: 'config nested 100000 deep', bytes: Buffer.from(text.replace(/"config":\{[^}]*\}/, `"config":${deep(100_000)}`)), codes: ['MANIFEST_INVALID'] });
  cases.push({ label: 'annotations nested 50000 deep', bytes: Buffer.from(text.replace(/"annotations":\{[^}]*\}/, `"annotations":{"a":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`)), codes: ['MANIFEST_INVALID'] });
  // Invalid UTF-8 inside a string value and around the document.
  const note = Buffer.from('"fuzz"');
  const at = valid.indexOf(note);
  for (const bad of [[0xff], [0xc3, 0x28], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]) {
    const bytes = Buffer.concat([valid.subarray(0, at + 2), Buffer.from(bad), valid.subarray(at + 2)]);
    cases.push({ label: `invalid UTF-8 ${Buffer.from(bad).toString('hex')} in a string`, bytes, codes: ['MANIFEST_INVALID'] });
  }
  cases.push({ label: 'UTF-16 encoded', bytes: Buffer.from(text, 'utf16le'), codes: ['MANIFEST_INVALID'] });
  // Schema 1 in every disguise, and types the registry does not take.
  cases.push({ label: 'schemaVersion 1 body', bytes: Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'alice/app', tag: 'x', fsLayers: [], history: [] })), codes: ['MANIFEST_INVALID'] });
  for (const type of ['application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws']) {
    cases.push({ label: `Content-Type ${type}`, bytes: valid, codes: ['MANIFEST_INVALID'], contentType: type });
  }
  const untyped = validManifest();
  delete untyped.mediaType;
  for (const type of ['text/plain', 'application/vnd.unknown+json', INDEX, DOCKER_LIST]) {
    cases.push({ label: `no mediaType, Content-Type ${type}`, bytes: Buffer.from(JSON.stringify(untyped)), codes: ['MANIFEST_INVALID'], contentType: type });
  }
  cases.push({ label: 'Docker schema2 without layers', bytes: Buffer.from(JSON.stringify({ ...validManifest(), mediaType: DOCKER, layers: [] })), codes: ['MANIFEST_INVALID'], contentType: DOCKER });
  cases.push({ label: 'duplicate key, the last one invalid', bytes: Buffer.from(text.replace(/\}$/, ',"schemaVersion":"2"}')), codes: ['MANIFEST_INVALID'] });
  // Indexes whose children are not in the repository, or are not descriptors.
  cases.push({ label: 'index with an unknown child', bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: OCI, digest: sha256('child'), size: 10 }] })), codes: ['MANIFEST_BLOB_UNKNOWN'], contentType: INDEX });
  for (const m of [null, 'x', [null], [{ mediaType: OCI, digest: 'bad', size: 1 }], [{ mediaType: OCI, digest: sha256('c'), size: -5 }]]) {
    cases.push({ label: `index manifests = ${JSON.stringify(m)}`, bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: m })), codes: ['MANIFEST_INVALID'], contentType: INDEX });
  }
  cases.push({ label: 'Docker list entry without platform', bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests: [{ mediaType: DOCKER, digest: sha256('c'), size: 5 }] })), codes: ['MANIFEST_INVALID'], contentType: DOCKER_LIST });
  return cases;
}

async function putManifest(ref: string, bytes: Uint8Array, contentType = OCI): Promise<Response> {
  return alice.req('PUT', `/v2/${REPO}/manifests/${ref}`, { scope: RW, body: bytes, headers: { 'content-type': contentType } });
}

test('fuzzed manifests: every refusal has the exact code, and nothing is written', async (ctx) => {
  const cases = strictCases();
  assert.ok(cases.length >= 300, `only ${cases.length} cases`);
  const seen = new Map<string, number>();
  const failures: string[] = [];
  await writesNothing(async () => {
    for (const [i, c] of cases.entries()) {
      // By tag and by the manifest's own digest: the digest check passes, the content is judged.
      const ref = i % 2 ? 'fuzz' : sha256(c.bytes);
      try {
        const code = await expectError(await putManifest(ref, c.bytes, c.contentType), c.codes, c.label);
        seen.set(code, (seen.get(code) ?? 0) + 1);
      } catch (e) {
        failures.push((e as Error).message.split('\n')[0]!);
      }
    }
    assert.deepEqual(failures, []);
  });
  const tag = await alice.req('GET', `/v2/${REPO}/manifests/fuzz`, { scope: RW });
  assert.equal(tag.status, 404);
  ctx.diagnostic(`${cases.length} mutations: ${[...seen].map(([c, n]) => `${c} ×${n}`).join(', ')}`);
});

test('random byte flips: never a 500; what is accepted is served back byte for byte', async (ctx) => {
  const seed = 0x5eed;
  const rand = prng(seed);
  const valid = Buffer.from(JSON.stringify(validManifest()));
  const before = await registryRowCounts(t.app.services);
  let accepted = 0;
  const acceptedDigests = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const bytes = Buffer.from(valid);
    const flips = 1 + Math.floor(rand() * 3);
    for (let f = 0; f < flips; f++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
    const digest = sha256(bytes);
    const res = await putManifest(digest, bytes);
    const label = `seed ${seed} mutation ${i}: ${bytes.toString('latin1').slice(0, 120)}`;
    if (res.status === 201) {
      accepted++;
      acceptedDigests.add(digest);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      const back = await alice.req('GET', `/v2/${REPO}/manifests/${digest}`, { scope: RW, headers: { accept: '*/*' } });
      assert.equal(back.status, 200, label);
      assert.ok(Buffer.from(await back.arrayBuffer()).equals(bytes), label);
    } else {
      await expectError(res, ['MANIFEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'DIGEST_INVALID'], label);
    }
  }
  const after = await registryRowCounts(t.app.services);
  assert.equal(after.manifests - before.manifests, acceptedDigests.size, 'a refused manifest left a row');
  assert.equal(after.blobs, before.blobs);
  assert.equal(after.uploads, before.uploads);
  assert.deepEqual(await allProblems(t.app.services), []);
  ctx.diagnostic(`200 random mutations (seed ${seed}): ${accepted} still valid and accepted`);
});

test('extra and unknown fields are accepted and the manifest is served back byte for byte', async () => {
  const doc = {
    ...validManifest(), 'x-vendor': { nested: [1, 2, { deep: true }] }, zzz: null,
    config: { ...base.config, 'x-extra': 1 }, layers: [{ ...base.layer, platform: { os: 'linux' }, 'x-extra': 'y' }],
  };
  const bytes = Buffer.from(JSON.stringify(doc, null, 3));
  const res = await putManifest('extra', bytes);
  assert.equal(res.status, 201, await res.text());
  const back = await alice.req('GET', `/v2/${REPO}/manifests/extra`, { scope: RW, headers: { accept: OCI } });
  assert.ok(Buffer.from(await back.arrayBuffer()).equals(bytes));
  assert.equal(back.headers.get('docker-content-digest'), sha256(bytes));
});

test('manifests up to 4 MiB are accepted; larger ones are refused with 413, with or without Content-Length', async () => {
  const limit = 4 * 1024 * 1024;
  const sized = (n: number) => {
    const doc = validManifest();
    doc.annotations = { pad: '' };
    const overhead = JSON.stringify(doc).length;
    doc.annotations = { pad: 'x'.repeat(n - overhead) };
    const bytes = Buffer.from(JSON.stringify(doc));
    assert.equal(bytes.length, n);
    return bytes;
  };
  const atLimit = sized(limit);
  const ok = await putManifest('at-limit', atLimit);
  assert.equal(ok.status, 201, await ok.text());
  const over = sized(limit + 1);
  await writesNothing(async () => {
    await expectError(await putManifest('over-limit', over), ['MANIFEST_INVALID'], 'over the limit, with Content-Length');
    // Streamed without Content-Length: refused while reading. The 413 must still reach the client.
    const streamed = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < over.length; i += 64 * 1024) c.enqueue(over.subarray(i, i + 64 * 1024));
        c.close();
      },
    });
    const res = await alice.req('PUT', `/v2/${REPO}/manifests/over-limit`, { scope: RW, body: streamed as unknown as BodyInit, headers: { 'content-type': OCI } });
    assert.equal(res.status, 413);
    await expectError(res, ['MANIFEST_INVALID'], 'over the limit, streamed');
    // A declared length beyond the limit is refused before the body is read.
    const declared = await raw(t.url, 'PUT', `/v2/${REPO}/manifests/over-limit`, {
      authorization: `Bearer ${await alice.token(RW)}`, 'content-type': OCI, 'content-length': 64 * 1024 * 1024,
    });
    assert.equal(declared.status, 413);
    assert.deepEqual(errorCodes(declared), ['MANIFEST_INVALID']);
  });
});

async function openSession(c: RegistryClient, repo: string, first?: Buffer): Promise<string> {
  const scope = `repository:${repo}:pull,push`;
  const res = await c.req('POST', `/v2/${repo}/blobs/uploads/`, { scope });
  assert.equal(res.status, 202);
  const loc = res.headers.get('location')!;
  if (first) {
    const p = await c.req('PATCH', loc, { scope, body: first, headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${first.length - 1}` } });
    assert.equal(p.status, 202);
  }
  return loc;
}

async function sessionRange(c: RegistryClient, repo: string, loc: string): Promise<string | null> {
  const res = await c.req('GET', loc, { scope: `repository:${repo}:pull,push` });
  assert.equal(res.status, 204, `session status ${res.status}`);
  return res.headers.get('range');
}

async function finishSession(c: RegistryClient, repo: string, loc: string, rest: Buffer, all: Buffer, at: number): Promise<void> {
  const scope = `repository:${repo}:pull,push`;
  const p = await c.req('PATCH', loc, { scope, body: rest, headers: { 'content-type': 'application/octet-stream', 'content-range': `${at}-${at + rest.length - 1}` } });
  assert.equal(p.status, 202, await p.text());
  const put = await c.req('PUT', `${loc}?digest=${sha256(all)}`, { scope });
  assert.equal(put.status, 201, await put.text());
  const got = await c.req('GET', `/v2/${repo}/blobs/${sha256(all)}`, { scope });
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(all));
}

async function blobRow(digest: string): Promise<boolean> {
  return (await t.app.services.db.selectFrom('blobs').select('id').where('digest', '=', digest).executeTakeFirst()) !== undefined;
}

test('a wrong digest on close is DIGEST_INVALID: nothing is published and the session is gone', async () => {
  const data = randomBytes(5000);
  const wrong = sha256('something else');
  await writesNothing(async () => {
    const loc = await openSession(alice, REPO, data);
    const res = await alice.req('PUT', `${loc}?digest=${wrong}`, { scope: RW });
    await expectError(res, ['DIGEST_INVALID'], 'close with a wrong digest');
    await expectError(await alice.req('GET', loc, { scope: RW }), ['BLOB_UPLOAD_UNKNOWN'], 'the session after a wrong digest');
    // The same with the last chunk in the PUT, and monolithic.
    const loc2 = await openSession(alice, REPO);
    await expectError(await alice.req('PUT', `${loc2}?digest=${wrong}`, { scope: RW, body: data, headers: { 'content-type': 'application/octet-stream' } }), ['DIGEST_INVALID'], 'PUT with body');
    await expectError(await alice.req('POST', `/v2/${REPO}/blobs/uploads/?digest=${wrong}`, { scope: RW, body: data, headers: { 'content-type': 'application/octet-stream' } }), ['DIGEST_INVALID'], 'monolithic');
  });
  assert.equal(await blobRow(wrong), false);
  assert.equal(await blobRow(sha256(data)), false);
  // The right content under another algorithm: published only if verified with that algorithm.
  const sha512 = `sha512:${createHash('sha512').update(data).digest('hex')}`;
  const loc3 = await openSession(alice, REPO, data);
  const r512 = await alice.req('PUT', `${loc3}?digest=${sha512}`, { scope: RW });
  if (r512.status === 201) {
    const got = await alice.req('GET', `/v2/${REPO}/blobs/${sha512}`, { scope: RW });
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(data));
  } else await expectError(r512, ['DIGEST_INVALID', 'UNSUPPORTED'], 'close with the sha512 of the content');
  assert.deepEqual(await allProblems(t.app.services), []);
});

test('unknown digest algorithms and malformed digests are refused everywhere; an open session is untouched', async () => {
  const first = randomBytes(1000);
  const rest = randomBytes(1000);
  const loc = await openSession(alice, REPO, first);
  const unknownAlg = [`sha1:${'ab'.repeat(20)}`, `md5:${'ab'.repeat(16)}`, `sha384:${'ab'.repeat(48)}`, `blake3:${hex64}`];
  const malformed = [`sha256:${hex64.slice(1)}`, `sha256:${hex64.toUpperCase()}`, `sha256:${'g'.repeat(64)}`, `SHA256:${hex64}`, `sha256:${hex64}x`, 'sha256:', ':abc', `sha512:${hex64}`];
  await writesNothing(async () => {
    for (const d of [...unknownAlg, ...malformed]) {
      const codes = unknownAlg.includes(d) ? ['UNSUPPORTED', 'DIGEST_INVALID'] : ['DIGEST_INVALID'];
      const e = encodeURIComponent(d);
      await expectError(await alice.req('PUT', `${loc}?digest=${e}`, { scope: RW }), codes, `close with ${d}`);
      await expectError(await alice.req('POST', `/v2/${REPO}/blobs/uploads/?digest=${e}`, { scope: RW, body: rest, headers: { 'content-type': 'application/octet-stream' } }), codes, `monolithic ${d}`);
      await expectError(await alice.req('POST', `/v2/${REPO}/blobs/uploads/?mount=${e}&from=alice/app`, { scope: RW }), codes, `mount ${d}`);
      for (const m of ['GET', 'HEAD', 'DELETE']) {
        const res = await alice.req(m, `/v2/${REPO}/blobs/${e}`, { scope: `repository:${REPO}:*` });
        assert.ok(res.status >= 400 && res.status < 500, `${m} blob ${d}: ${res.status}`);
        if (m !== 'HEAD') await expectError(res, codes, `${m} blob ${d}`);
      }
      await expectError(await alice.req('GET', `/v2/${REPO}/manifests/${e}`, { scope: RW }), codes, `GET manifest ${d}`);
      await expectError(await alice.req('DELETE', `/v2/${REPO}/manifests/${e}`, { scope: `repository:${REPO}:*` }), codes, `DELETE manifest ${d}`);
      await expectError(await putManifest(e, Buffer.from(JSON.stringify(validManifest()))), codes, `PUT manifest ${d}`);
      await expectError(await alice.req('GET', `/v2/${REPO}/referrers/${e}`, { scope: RW }), codes, `referrers ${d}`);
      assert.equal(await sessionRange(alice, REPO, loc), '0-999');
    }
  });
  await finishSession(alice, REPO, loc, rest, Buffer.concat([first, rest]), 1000);
});

test('bogus Content-Range: malformed, overlapping, out of order or inconsistent → 416 RANGE_INVALID; the session stays where it was', async () => {
  const first = randomBytes(1000);
  const rest = randomBytes(1000);
  const loc = await openSession(alice, REPO, first);
  const uuid = loc.split('/').pop()!;
  const cases: [string, Buffer][] = [
    ...['abc', 'bytes=1000-1999', 'bytes 1000-1999/2000', '1000-', '-1999', '1999-1000', '1000-1999-1', ' 1000 -1999', '1e3-1999', '0x3e8-1999',
      '99999999999999999999-100000000000000000999', '1000-1999,2000-2999'].map((r): [string, Buffer] => [r, rest]),
    ['500-1499', rest], // overlaps what the session already has
    ['0-999', rest], // rewrites the start
    ['2000-2999', rest], // leaves a gap
    ['1000-1499', rest], // inconsistent with the body's Content-Length
    ['1000-2999', rest],
  ];
  await writesNothing(async () => {
    for (const [range, body] of cases) {
      const res = await alice.req('PATCH', loc, { scope: RW, body, headers: { 'content-type': 'application/octet-stream', 'content-range': range } });
      assert.equal(res.status, 416, `Content-Range ${range}: ${res.status} ${await res.clone().text()}`);
      await expectError(res, ['RANGE_INVALID'], `Content-Range ${range}`);
      assert.equal(await sessionRange(alice, REPO, loc), '0-999', `after Content-Range ${range}`);
      assert.equal((await fileTree(join(storageDir(), 'uploads', uuid))).get('data'), 1000, `after Content-Range ${range}: bytes were appended`);
    }
  });
  await finishSession(alice, REPO, loc, rest, Buffer.concat([first, rest]), 1000);
});

test('a refused request body does not poison the connection: the next request on it is answered', async () => {
  const http = await import('node:http');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const u = new URL(t.url);
  const token = await alice.token(RW);
  const send = (method: string, path: string, headers: Record<string, string | number>, body?: Buffer, chunked = false) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const r = http.request({ host: u.hostname, port: Number(u.port), method, path, agent, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d)).on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      r.setTimeout(10_000, () => r.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
      r.on('error', reject);
      if (body && chunked) {
        for (let i = 0; i < body.length; i += 64 * 1024) r.write(body.subarray(i, i + 64 * 1024));
        r.end();
      } else r.end(body);
    });
  const big = randomBytes(4 * 1024 * 1024);
  const loc = await openSession(alice, REPO);
  // Refused after the server started reading the body: longer than its Content-Range says.
  const refused = await send('PATCH', loc, { 'content-type': 'application/octet-stream', 'content-range': '0-9' }, big, true);
  assert.ok(refused.status >= 400 && refused.status < 500, `${refused.status} ${refused.body}`);
  const next = await send('GET', '/v2/', {});
  assert.equal(next.status, 200);
  // Refused before reading it: an unknown session.
  const unknown = await send('PATCH', `/v2/${REPO}/blobs/uploads/00000000-0000-0000-0000-000000000000`, { 'content-type': 'application/octet-stream', 'content-length': big.length }, big);
  assert.equal(unknown.status, 404);
  assert.equal((await send('GET', '/v2/', {})).status, 200);
  // An oversized manifest refused while streaming.
  const over = Buffer.alloc(5 * 1024 * 1024, 0x20);
  const m = await send('PUT', `/v2/${REPO}/manifests/huge`, { 'content-type': OCI }, over, true);
  assert.equal(m.status, 413);
  assert.equal((await send('GET', '/v2/', {})).status, 200);
  agent.destroy();
});

// ---- names

test('invalid repository names: NAME_INVALID (or NOT_FOUND), sent byte for byte, and nothing is touched', async () => {
  const token = await alice.token(RW);
  const auth = { authorization: `Bearer ${token}` };
  const manifest = Buffer.from(JSON.stringify(validManifest()));
  const names = [
    'alice/..', 'alice/../app', '../alice/app', 'alice/./app', 'alice/%2e%2e', 'alice/%2e%2e/app', 'alice%2fapp', 'alice/app%2f..', 'alice/%2E%2E',
    'Alice/app', 'alice/App', 'alice/APP/x', `alice/${'a'.repeat(256)}`, `alice/${'abcdefghi/'.repeat(26)}x`, `${'a'.repeat(256)}/app`,
    'alice//app', 'alice/app/', '/alice/app', 'alice/-app', 'alice/app-', 'alice/a..b', 'alice/a%00b', 'alice/a%20b', 'alice/%20', 'alice/%C3%A4',
    'alice/app%3f', 'alice', '',
  ];
  const uuid = '00000000-0000-0000-0000-000000000000';
  const digest = sha256('x');
  await writesNothing(async () => {
    for (const name of names) {
      const requests: [string, string, Buffer | undefined, Record<string, string>][] = [
        ['GET', `/v2/${name}/manifests/latest`, undefined, {}],
        ['PUT', `/v2/${name}/manifests/latest`, manifest, { 'content-type': OCI }],
        ['DELETE', `/v2/${name}/manifests/${digest}`, undefined, {}],
        ['GET', `/v2/${name}/blobs/${digest}`, undefined, {}],
        ['POST', `/v2/${name}/blobs/uploads/`, undefined, {}],
        ['POST', `/v2/${name}/blobs/uploads/?digest=${sha256(manifest)}`, manifest, { 'content-type': 'application/octet-stream' }],
        ['PATCH', `/v2/${name}/blobs/uploads/${uuid}`, manifest, { 'content-type': 'application/octet-stream' }],
        ['PUT', `/v2/${name}/blobs/uploads/${uuid}?digest=${digest}`, undefined, {}],
        ['GET', `/v2/${name}/tags/list`, undefined, {}],
        ['GET', `/v2/${name}/referrers/${digest}`, undefined, {}],
      ];
      for (const [method, path, body, headers] of requests) {
        const res = await raw(t.url, method, path, { ...auth, ...headers }, body);
        const label = `${method} ${path.slice(0, 90)}`;
        assert.ok(res.status === 400 || res.status === 404, `${label}: ${res.status} ${res.body.toString().slice(0, 200)}`);
        const [code] = errorCodes(res);
        assert.ok(code === 'NAME_INVALID' || code === 'NOT_FOUND', `${label}: ${code}`);
        assert.equal(res.status, STATUS[code!], label);
      }
    }
    // Traversal in the other path parts is refused by their own grammar.
    const parts: [string, string, string][] = [
      ['GET', `/v2/${REPO}/manifests/..%2f..%2fsecrets`, 'TAG_INVALID'],
      ['PUT', `/v2/${REPO}/manifests/..%2f..%2fsecrets`, 'TAG_INVALID'],
      ['GET', `/v2/${REPO}/manifests/%2e%2e`, 'TAG_INVALID'],
      ['GET', `/v2/${REPO}/blobs/..%2f..%2fsecrets`, 'DIGEST_INVALID'],
      ['GET', `/v2/${REPO}/blobs/sha256:..%2f..%2f${hex64}`, 'DIGEST_INVALID'],
      ['GET', `/v2/${REPO}/blobs/uploads/..%2f..%2fsecrets`, 'BLOB_UPLOAD_UNKNOWN'],
      ['PATCH', `/v2/${REPO}/blobs/uploads/%2e%2e`, 'BLOB_UPLOAD_UNKNOWN'],
      ['PUT', `/v2/${REPO}/blobs/uploads/${uuid.replace(/0/g, '.')}?digest=${digest}`, 'BLOB_UPLOAD_UNKNOWN'],
      ['DELETE', `/v2/${REPO}/blobs/uploads/${'0'.repeat(36)}`, 'BLOB_UPLOAD_UNKNOWN'],
      ['GET', `/v2/${REPO}/blobs/uploads/../../../../etc/passwd`, 'NAME_INVALID'],
    ];
    for (const [method, path, code] of parts) {
      const body = method === 'PUT' || method === 'PATCH' ? manifest : undefined;
      const res = await raw(t.url, method, path, { ...auth, 'content-type': OCI }, body);
      assert.deepEqual(errorCodes(res), [code], `${method} ${path}`);
      assert.equal(res.status, STATUS[code], `${method} ${path}`);
    }
  });
});

test('a path that is not valid percent-encoding answers 400 NAME_INVALID in the OCI envelope', async () => {
  const auth = { authorization: `Bearer ${await alice.token(RW)}` };
  await writesNothing(async () => {
    const cases: [string, string[]][] = [
      ['/v2/alice/a%ff/manifests/latest', ['NAME_INVALID']],
      ['/v2/alice/app%/tags/list', ['NAME_INVALID']],
      ['/v2/alice/app/manifests/%e0%80', ['NAME_INVALID', 'TAG_INVALID']],
      ['/v2/alice/app/blobs/uploads/%zz', ['NAME_INVALID', 'BLOB_UPLOAD_UNKNOWN']],
    ];
    for (const [path, codes] of cases) {
      const res = await raw(t.url, 'GET', path, auth);
      const [code] = errorCodes(res);
      assert.ok(codes.includes(code!), `${path}: ${code}`);
      assert.equal(res.status, STATUS[code!], path);
    }
  });
});

// ---- tokens and sessions of others

test('a token for another scope, another action or nobody is refused, and nothing is written', async () => {
  await alice.pushImage('alice/other', 'v1');
  const data = randomBytes(100);
  const tokenFor = async (c: RegistryClient | null, scope: string) => {
    const res = await fetch(`${t.url}/v2/auth?service=x&scope=${encodeURIComponent(scope)}`, { headers: c ? { authorization: `Basic ${Buffer.from(`${c.user}:${c.pass}`).toString('base64')}` } : {} });
    return ((await res.json()) as { token: string }).token;
  };
  // Like Quay, every missing grant is 401 with a challenge (signed in or not), so that clients ask
  // for a token with exactly the scope named in it.
  const tokens: [string, string][] = [
    ['push token for another repository', await tokenFor(alice, 'repository:alice/other:pull,push')],
    ['pull-only token', await tokenFor(alice, `repository:${REPO}:pull`)],
    ['catalog token', await tokenFor(alice, 'registry:catalog:*')],
    ['token for a name that differs in case', await tokenFor(alice, 'repository:Alice/App:pull,push')],
    ['token for a nested name', await tokenFor(alice, `repository:${REPO}/sub:pull,push`)],
    ['bob asking for alice/app', await tokenFor(bob, `repository:${REPO}:pull,push`)],
    ['anonymous token', await tokenFor(null, `repository:${REPO}:pull,push`)],
    ['garbage token', 'not.a.token'],
  ];
  const loc = await openSession(alice, REPO, data);
  await writesNothing(async () => {
    for (const [label, token] of tokens) {
      const h = { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' };
      for (const [method, path, body] of [
        ['POST', `/v2/${REPO}/blobs/uploads/`, undefined],
        ['POST', `/v2/${REPO}/blobs/uploads/?digest=${sha256(data)}`, data],
        ['PATCH', loc, data],
        ['PUT', `${loc}?digest=${sha256(Buffer.concat([data, data]))}`, data],
        ['DELETE', loc, undefined],
        ['PUT', `/v2/${REPO}/manifests/stolen`, Buffer.from(JSON.stringify(validManifest()))],
        ['DELETE', `/v2/${REPO}/manifests/seed`, undefined],
      ] as const) {
        const res = await fetch(`${t.url}${path}`, { method, headers: h, body });
        await expectError(res, ['UNAUTHORIZED'], `${label}: ${method} ${path}`);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+\/v2\/auth",service="[^"]+"/, `${label}: ${method} ${path}`);
      }
    }
  });
  assert.equal(await sessionRange(alice, REPO, loc), '0-99');
});

test('an upload session is unknown to everyone but its owner, whatever they try, and keeps working for the owner', async () => {
  const repo = 'shared/app';
  const first = randomBytes(1000);
  const rest = randomBytes(1000);
  const loc = await openSession(alice, repo, first);
  const uuid = loc.split('/').pop()!;
  const scope = `repository:${repo}:pull,push`;
  const intruderData = randomBytes(1000);
  await bob.pushImage('bob/own', 'v1');
  await writesNothing(async () => {
    for (const [who, c] of [['bob (write on the repository)', bob], ['a robot with write', robot]] as const) {
      const attempts: [string, string, Buffer | undefined, Record<string, string>][] = [
        ['GET', loc, undefined, {}],
        ['PATCH', loc, intruderData, { 'content-range': '1000-1999' }],
        ['PATCH', loc, intruderData, {}],
        ['PUT', `${loc}?digest=${sha256(Buffer.concat([first, intruderData]))}`, intruderData, {}],
        ['PUT', `${loc}?digest=${sha256(first)}`, undefined, {}],
        ['DELETE', loc, undefined, {}],
      ];
      for (const [method, path, body, headers] of attempts) {
        const res = await c.req(method, path, { scope, body, headers: { ...(body ? { 'content-type': 'application/octet-stream' } : {}), ...headers } });
        await expectError(res, ['BLOB_UPLOAD_UNKNOWN'], `${who}: ${method}`);
      }
      // Through a repository the intruder owns: the session belongs to another repository.
      const own = c === bob ? 'bob/own' : null;
      if (own) {
        for (const method of ['GET', 'PATCH', 'DELETE']) {
          const res = await c.req(method, `/v2/${own}/blobs/uploads/${uuid}`, { scope: `repository:${own}:pull,push`, body: method === 'PATCH' ? intruderData : undefined });
          await expectError(res, ['BLOB_UPLOAD_UNKNOWN'], `${who} via ${own}: ${method}`);
        }
      }
    }
    // Alice, through another repository she owns, cannot move the session either.
    const res = await alice.req('GET', `/v2/${REPO}/blobs/uploads/${uuid}`, { scope: RW });
    await expectError(res, ['BLOB_UPLOAD_UNKNOWN'], 'owner via another repository');
  });
  // Nothing the intruders sent reached the session.
  assert.equal(await sessionRange(alice, repo, loc), '0-999');
  assert.equal((await fileTree(join(storageDir(), 'uploads', uuid))).get('data'), 1000);
  await finishSession(alice, repo, loc, rest, Buffer.concat([first, rest]), 1000);
  assert.equal(await blobRow(sha256(Buffer.concat([first, intruderData]))), false);
  assert.deepEqual(await allProblems(t.app.services), []);
});

// kill -9 in the middle of pushes, then a restart on the same data dir and database: nothing that
// was acknowledged is lost, no blob holds bytes other than its digest's, an interrupted upload
// either resumes where the registry says it stands or is cleanly unknown, and a manifest PUT is
// all or nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/server/app.ts';
import type { Services } from '../../src/model/context.ts';
import type { Db } from '../../src/db/db.ts';
import { createUser } from '../../src/model/accounts.ts';
import { createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { rawRequest, type RawRequest } from '../support/raw-request.ts';
import { allProblems, blobProblems } from '../support/integrity.ts';

const REPO = 'alice/crash';
const RW = `repository:${REPO}:pull,push`;
const CHUNK = 64 * 1024;
/** The chunk in flight at the kill: big enough that the server has written part of it to storage
 * (the filesystem driver coalesces writes into 1 MiB) when half of it has been sent. */
const BIG = 4 * 1024 * 1024;
const OCI = 'application/vnd.oci.image.manifest.v1+json';

let dataDir: string;
let db: TestDatabase;
let overrides: Record<string, unknown>;
let s: Services;
let handle: Db;
let server: ServerProcess;
let port: number;
let alice: RegistryClient;
/** Everything the registry acknowledged so far: checked again after every restart. */
const ackedBlobs = new Map<string, Buffer>();
const ackedTags = new Map<string, string>();

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'quayside-crash-'));
  db = await createTestDatabase(dataDir);
  overrides = { DB_URI: db.uri };
  const config = loadConfig({ dataDir, port: 0, host: '127.0.0.1', overrides, env: {}, warn: () => {} });
  ({ services: s, handle } = await openServices(config, pino({ level: 'silent' })));
  await createUser(s, { username: 'alice', password: 'password1' });
  server = await startServerProcess({ dataDir, overrides });
  port = Number(new URL(server.url).port);
  alice = new RegistryClient(server.url, 'alice', 'password1');
});

after(async () => {
  await server?.stop();
  await handle?.close();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** SIGKILL, then start again on the same port, data dir and database. */
async function crashAndRestart(): Promise<void> {
  await server.kill('SIGKILL');
  const t0 = performance.now();
  server = await startServerProcess({ dataDir, overrides, port });
  restartMs.push(Math.round(performance.now() - t0));
}
/** How long each restart took until the server listened again (recovery included). */
const restartMs: number[] = [];

function bearer(): Promise<Record<string, string>> {
  return alice.token(RW).then((t) => ({ authorization: `Bearer ${t}` }));
}

async function req(method: string, path: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return alice.req(method, path, { scope: RW, body, headers: { ...(body ? { 'content-type': 'application/octet-stream' } : {}), ...headers } });
}

async function code(res: Response): Promise<string> {
  return ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code;
}

async function openSession(): Promise<string> {
  const res = await req('POST', `/v2/${REPO}/blobs/uploads/`);
  assert.equal(res.status, 202);
  return res.headers.get('location')!;
}

async function patch(loc: string, data: Uint8Array, start: number): Promise<Response> {
  return req('PATCH', loc, data, { 'content-range': `${start}-${start + data.length - 1}` });
}

async function blobBytes(digest: string): Promise<Buffer> {
  const res = await req('GET', `/v2/${REPO}/blobs/${digest}`);
  assert.equal(res.status, 200, `GET blob ${digest}`);
  return Buffer.from(await res.arrayBuffer());
}

async function pushBlob(data: Buffer): Promise<string> {
  const digest = await alice.pushBlob(REPO, data);
  ackedBlobs.set(digest, data);
  return digest;
}

/** Waits until the session's data file in local storage holds more than `size` bytes: the server
 * is then demonstrably in the middle of writing the PATCH body. */
async function untilStored(loc: string, size: number): Promise<void> {
  const uuid = loc.split('/').pop()!;
  const file = join(dataDir, 'storage', 'uploads', uuid, 'data');
  for (let i = 0; i < 500; i++) {
    const n = await stat(file).then((st) => st.size, () => 0);
    if (n > size) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the server never stored the start of the PATCH body of ${uuid}`);
}

/** Starts a PATCH of `data` at `start` and sends only its first half. */
async function halfPatch(loc: string, data: Buffer, start: number): Promise<RawRequest> {
  const r = rawRequest(server.url, 'PATCH', loc, {
    ...(await bearer()), 'content-type': 'application/octet-stream', 'content-length': data.length, 'content-range': `${start}-${start + data.length - 1}`,
  });
  await r.write(data.subarray(0, data.length / 2));
  return r;
}

async function assertAckedSurvived(): Promise<void> {
  for (const [digest, data] of ackedBlobs) assert.ok((await blobBytes(digest)).equals(data), `acknowledged blob ${digest} changed or vanished`);
  for (const [tag, digest] of ackedTags) {
    const res = await req('GET', `/v2/${REPO}/manifests/${tag}`, undefined, { accept: OCI });
    assert.equal(res.status, 200, `acknowledged tag ${tag} vanished`);
    assert.equal(res.headers.get('docker-content-digest'), digest, `acknowledged tag ${tag} moved`);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
    assert.equal((await req('GET', `/v2/${REPO}/manifests/${digest}`, undefined, { accept: OCI })).status, 200);
  }
  assert.deepEqual(await allProblems(s), []);
}

/** After a crash mid-PATCH: the session stands exactly at what was acknowledged, or is unknown. */
async function sessionState(loc: string, acked: number): Promise<'resumable' | 'unknown'> {
  const st = await req('GET', loc);
  if (st.status === 404) {
    assert.equal(await code(st), 'BLOB_UPLOAD_UNKNOWN');
    return 'unknown';
  }
  assert.equal(st.status, 204);
  assert.equal(st.headers.get('range'), `0-${acked - 1}`, 'the session must stand at the acknowledged size');
  return 'resumable';
}

/** A request answered BLOB_UPLOAD_UNKNOWN leaves the session unknown for good. */
async function assertCleanlyUnknown(res: Response, loc: string): Promise<void> {
  assert.equal(res.status, 404);
  assert.equal(await code(res), 'BLOB_UPLOAD_UNKNOWN');
  const again = await req('GET', loc);
  assert.equal(again.status, 404);
  assert.equal(await code(again), 'BLOB_UPLOAD_UNKNOWN');
}

/** On PostgreSQL a writer killed mid-PATCH still holds its session's append claim until it lapses
 * (about 20 s): until then the registry answers 416 "another request is writing". */
async function whileClaimed(call: () => Promise<Response>): Promise<Response> {
  const end = Date.now() + 40_000;
  for (;;) {
    const res = await call();
    if (res.status !== 416 || Date.now() > end) return res;
    const body = await res.clone().text();
    if (!body.includes('another request is writing')) return res;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

test('kill -9 during chunked uploads: acknowledged chunks survive, interrupted PATCHes resume or are cleanly unknown', async (t) => {
  const image = await alice.pushImage(REPO, 'acked');
  ackedTags.set('acked', image.digest);
  await pushBlob(randomBytes(50_000));

  // A session with two acknowledged chunks and nothing in flight.
  const whole = randomBytes(3 * CHUNK);
  const quiet = await openSession();
  assert.equal((await patch(quiet, whole.subarray(0, CHUNK), 0)).status, 202);
  assert.equal((await patch(quiet, whole.subarray(CHUNK, 2 * CHUNK), CHUNK)).status, 202);

  // Two sessions with one acknowledged chunk each and a second chunk half-way through the wire.
  const resumeData = randomBytes(CHUNK + BIG);
  const resumeLoc = await openSession();
  assert.equal((await patch(resumeLoc, resumeData.subarray(0, CHUNK), 0)).status, 202);
  const closeData = randomBytes(CHUNK + BIG);
  const closeLoc = await openSession();
  assert.equal((await patch(closeLoc, closeData.subarray(0, CHUNK), 0)).status, 202);
  const inflight = [await halfPatch(resumeLoc, resumeData.subarray(CHUNK), CHUNK), await halfPatch(closeLoc, closeData.subarray(CHUNK), CHUNK)];
  // And a monolithic upload half sent.
  const mono = randomBytes(BIG);
  const monoDigest = sha256(mono);
  const monoReq = rawRequest(server.url, 'POST', `/v2/${REPO}/blobs/uploads/?digest=${monoDigest}`, {
    ...(await bearer()), 'content-type': 'application/octet-stream', 'content-length': mono.length,
  });
  await monoReq.write(mono.subarray(0, CHUNK));
  await untilStored(resumeLoc, CHUNK);
  await untilStored(closeLoc, CHUNK);

  await crashAndRestart();
  for (const r of [...inflight, monoReq]) assert.ok((await r.done) instanceof Error, 'an interrupted request cannot have been answered');

  await assertAckedSurvived();

  // The quiet session resumes exactly where it stood.
  assert.equal(await sessionState(quiet, 2 * CHUNK), 'resumable');
  const third = await patch(quiet, whole.subarray(2 * CHUNK), 2 * CHUNK);
  assert.equal(third.status, 202, await third.clone().text());
  assert.equal(third.headers.get('range'), `0-${3 * CHUNK - 1}`);
  const quietPut = await req('PUT', `${quiet}?digest=${sha256(whole)}`);
  assert.equal(quietPut.status, 201, await quietPut.clone().text());
  ackedBlobs.set(sha256(whole), whole);

  // One interrupted session: close it at the acknowledged size. What is published must be exactly those bytes.
  let closed = await sessionState(closeLoc, CHUNK);
  if (closed === 'resumable') {
    const head = closeData.subarray(0, CHUNK);
    const put = await whileClaimed(() => req('PUT', `${closeLoc}?digest=${sha256(head)}`));
    if (put.status === 404) {
      await assertCleanlyUnknown(put, closeLoc);
      closed = 'unknown';
    } else {
      assert.equal(put.status, 201, await put.clone().text());
      assert.ok((await blobBytes(sha256(head))).equals(head), 'the published blob is not what the session acknowledged');
      assert.deepEqual(await blobProblems(s), [], 'the published blob is not what the session acknowledged');
      ackedBlobs.set(sha256(head), Buffer.from(head));
    }
  }
  t.diagnostic(`session interrupted mid-PATCH, closed at the acknowledged size: ${closed === 'resumable' ? 'published' : 'BLOB_UPLOAD_UNKNOWN'}`);

  // The other interrupted session: continue with the rest of the blob.
  let resumed = await sessionState(resumeLoc, CHUNK);
  if (resumed === 'resumable') {
    const rest = await whileClaimed(() => patch(resumeLoc, resumeData.subarray(CHUNK), CHUNK));
    if (rest.status === 404) {
      await assertCleanlyUnknown(rest, resumeLoc);
      resumed = 'unknown';
    } else {
      assert.equal(rest.status, 202, `PATCH at the offset the registry reported: ${await rest.clone().text()}`);
      const put = await req('PUT', `${resumeLoc}?digest=${sha256(resumeData)}`);
      assert.equal(put.status, 201, await put.clone().text());
      ackedBlobs.set(sha256(resumeData), resumeData);
    }
  }
  t.diagnostic(`session interrupted mid-PATCH, continued: ${resumed === 'resumable' ? 'resumed' : 'BLOB_UPLOAD_UNKNOWN'}`);

  // The half-sent monolithic upload left no blob.
  const monoGet = await req('GET', `/v2/${REPO}/blobs/${monoDigest}`);
  assert.equal(monoGet.status, 404);
  assert.equal(await code(monoGet), 'BLOB_UNKNOWN');
  assert.equal(await s.db.selectFrom('blobs').select('id').where('digest', '=', monoDigest).executeTakeFirst(), undefined);

  // And the same content can be pushed afresh.
  for (const data of [resumeData, closeData, mono]) await pushBlob(data);
  await assertAckedSurvived();
});

interface Image {
  tag: string;
  bytes: Buffer;
  digest: string;
}

/** Manifests for one round: they share a config and a layer and differ by an annotation. */
async function images(tags: string[]): Promise<Image[]> {
  const layer = randomBytes(1000);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
  const layerDigest = await pushBlob(layer);
  const configDigest = await pushBlob(config);
  return tags.map((tag) => {
    const bytes = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: OCI,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
      annotations: { tag },
    }));
    return { tag, bytes, digest: sha256(bytes) };
  });
}

async function manifestRow(digest: string): Promise<boolean> {
  return (await s.db.selectFrom('manifests').select('id').where('digest', '=', digest).executeTakeFirst()) !== undefined;
}

test('kill -9 during manifest PUTs: a half-sent manifest leaves nothing, a fully sent one is all or nothing', async (t) => {
  const outcomes: string[] = [];
  // Kill as soon as every body is on the wire, a little later, or once the first answers come
  // back (the others are then mid-flight, some of them mid-transaction).
  const rounds: [afterAnswers: number, delay: number][] = [[0, 0], [1, 0], [2, 0], [4, 0]];
  for (const [round, [afterAnswers, delay]] of rounds.entries()) {
    const all = await images([`half-${round}`, ...[0, 1, 2, 3, 4, 5].map((i) => `full-${round}-${i}`)]);
    const half = all[0]!;
    const full = all.slice(1);
    const auth = await bearer();

    const halfReq = rawRequest(server.url, 'PUT', `/v2/${REPO}/manifests/${half.tag}`, { ...auth, 'content-type': OCI, 'content-length': half.bytes.length });
    await halfReq.write(half.bytes.subarray(0, half.bytes.length >> 1));
    const puts = full.map((m) => {
      const r = rawRequest(server.url, 'PUT', `/v2/${REPO}/manifests/${m.tag}`, { ...auth, 'content-type': OCI, 'content-length': m.bytes.length });
      r.req.end(m.bytes);
      return r;
    });
    await Promise.all(puts.map((r) => r.finished));
    if (afterAnswers > 0) {
      let answered = 0;
      await new Promise<void>((resolve) => {
        for (const r of puts) void r.done.then(() => ++answered === afterAnswers && resolve());
      });
    }
    await new Promise((r) => setTimeout(r, delay));
    await crashAndRestart();

    assert.ok((await halfReq.done) instanceof Error);
    const answers = await Promise.all(puts.map((r) => r.done));
    let acked = 0;
    let committed = 0;
    for (const [i, m] of full.entries()) {
      const a = answers[i]!;
      if (!(a instanceof Error)) {
        assert.equal(a.status, 201, a.body.toString());
        assert.equal(a.headers['docker-content-digest'], m.digest);
        ackedTags.set(m.tag, m.digest);
        acked++;
      }
      const res = await req('GET', `/v2/${REPO}/manifests/${m.tag}`, undefined, { accept: OCI });
      if (res.status === 200) {
        committed++;
        assert.equal(res.headers.get('docker-content-digest'), m.digest);
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(m.bytes));
        assert.equal(await manifestRow(m.digest), true);
      } else {
        assert.ok(a instanceof Error, `${m.tag} was acknowledged but is gone`);
        assert.equal(res.status, 404);
        assert.equal(await code(res), 'MANIFEST_UNKNOWN');
        // The manifest row and its tag are written in one transaction.
        assert.equal(await manifestRow(m.digest), false, `${m.tag}: manifest stored without its tag`);
      }
    }
    outcomes.push(`kill after ${afterAnswers} answers + ${delay} ms: ${acked} acknowledged, ${committed - acked} committed unacknowledged, ${full.length - committed} lost`);

    const halfRes = await req('GET', `/v2/${REPO}/manifests/${half.tag}`);
    assert.equal(halfRes.status, 404);
    assert.equal(await code(halfRes), 'MANIFEST_UNKNOWN');
    assert.equal(await manifestRow(half.digest), false, 'a half-sent manifest was stored');
    await assertAckedSurvived();
  }
  t.diagnostic(outcomes.join('; '));
  t.diagnostic(`restarts took ${restartMs.join(', ')} ms`);
  // The registry is fully usable afterwards.
  const again = await alice.pushImage(REPO, 'after');
  ackedTags.set('after', again.digest);
  await assertAckedSurvived();
});

test('a PATCH whose body outruns its Content-Range is refused without taking the server down', async () => {
  const loc = await openSession();
  // Chunked, so the server only learns while reading that the body is longer than announced.
  const r = rawRequest(server.url, 'PATCH', loc, {
    ...(await bearer()), 'content-type': 'application/octet-stream', 'content-range': '0-9', 'transfer-encoding': 'chunked',
  });
  const body = randomBytes(BIG);
  for (let i = 0; i < body.length; i += CHUNK) r.req.write(body.subarray(i, i + CHUNK));
  r.req.end();
  const answer = await r.done;
  if (!(answer instanceof Error)) assert.ok(answer.status >= 400 && answer.status < 500, `${answer.status} ${answer.body}`);
  await new Promise((res) => setTimeout(res, 300));
  assert.ok(server.alive(), `the server died:\n${server.stderr()}`);
  assert.equal((await req('GET', '/v2/')).status, 200);
  await assertAckedSurvived();
});

// The online collector under load: several clients push images (fresh and shared layers, mounts,
// indexes, referrers), move and delete tags, delete manifests and whole repositories, and pull
// everything back re-hashing each digest, against a real server process whose collector runs
// every second with a few-second grace window and time machine. Nothing reachable may break while
// it runs; afterwards every protected manifest is whole and one more pass leaves no garbage.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/server/app.ts';
import type { Services } from '../../src/model/context.ts';
import type { Db } from '../../src/db/db.ts';
import { ALL_OAUTH_SCOPES, createOAuthApplication, createOAuthToken, createOrganization, createUser } from '../../src/model/accounts.ts';
import { collectGarbage } from '../../src/model/gc.ts';
import { createTestDatabase, TEST_DB, type TestDatabase } from '../support/database.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { allProblems } from '../support/integrity.ts';
import { danglingReferences, garbageLeft, protectedManifests, pullProblems, storedClosureProblems, MANIFEST_ACCEPT } from '../support/gc-audit.ts';

const DURATION_MS = Number(process.env.QUAYSIDE_GC_STRESS_MS ?? 15_000);
const CLIENTS = 6;
const GRACE_S = 4; // PUSH_TEMP_TAG_EXPIRATION_SEC: uploaded-but-unused blobs, digest-pushed manifests
const WINDOW_S = 4; // the namespace's time machine
/** A failure this close to a window's end may be the window closing, not a bug: not counted. */
const SLACK_MS = 1000;
const REPOS = ['s0', 's1', 's2'];
const TAGS = ['t0', 't1', 't2', 't3'];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let dataDir: string;
let db: TestDatabase;
let s: Services;
let handle: Db;
let server: ServerProcess;
let oauth: string;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'quayside-gc-stress-'));
  db = await createTestDatabase(dataDir);
  const overrides = {
    DB_URI: db.uri, PUSH_TEMP_TAG_EXPIRATION_SEC: GRACE_S, GARBAGE_COLLECTION_FREQUENCY: 1, QUAYSIDE_GC_SWEEP_SECONDS: 2,
  };
  const config = loadConfig({ dataDir, port: 0, host: '127.0.0.1', overrides, env: {}, warn: () => {} });
  ({ services: s, handle } = await openServices(config, pino({ level: 'silent' })));
  const alice = await createUser(s, { username: 'alice', password: 'password1' });
  await s.db.updateTable('users').set({ tag_expiration_s: WINDOW_S }).where('id', '=', alice.id).execute();
  const org = await createOrganization(s, 'stressapps', alice);
  oauth = (await createOAuthToken(s, await createOAuthApplication(s, org, 'stress'), alice, ALL_OAUTH_SCOPES.join(' '))).token;
  server = await startServerProcess({ dataDir, overrides, workers: true });
});

after(async () => {
  await server?.stop();
  await handle?.close();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

// ---- Bookkeeping shared by the clients.
const ops = new Map<string, number>();
const violations: string[] = [];
const uploaded = new Set<string>();
const pushed = new Set<string>();
/** Per repository: odd while a deletion is in flight, bumped before and after it. An operation
 * that saw the epoch change (or started while odd) raced a repository deletion. */
const epoch = new Map<string, number>(REPOS.map((r) => [r, 0]));
/** Manifests whose tag just ended: restorable from the time machine until `at` + the window. */
const history: { repo: string; tag: string; digest: string; at: number; epoch: number }[] = [];
const SHARED = Array.from({ length: 6 }, () => randomBytes(randomInt(1024, 6144)));
const SHARED_DIGESTS = SHARED.map((b) => sha256(b));
/** `repo digest` → when a client last DELETEd that shared blob from the repository. */
const unlinked = new Map<string, number>();
const EMPTY = Buffer.from('{}');

function count(kind: string): void {
  ops.set(kind, (ops.get(kind) ?? 0) + 1);
}

/** One client operation: when it started and which repository epoch it saw, to decide whether a
 * failure is a violation or the expected outcome of a race the test itself set up. */
class Op {
  readonly repo: string;
  readonly started = Date.now();
  readonly epoch: number;
  constructor(repo: string) {
    this.repo = repo;
    this.epoch = epoch.get(repo)!;
  }
  racedDeletion(): boolean {
    return this.epoch % 2 === 1 || epoch.get(this.repo) !== this.epoch;
  }
  /** Counts the outcome; a failure is excused when a repository deletion raced it or a window of
   * `windowS` seconds (counted from the start) may have closed. */
  fail(kind: string, what: string, windowS: number | null): void {
    if (this.racedDeletion()) return count(`${kind}:raced-repo-deletion`);
    // Another client's DELETE /v2/…/blobs/<digest> of a shared layer this push uses.
    if (SHARED_DIGESTS.some((d) => what.includes(d) && (unlinked.get(`${this.repo} ${d}`) ?? 0) >= this.started)) return count(`${kind}:layer-unlinked-by-client`);
    if (windowS !== null && Date.now() - this.started > windowS * 1000 - SLACK_MS) return count(`${kind}:window-closed`);
    count(`${kind}:VIOLATION`);
    violations.push(`${kind} ${this.repo}: ${what}`);
  }
}

const pick = <T>(a: readonly T[]): T => a[randomInt(a.length)]!;
const full = (repo: string) => `alice/${repo}`;

async function text(res: Response): Promise<string> {
  const body = (await res.text()).slice(0, 300);
  return `${res.status} ${body || JSON.stringify(Object.fromEntries(res.headers))}`;
}

/** A blob into the repository: uploaded, or (sometimes, for shared content) mounted from another. */
async function putBlob(c: RegistryClient, repo: string, data: Buffer, tryMount: boolean): Promise<string> {
  const digest = sha256(data);
  const scope = `repository:${full(repo)}:pull,push`;
  if (tryMount) {
    const from = pick(REPOS.filter((r) => r !== repo));
    const res = await c.req('POST', `/v2/${full(repo)}/blobs/uploads/?mount=${digest}&from=${full(from)}`, { scope: [scope, `repository:${full(from)}:pull`] });
    if (res.status === 201) {
      await res.arrayBuffer();
      count('mount:linked');
      return digest;
    }
    if (res.status !== 202) throw new Error(`mount answered ${await text(res)}`);
    await res.arrayBuffer();
    const loc = res.headers.get('location')!;
    count('mount:uploaded-instead');
    const put = await c.req('PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, { scope, body: data, headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`upload after a failed mount answered ${await text(put)}`);
    await put.arrayBuffer();
  } else {
    await c.pushBlob(full(repo), data);
  }
  uploaded.add(digest);
  return digest;
}

/** An image manifest over fresh and shared layers (blobs pushed first). */
async function buildImage(c: RegistryClient, repo: string): Promise<string> {
  const layers: Buffer[] = Array.from({ length: randomInt(1, 3) }, () => randomBytes(randomInt(512, 8192)));
  const shared = randomInt(2) ? pick(SHARED) : null;
  const descriptors = [];
  for (const l of layers) descriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: await putBlob(c, repo, l, false), size: l.length });
  if (shared) descriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: await putBlob(c, repo, shared, randomInt(3) === 0), size: shared.length });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: descriptors.map((d) => d.digest) }, n: randomInt(1e9) }));
  const cfg = await putBlob(c, repo, config, false);
  return JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: config.length }, layers: descriptors });
}

async function putManifest(c: RegistryClient, repo: string, ref: string, body: string, mediaType: string): Promise<Response> {
  const res = await c.pushManifest(full(repo), ref, body, mediaType);
  if (res.status === 201) pushed.add(sha256(body));
  return res;
}

/** Sometimes a client dawdles between its blobs and its manifest, up to the grace window's end. */
async function dawdle(): Promise<void> {
  if (randomInt(5) === 0) await new Promise((r) => setTimeout(r, randomInt(GRACE_S * 1000)));
}

async function opPushImage(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  try {
    const m = await buildImage(c, op.repo);
    await dawdle();
    const res = await putManifest(c, op.repo, pick(TAGS), m, OCI_MANIFEST);
    if (res.status === 201) count('push-image');
    else op.fail('push-image', `manifest PUT ${await text(res)}`, GRACE_S);
  } catch (e) {
    op.fail('push-image', String(e), GRACE_S);
  }
}

async function opPushIndex(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  try {
    const children = [];
    for (const arch of ['amd64', 'arm64']) {
      const m = await buildImage(c, op.repo);
      const res = await putManifest(c, op.repo, sha256(m), m, OCI_MANIFEST);
      if (res.status !== 201) return op.fail('push-index', `child PUT ${await text(res)}`, GRACE_S);
      children.push({ mediaType: OCI_MANIFEST, digest: sha256(m), size: Buffer.byteLength(m), platform: { architecture: arch, os: 'linux' } });
    }
    await dawdle();
    const idx = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children });
    const res = await putManifest(c, op.repo, pick(TAGS), idx, OCI_INDEX);
    if (res.status === 201) count('push-index');
    else op.fail('push-index', `index PUT ${await text(res)}`, GRACE_S);
  } catch (e) {
    op.fail('push-index', String(e), GRACE_S);
  }
}

/** A signature-like artifact whose subject is whatever a tag points at now. */
async function opPushReferrer(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  try {
    const head = await c.req('HEAD', `/v2/${full(op.repo)}/manifests/${pick(TAGS)}`, { scope: `repository:${full(op.repo)}:pull`, headers: { accept: MANIFEST_ACCEPT } });
    if (head.status !== 200) return count('push-referrer:no-subject');
    const payload = randomBytes(200);
    const layer = await putBlob(c, op.repo, payload, false);
    const config = await putBlob(c, op.repo, EMPTY, false);
    const art = JSON.stringify({
      schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sig',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: config, size: EMPTY.length },
      layers: [{ mediaType: 'application/octet-stream', digest: layer, size: payload.length }],
      subject: { mediaType: head.headers.get('content-type')!, digest: head.headers.get('docker-content-digest')!, size: Number(head.headers.get('content-length')) },
    });
    const res = await putManifest(c, op.repo, sha256(art), art, OCI_MANIFEST);
    if (res.status === 201) count('push-referrer');
    else op.fail('push-referrer', `PUT ${await text(res)}`, GRACE_S);
  } catch (e) {
    op.fail('push-referrer', String(e), GRACE_S);
  }
}

/** Copies what one tag points at to another tag (moving it). */
async function opRetag(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  const from = pick(TAGS);
  const res = await c.req('GET', `/v2/${full(op.repo)}/manifests/${from}`, { scope: `repository:${full(op.repo)}:pull`, headers: { accept: MANIFEST_ACCEPT } });
  const body = await res.text();
  if (res.status === 404) return count('retag:no-source');
  if (res.status !== 200) return op.fail('retag', `GET ${res.status} ${body.slice(0, 300)}`, null);
  // The manifest was just reachable, so its blobs and children are kept at least for the window.
  const put = await c.pushManifest(full(op.repo), pick(TAGS), body, res.headers.get('content-type')!);
  if (put.status === 201) count('retag');
  else op.fail('retag', `PUT of ${sha256(body)} ${await text(put)}`, WINDOW_S);
}

async function opDeleteTag(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  const tag = pick(TAGS);
  const at = Date.now();
  const head = await c.req('HEAD', `/v2/${full(op.repo)}/manifests/${tag}`, { scope: `repository:${full(op.repo)}:pull`, headers: { accept: MANIFEST_ACCEPT } });
  const res = await c.req('DELETE', `/v2/${full(op.repo)}/manifests/${tag}`, { scope: `repository:${full(op.repo)}:*` });
  if (res.status === 202 || res.status === 404) count(res.status === 202 ? 'delete-tag' : 'delete-tag:absent');
  else return op.fail('delete-tag', await text(res), null);
  await res.arrayBuffer();
  // The row that pointed at the HEAD's manifest ended at or after `at`, whoever ended it.
  if (head.status === 200) history.push({ repo: op.repo, tag, digest: head.headers.get('docker-content-digest')!, at, epoch: op.epoch });
}

async function opDeleteManifest(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  const head = await c.req('HEAD', `/v2/${full(op.repo)}/manifests/${pick(TAGS)}`, { scope: `repository:${full(op.repo)}:pull`, headers: { accept: MANIFEST_ACCEPT } });
  if (head.status !== 200) return count('delete-manifest:absent');
  const res = await c.req('DELETE', `/v2/${full(op.repo)}/manifests/${head.headers.get('docker-content-digest')}`, { scope: `repository:${full(op.repo)}:*` });
  if (res.status === 202 || res.status === 404) count(res.status === 202 ? 'delete-manifest' : 'delete-manifest:absent');
  else return op.fail('delete-manifest', await text(res), null);
  await res.arrayBuffer();
  if (res.status === 202) history.push({ repo: op.repo, tag: pick(TAGS), digest: head.headers.get('docker-content-digest')!, at: op.started, epoch: op.epoch });
}

/** Time-machine restore (Quay API) of a manifest whose tag ended moments ago: inside the window
 * the collector must have kept it, whole. */
async function opRestore(c: RegistryClient): Promise<void> {
  const h = history.splice(randomInt(Math.max(history.length, 1)), 1)[0];
  if (!h) return count('restore:nothing-to-restore');
  const op = new Op(h.repo);
  if (op.epoch !== h.epoch) return count('restore:repository-deleted-since');
  const res = await fetch(`${server.url}/api/v1/repository/${full(h.repo)}/tag/${h.tag}/restore`, {
    method: 'POST', headers: { authorization: `Bearer ${oauth}`, 'content-type': 'application/json' }, body: JSON.stringify({ manifest_digest: h.digest }),
  });
  const body = await res.text();
  // Judged from when the tag ended, not from now: past the window, 404 is right.
  const inWindow = Date.now() - h.at < WINDOW_S * 1000 - SLACK_MS;
  if (res.status !== 200) {
    if (!inWindow && res.status === 404) return count('restore:past-window');
    if (op.racedDeletion()) return count('restore:raced-repo-deletion');
    count('restore:VIOLATION');
    violations.push(`restore ${h.repo}:${h.tag}@${h.digest} ${Date.now() - h.at} ms after its tag ended: ${res.status} ${body.slice(0, 300)}`);
    return;
  }
  count('restore');
  await checkPull(c, op, h.tag, 'restore-pull');
}

/** Pulls a tag completely. A child manifest may legitimately vanish when the index's tag moves
 * mid-pull (children are reachable through a live parent); blobs must not within the window. */
async function opPull(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  await checkPull(c, op, pick(TAGS), 'pull');
}

async function checkPull(c: RegistryClient, op: Op, tag: string, kind: string): Promise<void> {
  const r = await pullProblems(c, full(op.repo), tag);
  if (r.status === 404) return count(`${kind}:absent`);
  if (!r.problems.length) return count(kind);
  if (r.digest && !r.problems.some((p) => p.includes(': blob '))) {
    const now = await c.req('HEAD', `/v2/${full(op.repo)}/manifests/${tag}`, { scope: `repository:${full(op.repo)}:pull`, headers: { accept: MANIFEST_ACCEPT } });
    if (now.headers.get('docker-content-digest') !== r.digest) return count(`${kind}:index-tag-moved`);
  }
  op.fail(kind, r.problems.join('; '), WINDOW_S);
}

/** DELETE /v2/…/blobs/<digest> of a shared layer: refused while a manifest of the repository
 * uses it, otherwise unlinked — racing pushes that are about to reference it. */
async function opUnlinkBlob(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  const digest = pick(SHARED_DIGESTS);
  unlinked.set(`${op.repo} ${digest}`, Date.now());
  const res = await c.req('DELETE', `/v2/${full(op.repo)}/blobs/${digest}`, { scope: `repository:${full(op.repo)}:*` });
  const body = await res.text();
  if (res.status === 202) count('unlink-blob');
  else if (res.status === 404) count('unlink-blob:absent');
  else if (res.status === 405) count('unlink-blob:in-use');
  else op.fail('unlink-blob', `${res.status} ${body.slice(0, 300)}`, null);
}

/** Uploads a blob nothing will ever use: garbage once its grace window passes. */
async function opAbandon(c: RegistryClient): Promise<void> {
  const op = new Op(pick(REPOS));
  try {
    await putBlob(c, op.repo, randomBytes(randomInt(256, 4096)), false);
    count('abandoned-blob');
  } catch (e) {
    op.fail('abandoned-blob', String(e), GRACE_S);
  }
}

/** DELETE /api/v1/repository: the collector purges it; the next push creates it afresh. */
async function opDeleteRepository(): Promise<void> {
  const repo = pick(REPOS);
  epoch.set(repo, epoch.get(repo)! + 1);
  try {
    const res = await fetch(`${server.url}/api/v1/repository/${full(repo)}`, { method: 'DELETE', headers: { authorization: `Bearer ${oauth}` } });
    if (res.status === 204 || res.status === 404) count(res.status === 204 ? 'delete-repository' : 'delete-repository:absent');
    else {
      count('delete-repository:VIOLATION');
      violations.push(`delete-repository ${repo}: ${await text(res)}`);
    }
  } finally {
    // Requests already past their repository lookup may still land in the old one for a moment.
    await new Promise((r) => setTimeout(r, 200));
    epoch.set(repo, epoch.get(repo)! + 1);
  }
}

const WEIGHTS: [number, (c: RegistryClient) => Promise<void>][] = [
  [24, opPushImage], [8, opPushIndex], [5, opPushReferrer], [14, opRetag], [12, opDeleteTag], [5, opDeleteManifest],
  [22, opPull], [6, opRestore], [5, opAbandon], [4, opUnlinkBlob],
];
const TOTAL = WEIGHTS.reduce((n, [w]) => n + w, 0);

/** The clients share one token cache: each token costs the server a bcrypt check. */
async function client(c: RegistryClient, until: number): Promise<void> {
  while (Date.now() < until) {
    let x = randomInt(TOTAL);
    const op = WEIGHTS.find(([w]) => (x -= w) < 0)![1];
    try {
      await op(c);
    } catch (e) {
      count('unexpected-error:VIOLATION');
      violations.push(`unexpected error: ${(e as Error).stack ?? e}`);
    }
  }
}

async function presentIn(table: 'blobs' | 'manifests', digests: Set<string>): Promise<number> {
  let n = 0;
  const all = [...digests];
  for (let i = 0; i < all.length; i += 500) {
    const rows = await s.db.selectFrom(table).select('digest').distinct().where('digest', 'in', all.slice(i, i + 500)).execute();
    n += rows.length;
  }
  return n;
}

// Found by the load below: DELETE of a blob checked "no manifest uses it" and removed the link
// outside the repository lock, so a manifest PUT that had just seen the link committed a manifest
// whose layer was gone (and, once the collector took the blob row, failed on its foreign key).
test('a manifest PUT racing DELETE of its layer: one of them loses, never both win', async () => {
  const c = new RegistryClient(server.url, 'alice', 'password1');
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 12; i++) {
    const layer = randomBytes(1000);
    const l = await putBlob(c, 'race', layer, false);
    const config = Buffer.from(JSON.stringify({ i, rootfs: { type: 'layers', diff_ids: [l] } }));
    const cfg = await putBlob(c, 'race', config, false);
    const m = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: config.length }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l, size: layer.length }] });
    const [put, del] = await Promise.all([
      c.pushManifest('alice/race', `r${i}`, m),
      c.req('DELETE', `/v2/alice/race/blobs/${l}`, { scope: 'repository:alice/race:*' }),
    ]);
    await Promise.all([put.arrayBuffer(), del.arrayBuffer()]);
    const key = `PUT ${put.status} / DELETE ${del.status}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    assert.ok((put.status === 201 && del.status === 405) || (put.status === 404 && del.status === 202), `iteration ${i}: ${key}`);
    if (put.status === 201) assert.deepEqual((await pullProblems(c, 'alice/race', `r${i}`)).problems, []);
  }
  console.log(`manifest PUT vs layer DELETE: ${JSON.stringify(Object.fromEntries(outcomes))}`);
});

test(`the online collector under ${CLIENTS} concurrent clients (${TEST_DB})`, async (t) => {
  const started = Date.now();
  const c = new RegistryClient(server.url, 'alice', 'password1');
  const admin = (async () => {
    while (Date.now() + 4000 < started + DURATION_MS) {
      await new Promise((r) => setTimeout(r, 3000));
      await opDeleteRepository();
    }
  })();
  await Promise.all([admin, ...Array.from({ length: CLIENTS }, () => client(c, started + DURATION_MS))]);
  const loadMs = Date.now() - started;

  // What the online collector removed while the clients ran (nothing is pushed any more).
  const blobsLeft = await presentIn('blobs', uploaded);
  const manifestsLeft = await presentIn('manifests', pushed);
  const reposDeleted = ops.get('delete-repository') ?? 0;

  // Every live tag pulls whole through /v2 while the server's collector keeps running.
  const liveChecked = new Set<string>();
  for (const p of await protectedManifests(s, Date.now())) {
    if (!p.live || p.hidden || liveChecked.has(`${p.repo}:${p.tag}`)) continue;
    liveChecked.add(`${p.repo}:${p.tag}`);
    const r = await pullProblems(c, p.repo, p.tag);
    for (const problem of r.problems) violations.push(`final pull ${p.repo}:${p.tag}: ${problem}`);
  }

  // Freeze: no collector runs once the server is stopped, so the windows are judged at one instant.
  await server.stop();
  const frozen = Date.now();
  const hashed = new Set<string>();
  let historyChecked = 0;
  for (const p of await protectedManifests(s, frozen)) {
    if (!p.live) historyChecked++;
    for (const problem of await storedClosureProblems(s, p.repositoryId, p.digest, hashed)) violations.push(`protected ${p.repo}:${p.tag}: ${problem}`);
  }
  for (const problem of await danglingReferences(s)) violations.push(`after load: ${problem}`);

  // One more pass; afterwards nothing collectable as of its start may remain.
  const passStart = Date.now();
  const final = await collectGarbage(s, { sweep: true });
  for (const left of await garbageLeft(s, passStart)) violations.push(`left after a full pass: ${left}`);
  for (const p of await protectedManifests(s, passStart)) {
    if (!p.live) continue;
    for (const problem of await storedClosureProblems(s, p.repositoryId, p.digest, hashed)) violations.push(`live after the final pass ${p.repo}:${p.tag}: ${problem}`);
  }
  for (const problem of [...(await danglingReferences(s)), ...(await allProblems(s))]) violations.push(`after the final pass: ${problem}`);

  const byKind = [...ops].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k}=${n}`).join(' ');
  const total = [...ops].reduce((n, [, v]) => n + v, 0);
  const figures = [
    `gc-stress (${TEST_DB}): ${CLIENTS} clients for ${loadMs} ms, ${total} operations (${Math.round(total / (loadMs / 1000))}/s); collector every 1 s, grace ${GRACE_S} s, time machine ${WINDOW_S} s`,
    `operations: ${byKind}`,
    `online GC removed ${uploaded.size - blobsLeft} of ${uploaded.size} distinct uploaded blobs, ${pushed.size - manifestsLeft} of ${pushed.size} pushed manifests; ${reposDeleted} repositories deleted`,
    `checked after load: ${liveChecked.size} live tags pulled through /v2, ${historyChecked} time-machine tags verified in storage, ${hashed.size} blobs re-hashed`,
    `final pass: ${JSON.stringify(final)}`,
    `violations: ${violations.length}`,
  ];
  for (const line of figures) {
    console.log(line);
    t.diagnostic(line);
  }
  if (violations.length) console.log(`server log (tail):\n${server.stderr().slice(-8000)}`);
  assert.deepEqual(violations.slice(0, 20), []);
  assert.ok(total > 100, 'the load ran');
  assert.ok(uploaded.size - blobsLeft > 0 && pushed.size - manifestsLeft > 0, 'the online collector removed garbage while the clients ran');
  assert.ok(liveChecked.size > 0 && historyChecked > 0, 'something was left to check');
});

// Two Quayside processes on one PostgreSQL schema and one storage, as replicas behind a load
// balancer: a token from one works on the other, an upload can hop between them chunk by chunk,
// and what one stores the other serves with the same digests.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/server/app.ts';
import type { Services } from '../../src/model/context.ts';
import type { Db } from '../../src/db/db.ts';
import { createUser } from '../../src/model/accounts.ts';
import { TEST_DB, createTestDatabase, type TestDatabase } from '../support/database.ts';
import { startServerProcess, type ServerProcess } from '../support/server-process.ts';
import { startS3Server, type S3TestServer } from '../support/s3server.ts';
import { RegistryClient, sha256 } from '../support/registry-client.ts';
import { allProblems } from '../support/integrity.ts';

const SKIP = TEST_DB !== 'postgres'
  ? 'replicas share one database, which needs PostgreSQL (QUAYSIDE_TEST_DB=postgres); SQLite is single-process by design'
  : false;
const OCI = 'application/vnd.oci.image.manifest.v1+json';

interface Pair {
  a: ServerProcess;
  b: ServerProcess;
  s: Services;
  close(): Promise<void>;
}

/** Two replicas started at the same moment on a fresh schema (so they race to migrate and to
 * create the instance signing key), sharing SERVER_HOSTNAME and secrets but no data dir. */
async function startPair(storage: (root: string) => Record<string, unknown>): Promise<Pair> {
  const root = mkdtempSync(join(tmpdir(), 'quayside-replicas-'));
  const db: TestDatabase = await createTestDatabase(root);
  const overrides = {
    DB_URI: db.uri, SERVER_HOSTNAME: 'registry.replicas.test', DATABASE_SECRET_KEY: 'replica-shared-db-secret', SECRET_KEY: 'replica-shared-secret',
    ...storage(root),
  };
  const procs: ServerProcess[] = [];
  let handle: Db | null = null;
  const close = async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await handle?.close();
    await db.drop();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const started = await Promise.allSettled(['a', 'b'].map((n) => startServerProcess({ dataDir: join(root, n), overrides })));
    for (const r of started) if (r.status === 'fulfilled') procs.push(r.value);
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    const config = loadConfig({ dataDir: join(root, 'inspector'), port: 0, host: '127.0.0.1', overrides, env: {}, warn: () => {} });
    const opened = await openServices(config, pino({ level: 'silent' }));
    handle = opened.handle;
    await createUser(opened.services, { username: 'alice', password: 'password1' });
    return { a: procs[0]!, b: procs[1]!, s: opened.services, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** GET that follows the registry's redirect to storage, as clients do. */
async function pullBlob(c: RegistryClient, repo: string, digest: string): Promise<Buffer> {
  const res = await c.req('GET', `/v2/${repo}/blobs/${digest}`, { scope: `repository:${repo}:pull` });
  if (res.status === 307) {
    const direct = await fetch(res.headers.get('location')!);
    assert.equal(direct.status, 200, 'the redirect to storage works');
    return Buffer.from(await direct.arrayBuffer());
  }
  assert.equal(res.status, 200, `GET blob ${digest}: ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** The same client, pointed at the other replica, with the tokens it already holds. */
function via(c: RegistryClient, base: string): RegistryClient {
  const other = new RegistryClient(base, c.user, c.pass);
  Object.assign(other, { tokens: (c as unknown as { tokens: Map<string, string> }).tokens });
  return other;
}

function replicaSuite(label: string, storage: (root: string, s3: S3TestServer | null) => Record<string, unknown>, needsS3: boolean): void {
  describe(label, { skip: SKIP }, () => {
    let s3: S3TestServer | null = null;
    let pair: Pair;
    let onA: RegistryClient;
    let onB: RegistryClient;

    before(async () => {
      if (needsS3) s3 = await startS3Server();
      pair = await startPair((root) => storage(root, s3));
      onA = new RegistryClient(pair.a.url, 'alice', 'password1');
      onB = via(onA, pair.b.url);
    });
    after(async () => {
      await pair?.close();
      await s3?.stop();
    });

    test('a token obtained from replica A is accepted by replica B', async () => {
      const token = await onA.token('repository:alice/shared:pull,push');
      const res = await fetch(`${pair.b.url}/v2/`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      // And a push authorised by it, on B, creates the repository.
      const data = randomBytes(1000);
      const digest = await onB.pushBlob('alice/shared', data);
      assert.ok((await pullBlob(onA, 'alice/shared', digest)).equals(data));
    });

    test('an image pushed through A is pulled through B with identical digests and bytes', async () => {
      const img = await onA.pushImage('alice/app', 'v1');
      const res = await onB.req('GET', '/v2/alice/app/manifests/v1', { scope: 'repository:alice/app:pull', headers: { accept: OCI } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), img.digest);
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(bytes.toString(), img.manifest);
      assert.equal(sha256(bytes), img.digest);
      for (const d of [img.config, img.layer]) assert.equal(sha256(await pullBlob(onB, 'alice/app', d)), d);
      const tags = await onB.req('GET', '/v2/alice/app/tags/list', { scope: 'repository:alice/app:pull' });
      assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['v1']);
    });

    test('a chunked upload whose PATCHes alternate between A and B, closed on B, then used in a manifest pushed on B and pulled on A', async () => {
      const repo = 'alice/hopping';
      const scope = `repository:${repo}:pull,push`;
      const chunk = 256 * 1024;
      const data = randomBytes(5 * chunk + 123);
      const open = await onA.req('POST', `/v2/${repo}/blobs/uploads/`, { scope });
      assert.equal(open.status, 202);
      const loc = open.headers.get('location')!;
      const replicas = [onB, onA];
      for (let start = 0, i = 0; start < data.length; start += chunk, i++) {
        const c = replicas[i % 2]!;
        const part = data.subarray(start, start + chunk);
        // Each replica sees the progress the other made.
        const st = await c.req('GET', loc, { scope });
        assert.equal(st.status, 204);
        assert.equal(st.headers.get('range'), start === 0 ? '0-0' : `0-${start - 1}`);
        const res = await c.req('PATCH', loc, { scope, body: part, headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + part.length - 1}` } });
        assert.equal(res.status, 202, `PATCH ${i} on ${c === onA ? 'A' : 'B'}: ${await res.clone().text()}`);
        assert.equal(res.headers.get('range'), `0-${start + part.length - 1}`);
      }
      const digest = sha256(data);
      const put = await onB.req('PUT', `${loc}?digest=${digest}`, { scope });
      assert.equal(put.status, 201, await put.clone().text());
      assert.ok((await pullBlob(onA, repo, digest)).equals(data));
      assert.ok((await pullBlob(onB, repo, digest)).equals(data));

      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest] } }));
      const configDigest = await onA.pushBlob(repo, config);
      const manifest = JSON.stringify({
        schemaVersion: 2, mediaType: OCI,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: data.length }],
      });
      const pushed = await onB.pushManifest(repo, 'hop', manifest);
      assert.equal(pushed.status, 201, await pushed.clone().text());
      const pulled = await onA.req('GET', `/v2/${repo}/manifests/hop`, { scope, headers: { accept: OCI } });
      assert.equal(pulled.headers.get('docker-content-digest'), sha256(manifest));
      assert.equal(await pulled.text(), manifest);
    });

    test('both replicas pushing to one tag at once leave one live tag and consistent storage', async () => {
      const results = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => (i % 2 ? onA : onB).pushImage('alice/racing', 'latest', `r${i}`)));
      const res = await onA.req('GET', '/v2/alice/racing/manifests/latest', { scope: 'repository:alice/racing:pull', headers: { accept: OCI } });
      assert.ok(results.some((r) => r.digest === res.headers.get('docker-content-digest')));
      assert.deepEqual(await allProblems(pair.s), []);
    });

    // Last: when it fails it leaves a corrupt blob behind, which the checks above would report.
    test('PATCHes at the same offset of one session racing through both replicas never publish bytes other than the digest', async (t) => {
      const repo = 'alice/racing-session';
      const scope = `repository:${repo}:pull,push`;
      const outcomes: string[] = [];
      for (let round = 0; round < 8; round++) {
        const open = await onA.req('POST', `/v2/${repo}/blobs/uploads/`, { scope });
        const loc = open.headers.get('location')!;
        // Same length, different bytes: what a confused client or a retry through the other
        // replica after a timeout could send.
        const parts = [randomBytes(2 * 1024 * 1024), randomBytes(2 * 1024 * 1024)];
        const answers = await Promise.all([onA, onB].map((c, i) => c.req('PATCH', loc, {
          scope, body: parts[i], headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${parts[i]!.length - 1}` },
        })));
        const won = answers.flatMap((r, i) => (r.status === 202 ? [i] : []));
        assert.ok(won.length <= 1, `both PATCHes at offset 0 were acknowledged (round ${round})`);
        for (const r of answers) if (r.status !== 202) assert.ok([404, 416].includes(r.status), `${r.status} ${await r.text()}`);
        if (won.length === 0) {
          outcomes.push('none');
          continue;
        }
        // Close through the replica that acknowledged the chunk, with that chunk's digest.
        const i = won[0]!;
        const put = await [onA, onB][i]!.req('PUT', `${loc}?digest=${sha256(parts[i]!)}`, { scope });
        outcomes.push(`${put.status}`);
        if (put.status === 201) assert.ok((await pullBlob(onB, repo, sha256(parts[i]!))).equals(parts[i]!), `round ${round}: published bytes differ`);
        else assert.ok([400, 404].includes(put.status), `${put.status} ${await put.text()}`);
        assert.deepEqual(await allProblems(pair.s), [], `round ${round}`);
      }
      t.diagnostic(`close after the race, per round: ${outcomes.join(', ')}`);
    });
  });
}

replicaSuite('replicas sharing S3 storage', (_root, s3) => {
  const u = new URL(s3!.endpoint);
  return {
    DISTRIBUTED_STORAGE_CONFIG: {
      s3: ['S3Storage', {
        host: u.hostname, port: Number(u.port), is_secure: false, s3_access_key: s3!.accessKeyId, s3_secret_key: s3!.secretAccessKey,
        s3_bucket: s3!.bucket, storage_path: '/registry',
      }],
    },
    DISTRIBUTED_STORAGE_PREFERENCE: ['s3'],
  };
}, true);

replicaSuite('replicas sharing a LocalStorage directory', (root) => ({
  DISTRIBUTED_STORAGE_CONFIG: { local: ['LocalStorage', { storage_path: join(root, 'shared-storage') }] },
  DISTRIBUTED_STORAGE_PREFERENCE: ['local'],
}), false);

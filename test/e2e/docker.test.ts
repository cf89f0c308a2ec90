// The Docker CLI (client only, no engine) against a real Quayside. With the daemon unreachable,
// `docker login` logs in client-side (GET /v2/ → 401 → token realm with Basic credentials) and
// stores them in $DOCKER_CONFIG/config.json; `docker manifest` then pulls and pushes with them.
// Runs on the database QUAYSIDE_TEST_DB selects.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../support/clients.ts';
import type { RunResult } from '../support/clients.ts';
import { startTestApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { RegistryClient } from '../support/registry-client.ts';
import { createAppToken, createOrganization, createRobot, createUser } from '../../src/model/accounts.ts';
import { principalFor } from '../../src/model/context.ts';
import { setUserPermission } from '../../src/model/repo-permissions.ts';
import { failure, reportTimings, timed } from './e2e.ts';

const SKIP = spawnSync('docker', ['--version']).status === 0 ? false : 'docker CLI not on PATH (it ships with docker-ce-cli / docker.io)';

const PASS = 'alice-docker-1';

let t: TestApp;
let registry: string; // localhost:PORT — the Docker CLI allows plain http to localhost
let dirs: string[] = [];
let robotToken: string;
let appToken: string;
let v1Digest: string;

reportTimings('docker e2e');

/** A fresh Docker client config; the daemon socket points nowhere so the CLI logs in itself. */
async function dockerClient(): Promise<{ dir: string; docker: (args: string[], stdin?: string) => Promise<RunResult> }> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-docker-'));
  dirs.push(dir);
  const env = { HOME: dir, DOCKER_CONFIG: join(dir, 'config'), DOCKER_HOST: `unix://${join(dir, 'no-daemon.sock')}` };
  return { dir, docker: (args, stdin) => run('docker', args, { env, stdin, timeoutMs: 30_000 }) };
}

async function storedAuths(dir: string): Promise<Record<string, { auth?: string }>> {
  try {
    return (JSON.parse(await readFile(join(dir, 'config', 'config.json'), 'utf8')) as { auths?: Record<string, { auth?: string }> }).auths ?? {};
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, `${r.argv.join(' ')}: ${failure(r)}\nstdout: ${r.stdout}`);
  return r;
}

function refused(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `expected a refusal: ${r.argv.join(' ')}\n${r.stdout}`);
  assert.match(r.stderr, pattern, failure(r));
  assert.doesNotMatch(r.stderr, /\b50\d\b|internal server error/i, failure(r));
}

const login = (d: Awaited<ReturnType<typeof dockerClient>>, user: string, secret: string) =>
  d.docker(['login', registry, '-u', user, '--password-stdin'], `${secret}\n`);

describe('docker CLI', { skip: SKIP }, () => {
  before(async () => {
    t = await timed('start quayside', () => startTestApp());
    registry = `localhost:${new URL(t.url).port}`;
    const s = t.app.services;
    const alice = await createUser(s, { username: 'alice', password: PASS, email: 'alice@example.com' });
    const acme = await createOrganization(s, 'acme', alice);
    robotToken = (await createRobot(s, acme, 'ci')).token;
    appToken = (await createAppToken(s, alice, 'docker cli')).token;
    const push = new RegistryClient(t.url, 'alice', PASS);
    v1Digest = (await push.pushImage('alice/app', 'v1', 'docker-e2e')).digest;
    await push.pushImage('acme/app', 'v1', 'docker-e2e-acme');
    await push.pushImage('acme/secret', 'v1', 'docker-e2e-secret');
    await setUserPermission(s, { principal: principalFor(alice, 'password'), ip: null }, { namespace: 'acme', name: 'app' }, 'acme+ci', 'write');
  });

  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    dirs = [];
    await t?.close();
  });

  test('login with the right password stores the credentials; a wrong password or unknown user is refused and stores nothing', async () => {
    const d = await dockerClient();
    const bad = await timed('docker login (wrong password)', () => login(d, 'alice', 'not-the-password'));
    refused(bad, /unauthorized: Invalid username or password/i);
    assert.deepEqual(await storedAuths(d.dir), {});
    refused(await login(d, 'nobody', PASS), /unauthorized: Invalid username or password/i);

    const good = await timed('docker login (password)', () => login(d, 'alice', PASS));
    ok(good);
    assert.match(good.stdout, /Login Succeeded/);
    assert.deepEqual(await storedAuths(d.dir), { [registry]: { auth: b64(`alice:${PASS}`) } });
  });

  test('docker manifest pulls and pushes with the stored login; logout removes it and access ends', async () => {
    const d = await dockerClient();
    ok(await login(d, 'alice', PASS));
    const inspected = ok(await timed('docker manifest inspect', () => d.docker(['manifest', 'inspect', '--insecure', '-v', `${registry}/alice/app:v1`])));
    assert.equal((JSON.parse(inspected.stdout) as { Descriptor: { digest: string } }).Descriptor.digest, v1Digest);

    // create + push builds an index from the registry's manifests and PUTs it: a client-side push.
    ok(await d.docker(['manifest', 'create', '--insecure', `${registry}/alice/app:multi`, `${registry}/alice/app:v1`]));
    const pushed = ok(await timed('docker manifest push', () => d.docker(['manifest', 'push', '--insecure', `${registry}/alice/app:multi`])));
    const indexDigest = pushed.stdout.trim();
    assert.match(indexDigest, /^sha256:[0-9a-f]{64}$/);
    const index = await new RegistryClient(t.url, 'alice', PASS).req('GET', '/v2/alice/app/manifests/multi', {
      scope: 'repository:alice/app:pull', headers: { accept: 'application/vnd.oci.image.index.v1+json' },
    });
    assert.equal(index.status, 200);
    assert.equal(index.headers.get('docker-content-digest'), indexDigest);
    const body = (await index.json()) as { manifests: { digest: string }[] };
    assert.deepEqual(body.manifests.map((m) => m.digest), [v1Digest]);

    const out = ok(await d.docker(['logout', registry]));
    assert.match(out.stdout, new RegExp(`Removing login credentials for ${registry}`));
    assert.deepEqual(await storedAuths(d.dir), {});
    // Anonymous now: the private repository is invisible (docker reports it as missing).
    refused(await d.docker(['manifest', 'inspect', '--insecure', `${registry}/alice/app:v1`]), /no such manifest/);
  });

  test('a robot logs in as org+name with its token and reads only where it was granted', async () => {
    const d = await dockerClient();
    refused(await login(d, 'acme+ci', robotToken.slice(0, -1) + (robotToken.endsWith('A') ? 'B' : 'A')), /unauthorized: Invalid username or password/i);
    ok(await timed('docker login (robot)', () => login(d, 'acme+ci', robotToken)));
    assert.deepEqual(await storedAuths(d.dir), { [registry]: { auth: b64(`acme+ci:${robotToken}`) } });
    const r = ok(await d.docker(['manifest', 'inspect', '--insecure', `${registry}/acme/app:v1`]));
    assert.equal((JSON.parse(r.stdout) as { schemaVersion: number }).schemaVersion, 2);
    refused(await d.docker(['manifest', 'inspect', '--insecure', `${registry}/acme/secret:v1`]), /no such manifest|denied|unauthorized/i);
  });

  test('an app-specific token logs in as $app and acts as its user', async () => {
    const d = await dockerClient();
    refused(await login(d, '$app', 'X'.repeat(120)), /unauthorized: Invalid username or password/i);
    ok(await timed('docker login ($app)', () => login(d, '$app', appToken)));
    assert.deepEqual(await storedAuths(d.dir), { [registry]: { auth: b64(`$app:${appToken}`) } });
    const r = ok(await d.docker(['manifest', 'inspect', '--insecure', '-v', `${registry}/alice/app:v1`]));
    assert.equal((JSON.parse(r.stdout) as { Descriptor: { digest: string } }).Descriptor.digest, v1Digest);
  });
});

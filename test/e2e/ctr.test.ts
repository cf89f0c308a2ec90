// containerd's `ctr` (Debian 12's containerd 1.6) against a real Quayside, through a private
// containerd daemon (own root, state, socket and config in a temp dir; native snapshotter, no CRI).
// containerd asks for tokens with the OAuth2 form (POST /v2/auth, grant_type=password) before
// falling back to GET with Basic. Runs on the database QUAYSIDE_TEST_DB selects.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { run } from '../support/clients.ts';
import type { RunResult } from '../support/clients.ts';
import { buildBusyboxImage, buildMultiLayerImage, readBlob } from '../support/images.ts';
import type { BuiltImage } from '../support/images.ts';
import { startTestApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { RegistryClient } from '../support/registry-client.ts';
import { createAppToken, createOrganization, createRobot, createUser } from '../../src/model/accounts.ts';
import { principalFor } from '../../src/model/context.ts';
import { setUserPermission } from '../../src/model/repo-permissions.ts';
import { failure, reportTimings, sha256, timed } from './e2e.ts';

const onPath = (bin: string) => spawnSync(bin, ['--version']).status === 0;
const SKIP = !(onPath('containerd') && onPath('ctr')) ? 'containerd/ctr not on PATH (apt-get install containerd; scripts/install-test-deps.sh)'
  : process.getuid?.() !== 0 ? 'containerd needs root' : false;

const PASS = 'alice-ctr-1';

let t: TestApp;
let registry: string;
let daemon: { dir: string; socket: string; child: ChildProcess } | undefined;
let busybox: BuiltImage;
let multi: BuiltImage;
let robotToken: string;
let appToken: string;

reportTimings('ctr e2e');

/** Each test uses its own containerd namespace, so images and content never leak between tests. */
function ctr(ns: string, args: string[]): Promise<RunResult> {
  return run('ctr', ['--address', daemon!.socket, '--namespace', ns, ...args], { env: { HOME: daemon!.dir }, timeoutMs: 60_000 });
}

function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, `${r.argv.join(' ')}: ${failure(r)}\nstdout: ${r.stdout.slice(-2000)}`);
  return r;
}

function refused(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `expected a refusal: ${r.argv.join(' ')}\n${r.stdout.slice(-2000)}`);
  assert.match(r.stderr, pattern, failure(r));
  assert.doesNotMatch(r.stderr, /\b50\d\b|internal server error/i, failure(r));
}

async function startContainerd(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-containerd-'));
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  // Only what a pull and a push need: no CRI, no snapshotters needing kernel features, and the
  // opt plugin kept out of /opt/containerd.
  await writeFile(config, [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.overlayfs"]',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    '[debug]',
    '  address = ""',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(dir, 'opt')}"`,
    '',
  ].join('\n'));
  const log = openSync(join(dir, 'containerd.log'), 'a');
  const child = spawn('containerd', ['--config', config], { stdio: ['ignore', log, log] });
  closeSync(log);
  daemon = { dir, socket, child };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    const v = await run('ctr', ['--address', socket, 'version'], { timeoutMs: 5000 });
    if (v.code === 0) return;
    if (Date.now() > deadline) break;
    await sleep(100);
  }
  const text = await readFile(join(dir, 'containerd.log'), 'utf8').catch(() => '');
  throw new Error(`containerd did not start:\n${text.split('\n').slice(-30).join('\n')}`);
}

async function stopContainerd(): Promise<void> {
  if (!daemon) return;
  const { child, dir } = daemon;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((res) => child.once('exit', res));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(dir, { recursive: true, force: true });
  daemon = undefined;
}

/** Pushes a layout's blobs and manifest over /v2 as `alice`, independent of any client under test. */
async function seed(img: BuiltImage, repo: string, tag: string): Promise<void> {
  const c = new RegistryClient(t.url, 'alice', PASS);
  for (const d of img.blobs) assert.equal(await c.pushBlob(repo, await readBlob(img.layoutDir, d)), d);
  const res = await c.pushManifest(repo, tag, img.raw.toString('utf8'), img.mediaType);
  assert.equal(res.status, 201, await res.text());
}

/** An OCI archive of a layout, as `ctr images import` reads it. */
async function archive(img: BuiltImage, name: string): Promise<string> {
  const out = join(daemon!.dir, `${name}.tar`);
  ok(await run('tar', ['-C', img.layoutDir, '-cf', out, '.']));
  return out;
}

const ref = (path: string) => `${registry}/${path}`;

describe('containerd ctr', { skip: SKIP }, () => {
  before(async () => {
    t = await timed('start quayside', () => startTestApp());
    registry = `localhost:${new URL(t.url).port}`;
    const s = t.app.services;
    const alice = await createUser(s, { username: 'alice', password: PASS, email: 'alice@example.com' });
    const acme = await createOrganization(s, 'acme', alice);
    robotToken = (await createRobot(s, acme, 'ci')).token;
    appToken = (await createAppToken(s, alice, 'containerd')).token;
    await timed('start containerd', startContainerd);
    busybox = await buildBusyboxImage(join(daemon!.dir, 'layouts', 'busybox'));
    multi = await buildMultiLayerImage(join(daemon!.dir, 'layouts', 'multi'), 3, { seed: 'e2e-ctr' });
    await seed(busybox, 'alice/busybox', '1.0');
    await seed(busybox, 'acme/app', '1.0');
    await seed(busybox, 'acme/secret', '1.0');
    await setUserPermission(s, { principal: principalFor(alice, 'password'), ip: null }, { namespace: 'acme', name: 'app' }, 'acme+ci', 'read');
  });

  after(async () => {
    await stopContainerd();
    await t?.close();
  });

  test('content fetch with a password downloads the manifest and every blob, without unpacking', async () => {
    ok(await timed('ctr content fetch', () => ctr('fetch', ['content', 'fetch', '--plain-http', '--user', `alice:${PASS}`, ref('alice/busybox:1.0')])));
    const images = ok(await ctr('fetch', ['images', 'ls'])).stdout;
    assert.match(images, new RegExp(`${ref('alice/busybox:1.0')}\\s+\\S+\\s+${busybox.manifestDigest}`));
    // containerd commits content only under its verified digest, so the listing proves the bytes.
    const listing = ok(await ctr('fetch', ['content', 'ls', '-q'])).stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(listing, [busybox.manifestDigest, ...busybox.blobs].sort());
  });

  test('images pull unpacks into the native snapshotter', async () => {
    ok(await timed('ctr images pull', () => ctr('pull', ['images', 'pull', '--plain-http', '--snapshotter', 'native', '--user', `alice:${PASS}`, ref('alice/busybox:1.0')])));
    const check = ok(await ctr('pull', ['images', 'check', '--snapshotter', 'native']));
    assert.match(check.stdout, new RegExp(`${ref('alice/busybox:1.0')}\\s.*complete \\(2/2\\).*\\strue\\s*$`, 'm'));
  });

  test('a wrong password, or none, cannot pull a private image', async () => {
    refused(await ctr('denied', ['content', 'fetch', '--plain-http', '--user', 'alice:wrong', ref('alice/busybox:1.0')]), /401 Unauthorized/);
    refused(await ctr('denied', ['content', 'fetch', '--plain-http', ref('alice/busybox:1.0')]), /401 Unauthorized/);
    assert.equal(ok(await ctr('denied', ['content', 'ls', '-q'])).stdout.trim(), '');
  });

  test('a robot pulls where it was granted read, nowhere else; an app token pulls as its user', async () => {
    ok(await timed('ctr content fetch (robot)', () => ctr('robot', ['content', 'fetch', '--plain-http', '--user', `acme+ci:${robotToken}`, ref('acme/app:1.0')])));
    refused(await ctr('robot', ['content', 'fetch', '--plain-http', '--user', `acme+ci:${robotToken}`, ref('acme/secret:1.0')]), /401 Unauthorized|403 Forbidden|denied/);
    ok(await timed('ctr content fetch ($app)', () => ctr('app', ['content', 'fetch', '--plain-http', '--user', `$app:${appToken}`, ref('alice/busybox:1.0')])));
  });

  test('images push uploads an imported image; the registry serves the same manifest and blobs', async () => {
    const tar = await archive(multi, 'multi');
    ok(await ctr('push', ['images', 'import', '--no-unpack', '--base-name', ref('alice/multi'), tar]));
    refused(await ctr('push', ['images', 'push', '--plain-http', ref(`alice/multi:${multi.tag}`)]), /401 Unauthorized/);
    refused(await ctr('push', ['images', 'push', '--plain-http', '--user', 'alice:wrong', ref(`alice/multi:${multi.tag}`)]), /401 Unauthorized/);
    ok(await timed('ctr images push', () => ctr('push', ['images', 'push', '--plain-http', '--user', `alice:${PASS}`, ref(`alice/multi:${multi.tag}`)])));

    const c = new RegistryClient(t.url, 'alice', PASS);
    const scope = 'repository:alice/multi:pull';
    const m = await c.req('GET', `/v2/alice/multi/manifests/${multi.tag}`, { scope, headers: { accept: multi.mediaType } });
    assert.equal(m.status, 200);
    assert.equal(m.headers.get('docker-content-digest'), multi.manifestDigest);
    assert.ok(Buffer.from(await m.arrayBuffer()).equals(multi.raw), 'manifest bytes unchanged');
    for (const d of multi.blobs) {
      const b = await c.req('GET', `/v2/alice/multi/blobs/${d}`, { scope });
      assert.equal(b.status, 200, d);
      assert.equal(sha256(Buffer.from(await b.arrayBuffer())), d);
    }

    // Pushing again under a new name in another repository reuses what the registry holds.
    ok(await ctr('push', ['images', 'tag', ref(`alice/multi:${multi.tag}`), ref('alice/copy:2')]));
    ok(await ctr('push', ['images', 'push', '--plain-http', '--user', `alice:${PASS}`, ref('alice/copy:2')]));
    const copied = await c.req('HEAD', '/v2/alice/copy/manifests/2', { scope: 'repository:alice/copy:pull', headers: { accept: multi.mediaType } });
    assert.equal(copied.headers.get('docker-content-digest'), multi.manifestDigest);
  });
});

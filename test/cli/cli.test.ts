// The quayside CLI as a child process: serve, config check, db migrate, user/org create.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { createTestDatabase, type TestDatabase } from '../support/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/server/app.ts';
import { findUser, verifyPassword } from '../../src/model/accounts.ts';
import { orgRole } from '../../src/model/permissions.ts';
import { principalFor } from '../../src/model/context.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
  for (const k of ['PORT', 'HOST', 'QUAYSIDE_DATA_DIR', 'QUAYSIDE_CONFIG']) delete env[k];
  return env;
}

function start(args: string[], stdin?: string): ChildProcess & { out: () => string; err: () => string; done: Promise<number | null> } {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN, ...args], { cwd: ROOT, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  if (stdin !== undefined) child.stdin!.end(stdin);
  else child.stdin!.end();
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return Object.assign(child, { out: () => out, err: () => err, done });
}

async function run(args: string[], stdin?: string): Promise<{ code: number | null; out: string; err: string }> {
  const c = start(args, stdin);
  const code = await c.done;
  return { code, out: c.out(), err: c.err() };
}

async function listening(c: ReturnType<typeof start>, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const m = /Quayside listening on (http:\/\/\S+)/.exec(c.out());
    if (m) return m[1]!;
    if (c.exitCode !== null) throw new Error(`serve exited ${c.exitCode}: ${c.err()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`serve did not start: ${c.out()} ${c.err()}`);
}

async function exitWithin(c: ReturnType<typeof start>, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms); });
  const result = await Promise.race([c.done, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') {
    c.kill('SIGKILL');
    throw new Error(`did not exit within ${ms} ms: ${c.err()}`);
  }
  return result;
}

describe('quayside CLI', () => {
  let dir: string;
  let db: TestDatabase;
  let common: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quayside-cli-'));
    db = await createTestDatabase(dir);
    const cfg = join(dir, 'config.yaml');
    writeFileSync(cfg, `DB_URI: "${db.uri}"\nQUAYSIDE_WORKERS: false\n`);
    common = ['--data-dir', join(dir, 'data'), '--config', cfg];
  });
  after(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('db migrate creates the schema, then reports it up to date', async () => {
    const first = await run(['db', 'migrate', ...common]);
    assert.equal(first.code, 0, first.err);
    assert.match(first.out, /applied migrations: 0001_initial/);
    const second = await run(['db', 'migrate', ...common]);
    assert.equal(second.code, 0, second.err);
    assert.match(second.out, /is up to date/);
  });

  test('user create reads the password from stdin; the user can then log in over /v2/auth', async () => {
    const r = await run(['user', 'create', 'alice', '--email', 'alice@example.com', '--password-stdin', '--superuser', ...common], 'correct-horse\n');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), 'created user alice (superuser)');

    const dup = await run(['user', 'create', 'alice', '--password-stdin', ...common], 'another-pass\n');
    assert.equal(dup.code, 1);
    assert.match(dup.err, /The username already exists/);
    const weak = await run(['user', 'create', 'bob', '--password-stdin', ...common], 'short\n');
    assert.equal(weak.code, 1);
    assert.match(weak.err, /Password must be at least 8 characters/);
    const noPass = await run(['user', 'create', 'bob', ...common]);
    assert.equal(noPass.code, 1);
    assert.match(noPass.err, /--password-stdin/);
    const badName = await run(['user', 'create', 'Bob!', '--password-stdin', ...common], 'password123\n');
    assert.equal(badName.code, 1);
    assert.match(badName.err, /Invalid namespace Bob!/);

    const org = await run(['org', 'create', 'acme', '--owner', 'alice', ...common]);
    assert.equal(org.code, 0, org.err);
    assert.equal(org.out.trim(), 'created organization acme (owner: alice)');
    const orphan = await run(['org', 'create', 'acme2', '--owner', 'nobody', ...common]);
    assert.equal(orphan.code, 1);
    assert.match(orphan.err, /no such user: nobody/);
    const taken = await run(['org', 'create', 'alice', '--owner', 'alice', ...common]);
    assert.equal(taken.code, 1);

    // The model sees what the CLI wrote.
    const cfg = loadConfig({ file: common[3], dataDir: common[1], env: {}, warn: () => {} });
    const { services, handle } = await openServices(cfg, pino({ level: 'silent' }));
    try {
      const alice = await findUser(services, 'alice');
      assert.equal(alice?.superuser, 1);
      assert.equal(alice?.email, 'alice@example.com');
      assert.ok(await verifyPassword(services, 'alice', 'correct-horse'));
      const acme = await findUser(services, 'acme');
      assert.equal(acme?.kind, 'org');
      assert.equal(await orgRole(services, principalFor(alice!, 'password'), acme!.id), 'admin');
      assert.equal(await findUser(services, 'bob'), undefined);
      const kinds = (await services.db.selectFrom('logs').select('kind').orderBy('id').execute()).map((l) => l.kind);
      assert.deepEqual(kinds, ['user_create', 'org_create']);
    } finally {
      await handle.close();
    }

    // And over HTTP: serve the same installation and exchange the password for a registry token.
    const serve = start(['serve', '--port', '0', '--host', '127.0.0.1', ...common]);
    try {
      const url = await listening(serve);
      const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
      const ok = await fetch(`${url}/v2/auth?service=${new URL(url).host}&scope=repository:alice/app:pull`, { headers: basic('alice', 'correct-horse') });
      assert.equal(ok.status, 200, await ok.clone().text());
      assert.equal(typeof (await ok.json()).token, 'string');
      const bad = await fetch(`${url}/v2/auth?service=${new URL(url).host}`, { headers: basic('alice', 'wrong-password') });
      assert.equal(bad.status, 401);
    } finally {
      serve.kill('SIGTERM');
      assert.equal(await exitWithin(serve, 30_000), 0);
    }
  });

  test('serve answers health checks and SIGTERM lets in-flight requests finish, then exits 0', async () => {
    const serve = start(['--port', '0', '--host', '127.0.0.1', ...common]);
    let exited = false;
    try {
      const url = await listening(serve);
      const health = await fetch(`${url}/health/instance`);
      assert.equal(health.status, 200);
      assert.equal((await health.json()).status_code, 200);

      // A request whose body is still arriving when the signal lands.
      const body = JSON.stringify({ username: 'inflight', password: 'password123' });
      const u = new URL(`${url}/api/v1/user/`);
      const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => { text += d.toString(); });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        req.on('error', reject);
        req.write(body.slice(0, 10));
        setTimeout(() => {
          serve.kill('SIGTERM');
          setTimeout(() => req.end(body.slice(10)), 300);
        }, 300);
      });
      const res = await response;
      assert.equal(res.status, 200, res.text);
      assert.equal(JSON.parse(res.text).username, 'inflight');
      assert.equal(await exitWithin(serve, 30_000), 0);
      exited = true;
      assert.match(serve.err(), /SIGTERM received/);
    } finally {
      if (!exited) serve.kill('SIGKILL');
    }
  });

  test('SIGINT also stops the server cleanly', async () => {
    const serve = start(['serve', '--port', '0', '--host', '127.0.0.1', ...common]);
    await listening(serve);
    serve.kill('SIGINT');
    assert.equal(await exitWithin(serve, 30_000), 0);
  });

  test('serve refuses a bad configuration or an unreachable database with exit 2 and names the problem', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'FEATURE_USER_CREATION: perhaps\n');
    const r = await run(['serve', '--port', '0', '--config', bad, '--data-dir', join(dir, 'data')]);
    assert.equal(r.code, 2);
    assert.match(r.err, /FEATURE_USER_CREATION/);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);

    const nodb = join(dir, 'nodb.yaml');
    writeFileSync(nodb, 'DB_URI: "postgresql://quay:s3cret-pw@127.0.0.1:1/quay"\n');
    const d = await run(['serve', '--port', '0', '--config', nodb, '--data-dir', join(dir, 'data')]);
    assert.equal(d.code, 2);
    assert.match(d.err, /cannot start: cannot open database/);
    assert.ok(!d.err.includes('s3cret-pw'), 'the database password is redacted');
  });

  test('config check validates without starting and names the bad key', async () => {
    const bad = join(dir, 'check-bad.yaml');
    writeFileSync(bad, 'SERVER_HOSTNAME: registry.example.com\nPREFERRED_URL_SCHEME: ftp\n');
    const r = await run(['config', 'check', bad]);
    assert.equal(r.code, 1);
    assert.match(r.err, /PREFERRED_URL_SCHEME/);

    const yaml = join(dir, 'check-yaml.yaml');
    writeFileSync(yaml, 'SERVER_HOSTNAME: [unclosed\n');
    const y = await run(['config', 'check', yaml]);
    assert.equal(y.code, 1);
    assert.match(y.err, /invalid YAML/);

    const missing = await run(['config', 'check', join(dir, 'absent.yaml')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /cannot read/);

    const good = join(dir, 'check-good.yaml');
    writeFileSync(good, 'SERVER_HOSTNAME: registry.example.com\nFEATURE_PROXY_CACHE: true\nSOME_UNKNOWN_KEY: 1\n');
    const g = await run(['config', 'check', good, '--data-dir', join(dir, 'never-created')]);
    assert.equal(g.code, 0, g.err);
    assert.match(g.out, /^OK/);
    assert.match(g.err, /unknown config key SOME_UNKNOWN_KEY/);
  });
});

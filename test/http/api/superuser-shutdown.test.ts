// POST /api/v1/superuser/shutdown against real server processes: a superuser's call answers {}
// and the server then stops as SIGTERM stops it (a request in flight still completes, exit 0);
// anyone else gets Quay's bare 403 and the server keeps running; DEBUGGING: true makes it a no-op;
// before the first account exists anyone may call it, as in Quay.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { loadConfig } from '../../../src/config/config.ts';
import { openServices } from '../../../src/server/app.ts';
import { ALL_OAUTH_SCOPES, createOAuthApplication, createOAuthToken, createOrganization, createUser } from '../../../src/model/accounts.ts';
import { FORBIDDEN_MESSAGE } from '../../../src/http/api/superuser-access.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';
import { startServerProcess, type ServerProcess } from '../../support/server-process.ts';

interface Install { dataDir: string; db: TestDatabase; overrides: Record<string, unknown> }

async function install(): Promise<Install> {
  const dataDir = mkdtempSync(join(tmpdir(), 'quayside-shutdown-'));
  const db = await createTestDatabase(dataDir);
  return { dataDir, db, overrides: { DB_URI: db.uri, SUPER_USERS: ['root'] } };
}

async function remove(i: Install | undefined): Promise<void> {
  if (!i) return;
  await i.db.drop();
  rmSync(i.dataDir, { recursive: true, force: true });
}

let main: Install;
let empty: Install;
const servers: ServerProcess[] = [];
const tokens = { root: '', member: '' };

async function serve(i: Install, extra: Record<string, unknown> = {}): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir: i.dataDir, overrides: { ...i.overrides, ...extra } });
  servers.push(server);
  return server;
}

function shutdown(server: ServerProcess, token?: string): Promise<Response> {
  return fetch(`${server.url}/api/v1/superuser/shutdown`, { method: 'POST', headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function exitCodeWithin(server: ServerProcess, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms); });
  const result = await Promise.race([server.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') throw new Error(`server did not exit within ${ms} ms\n${server.stderr()}`);
  assert.equal(result.signal, null);
  return result.code;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  main = await install();
  empty = await install();
  const config = loadConfig({ dataDir: main.dataDir, port: 0, host: '127.0.0.1', overrides: main.overrides, env: {}, warn: () => {} });
  const { services: s, handle } = await openServices(config, pino({ level: 'silent' }));
  try {
    const root = await createUser(s, { username: 'root', password: 'password123', email: 'root@example.com' });
    const member = await createUser(s, { username: 'member', password: 'password123', email: 'member@example.com' });
    const app = await createOAuthApplication(s, await createOrganization(s, 'acme', root), 'shutdown-test');
    tokens.root = (await createOAuthToken(s, app, root, ALL_OAUTH_SCOPES.join(' '))).token;
    tokens.member = (await createOAuthToken(s, app, member, ALL_OAUTH_SCOPES.join(' '))).token;
  } finally {
    await handle.close();
  }
});

after(async () => {
  for (const s of servers) await s.stop();
  await remove(main);
  await remove(empty);
});

test('with DEBUGGING: true a superuser gets {} and the server keeps running', async () => {
  const server = await serve(main, { DEBUGGING: true });
  const r = await shutdown(server, tokens.root);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {});
  await sleep(500);
  assert.equal(server.alive(), true);
  assert.equal((await fetch(`${server.url}/health/instance`)).status, 200);
  await server.stop();
});

test('non-superusers get 403 and the server keeps running; a superuser gets {} and it drains and exits 0', async () => {
  const server = await serve(main);
  for (const token of [tokens.member, undefined]) {
    const r = await shutdown(server, token);
    assert.equal(r.status, 403);
    assert.deepEqual(await r.json(), { message: FORBIDDEN_MESSAGE });
  }
  await sleep(300);
  assert.equal(server.alive(), true);
  assert.equal((await fetch(`${server.url}/health/instance`)).status, 200);

  // A request whose body is still arriving when the shutdown lands completes before the exit.
  // Over a kept-alive connection: the answer must say `Connection: close`, or the socket would hold
  // the close open until the client drops it.
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
  const body = JSON.stringify({ username: 'inflight', password: 'password123' });
  const u = new URL(`${server.url}/api/v1/user/`);
  let finish!: () => void;
  const inflight = new Promise<{ status: number; text: string; connection?: string }>((resolve, reject) => {
    const req = request({ agent, host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.write(body.slice(0, 10));
    finish = () => req.end(body.slice(10));
  });
  await sleep(100);

  const r = await shutdown(server, tokens.root);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {});
  await sleep(500);
  // Draining: still alive while the request above is open, and no longer taking new requests.
  assert.equal(server.alive(), true);
  const late = await fetch(`${server.url}/health/instance`).then((x) => x.status, () => 'refused');
  assert.notEqual(late, 200);
  finish();
  const res = await inflight;
  assert.equal(res.status, 200, res.text);
  assert.equal(JSON.parse(res.text).username, 'inflight');
  assert.equal(res.connection, 'close');
  // Well inside server-main's 5 s forced exit: the graceful close itself completed.
  assert.equal(await exitCodeWithin(server, 2500), 0);
  const warning = server.stderr().split('\n').filter((l) => l.includes('shutdown requested')).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(warning.length, 1);
  assert.equal(warning[0]!.level, 40);
  assert.equal(warning[0]!.user, 'root');
});

test('before the first account exists an anonymous caller is still refused (unlike Quay\'s config-tool exception)', async () => {
  const server = await serve(empty);
  const r = await shutdown(server);
  assert.equal(r.status, 403);
  await r.text();
  const alive = await fetch(`${server.url}/health/instance`);
  assert.equal(alive.status, 200);
  await alive.text();
});

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export type ServerName = 'quayside' | 'distribution';

export interface RunningServer {
  name: ServerName;
  baseUrl: string;
  pid: number;
  credentials?: { username: string; password: string };
  logPath: string;
  stop(): Promise<void>;
}

const DISTRIBUTION_BIN = process.env.DISTRIBUTION_BIN ?? '/usr/bin/docker-registry';
const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;

const live = new Set<ChildProcess>();

/** Ctrl-C during a run must not leave a registry holding a port. */
export function killAllStarted(): void {
  for (const child of live) child.kill('SIGKILL');
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => res(port));
    });
  });
}

/** Any HTTP answer on /v2/ (200 or 401) means the server is accepting requests. */
function probe(url: string): Promise<number> {
  return new Promise((res) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (r) => {
      r.resume();
      res(r.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(0));
  });
}

function logTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

async function waitReady(child: ChildProcess, baseUrl: string, logPath: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before becoming ready:\n${logTail(logPath)}`);
    }
    const status = await probe(`${baseUrl}/v2/`);
    if (status === 200 || status === 401) return;
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`server not ready after ${READY_TIMEOUT_MS} ms:\n${logTail(logPath)}`);
}

function launch(cmd: string, args: string[], logPath: string, cwd?: string): ChildProcess {
  // Logs go to a file, not a pipe: a pipe we forget to drain would stall the server.
  const fd = openSync(logPath, 'a');
  // The load generator's glibc malloc tuning (package.json) is not the servers': they run as shipped.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MALLOC_')));
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function ownedStop(child: ChildProcess, dir: string): () => Promise<void> {
  return async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
}

export async function startDistribution(): Promise<RunningServer> {
  if (!existsSync(DISTRIBUTION_BIN)) {
    throw new Error(`${DISTRIBUTION_BIN} missing: apt-get install docker-registry (and keep its service stopped)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'bench-distribution-'));
  const port = await freePort();
  const configPath = join(dir, 'config.yml');
  // Access logs off and errors only: the comparison is about serving, not logging.
  await writeFile(
    configPath,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      '  cache:',
      '    blobdescriptor: inmemory',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  const logPath = join(dir, 'server.log');
  const child = launch(DISTRIBUTION_BIN, ['serve', configPath], logPath);
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitReady(child, baseUrl, logPath);
  return { name: 'distribution', baseUrl, pid: child.pid!, logPath, stop: ownedStop(child, dir) };
}

const QUAYSIDE_USER = 'bench';
const QUAYSIDE_PASSWORD = 'bench-password-Quayside-1';

/** Written against the `serve` / `user create` CLI contract (src/cli/main.ts). */
export async function startQuayside(repoRoot: string): Promise<RunningServer> {
  const main = resolve(repoRoot, 'src/cli/main.ts');
  if (!existsSync(main)) throw new Error(`${main} missing: the Quayside CLI is not there yet`);
  const dir = await mkdtemp(join(tmpdir(), 'bench-quayside-'));
  const dataDir = join(dir, 'data');
  await mkdir(dataDir);
  const logPath = join(dir, 'server.log');
  const node = process.execPath;
  // The flags bin/quayside runs the server with.
  const nodeFlags = readFileSync(resolve(repoRoot, 'bin/node-flags'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);

  try {
    await createUser(node, [...nodeFlags, main, 'user', 'create', QUAYSIDE_USER, '--email', 'bench@example.com',
      '--password-stdin', '--superuser', '--data-dir', dataDir], QUAYSIDE_PASSWORD, repoRoot, logPath);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const port = await freePort();
  // e.g. BENCH_QUAYSIDE_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the server.
  const extra = process.env.BENCH_QUAYSIDE_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const child = launch(node, [...nodeFlags, ...extra, main, 'serve', '--port', String(port), '--data-dir', dataDir], logPath, repoRoot);
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitReady(child, baseUrl, logPath);
  } catch (err) {
    await ownedStop(child, dir)();
    throw err;
  }
  return {
    name: 'quayside',
    baseUrl,
    pid: child.pid!,
    credentials: { username: QUAYSIDE_USER, password: QUAYSIDE_PASSWORD },
    logPath,
    stop: ownedStop(child, dir),
  };
}

async function createUser(node: string, args: string[], password: string, cwd: string, logPath: string): Promise<void> {
  const child = spawn(node, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  child.stdin.end(`${password}\n`);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  clearTimeout(timer);
  live.delete(child);
  await writeFile(logPath, `[user create] ${output}\n`, { flag: 'a' });
  if (code !== 0) throw new Error(`quayside user create exited ${code}: ${output.trim().slice(-500)}`);
}

export async function startServer(name: ServerName, repoRoot: string): Promise<RunningServer> {
  return name === 'distribution' ? startDistribution() : startQuayside(repoRoot);
}

// Runs Debian's CNCF Distribution 2.8.2 (`docker-registry`) as a reference registry: the oracle for
// conformance comparisons, the upstream for proxy-cache/mirroring tests and a benchmark baseline.
// Each instance gets a temp config + filesystem storage and listens on 127.0.0.1 only.
import { hashSync } from '@node-rs/bcrypt';
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';

export interface DistributionOptions {
  /** Fixed port; default an ephemeral one. */
  port?: number;
  /** user -> password; enables Basic auth (htpasswd, bcrypt). */
  htpasswd?: Record<string, string>;
  /** Makes this instance a pull-through cache of another registry. */
  proxy?: { remoteurl: string; username?: string; password?: string };
  /** Distribution's log level; 'info' logs every request (useful with `logs()`). */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Reuse an existing storage dir (kept on stop()); default a temp dir removed on stop(). */
  storageDir?: string;
  startTimeoutMs?: number;
}

export interface Distribution {
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** host:port, as clients spell the registry in image references. */
  host: string;
  storageDir: string;
  /** The last ~256 KiB of the registry's stderr. */
  logs(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

// $0 = registry binary, $1 = config. Background jobs get /dev/null as stdin unless redirected,
// hence the fd 3 copy.
const WATCHDOG = [
  'exec 3<&0',
  '"$0" serve "$1" </dev/null 3<&- &',
  'pid=$!',
  '(cat >/dev/null; kill -TERM $pid 2>/dev/null) <&3 &',
  'exec 3<&-',
  'wait $pid',
].join('\n');

const live = new Set<() => void>();
process.once('exit', () => {
  for (const cleanup of live) cleanup();
});

export async function startDistribution(opts: DistributionOptions = {}): Promise<Distribution> {
  if (!existsSync(DISTRIBUTION_BIN)) throw new Error(`${DISTRIBUTION_BIN} missing: run scripts/install-test-deps.sh`);
  const work = await mkdtemp(join(tmpdir(), 'distribution-'));
  const storageDir = opts.storageDir ?? join(work, 'storage');
  // The probe-then-bind race is tolerable: on a clash the child exits and we retry with a new port.
  for (let attempt = 0; ; attempt++) {
    const port = opts.port ?? (await freePort());
    try {
      return await launch(work, storageDir, port, opts);
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !String(err).includes('address already in use')) {
        await rm(work, { recursive: true, force: true });
        throw err;
      }
    }
  }
}

async function launch(work: string, storageDir: string, port: number, opts: DistributionOptions): Promise<Distribution> {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: opts.logLevel ?? 'warn', formatter: 'text', accesslog: { disabled: (opts.logLevel ?? 'warn') !== 'info' && opts.logLevel !== 'debug' } },
    storage: {
      filesystem: { rootdirectory: storageDir },
      delete: { enabled: true },
      cache: { blobdescriptor: 'inmemory' },
      // Background upload purging would race with tests that inspect the storage dir.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: 'quayside-test-secret', headers: { 'X-Content-Type-Options': ['nosniff'] } },
    health: { storagedriver: { enabled: false } },
  };
  if (opts.htpasswd) {
    const file = join(work, 'htpasswd');
    const lines = Object.entries(opts.htpasswd).map(([u, p]) => `${u}:${hashSync(p, 4)}`);
    await writeFile(file, lines.join('\n') + '\n');
    config.auth = { htpasswd: { realm: 'distribution', path: file } };
  }
  if (opts.proxy) config.proxy = opts.proxy;
  const configPath = join(work, `config-${port}.yml`);
  // JSON is valid YAML, and Distribution's yaml.v2 parser accepts it.
  await writeFile(configPath, JSON.stringify(config, null, 2));

  // A watchdog shell owns the registry: it stops it when our end of its stdin closes, which
  // happens on stop() and also when this process dies without cleaning up (SIGKILL, a runner
  // timeout), so no registry outlives its test.
  const child = spawn('/bin/sh', ['-c', WATCHDOG, DISTRIBUTION_BIN, configPath], {
    stdio: ['pipe', 'ignore', 'pipe'],
    detached: true,
  });
  let log = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    log = (log + s).slice(-256 * 1024);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const killAndClean = () => {
    kill();
    rmSync(work, { recursive: true, force: true });
  };
  live.add(killAndClean);
  // A forgotten stop() must not keep the test process alive; its exit then stops the registry.
  child.unref();
  for (const stream of [child.stdin, child.stderr]) (stream as unknown as { unref?: () => void }).unref?.();

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  let ready = false;
  let dead = false;
  exited.then(() => (dead = true));
  while (!ready && !dead && Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      ready = res.status === 200 || res.status === 401;
      await res.body?.cancel();
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  if (!ready) {
    kill();
    live.delete(killAndClean);
    await exited;
    throw new Error(`docker-registry did not start on ${url}:\n${log.slice(-4000)}`);
  }

  return {
    url,
    host: `127.0.0.1:${port}`,
    storageDir,
    logs: () => log,
    async stop() {
      live.delete(killAndClean);
      if (!dead) {
        child.stdin.end();
        const timer = setTimeout(kill, 3000);
        await exited;
        clearTimeout(timer);
      }
      await rm(work, { recursive: true, force: true });
    },
  };
}

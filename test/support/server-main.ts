// Entry point of a Quayside server in its own OS process, for tests that must SIGKILL it or run
// several replicas (see server-process.ts). Reads its settings as JSON from QUAYSIDE_TEST_SERVER,
// prints `LISTENING <url>` on stdout once it accepts connections, and exits when its stdin closes
// (the parent test died) or on SIGTERM (gracefully). Deliberately independent of src/cli.
import pino from 'pino';
import { loadConfig } from '../../src/config/config.ts';
import { buildApp } from '../../src/server/app.ts';

export interface ServerMainOptions {
  dataDir: string;
  /** 0 (default) picks an ephemeral port. */
  port?: number;
  /** Config keys as in config.yaml: DB_URI, DISTRIBUTED_STORAGE_CONFIG, SERVER_HOSTNAME, … */
  overrides?: Record<string, unknown>;
  logLevel?: string;
  /** Run the queue workers (GC and the rest) in this process, as `serve` does (default: false). */
  workers?: boolean;
}

const raw = process.env.QUAYSIDE_TEST_SERVER ?? process.argv[2];
if (!raw) {
  process.stderr.write('server-main: set QUAYSIDE_TEST_SERVER to a JSON ServerMainOptions\n');
  process.exit(2);
}
const opts = JSON.parse(raw) as ServerMainOptions;
const config = loadConfig({
  dataDir: opts.dataDir, port: opts.port ?? 0, host: '127.0.0.1', env: {}, warn: () => {},
  overrides: { QUAYSIDE_WORKERS: opts.workers ?? false, ...(opts.overrides ?? {}) },
});
const app = await buildApp(config, { logger: pino({ level: opts.logLevel ?? 'warn' }, pino.destination(2)), workers: opts.workers ?? false });
const address = await app.listen();

let closing = false;
async function shutdown(code: number): Promise<void> {
  if (closing) return;
  closing = true;
  const force = setTimeout(() => process.exit(code), 5000);
  force.unref();
  try {
    await app.close();
  } finally {
    process.exit(code);
  }
}
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGINT', () => void shutdown(0));
// The parent holds our stdin: EOF means it is gone, and a test server must not outlive its test.
process.stdin.on('end', () => void shutdown(0));
process.stdin.on('error', () => void shutdown(0));
process.stdin.resume();

process.stdout.write(`LISTENING ${address.replace('[::1]', '127.0.0.1')}\n`);

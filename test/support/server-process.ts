// Quayside as a separate OS process (server-main.ts), so a test can SIGKILL it mid-request and
// restart it on the same data dir and database, or run two replicas side by side.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerMainOptions } from './server-main.ts';

export type { ServerMainOptions };

export interface ServerProcess {
  url: string;
  host: string;
  pid: number;
  /** Sends the signal and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Graceful stop (SIGTERM, SIGKILL after 5 s). Safe to call more than once or after kill(). */
  stop(): Promise<void>;
  /** What the process wrote on stderr (last 64 KiB), for failure messages. */
  stderr(): string;
  /** False once the process has exited, for whatever reason. */
  alive(): boolean;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const MAIN = fileURLToPath(new URL('./server-main.ts', import.meta.url));
const STDERR_KEEP = 64 * 1024;

export async function startServerProcess(opts: ServerMainOptions & { startTimeoutMs?: number; env?: Record<string, string> }): Promise<ServerProcess> {
  const { startTimeoutMs = 30_000, env = {}, ...main } = opts;
  const child: ChildProcess = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN], {
    env: { ...process.env, ...env, QUAYSIDE_TEST_SERVER: JSON.stringify(main) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-STDERR_KEEP);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
  });

  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`server did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
      child.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        const m = /^LISTENING (\S+)$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`server exited during start (code ${code}, signal ${signal})`));
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    throw new Error(`${(e as Error).message}\n--- server stderr ---\n${err}`);
  }

  const done = () => child.exitCode !== null || child.signalCode !== null;
  async function kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!done()) child.kill(signal);
    await exited;
  }
  return {
    url, host: new URL(url).host, pid: child.pid!, exited, kill,
    async stop() {
      if (done()) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    },
    stderr: () => err,
    alive: () => !done(),
  };
}

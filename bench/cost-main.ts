// The shared frame of the single-server cost scripts (blob-cost.ts, manifest-cost.ts): parse
// `[quayside|distribution] [N]`, start that server, connect a client, run, stop everything.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegistryClient } from './client.ts';
import { killAllStarted, startServer } from './servers.ts';
import type { RunningServer, ServerName } from './servers.ts';

export function costMain(usage: string, defaultN: number, body: (name: ServerName, n: number, server: RunningServer, client: RegistryClient) => Promise<void>): void {
  const run = async () => {
    const name = (process.argv[2] ?? 'quayside') as ServerName;
    const n = Number(process.argv[3] ?? defaultN);
    if (!['quayside', 'distribution'].includes(name) || !Number.isInteger(n) || n < 1) throw new Error(`usage: ${usage}`);
    const server = await startServer(name, resolve(dirname(fileURLToPath(import.meta.url)), '..'));
    const client = new RegistryClient({ baseUrl: server.baseUrl, username: server.credentials?.username, password: server.credentials?.password });
    try {
      await client.ping();
      await body(name, n, server, client);
    } finally {
      client.close();
      await server.stop();
    }
  };
  run().catch((err: unknown) => {
    killAllStarted();
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exit(1);
  });
}

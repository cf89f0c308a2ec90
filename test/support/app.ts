// Starts a real Quayside on 127.0.0.1:<ephemeral> for a test file, on the database selected by
// QUAYSIDE_TEST_DB (sqlite | postgres). PostgreSQL runs get their own schema, dropped afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type QuaysideConfig } from '../../src/config/config.ts';
import { buildApp, type App } from '../../src/server/app.ts';

export { TEST_DB, PG_URL, createTestDatabase, type TestDatabase } from './database.ts';
import { createTestDatabase } from './database.ts';

export interface TestApp {
  app: App;
  url: string;
  host: string;
  config: QuaysideConfig;
  dataDir: string;
  dbUri: string;
  close(): Promise<void>;
}

export async function startTestApp(overrides: Record<string, unknown> = {}, opts: { dataDir?: string; dbUri?: string; workers?: boolean } = {}): Promise<TestApp> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'quayside-test-'));
  const db = opts.dbUri ? { uri: opts.dbUri, drop: async () => {} } : await createTestDatabase(dataDir);
  let app: App | undefined;
  let address: string;
  try {
    const config = loadConfig({ dataDir, port: 0, host: '127.0.0.1', overrides: { DB_URI: db.uri, ...overrides }, env: {}, warn: () => {} });
    app = await buildApp(config, { logger: pino({ level: process.env.QUAYSIDE_TEST_LOG ?? 'silent' }), workers: opts.workers ?? false });
    address = await app.listen();
  } catch (err) {
    // Nothing half-started may outlive a failed start: an open listener keeps the file running.
    await app?.close().catch(() => {});
    await db.drop().catch(() => {});
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const config = app.services.config;
  const url = address.replace('[::1]', '127.0.0.1');
  return {
    app, url, host: new URL(url).host, config, dataDir, dbUri: db.uri,
    async close() {
      // A close that never finishes would hang the whole test file (hooks have no timeout): fail
      // it loudly instead.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        app.close(),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('app.close() did not finish within 30 s')), 30_000); timer.unref(); }),
      ]).finally(() => clearTimeout(timer));
      await db.drop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

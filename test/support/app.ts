// Starts a real Quayside on 127.0.0.1:<ephemeral> for a test file, on the database selected by
// QUAYSIDE_TEST_DB (sqlite | postgres). PostgreSQL runs get their own schema, dropped afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { loadConfig, type QuaysideConfig } from '../../src/config/config.ts';
import { buildApp, type App } from '../../src/server/app.ts';

export const TEST_DB = (process.env.QUAYSIDE_TEST_DB ?? 'sqlite') as 'sqlite' | 'postgres';
export const PG_URL = process.env.QUAYSIDE_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  uri: string;
  drop(): Promise<void>;
}

/** A fresh database: a temp SQLite file, or a new PostgreSQL schema. */
export async function createTestDatabase(dir: string): Promise<TestDatabase> {
  if (TEST_DB === 'sqlite') return { uri: `sqlite:///${join(dir, 'test.db')}`, drop: async () => {} };
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.end();
  return {
    uri: `${PG_URL}?schema=${schema}`,
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  };
}

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
  const config = loadConfig({ dataDir, port: 0, host: '127.0.0.1', overrides: { DB_URI: db.uri, ...overrides }, env: {}, warn: () => {} });
  const app = await buildApp(config, { logger: pino({ level: process.env.QUAYSIDE_TEST_LOG ?? 'silent' }), workers: opts.workers ?? false });
  const address = await app.listen();
  const url = address.replace('[::1]', '127.0.0.1');
  return {
    app, url, host: new URL(url).host, config, dataDir, dbUri: db.uri,
    async close() {
      await app.close();
      await db.drop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// Model-layer Services on a fresh test database (QUAYSIDE_TEST_DB) and a temp filesystem storage,
// for tests that exercise src/model and src/workers without an HTTP server. connect() opens more
// Services on the same database through separate connections/pools, as other replicas would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from './database.ts';
import { loadConfig } from '../../src/config/config.ts';
import pino from 'pino';
import type { QuaysideConfig } from '../../src/config/config.ts';
import { migrate, openDatabase } from '../../src/db/db.ts';
import type { Services } from '../../src/model/context.ts';
import { SecretBox } from '../../src/model/crypto.ts';
import { FilesystemDriver } from '../../src/storage/fs.ts';

export { TEST_DB, PG_URL } from './database.ts';

export interface TestServices {
  s: Services;
  dir: string;
  storage: FilesystemDriver;
  /** Another Services on the same database and storage, with its own connection (pool). */
  connect(opts?: { poolSize?: number }): Services;
  close(): Promise<void>;
}

/** The real loader's defaults (so new config fields can't be missed), with test overrides. */
export function testConfig(dir: string, dbUri: string, overrides: Partial<QuaysideConfig> = {}): QuaysideConfig {
  const base = loadConfig({
    dataDir: dir, port: 0, host: '127.0.0.1', env: {}, warn: () => {}, persistSecrets: false,
    overrides: { DB_URI: dbUri, DATABASE_SECRET_KEY: 'test-database-secret', SECRET_KEY: 'test-secret', QUAYSIDE_WORKERS: false, QUAYSIDE_LOG_LEVEL: 'silent' },
  });
  return { ...base, ...overrides };
}

export async function createTestServices(overrides: Partial<QuaysideConfig> = {}): Promise<TestServices> {
  const dir = mkdtempSync(join(tmpdir(), 'quayside-model-'));
  const tdb = await createTestDatabase(dir);
  const config = testConfig(dir, tdb.uri, overrides);
  const storage = new FilesystemDriver(join(dir, 'storage'));
  const log = pino({ level: process.env.QUAYSIDE_TEST_LOG ?? 'silent' });
  const box = new SecretBox(config.databaseSecretKey);
  const handles: { close(): Promise<void> }[] = [];

  function connect(opts: { poolSize?: number } = {}): Services {
    const handle = openDatabase(tdb.uri, opts);
    handles.push(handle);
    return { db: handle.db, dialect: handle.dialect, storage, config, log, box, now: () => Date.now() };
  }

  const first = openDatabase(tdb.uri);
  handles.push(first);
  try {
    await migrate(first);
  } catch (e) {
    await first.close();
    await tdb.drop();
    throw e;
  }
  const s: Services = { db: first.db, dialect: first.dialect, storage, config, log, box, now: () => Date.now() };
  return {
    s, dir, storage, connect,
    async close() {
      await Promise.all(handles.map((h) => h.close()));
      await tdb.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

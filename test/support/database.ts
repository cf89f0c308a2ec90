// A fresh database per test app or model test: a temp SQLite file, or a new PostgreSQL schema
// (dropped afterwards), chosen by QUAYSIDE_TEST_DB (sqlite | postgres).
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

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

// Migrations: applied once, recorded in Kysely's bookkeeping table (so databases migrated by earlier
// versions carry on), refused when the database is newer than the code, and safe while other
// schemas of the same PostgreSQL database are created and dropped (parallel test files, replicas).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { migrate, openDatabase } from '../../src/db/db.ts';
import { createTestDatabase, TEST_DB } from '../support/database.ts';

async function withDatabase(fn: (uri: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qs-migrate-'));
  const t = await createTestDatabase(dir);
  try {
    await fn(t.uri);
  } finally {
    await t.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

test('a fresh database gets every migration once; a second run applies nothing', async () => {
  await withDatabase(async (uri) => {
    const h = openDatabase(uri);
    try {
      const first = await migrate(h);
      assert.ok(first.length >= 9, first.join(','));
      assert.deepEqual(first, [...first].sort());
      assert.deepEqual(await migrate(h), []);
      const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(h.db);
      assert.deepEqual(rows.rows.map((r) => r.name), first);
    } finally {
      await h.close();
    }
  });
});

test('a database that records a migration this version does not know is refused, untouched', async () => {
  await withDatabase(async (uri) => {
    const h = openDatabase(uri);
    try {
      await migrate(h);
      await sql`insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(h.db);
      await assert.rejects(migrate(h), /newer Quayside.*9999_from_the_future/);
    } finally {
      await h.close();
    }
  });
});

test('a failed migration leaves no bookkeeping row and no half-applied tables', async () => {
  await withDatabase(async (uri) => {
    const h = openDatabase(uri);
    try {
      // A table the first migration creates already exists: 0001 fails as a whole.
      await sql`create table users (id integer)`.execute(h.db);
      await assert.rejects(migrate(h));
      const rows = await sql<{ name: string }>`select name from kysely_migration`.execute(h.db);
      assert.deepEqual(rows.rows, []);
      await assert.rejects(sql`select 1 from robot_tokens`.execute(h.db)); // created after users in 0001
    } finally {
      await h.close();
    }
  });
});

test('PostgreSQL: schemas migrate while others are being created and dropped', { skip: TEST_DB !== 'postgres' && 'PostgreSQL only' }, async () => {
  // Kysely's Migrator introspected every schema of the database and failed with "schema … does not
  // exist" (or a missing relation) when another schema was dropped meanwhile: 1–11 of 40 here.
  const failures: string[] = [];
  await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    await withDatabase(async (uri) => {
      const h = openDatabase(uri, { poolSize: 2 });
      try {
        await migrate(h);
        await h.db.insertInto('blobs').values({ digest: `sha256:${i}`, size: 1, created_at: 1 }).execute();
      } catch (err) {
        failures.push((err as Error).message);
      } finally {
        await h.close();
      }
    });
  }));
  assert.deepEqual(failures, []);
});

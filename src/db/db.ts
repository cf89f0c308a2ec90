// Opens the database named by DB_URI (sqlite:///path or postgresql://…) as one Kysely instance
// and applies the migrations. Both dialects behave the same to the model layer.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { Migration } from 'kysely/migration';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { Database } from './schema.ts';
import { cachingStatements } from './statement-cache.ts';
import { migration0001 } from './migrations/0001_initial.ts';
import { migration0002 } from './migrations/0002_tag_reversion.ts';
import { migration0003 } from './migrations/0003_sessions.ts';
import { migration0004 } from './migrations/0004_upload_claim.ts';
import { migration0005LogsKind } from './migrations/0005_logs_kind_index.ts';
import { migration0006PullStatistics } from './migrations/0006_pull_statistics.ts';
import { migration0007AccountAccess } from './migrations/0007_account_access.ts';
import { migration0008PolicyIndexes } from './migrations/0008_policy_indexes.ts';
import { migration0009ExternalLoginStates } from './migrations/0009_external_login_states.ts';
import { migration0010RepoAuthorizedEmails } from './migrations/0010_repo_authorized_emails.ts';

export type Dialect = 'sqlite' | 'postgres';
export type DB = Kysely<Database>;

export interface Db {
  db: DB;
  dialect: Dialect;
  /** PostgreSQL schema in use when not the default (the URI's `schema` parameter). */
  schema?: string;
  close(): Promise<void>;
}

// int8 and numeric come back as strings by default; our ids, sizes and times fit in 2^53.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export function openDatabase(uri: string, opts: { poolSize?: number } = {}): Db {
  if (uri.startsWith('sqlite://')) {
    const path = uri.replace(/^sqlite:\/\//, '').replace(/^\/(?=\/)/, '') || ':memory:';
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const native = new SQLite(path);
    native.pragma('journal_mode = WAL');
    native.pragma('synchronous = NORMAL'); // with WAL: durable across process crashes, which is our contract
    native.pragma('foreign_keys = ON');
    native.pragma('busy_timeout = 10000');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(native) }) });
    return { db, dialect: 'sqlite', close: () => db.destroy() };
  }
  const url = new URL(uri.replace(/^postgres(ql)?:/, 'postgres:'));
  // Non-standard `schema` parameter: lets tests (and operators) put Quayside in its own schema.
  const schema = url.searchParams.get('schema');
  url.searchParams.delete('schema');
  const pool = new pg.Pool({
    connectionString: url.toString(),
    max: opts.poolSize ?? 10,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  if (schema && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  return { db, dialect: 'postgres', schema: schema ?? undefined, close: () => db.destroy() };
}

function migrations(dialect: Dialect): Record<string, Migration> {
  return { '0001_initial': migration0001(dialect), '0002_tag_reversion': migration0002(), '0003_sessions': migration0003(dialect), '0004_upload_claim': migration0004(),
    '0005_logs_kind_index': migration0005LogsKind(), '0006_pull_statistics': migration0006PullStatistics(),
    '0007_account_access': migration0007AccountAccess(dialect), '0008_policy_indexes': migration0008PolicyIndexes(),
    '0009_external_login_states': migration0009ExternalLoginStates(dialect), '0010_repo_authorized_emails': migration0010RepoAuthorizedEmails(dialect) };
}

/**
 * Applies the migrations not yet recorded, each in its own transaction with its bookkeeping row.
 * The bookkeeping table keeps Kysely's name and shape (databases migrated by Kysely's Migrator
 * carry on), but Kysely's Migrator is not used: it checks for that table by introspecting every
 * schema of the database, which fails ("schema … does not exist") while another schema is being
 * dropped — replicas or test runs sharing a PostgreSQL database. Everything here names only
 * tables on the connection's search_path.
 */
async function applyMigrations(db: Kysely<any>, all: Record<string, Migration>): Promise<string[]> {
  await sql`create table if not exists kysely_migration (name varchar(255) not null primary key, timestamp varchar(255) not null)`.execute(db);
  const done = new Set((await sql<{ name: string }>`select name from kysely_migration`.execute(db)).rows.map((r) => r.name));
  const names = Object.keys(all).sort();
  const unknown = [...done].filter((n) => !(n in all));
  if (unknown.length > 0) {
    throw new Error(`the database was migrated by a newer Quayside (unknown migrations: ${unknown.join(', ')}); run that version or restore a backup`);
  }
  const applied: string[] = [];
  for (const name of names) {
    if (done.has(name)) continue;
    await db.transaction().execute(async (tx) => {
      await all[name]!.up(tx);
      await sql`insert into kysely_migration (name, timestamp) values (${name}, ${new Date().toISOString()})`.execute(tx);
    });
    applied.push(name);
  }
  return applied;
}

export async function migrate(handle: Db): Promise<string[]> {
  const run = (db: Kysely<Database>) => applyMigrations(db as unknown as Kysely<any>, migrations(handle.dialect));
  if (handle.dialect !== 'postgres') return run(handle.db);
  // Replicas starting together: one migrates, the others wait. The advisory lock is a session
  // lock, so take it, migrate and release it on one reserved connection. One key for the whole
  // database, not per schema: the first migration takes thousands of locks, and a few dozen running
  // at once (test files, each in its own schema) exhaust PostgreSQL's shared lock table.
  return handle.db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(7261001)`.execute(conn);
    try {
      return await run(conn);
    } finally {
      await sql`select pg_advisory_unlock(7261001)`.execute(conn);
    }
  });
}

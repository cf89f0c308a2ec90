// Opens the database named by DB_URI (sqlite:///path or postgresql://…) as one Kysely instance
// and applies the migrations. Both dialects behave the same to the model layer.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
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

function provider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return { '0001_initial': migration0001(dialect), '0002_tag_reversion': migration0002(), '0003_sessions': migration0003(dialect), '0004_upload_claim': migration0004(),
        '0005_logs_kind_index': migration0005LogsKind(), '0006_pull_statistics': migration0006PullStatistics(),
        '0007_account_access': migration0007AccountAccess(dialect), '0008_policy_indexes': migration0008PolicyIndexes(),
        '0009_external_login_states': migration0009ExternalLoginStates(dialect) };
    },
  };
}

export async function migrate(handle: Db): Promise<string[]> {
  const run = async (db: Kysely<Database>) => {
    // Kysely looks for its bookkeeping tables across schemas unless told which one is ours.
    const migrator = new Migrator({ db, provider: provider(handle.dialect), ...(handle.schema ? { migrationTableSchema: handle.schema } : {}) });
    const { error, results } = await migrator.migrateToLatest();
    if (error) throw error;
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  };
  if (handle.dialect !== 'postgres') return run(handle.db);
  // Replicas starting together: one migrates, the others wait. The advisory lock is a session
  // lock, so take it, migrate and release it on one reserved connection.
  return handle.db.connection().execute(async (conn) => {
    await sql`select pg_advisory_lock(7261001)`.execute(conn);
    try {
      return await run(conn);
    } finally {
      await sql`select pg_advisory_unlock(7261001)`.execute(conn);
    }
  });
}

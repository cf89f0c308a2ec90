// better-sqlite3 compiles the SQL on every prepare(), and Kysely prepares each query anew: that
// was the largest single cost of a manifest GET. Statements are reused by SQL text (bounded LRU).
import type SQLite from 'better-sqlite3';

const MAX_STATEMENTS = 500;

/** The database as Kysely's SqliteDialect sees it, with prepared statements reused. */
export function cachingStatements(db: SQLite.Database, max = MAX_STATEMENTS): { prepare(sql: string): SQLite.Statement; close(): void } {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(sql: string): SQLite.Statement {
      const hit = cache.get(sql);
      if (hit) {
        // A statement still being iterated (a streamed query) cannot run again: use a fresh one.
        if (hit.busy) return db.prepare(sql);
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const stmt = db.prepare(sql);
      if (cache.size >= max) cache.delete(cache.keys().next().value!);
      cache.set(sql, stmt);
      return stmt;
    },
    close(): void {
      cache.clear();
      db.close();
    },
  };
}

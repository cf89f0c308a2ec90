// The hot-path query helpers: statements reused by SQL text, queries compiled once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { cachingStatements } from '../../src/db/statement-cache.ts';
import { prepared } from '../../src/db/prepared.ts';
import type { Database } from '../../src/db/schema.ts';

test('statements are reused by SQL text, bounded, and a busy one is not handed out again', () => {
  const native = new SQLite(':memory:');
  const db = cachingStatements(native, 2);
  native.exec('create table t (x integer)');
  native.exec('insert into t values (1), (2), (3)');
  const a = db.prepare('select x from t');
  assert.equal(db.prepare('select x from t'), a);
  const it = a.iterate();
  it.next(); // `a` is now busy
  const fresh = db.prepare('select x from t');
  assert.notEqual(fresh, a);
  assert.deepEqual(fresh.all(), [{ x: 1 }, { x: 2 }, { x: 3 }]);
  it.return?.();
  db.prepare('select 1');
  db.prepare('select 2'); // evicts the least recently used: 'select x from t'
  assert.notEqual(db.prepare('select x from t'), a);
  db.close();
});

test('a prepared query binds each call\'s arguments where the builder put them and keeps literals', async () => {
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: cachingStatements(new SQLite(':memory:')) }) });
  await db.schema.createTable('settings').addColumn('key', 'text').addColumn('value', 'text').execute();
  await db.insertInto('settings').values([{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '1' }]).execute();
  const q = prepared((k, value: string, notKey: string) => k.selectFrom('settings').select('key')
    .where('value', '=', value).where('key', '!=', notKey).where('key', '!=', 'zzz').orderBy('key'));
  assert.deepEqual(await q(db, '1', 'a'), [{ key: 'c' }]);
  assert.deepEqual(await q(db, '1', 'c'), [{ key: 'a' }]);
  assert.deepEqual(await q(db, '2', 'x'), [{ key: 'b' }]);
  const unbound = prepared((k, _unused: string) => k.selectFrom('settings').select('key'));
  await assert.rejects(unbound(db, 'x'), /does not bind every argument/);
  await db.destroy();
});

// Usage-log queries at scale: fills a fresh database with 1,000,000 log rows (batched inserts) and
// times the queries behind the log endpoints — an organization's logs for a day, a repository's
// logs, aggregated counts, following next_page tokens deep into a listing, the superuser listing,
// and the popularity ranking of repository search — printing each timing and the query plan of
// the main ones. Not a test: run it by hand.
//
//   node bench/logs-million.ts [--db sqlite|postgres|both] [--rows 1000000] [--pg postgresql://…]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { sql, type KyselyPlugin, type RootOperationNode, type CompiledQuery } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { migrate, openDatabase, type Db } from '../src/db/db.ts';
import { SecretBox } from '../src/model/crypto.ts';
import type { Services } from '../src/model/context.ts';
import type { QuaysideConfig } from '../src/config/config.ts';
import {
  aggregateLogs, DAY_MS, decodeLogCursor, encodeLogCursor, listLogs, type LogCursor, type LogScope, type LogWindow,
} from '../src/model/log-query.ts';
import { searchRepositories } from '../src/model/search.ts';
import { ANONYMOUS } from '../src/model/context.ts';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'both' },
    rows: { type: 'string', default: '1000000' },
    pg: { type: 'string', default: process.env.QUAYSIDE_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/test' },
  },
});
const ROWS = Number(args.rows);
const ORGS = 50;
const USERS = 500;
const REPOS_PER_ORG = 40;
const DAYS = 90;
const KINDS = ['pull_repo', 'pull_repo', 'pull_repo', 'pull_repo', 'push_repo', 'create_tag', 'delete_tag', 'move_tag', 'change_repo_permission', 'org_add_team_member'];
const NOW = Date.UTC(2025, 5, 30, 12);
const log = (m: string) => process.stdout.write(`${m}\n`);

/** Deterministic pseudo-random numbers, so both databases get the same rows. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

/** Remembers the SQL of the last SELECT on `logs`, to show its plan. */
class Capture implements KyselyPlugin {
  last: CompiledQuery | null = null;
  handle: Db | null = null;
  transformQuery(args: { node: RootOperationNode; queryId: { queryId: string } }): RootOperationNode {
    if (args.node.kind === 'SelectQueryNode' && this.handle) {
      const compiled = this.handle.db.getExecutor().compileQuery(args.node, args.queryId);
      if (/from "(logs|repositories)"/.test(compiled.sql)) this.last = compiled;
    }
    return args.node;
  }
  async transformResult<T>(args: { result: T }): Promise<T> { return args.result; }
}

async function open(kind: 'sqlite' | 'postgres'): Promise<{ handle: Db; cleanup(): Promise<void> }> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'quayside-logbench-'));
    const handle = openDatabase(`sqlite:///${join(dir, 'bench.db')}`);
    await migrate(handle);
    return { handle, async cleanup() { await handle.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const schema = `logbench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: args.pg });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const handle = openDatabase(`${args.pg}?schema=${schema}`);
  await migrate(handle);
  return {
    handle,
    async cleanup() {
      await handle.close();
      const c = new pg.Client({ connectionString: args.pg });
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

async function fill(handle: Db): Promise<{ bigOrg: number; hotRepo: number; someUser: number }> {
  const db = handle.db;
  const users = Array.from({ length: USERS }, (_, i) => ({
    uuid: `u-${i}`, username: `user${i}`, email: `user${i}@example.com`, kind: 'user' as const, created_at: NOW,
  }));
  const orgs = Array.from({ length: ORGS }, (_, i) => ({ uuid: `o-${i}`, username: `org${i}`, email: `org${i}@example.com`, kind: 'org' as const, created_at: NOW }));
  for (let i = 0; i < users.length; i += 250) await db.insertInto('users').values(users.slice(i, i + 250)).execute();
  await db.insertInto('users').values(orgs).execute();
  const userIds = (await db.selectFrom('users').select('id').where('kind', '=', 'user').orderBy('id').execute()).map((r) => Number(r.id));
  const orgIds = (await db.selectFrom('users').select('id').where('kind', '=', 'org').orderBy('id').execute()).map((r) => Number(r.id));
  const repos = orgIds.flatMap((org, o) => Array.from({ length: REPOS_PER_ORG }, (_, i) => ({
    namespace_id: org, name: `repo${o}-${i}`, is_public: 1, description: i % 3 === 0 ? 'a web service' : null, created_at: NOW, last_modified: NOW,
  })));
  for (let i = 0; i < repos.length; i += 250) await db.insertInto('repositories').values(repos.slice(i, i + 250)).execute();
  const repoRows = await db.selectFrom('repositories').select(['id', 'namespace_id']).orderBy('id').execute();
  const reposByOrg = new Map<number, number[]>();
  for (const r of repoRows) reposByOrg.set(Number(r.namespace_id), [...(reposByOrg.get(Number(r.namespace_id)) ?? []), Number(r.id)]);

  const bigOrg = orgIds[0]!;
  const hotRepo = reposByOrg.get(bigOrg)![0]!;
  const rand = rng(42);
  // One large organization holds 20% of all entries (5% in one hot repository); the rest spread evenly.
  const batch = handle.dialect === 'postgres' ? 5000 : 2000;
  const started = performance.now();
  let rows: { kind: string; account_id: number; performer_id: number | null; repository_id: number | null; ip: string; metadata: string; datetime: number }[] = [];
  // One multi-row INSERT per batch (each its own transaction on SQLite: one fsync per batch).
  const flush = async () => {
    if (!rows.length) return;
    const chunk = rows;
    rows = [];
    if (handle.dialect === 'sqlite') await db.transaction().execute((tx) => tx.insertInto('logs').values(chunk).execute());
    else await db.insertInto('logs').values(chunk).execute();
  };
  for (let n = 0; n < ROWS; n++) {
    const r = rand();
    const org = r < 0.2 ? bigOrg : orgIds[1 + Math.floor(rand() * (ORGS - 1))]!;
    const orgRepos = reposByOrg.get(org)!;
    const repo = org === bigOrg && r < 0.05 ? hotRepo : rand() < 0.9 ? orgRepos[Math.floor(rand() * orgRepos.length)]! : null;
    rows.push({
      kind: KINDS[Math.floor(rand() * KINDS.length)]!,
      account_id: org,
      performer_id: rand() < 0.95 ? userIds[Math.floor(rand() * userIds.length)]! : null,
      repository_id: repo,
      ip: `10.${Math.floor(rand() * 255)}.${Math.floor(rand() * 255)}.${Math.floor(rand() * 255)}`,
      metadata: JSON.stringify({ repo: repo === null ? undefined : `r${repo}`, tag: 'latest' }),
      datetime: NOW - Math.floor(rand() * DAYS * DAY_MS),
    });
    if (rows.length === batch) await flush();
    if (n > 0 && n % 200_000 === 0) log(`  … ${n.toLocaleString('en')} rows (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
  await flush();
  const secs = (performance.now() - started) / 1000;
  log(`  inserted ${ROWS.toLocaleString('en')} rows in ${secs.toFixed(1)} s (${Math.round(ROWS / secs).toLocaleString('en')} rows/s, batches of ${batch})`);
  return { bigOrg, hotRepo, someUser: userIds[7]! };
}

async function timeIt<T>(label: string, fn: () => Promise<T>, describe: (r: T) => string, runs = 5): Promise<T> {
  const times: number[] = [];
  let result!: T;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    result = await fn();
    times.push(performance.now() - t);
  }
  const sorted = [...times].sort((a, b) => a - b);
  log(`  ${label.padEnd(58)} first ${times[0]!.toFixed(2).padStart(8)} ms   median ${sorted[Math.floor(runs / 2)]!.toFixed(2).padStart(8)} ms   ${describe(result)}`);
  return result;
}

async function plan(handle: Db, q: CompiledQuery | null): Promise<string> {
  if (!q) return '(no query captured)';
  if (handle.dialect === 'sqlite') {
    const native = await handle.db.executeQuery<{ detail: string }>({ ...q, sql: `EXPLAIN QUERY PLAN ${q.sql}` } as CompiledQuery<{ detail: string }>);
    return native.rows.map((x) => x.detail).join(' | ');
  }
  const res = await handle.db.executeQuery<{ 'QUERY PLAN': string }>({ ...q, sql: `EXPLAIN ${q.sql}` } as CompiledQuery<{ 'QUERY PLAN': string }>);
  return res.rows.map((x) => x['QUERY PLAN'].trim()).join(' | ');
}

async function bench(kind: 'sqlite' | 'postgres'): Promise<void> {
  log(`\n== ${kind}: ${ROWS.toLocaleString('en')} log rows ==`);
  const { handle, cleanup } = await open(kind);
  try {
    const { bigOrg, hotRepo, someUser } = await fill(handle);
    // PostgreSQL's steady state: autovacuum has analyzed the table and set its visibility map
    // (index-only scans depend on it). Run here rather than waited for.
    // SQLite gets no ANALYZE: Quayside never runs one, so the plans shown are what it really gets.
    if (kind === 'postgres') await sql`VACUUM ANALYZE logs`.execute(handle.db);
    const capture = new Capture();
    capture.handle = handle;
    const s: Services = {
      db: handle.db.withPlugin(capture), dialect: handle.dialect, storage: null as unknown as Services['storage'],
      config: { raw: {}, features: { ANONYMOUS_ACCESS: true, SUPER_USERS: true } } as unknown as QuaysideConfig,
      log: pino({ level: 'silent' }), box: new SecretBox('bench-secret'), now: () => NOW,
    };
    const counts = await handle.db.selectFrom('logs').select([
      (eb) => eb.fn.countAll<number>().as('all'),
    ]).executeTakeFirstOrThrow();
    log(`  rows in logs: ${Number(counts.all).toLocaleString('en')}`);

    const day: LogWindow = { start: NOW - 10 * DAY_MS, end: NOW - 9 * DAY_MS };
    const month: LogWindow = { start: NOW - 30 * DAY_MS, end: NOW };
    const org: LogScope = { namespaceId: bigOrg };
    const plans: [string, CompiledQuery | null][] = [];

    const first = await timeIt('org logs, one day, first page', () => listLogs(s, org, day, null), (r) => `${r.logs.length} entries`);
    plans.push(['org logs, one day', capture.last]);
    await timeIt('org logs, one day, next_page (token round trip)', async () => {
      const token = encodeLogCursor(s, first.next!);
      return listLogs(s, org, day, decodeLogCursor(s, token));
    }, (r) => `${r.logs.length} entries`);
    plans.push(['org logs, next_page', capture.last]);
    // Keyset paging: the 100th page costs what the first does.
    let cursor: LogCursor | null = null;
    const walk = performance.now();
    for (let i = 0; i < 99; i++) cursor = (await listLogs(s, org, day, cursor)).next;
    log(`  ${'org logs, one day: walking 99 pages'.padEnd(58)} total ${(performance.now() - walk).toFixed(1).padStart(8)} ms`);
    const deep = cursor;
    await timeIt('org logs, one day, page 100', () => listLogs(s, org, day, deep), (r) => `${r.logs.length} entries`);
    await timeIt('org logs, 30 days, first page, performer filter', () => listLogs(s, { ...org, performerId: someUser }, month, null), (r) => `${r.logs.length} entries`);
    plans.push(['org logs + performer', capture.last]);
    await timeIt('repo logs (hot repository), one day', () => listLogs(s, { repositoryId: hotRepo }, day, null), (r) => `${r.logs.length} entries`);
    plans.push(['repo logs', capture.last]);
    await timeIt('repo logs (hot repository), 30 days', () => listLogs(s, { repositoryId: hotRepo }, month, null), (r) => `${r.logs.length} entries`);
    await timeIt('user logs (quiet namespace, service kinds hidden)', () => listLogs(s, { namespaceId: someUser, excludeKinds: ['service_key_create'] }, month, null), (r) => `${r.logs.length} entries`);
    await timeIt('superuser logs, one day, with namespaces', () => listLogs(s, {}, day, null, { withNamespace: true }), (r) => `${r.logs.length} entries`);
    plans.push(['superuser logs', capture.last]);
    await timeIt('aggregated, big org, one day', () => aggregateLogs(s, org, day), (r) => `${r.length} kind×day rows, ${r.reduce((a, b) => a + b.count, 0)} entries`, 3);
    await timeIt('aggregated, big org, 30 days', () => aggregateLogs(s, org, month), (r) => `${r.length} kind×day rows, ${r.reduce((a, b) => a + b.count, 0)} entries`, 3);
    plans.push(['aggregated org', capture.last]);
    await timeIt('aggregated, hot repository, 30 days', () => aggregateLogs(s, { repositoryId: hotRepo }, month), (r) => `${r.length} kind×day rows, ${r.reduce((a, b) => a + b.count, 0)} entries`, 3);
    await timeIt('aggregated, small org, 30 days', () => aggregateLogs(s, { namespaceId: bigOrg + 7 }, month), (r) => `${r.reduce((a, b) => a + b.count, 0)} entries`, 3);
    await timeIt('repository search, "web", ranked by last week\'s activity', () => searchRepositories(s, ANONYMOUS, 'web', { offset: 0, limit: 11 }), (r) => `${r.length} hits, top popularity ${r[0]?.popularity}`, 3);
    plans.push(['repository search', capture.last]);
    await timeIt('repository search, empty query (all 2,000 repositories)', () => searchRepositories(s, ANONYMOUS, '', { offset: 90, limit: 11 }), (r) => `${r.length} hits`, 3);

    log('  query plans:');
    for (const [label, q] of plans) log(`    ${label}: ${await plan(handle, q)}`);
  } finally {
    await cleanup();
  }
}

const which = args.db === 'both' ? (['sqlite', 'postgres'] as const) : [args.db as 'sqlite' | 'postgres'];
for (const k of which) await bench(k);

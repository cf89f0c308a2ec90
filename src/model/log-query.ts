// Reading usage logs: one namespace's, one repository's or everyone's, in a time window, newest
// first, in pages. Every query is a range scan of one of the logs indexes — (account_id,
// datetime), (repository_id, datetime), (performer_id, datetime) or (datetime) — and pages are
// continued from the last (datetime, id) seen, never by OFFSET, so page 1000 costs what page 1 costs.
import { sql } from 'kysely';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { isGlobalReadonlySuperuser } from './accounts.ts';
import { orgRole, repoRole } from './permissions.ts';
import { findNamespace, findRepo } from './repositories.ts';

export const DAY_MS = 24 * 60 * 60 * 1000;
/** Quay's LOGS_PER_PAGE / lookup_logs limit. */
export const LOGS_PER_PAGE = 20;
/** Quay refuses aggregated counts over more than this (a month and a bit). */
export const MAX_AGGREGATE_RANGE_MS = 32 * DAY_MS;
/** Quay's page tokens expire after two days. */
const PAGE_TOKEN_TTL_MS = 2 * DAY_MS;

/** Kinds hidden from a user's own log listing (Quay's SERVICE_LEVEL_LOG_KINDS). */
export const SERVICE_LEVEL_LOG_KINDS = [
  'service_key_create', 'service_key_approve', 'service_key_delete', 'service_key_modify', 'service_key_extend', 'service_key_rotate',
] as const;

/** [start, end) in epoch ms. */
export interface LogWindow { start: number; end: number }

/** Quay's `%m/%d/%Y` in UTC; null for anything else (Quay then falls back to the default). */
export function parseLogDate(v: string | undefined | null): number | null {
  if (!v) return null;
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(v);
  if (!m) return null;
  const [month, day, year] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(year, month - 1, day);
  const d = new Date(t);
  if (year < 1 || d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) return null;
  return t;
}

/** `MM/DD/YYYY` of a UTC instant (how Quay writes the window into an export job). */
export function formatLogDate(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getUTCMonth() + 1).padStart(2, '0')}/${String(d.getUTCDate()).padStart(2, '0')}/${d.getUTCFullYear()}`;
}

/**
 * Quay's _validate_logs_arguments: start defaults to a day ago, end to now, and the end date is
 * inclusive (a day is added). The window may come out inverted; callers decide what that means.
 */
export function logWindow(now: number, starttime?: string, endtime?: string): LogWindow {
  const start = parseLogDate(starttime) ?? now - DAY_MS;
  const end = (parseLogDate(endtime) ?? now) + DAY_MS;
  return { start, end };
}

/** What to list: a repository's logs, a namespace's logs, or (neither) everyone's. */
export interface LogScope {
  repositoryId?: number;
  namespaceId?: number;
  /** Only entries by this user; null when the named performer does not exist (nothing matches). */
  performerId?: number | null;
  excludeKinds?: readonly string[];
}

export interface LogAccount { id: number; username: string; email: string | null; kind: string }

export interface LogRecord {
  id: number;
  kind: string;
  metadata: Record<string, unknown>;
  ip: string | null;
  datetime: number;
  performer: LogAccount | null;
  /** The namespace the entry belongs to (loaded only when asked for). */
  namespace: LogAccount | null;
}

export interface LogCursor {
  /** datetime and id of the last entry returned. */
  datetime: number;
  id: number;
  /** Number of the page this cursor leads to (the first page is 1). */
  page: number;
}

/** Resolves a performer filter: the user or robot named, or null when there is none. */
export async function performerId(s: Services, username: string): Promise<number | null> {
  const row = await s.db.selectFrom('users').select('id').where('username', '=', username).where('kind', '!=', 'org').executeTakeFirst();
  return row ? Number(row.id) : null;
}

function scoped(s: Services, scope: LogScope, w: LogWindow) {
  let q = s.db.selectFrom('logs').where('logs.datetime', '>=', w.start).where('logs.datetime', '<', w.end);
  // A repository is its own scope (its namespace is implied); Quay filters the same way.
  if (scope.repositoryId !== undefined) q = q.where('logs.repository_id', '=', scope.repositoryId);
  else if (scope.namespaceId !== undefined) q = q.where('logs.account_id', '=', scope.namespaceId);
  if (scope.performerId !== undefined) q = q.where('logs.performer_id', '=', scope.performerId ?? -1);
  if (scope.excludeKinds?.length) q = q.where('logs.kind', 'not in', [...scope.excludeKinds]);
  return q;
}

const LOG_COLUMNS = ['logs.id', 'logs.kind', 'logs.account_id', 'logs.performer_id', 'logs.ip', 'logs.metadata', 'logs.datetime'] as const;

type LogRow = { id: number; kind: string; account_id: number | null; performer_id: number | null; ip: string | null; metadata: string; datetime: number };

async function withAccounts(s: Services, rows: LogRow[], withNamespace: boolean): Promise<LogRecord[]> {
  const ids = new Set<number>();
  for (const r of rows) {
    if (r.performer_id !== null) ids.add(Number(r.performer_id));
    if (withNamespace && r.account_id !== null) ids.add(Number(r.account_id));
  }
  const accounts = new Map<number, LogAccount>();
  if (ids.size) {
    const found = await s.db.selectFrom('users').select(['id', 'username', 'email', 'kind']).where('id', 'in', [...ids]).execute();
    for (const a of found) accounts.set(Number(a.id), { ...a, id: Number(a.id) });
  }
  return rows.map((r) => ({
    id: Number(r.id),
    kind: r.kind,
    metadata: parseMetadata(r.metadata),
    ip: r.ip,
    datetime: Number(r.datetime),
    performer: r.performer_id !== null ? accounts.get(Number(r.performer_id)) ?? null : null,
    namespace: withNamespace && r.account_id !== null ? accounts.get(Number(r.account_id)) ?? null : null,
  }));
}

function parseMetadata(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text || '{}') as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** One page of log entries, newest first, and the cursor of the next page (null when done). */
export async function listLogs(
  s: Services, scope: LogScope, w: LogWindow, cursor: LogCursor | null,
  opts: { pageSize?: number; maxPage?: number | null; withNamespace?: boolean } = {},
): Promise<{ logs: LogRecord[]; next: LogCursor | null }> {
  const size = opts.pageSize ?? LOGS_PER_PAGE;
  let q = scoped(s, scope, w).select([...LOG_COLUMNS]);
  if (cursor) {
    // (datetime, id) < (cursor.datetime, cursor.id), written so the datetime bound is an index range.
    q = q.where('logs.datetime', '<=', cursor.datetime)
      .where((eb) => eb.or([eb('logs.datetime', '<', cursor.datetime), eb('logs.id', '<', cursor.id)]));
  }
  const rows = await q.orderBy('logs.datetime', 'desc').orderBy('logs.id', 'desc').limit(size + 1).execute() as LogRow[];
  const page = cursor?.page ?? 1;
  const more = rows.length > size && (opts.maxPage == null || page < opts.maxPage);
  const kept = rows.slice(0, size);
  const last = kept[kept.length - 1];
  return {
    logs: await withAccounts(s, kept, opts.withNamespace ?? false),
    next: more && last ? { datetime: Number(last.datetime), id: Number(last.id), page: page + 1 } : null,
  };
}

/** Every entry in the window, oldest first, in batches (for exports). */
export async function* iterateLogs(s: Services, scope: LogScope, w: LogWindow, opts: { batchSize?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogRecord[]> {
  const size = opts.batchSize ?? 1000;
  let after: { datetime: number; id: number } | null = null;
  for (;;) {
    opts.signal?.throwIfAborted();
    let q = scoped(s, scope, w).select([...LOG_COLUMNS]);
    if (after) {
      const a = after;
      q = q.where('logs.datetime', '>=', a.datetime).where((eb) => eb.or([eb('logs.datetime', '>', a.datetime), eb('logs.id', '>', a.id)]));
    }
    const rows = await q.orderBy('logs.datetime', 'asc').orderBy('logs.id', 'asc').limit(size).execute() as LogRow[];
    if (rows.length === 0) return;
    yield await withAccounts(s, rows, false);
    if (rows.length < size) return;
    const last = rows[rows.length - 1]!;
    after = { datetime: Number(last.datetime), id: Number(last.id) };
  }
}

export interface AggregatedCount { kind: string; count: number; /** Midnight UTC of the day. */ day: number }

/** Entries per kind per UTC day in the window (Quay refuses windows over a month). */
export async function aggregateLogs(s: Services, scope: LogScope, w: LogWindow): Promise<AggregatedCount[]> {
  if (w.end - w.start > MAX_AGGREGATE_RANGE_MS) throw new DomainError('invalid_request', 'Invalid date range for logs');
  // Integer division on both databases: the day number since the epoch.
  const day = sql<number>`${sql.ref('logs.datetime')} / ${sql.lit(DAY_MS)}`;
  const rows = await scoped(s, scope, w)
    .select([day.as('day'), 'logs.kind', (eb) => eb.fn.countAll<number>().as('count')])
    .groupBy([day, 'logs.kind'])
    .execute();
  return rows
    .map((r) => ({ kind: r.kind, count: Number(r.count), day: Math.floor(Number(r.day)) * DAY_MS }))
    .sort((a, b) => a.day - b.day || a.kind.localeCompare(b.kind));
}

/** The opaque next_page token: the cursor, sealed with the database secret, valid two days. */
export function encodeLogCursor(s: Services, c: LogCursor): string {
  return s.box.encrypt(JSON.stringify({ k: 'logs', d: c.datetime, i: c.id, p: c.page, t: s.now() }));
}

/** The cursor in a token, or null for a bad or expired token (Quay then serves the first page). */
export function decodeLogCursor(s: Services, token: string | undefined): LogCursor | null {
  if (!token) return null;
  try {
    const v = JSON.parse(s.box.decrypt(token)) as { k?: unknown; d?: unknown; i?: unknown; p?: unknown; t?: unknown };
    if (v.k !== 'logs' || !Number.isSafeInteger(v.d) || !Number.isSafeInteger(v.i) || !Number.isSafeInteger(v.p) || typeof v.t !== 'number') return null;
    if (s.now() - v.t > PAGE_TOKEN_TTL_MS) return null;
    return { datetime: v.d as number, id: v.i as number, page: v.p as number };
  } catch {
    return null;
  }
}

// ---- Who may read (or export) which logs.

export type LogTarget =
  | { kind: 'user' }
  | { kind: 'org'; name: string }
  | { kind: 'repo'; namespace: string; name: string }
  | { kind: 'all' };

export interface AuthorizedLogs {
  scope: LogScope;
  namespace: { id: number; username: string } | null;
  repository: { id: number; name: string } | null;
}

/**
 * Quay's checks for the log endpoints: the user themselves; org admins; repository admins;
 * superusers (for orgs and repositories only with FEATURE_SUPERUSERS_FULL_ACCESS); and global
 * read-only superusers when `readOnly` (listing and counting, never exporting). Denials are
 * 'denied' (401/403) before anything is looked up for the caller, so they reveal nothing; a
 * missing org or repository is 'not_found' only for callers who would be allowed to see it.
 */
export async function authorizeLogs(s: Services, p: Principal, target: LogTarget, readOnly: boolean): Promise<AuthorizedLogs> {
  if (p.kind !== 'user') throw new DomainError('denied', 'Unauthorized');
  const superuser = p.superuser && s.config.features.SUPER_USERS;
  const auditor = readOnly && isGlobalReadonlySuperuser(s, { username: p.username, kind: 'user' });
  const fullAccess = superuser && s.config.features.SUPERUSERS_FULL_ACCESS;
  switch (target.kind) {
    case 'user':
      return { scope: { namespaceId: p.userId, excludeKinds: SERVICE_LEVEL_LOG_KINDS }, namespace: { id: p.userId, username: p.username }, repository: null };
    case 'all':
      if (!superuser && !auditor) throw new DomainError('denied', 'Unauthorized');
      return { scope: {}, namespace: null, repository: null };
    case 'org': {
      const org = await findNamespace(s, target.name);
      const isOrg = org !== undefined && org.kind === 'org';
      const admin = isOrg && (await orgRole(s, p, org.id)) === 'admin';
      if (!admin && !fullAccess && !auditor) throw new DomainError('denied', 'Unauthorized');
      if (!isOrg) throw new DomainError('not_found', 'Not Found');
      return { scope: { namespaceId: org.id }, namespace: { id: org.id, username: org.username }, repository: null };
    }
    case 'repo': {
      const repo = await findRepo(s, target.namespace, target.name);
      let admin: boolean;
      if (repo && repo.state !== 'MARKED_FOR_DELETION') admin = (await repoRole(s, p, repo)) === 'admin';
      else {
        // Quay's AdministerRepositoryPermission holds for a namespace's owner and org admins
        // whether or not the repository exists; they alone learn that it does not.
        const ns = await findNamespace(s, target.namespace);
        admin = ns !== undefined && (ns.id === p.userId || (ns.kind === 'org' && (await orgRole(s, p, ns.id)) === 'admin'));
      }
      if (!admin && !fullAccess && !auditor) throw new DomainError('denied', 'Unauthorized');
      if (!repo || repo.state === 'MARKED_FOR_DELETION') throw new DomainError('not_found', 'Not Found');
      return { scope: { repositoryId: repo.id }, namespace: { id: repo.namespace_id, username: repo.namespace }, repository: { id: repo.id, name: repo.name } };
    }
  }
}

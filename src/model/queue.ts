// The background job queue: rows in `jobs`, leased by workers on any replica. A lease is the pair
// (attempts, lease_expires_at) written by claim(): attempts only ever grows on a claim, so a worker
// whose lease expired and was re-claimed elsewhere no longer matches and cannot complete, fail or
// extend the job. Times come from s.now() (epoch ms) so every replica and every test shares one
// notion of "now" with the rest of the model.
import { sql, type Transaction } from 'kysely';
import type { DB } from '../db/db.ts';
import type { Database, JobsTable } from '../db/schema.ts';
import type { Selectable } from 'kysely';
import type { Services } from './context.ts';

/** available_at of a dead job: never claimable, and still a valid int8 and JS safe integer. */
export const DEAD_AT = Number.MAX_SAFE_INTEGER;
export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 60 * 60 * 1000;

export interface Job<P = unknown> {
  id: number;
  queue: string;
  payload: P;
  dedupeKey: string | null;
  /** Claims so far, this one included (1 on the first run). */
  attempts: number;
  maxAttempts: number;
  /** The lease we hold; updated in place by extend(). */
  leaseExpiresAt: number;
  availableAt: number;
  lastError: string | null;
  createdAt: number;
}

export interface EnqueueOptions {
  /** At most one live job per key: enqueueing again while one exists (pending or running) is a no-op. */
  dedupeKey?: string;
  delayMs?: number;
  maxAttempts?: number;
}

type Executor = Transaction<Database> | DB;

/** Inserts a job; returns false when a live job with the same dedupe key already exists. */
export async function enqueue(
  s: Services,
  queue: string,
  payload: unknown,
  opts: EnqueueOptions = {},
  db: Executor = s.db,
): Promise<boolean> {
  const now = s.now();
  const row = await db.insertInto('jobs').values({
    queue,
    payload: JSON.stringify(payload ?? null),
    dedupe_key: opts.dedupeKey ?? null,
    available_at: now + Math.max(0, opts.delayMs ?? 0),
    lease_expires_at: null,
    ...(opts.maxAttempts !== undefined ? { max_attempts: Math.max(1, opts.maxAttempts) } : {}),
    last_error: null,
    created_at: now,
  })
    // No conflict target: the only unique index besides the primary key is the partial jobs_dedupe.
    .onConflict((oc) => oc.doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Leases up to `limit` runnable jobs of the given queue(s), oldest first. Each returned job has
 * attempts incremented and lease_expires_at = now + leaseMs.
 */
export async function claim(
  s: Services,
  queue: string | readonly string[],
  opts: { leaseMs: number; limit: number },
): Promise<Job[]> {
  const queues = typeof queue === 'string' ? [queue] : [...queue];
  if (queues.length === 0 || opts.limit <= 0) return [];
  const now = s.now();
  const lease = now + opts.leaseMs;
  let rows: Selectable<JobsTable>[];
  if (s.dialect === 'postgres') {
    // One statement is one transaction. SKIP LOCKED makes concurrent claimers pass over rows
    // another claimer is taking instead of waiting and then handing out the same row twice; the
    // CTE with a locking clause is always materialized, so the LIMIT is applied exactly once.
    const result = await sql<Selectable<JobsTable>>`
      WITH picked AS (
        SELECT id FROM jobs
        WHERE queue IN (${sql.join(queues)})
          AND available_at <= ${now}
          AND (lease_expires_at IS NULL OR lease_expires_at < ${now})
        ORDER BY available_at, id
        LIMIT ${opts.limit}
        FOR UPDATE SKIP LOCKED
      )
      UPDATE jobs SET attempts = jobs.attempts + 1, lease_expires_at = ${lease}
      FROM picked WHERE jobs.id = picked.id
      RETURNING jobs.*`.execute(s.db);
    rows = result.rows;
  } else {
    // SQLite serializes writers and one statement is atomic, so selecting and leasing in a
    // single UPDATE cannot hand a row to two connections.
    rows = await s.db.updateTable('jobs')
      .set({ attempts: sql`attempts + 1`, lease_expires_at: lease })
      .where('id', 'in', (qb) => qb.selectFrom('jobs').select('id')
        .where('queue', 'in', queues)
        .where('available_at', '<=', now)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', now)]))
        .orderBy('available_at').orderBy('id')
        .limit(opts.limit))
      .returningAll()
      .execute();
  }
  return rows.map(toJob).sort((a, b) => a.availableAt - b.availableAt || a.id - b.id);
}

function toJob(r: Selectable<JobsTable>): Job {
  let payload: unknown;
  try {
    payload = JSON.parse(r.payload);
  } catch {
    // A row written by hand or by a future version: let the handler decide, don't wedge the queue.
    payload = r.payload;
  }
  return {
    id: Number(r.id),
    queue: r.queue,
    payload,
    dedupeKey: r.dedupe_key,
    attempts: Number(r.attempts),
    maxAttempts: Number(r.max_attempts),
    leaseExpiresAt: Number(r.lease_expires_at),
    availableAt: Number(r.available_at),
    lastError: r.last_error,
    createdAt: Number(r.created_at),
  };
}

/** Rows still leased by exactly this claim of the job. */
function held(db: DB, job: Job) {
  return db.updateTable('jobs')
    .where('id', '=', job.id)
    .where('attempts', '=', job.attempts)
    .where('lease_expires_at', '=', job.leaseExpiresAt);
}

/** Deletes a finished job; false when our lease was lost (the job is someone else's now). */
export async function complete(s: Services, job: Job): Promise<boolean> {
  const r = await s.db.deleteFrom('jobs')
    .where('id', '=', job.id)
    .where('attempts', '=', job.attempts)
    .where('lease_expires_at', '=', job.leaseExpiresAt)
    .executeTakeFirst();
  return Number(r.numDeletedRows) === 1;
}

export interface FailResult {
  /** False when our lease was lost and nothing was recorded. */
  recorded: boolean;
  dead: boolean;
  /** When the job becomes claimable again (DEAD_AT when dead). */
  availableAt: number;
}

/**
 * Records a failure and releases the lease: the job is retried after base * 2^attempts ms
 * (capped), or becomes dead once attempts reach max_attempts. A dead job keeps its row (for
 * inspection and retryDead()) with available_at = DEAD_AT; it drops its dedupe key so the same
 * work can be enqueued afresh.
 */
export async function fail(
  s: Services,
  job: Job,
  error: unknown,
  opts: { backoffBaseMs?: number; backoffCapMs?: number } = {},
): Promise<FailResult> {
  const message = errorText(error);
  const dead = job.attempts >= job.maxAttempts;
  const delay = Math.min(opts.backoffCapMs ?? BACKOFF_CAP_MS, (opts.backoffBaseMs ?? BACKOFF_BASE_MS) * 2 ** job.attempts);
  const availableAt = dead ? DEAD_AT : s.now() + delay;
  const r = await held(s.db, job)
    .set({
      last_error: message,
      lease_expires_at: null,
      available_at: availableAt,
      ...(dead ? { dedupe_key: null } : {}),
    })
    .executeTakeFirst();
  return { recorded: Number(r.numUpdatedRows) === 1, dead, availableAt };
}

/**
 * Gives a job back untouched (the process is shutting down): claimable again at once, and the
 * interrupted run does not count against max_attempts.
 */
export async function release(s: Services, job: Job): Promise<boolean> {
  const r = await held(s.db, job)
    .set({ lease_expires_at: null, available_at: s.now(), attempts: sql`attempts - 1` })
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** Heartbeat: pushes our lease to now + leaseMs. False when the lease was lost. */
export async function extend(s: Services, job: Job, leaseMs: number): Promise<boolean> {
  const lease = s.now() + leaseMs;
  const r = await held(s.db, job).set({ lease_expires_at: lease }).executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) return false;
  job.leaseExpiresAt = lease;
  return true;
}

/**
 * Ensures one pending run of a periodic queue exists, due everyMs from now. Every replica calls
 * this at least once per period; the shared dedupe key keeps a single row, so the work runs once
 * per period (between everyMs and 2*everyMs apart) however many replicas there are. The row also
 * survives restarts, so frequent restarts neither skip nor multiply runs.
 */
export function schedule(s: Services, queue: string, everyMs: number, payload: unknown = {}): Promise<boolean> {
  return enqueue(s, queue, payload, { dedupeKey: periodicKey(queue), delayMs: everyMs });
}

export function periodicKey(queue: string): string {
  return `periodic:${queue}`;
}

/** Dead jobs of a queue, newest first. */
export async function deadJobs(s: Services, queue: string, limit = 100): Promise<Job[]> {
  const rows = await s.db.selectFrom('jobs').selectAll()
    .where('queue', '=', queue).where('available_at', '=', DEAD_AT)
    .orderBy('id', 'desc').limit(limit).execute();
  return rows.map(toJob);
}

/** Makes a dead job runnable again with a fresh attempt budget. */
export async function retryDead(s: Services, id: number): Promise<boolean> {
  const r = await s.db.updateTable('jobs')
    .set({ available_at: s.now(), attempts: 0, lease_expires_at: null })
    .where('id', '=', id).where('available_at', '=', DEAD_AT)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
  // Keep rows small: a stack trace is useful, a megabyte of it is not.
  return text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
}

// One lock per blob digest, held across the storage operation and the database rows for it, so
// a blob being published and the collector deleting the same content-addressed object can never
// interleave. PostgreSQL: a session advisory lock on one reserved connection (works across
// replicas). SQLite: an in-process mutex (SQLite deployments are one process by design).
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Services } from './context.ts';

const local = new Map<string, Promise<unknown>>();

async function localLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = local.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chained = prev.then(() => mine);
  local.set(key, chained);
  await prev.catch(() => {});
  try {
    return await fn();
  } finally {
    release();
    if (local.get(key) === chained) local.delete(key);
  }
}

/** 64-bit advisory lock key for a digest (namespaced so it cannot collide with other locks). */
function lockKey(digest: string): bigint {
  const h = createHash('sha256').update(`quayside:blob:${digest}`).digest();
  return h.readBigInt64BE(0);
}

// The lock holds one pooled connection while `fn` needs others: cap concurrent holders well
// below the pool size so lockers can never starve each other of connections.
const MAX_HOLDERS = 4;
let holders = 0;
const waiting: (() => void)[] = [];

async function acquireSlot(): Promise<void> {
  if (holders < MAX_HOLDERS) {
    holders++;
    return;
  }
  await new Promise<void>((r) => waiting.push(r));
}

function releaseSlot(): void {
  const next = waiting.shift();
  if (next) next();
  else holders--;
}

export async function withDigestLock<T>(s: Services, digest: string, fn: () => Promise<T>): Promise<T> {
  if (s.dialect !== 'postgres') return localLock(digest, fn);
  // Within one process, queue per digest first so we hold at most one connection per digest.
  return localLock(digest, async () => {
    await acquireSlot();
    try {
      return await lockedPg(s, digest, fn);
    } finally {
      releaseSlot();
    }
  });
}

async function lockedPg<T>(s: Services, digest: string, fn: () => Promise<T>): Promise<T> {
  return s.db.connection().execute(async (conn) => {
      const key = lockKey(digest).toString();
      await sql`select pg_advisory_lock(${key}::bigint)`.execute(conn);
      try {
        return await fn();
      } finally {
        await sql`select pg_advisory_unlock(${key}::bigint)`.execute(conn);
      }
  });
}

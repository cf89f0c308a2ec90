// The total registry size a superuser asks for: the bytes of every stored blob, counted once however
// many repositories share it (Quay's sum over ImageStorage). Computing it is a queued job; the
// job's row says whether a run is queued or running, and the last result is kept in `settings`.
import { sql } from 'kysely';
import type { Services } from './context.ts';
import { DEAD_AT, enqueue } from './queue.ts';

export const REGISTRY_SIZE_QUEUE = 'registry_size';
/** One live computation at a time, across replicas. */
const DEDUPE_KEY = 'registry_size';
const SETTING = 'registry_size';

export interface RegistrySize {
  sizeBytes: number;
  /** When the last computation finished (epoch ms), or null if none ever did. */
  completedAt: number | null;
  queued: boolean;
  running: boolean;
}

interface StoredSize {
  size_bytes: number;
  completed_ms: number;
}

async function stored(s: Services): Promise<StoredSize | null> {
  const row = await s.db.selectFrom('settings').select('value').where('key', '=', SETTING).executeTakeFirst();
  if (!row) return null;
  try {
    const v = JSON.parse(row.value) as Partial<StoredSize>;
    return typeof v.size_bytes === 'number' && typeof v.completed_ms === 'number' ? { size_bytes: v.size_bytes, completed_ms: v.completed_ms } : null;
  } catch {
    return null;
  }
}

export async function getRegistrySize(s: Services): Promise<RegistrySize> {
  const last = await stored(s);
  const job = await s.db.selectFrom('jobs').select('lease_expires_at')
    .where('dedupe_key', '=', DEDUPE_KEY).where('available_at', '!=', DEAD_AT).executeTakeFirst();
  // A lease that lapsed (its worker died) is waiting to be claimed again: queued, not running.
  const running = job !== undefined && job.lease_expires_at !== null && Number(job.lease_expires_at) > s.now();
  return {
    sizeBytes: last?.size_bytes ?? 0,
    completedAt: last?.completed_ms ?? null,
    queued: job !== undefined && !running,
    running,
  };
}

/** Queues a computation; 'already' when one is queued or running (Quay answers 202 then). */
export async function queueRegistrySize(s: Services): Promise<'queued' | 'already'> {
  return (await enqueue(s, REGISTRY_SIZE_QUEUE, {}, { dedupeKey: DEDUPE_KEY })) ? 'queued' : 'already';
}

/** The job: sums the blob rows and records the result with the time it finished. */
export async function computeRegistrySize(s: Services): Promise<number> {
  const row = await s.db.selectFrom('blobs').select(sql<number | string | null>`sum(size)`.as('total')).executeTakeFirst();
  const total = Number(row?.total ?? 0);
  const value = JSON.stringify({ size_bytes: total, completed_ms: s.now() } satisfies StoredSize);
  await s.db.insertInto('settings').values({ key: SETTING, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
  return total;
}

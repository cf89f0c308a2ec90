// Queue depth for monitoring: read at scrape time, one grouped query over the jobs table.
import { sql } from 'kysely';
import type { Services } from './context.ts';

export interface QueueDepth {
  queue: string;
  /** Every row still in the queue (jobs are deleted when done). */
  total: number;
  /** Ready to run now: due and not leased by a live worker. */
  available: number;
  /** Leased by a worker whose lease has not expired. */
  running: number;
}

export async function queueDepths(s: Services): Promise<QueueDepth[]> {
  const now = s.now();
  const rows = await s.db.selectFrom('jobs')
    .select([
      'queue',
      sql<number>`count(*)`.as('total'),
      sql<number>`sum(case when available_at <= ${now} and (lease_expires_at is null or lease_expires_at <= ${now}) then 1 else 0 end)`.as('available'),
      sql<number>`sum(case when lease_expires_at > ${now} then 1 else 0 end)`.as('running'),
    ])
    .groupBy('queue')
    .orderBy('queue')
    .execute();
  return rows.map((r) => ({ queue: r.queue, total: Number(r.total), available: Number(r.available ?? 0), running: Number(r.running ?? 0) }));
}

// pull_repo entries are written in batches: a manifest GET must not wait on a database write
// (one INSERT per pull would serialize every pull on SQLite). Entries are flushed within a second
// and on shutdown; a crash can lose at most that second of pull history, never a push.
// The same flush feeds the pull counters (src/model/pull-stats.ts).
import type { Principal, Services } from './context.ts';
import { recordPullStatistics, type PullEvent } from './pull-stats.ts';

interface Pending {
  rows: { kind: string; account_id: number; performer_id: number | null; repository_id: number; ip: string | null; metadata: string; datetime: number }[];
  /** The same pulls for the pull counters (FEATURE_IMAGE_PULL_STATS), flushed together. */
  pulls: PullEvent[];
  timer: NodeJS.Timeout | null;
}

const pending = new WeakMap<Services, Pending>();
const FLUSH_MS = 1000;
const MAX_BATCH = 500;

export function logPull(
  s: Services, e: { repo: { id: number; namespace_id: number; name: string; namespace: string }; performer: Principal; ip: string | null; ref: string; digest: string },
): void {
  let p = pending.get(s);
  if (!p) pending.set(s, (p = { rows: [], pulls: [], timer: null }));
  const isTag = !e.ref.includes(':');
  p.rows.push({
    kind: 'pull_repo', account_id: e.repo.namespace_id, performer_id: e.performer.kind === 'anonymous' ? null : e.performer.userId,
    repository_id: e.repo.id, ip: e.ip,
    metadata: JSON.stringify({ repo: e.repo.name, namespace: e.repo.namespace, ...(isTag ? { tag: e.ref } : {}), manifest_digest: e.digest }),
    datetime: s.now(),
  });
  if (s.config.features.IMAGE_PULL_STATS) p.pulls.push({ repoId: e.repo.id, tag: isTag ? e.ref : null, digest: e.digest, at: s.now() });
  if (p.rows.length >= MAX_BATCH) void flushPullLogs(s);
  else if (!p.timer) p.timer = setTimeout(() => void flushPullLogs(s), FLUSH_MS);
}

export async function flushPullLogs(s: Services): Promise<void> {
  const p = pending.get(s);
  if (!p) return;
  if (p.timer) clearTimeout(p.timer);
  p.timer = null;
  const rows = p.rows.splice(0);
  const pulls = p.pulls.splice(0);
  if (rows.length) {
    try {
      await s.db.insertInto('logs').values(rows).execute();
    } catch (err) {
      s.log.error({ err, count: rows.length }, 'writing pull logs failed');
    }
  }
  if (pulls.length) {
    try {
      await recordPullStatistics(s, pulls);
    } catch (err) {
      s.log.error({ err, count: pulls.length }, 'writing pull statistics failed');
    }
  }
}

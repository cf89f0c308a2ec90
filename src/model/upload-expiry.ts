// Expiry of abandoned blob-upload sessions. The row goes first, then the storage: once the row is
// gone no request can reach the session, so deleting its data cannot break an upload in use. A
// crash between the two leaves a session directory without a row; sweepOrphanUploads() finds
// those by listing uploads/ and removes the ones whose newest object is old enough.
import { layout } from '../storage/driver.ts';
import type { Services } from './context.ts';

const BATCH = 500;
const UPLOADS_PREFIX = 'uploads/';

export interface UploadExpiryResult {
  /** Sessions whose row was older than the cutoff. */
  expired: number;
  /** Session data left without a row, removed by the sweep. */
  orphans: number;
  /** Storage deletions that failed (retried by the next sweep). */
  errors: number;
}

export async function expireAbandonedUploads(
  s: Services,
  olderThanMs: number,
  opts: { sweep?: boolean; signal?: AbortSignal } = {},
): Promise<UploadExpiryResult> {
  const cutoff = s.now() - olderThanMs;
  const result: UploadExpiryResult = { expired: 0, orphans: 0, errors: 0 };
  for (;;) {
    opts.signal?.throwIfAborted();
    const candidates = await s.db.selectFrom('uploads').select('uuid')
      .where('updated_at', '<', cutoff).orderBy('updated_at').limit(BATCH).execute();
    if (candidates.length === 0) break;
    // Re-checking the age in the DELETE spares a session that was resumed since the SELECT.
    const deleted = await s.db.deleteFrom('uploads')
      .where('uuid', 'in', candidates.map((c) => c.uuid))
      .where('updated_at', '<', cutoff)
      .returning('uuid')
      .execute();
    for (const { uuid } of deleted) {
      result.expired++;
      if (!(await abort(s, uuid))) result.errors++;
    }
    if (candidates.length < BATCH) break;
  }
  if (opts.sweep !== false) {
    const swept = await sweepOrphanUploads(s, olderThanMs, opts.signal);
    result.orphans = swept.orphans;
    result.errors += swept.errors;
  }
  return result;
}

/**
 * Removes upload sessions in storage that have no `uploads` row and whose newest object is older
 * than olderThanMs. The age guard protects a session being created right now, whose data may
 * land before its row is visible to us.
 */
export async function sweepOrphanUploads(
  s: Services,
  olderThanMs: number,
  signal?: AbortSignal,
): Promise<{ orphans: number; errors: number }> {
  const cutoff = s.now() - olderThanMs;
  // uuid → newest modification among its objects (or Infinity once any object is too young).
  const newest = new Map<string, number>();
  for await (const path of s.storage.list(UPLOADS_PREFIX)) {
    signal?.throwIfAborted();
    const rest = path.slice(UPLOADS_PREFIX.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) continue; // not inside a session
    const uuid = rest.slice(0, slash);
    if ((newest.get(uuid) ?? 0) > cutoff) continue;
    const st = await s.storage.stat(path);
    // Vanished since listing: committed or aborted meanwhile; treat as young and leave it.
    const modified = st.exists ? st.modified.getTime() : Infinity;
    newest.set(uuid, Math.max(newest.get(uuid) ?? 0, modified));
  }
  const old = [...newest].filter(([, t]) => t < cutoff).map(([uuid]) => uuid);
  let orphans = 0;
  let errors = 0;
  for (let i = 0; i < old.length; i += BATCH) {
    signal?.throwIfAborted();
    const batch = old.slice(i, i + BATCH);
    const live = new Set((await s.db.selectFrom('uploads').select('uuid').where('uuid', 'in', batch).execute()).map((r) => r.uuid));
    for (const uuid of batch) {
      if (live.has(uuid)) continue; // the row's own expiry handles it
      if (await abort(s, uuid)) orphans++;
      else errors++;
    }
  }
  return { orphans, errors };
}

async function abort(s: Services, uuid: string): Promise<boolean> {
  try {
    await s.storage.uploadAbort(layout.upload(uuid));
    return true;
  } catch (e) {
    s.log.warn({ err: e, uuid }, 'cannot remove upload session data');
    return false;
  }
}

// Online garbage collection. Runs while clients push and pull, in steps that each commit on their
// own, so a crash at any point leaves a state the next pass completes.
//
// Invariants (each has a test in test/model/gc*.test.ts; crashes and load in test/e2e/gc-*.test.ts):
//  I1 Nothing reachable is collected: a manifest with any tag row (live, expired-but-restorable,
//     or hidden) or a parent index is kept, with its blobs.
//  I2 A blob uploaded but not yet referenced by a manifest is kept until its link expires
//     (PUSH_TEMP_TAG_EXPIRATION_SEC), so a push in progress never loses its layers.
//  I3 References are re-checked under a lock in the same transaction that removes the row: the
//     repository row lock (shared with manifest PUT and tag changes) for per-repository rows, the
//     per-digest lock (shared with upload completion and mounts) for blobs.
//  I4 Objects are deleted from storage only after the database commit that removed their row: an
//     orphan object is possible (swept later), a row without its object never is.
//  I5 A repository marked for deletion loses its tags at once (no time machine), then its
//     manifests by the normal path, then its links, uploads and row; its blobs then go as usual.
import { sql, type ExpressionBuilder } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Services } from './context.ts';
import { lockRepository } from './tags.ts';
import { withDigestLock } from './digest-lock.ts';
import { releaseManifests } from './quota-usage.ts';
import { layout } from '../storage/driver.ts';

export interface GcStats {
  tagsPurged: number;
  manifestsDeleted: number;
  repositoriesDeleted: number;
  linksDeleted: number;
  blobsDeleted: number;
  orphansSwept: number;
}

export interface GcOptions {
  batch?: number;
  signal?: AbortSignal;
  /** Also list storage for objects without a row (costly on large stores; run it less often). */
  sweep?: boolean;
  /** Test hook: called between steps; throwing simulates a crash at that point. */
  checkpoint?: (step: string) => Promise<void> | void;
}

// QUAYSIDE_GC_CRASH_AT=<step>: SIGKILL this process at that named point (crash tests; read once, unset costs a comparison).
const CRASH_AT = process.env.QUAYSIDE_GC_CRASH_AT || null;

/** A named point between two committed steps: the crash-test hook, then the caller's checkpoint. */
async function reached(step: string, checkpoint?: GcOptions['checkpoint']): Promise<void> {
  if (CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
  await checkpoint?.(step);
}

function manifestUnreferenced(eb: ExpressionBuilder<Database, 'manifests'>) {
  return eb.and([
    eb.not(eb.exists(eb.selectFrom('tags').select('tags.id').whereRef('tags.manifest_id', '=', 'manifests.id'))),
    eb.not(eb.exists(eb.selectFrom('manifest_children').select('manifest_children.manifest_id').whereRef('manifest_children.child_id', '=', 'manifests.id'))),
  ]);
}

function linkUnreferenced(now: number) {
  return (eb: ExpressionBuilder<Database, 'repo_blobs'>) => eb.and([
    eb.or([eb('repo_blobs.expires_at', 'is', null), eb('repo_blobs.expires_at', '<=', now)]),
    eb.not(eb.exists(eb.selectFrom('manifest_blobs').select('manifest_blobs.manifest_id')
      .whereRef('manifest_blobs.repository_id', '=', 'repo_blobs.repository_id').whereRef('manifest_blobs.blob_id', '=', 'repo_blobs.blob_id'))),
  ]);
}

function blobUnreferenced(eb: ExpressionBuilder<Database, 'blobs'>) {
  return eb.and([
    eb.not(eb.exists(eb.selectFrom('repo_blobs').select('repo_blobs.blob_id').whereRef('repo_blobs.blob_id', '=', 'blobs.id'))),
    eb.not(eb.exists(eb.selectFrom('manifest_blobs').select('manifest_blobs.blob_id').whereRef('manifest_blobs.blob_id', '=', 'blobs.id'))),
  ]);
}

function groupByRepo<T extends { repository_id: number }>(rows: T[]): Map<number, T[]> {
  const m = new Map<number, T[]>();
  for (const r of rows) {
    const list = m.get(r.repository_id) ?? [];
    list.push(r);
    m.set(r.repository_id, list);
  }
  return m;
}

/** Tag rows past their usefulness: hidden tags once expired; history once past the namespace's
 * time-machine window; hidden referrer tags whose subject manifest is gone. */
export async function purgeTags(s: Services, batch: number, checkpoint?: GcOptions['checkpoint']): Promise<number> {
  const now = s.now();
  const expired = await s.db.selectFrom('tags')
    .innerJoin('repositories', 'repositories.id', 'tags.repository_id').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select('tags.id')
    .where('tags.lifetime_end', 'is not', null)
    .where((eb) => eb.or([
      eb.and([eb('tags.hidden', '=', 1), eb('tags.lifetime_end', '<=', now)]),
      eb.and([eb('tags.hidden', '=', 0), eb(sql<number>`tags.lifetime_end + users.tag_expiration_s * 1000`, '<=', now)]),
    ])).limit(batch).execute();
  const orphanedReferrers = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select('tags.id').where('tags.hidden', '=', 1).where('tags.lifetime_end', 'is', null).where('manifests.subject_digest', 'is not', null)
    // OCI lets a referrer be pushed before its subject: give the subject the push grace window.
    .where('tags.lifetime_start', '<=', now - s.config.pushTempTagExpirationSeconds * 1000)
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('manifests as subj').select('subj.id')
      .whereRef('subj.repository_id', '=', 'manifests.repository_id').whereRef('subj.digest', '=', 'manifests.subject_digest'))))
    .limit(batch).execute();
  const ids = [...expired, ...orphanedReferrers].map((r) => r.id);
  if (!ids.length) return 0;
  // Safe without the repository lock: nothing revives an ended row in place (restore inserts a
  // new lifetime), and a referrer's subject does not come back under the same row.
  const res = await s.db.deleteFrom('tags').where('id', 'in', ids).executeTakeFirst();
  await reached('tags-deleted', checkpoint);
  return Number(res.numDeletedRows);
}

/** Manifests no tag row and no parent index references. */
export async function deleteUnreferencedManifests(s: Services, batch: number, checkpoint?: GcOptions['checkpoint']): Promise<number> {
  const candidates = await s.db.selectFrom('manifests').select(['manifests.id', 'manifests.repository_id'])
    .where(manifestUnreferenced).limit(batch).execute();
  let deleted = 0;
  for (const [repoId, rows] of groupByRepo(candidates)) {
    deleted += await s.db.transaction().execute(async (tx) => {
      await lockRepository(s, tx, repoId);
      // Re-check under the lock: a concurrent push may have tagged one of them again.
      const still = await tx.selectFrom('manifests').select('manifests.id').where('manifests.id', 'in', rows.map((r) => r.id))
        .where(manifestUnreferenced).execute();
      const ids = still.map((r) => r.id);
      if (!ids.length) return 0;
      await releaseManifests(s, tx, repoId, ids); // quota usage, while their blob references still exist
      await tx.deleteFrom('labels').where('manifest_id', 'in', ids).execute();
      await tx.deleteFrom('manifest_blobs').where('manifest_id', 'in', ids).execute();
      await tx.deleteFrom('manifest_children').where('manifest_id', 'in', ids).execute();
      await tx.deleteFrom('manifests').where('id', 'in', ids).execute();
      await reached('manifests-in-tx', checkpoint);
      return ids.length;
    });
    await reached('manifests-deleted', checkpoint);
  }
  return deleted;
}

/** Repository → blob links whose grace window passed and that no manifest of the repository uses. */
export async function deleteExpiredLinks(s: Services, batch: number, checkpoint?: GcOptions['checkpoint']): Promise<number> {
  const candidates = await s.db.selectFrom('repo_blobs').select(['repo_blobs.repository_id', 'repo_blobs.blob_id'])
    .where(linkUnreferenced(s.now())).limit(batch).execute();
  let deleted = 0;
  for (const [repoId, rows] of groupByRepo(candidates)) {
    deleted += await s.db.transaction().execute(async (tx) => {
      await lockRepository(s, tx, repoId);
      const still = await tx.selectFrom('repo_blobs').select('repo_blobs.blob_id').where('repo_blobs.repository_id', '=', repoId)
        .where('repo_blobs.blob_id', 'in', rows.map((r) => r.blob_id)).where(linkUnreferenced(s.now())).execute();
      if (!still.length) return 0;
      const res = await tx.deleteFrom('repo_blobs').where('repository_id', '=', repoId).where('blob_id', 'in', still.map((r) => r.blob_id)).executeTakeFirst();
      return Number(res.numDeletedRows);
    });
    await reached('links-deleted', checkpoint);
  }
  return deleted;
}

const MARKED = 'MARKED_FOR_DELETION';

/** Tags of repositories marked for deletion, all of them: a deleted repository has no time
 * machine, so the manifest step frees its manifests (by the same path, with the same re-checks). */
export async function purgeDeletedRepositoryTags(s: Services, batch: number, checkpoint?: GcOptions['checkpoint']): Promise<number> {
  const rows = await s.db.selectFrom('tags').innerJoin('repositories', 'repositories.id', 'tags.repository_id')
    .select(['tags.id', 'tags.repository_id']).where('repositories.state', '=', MARKED).limit(batch).execute();
  let deleted = 0;
  for (const [repoId, tags] of groupByRepo(rows)) {
    const res = await s.db.deleteFrom('tags').where('repository_id', '=', repoId).where('id', 'in', tags.map((t) => t.id)).executeTakeFirst();
    deleted += Number(res.numDeletedRows);
    await reached('repo-tags-deleted', checkpoint);
  }
  return deleted;
}

function repositoryEmpty(eb: ExpressionBuilder<Database, 'repositories'>) {
  return eb.and([
    eb.not(eb.exists(eb.selectFrom('manifests').select('manifests.id').whereRef('manifests.repository_id', '=', 'repositories.id'))),
    eb.not(eb.exists(eb.selectFrom('tags').select('tags.id').whereRef('tags.repository_id', '=', 'repositories.id'))),
  ]);
}

/** Repositories marked for deletion whose manifests are gone: blob links, upload sessions (rows,
 * then their storage), then the row itself, whose foreign keys take permissions, stars,
 * notifications, policies, mirror and build settings with it. Each part commits on its own. */
export async function deleteMarkedRepositories(s: Services, batch: number, checkpoint?: GcOptions['checkpoint']): Promise<number> {
  const repos = await s.db.selectFrom('repositories').select('repositories.id').where('repositories.state', '=', MARKED)
    .where(repositoryEmpty).limit(batch).execute();
  let deleted = 0;
  for (const { id } of repos) {
    await s.db.deleteFrom('repo_blobs').where('repository_id', '=', id).execute();
    await reached('repo-links-deleted', checkpoint);
    // Rows first: once gone no request reaches the session; a crash before the storage part
    // leaves session data that sweepOrphanUploads removes.
    const uploads = await s.db.deleteFrom('uploads').where('repository_id', '=', id).returning('uuid').execute();
    await reached('repo-uploads-deleted', checkpoint);
    for (const { uuid } of uploads) {
      await s.storage.uploadAbort(layout.upload(uuid)).catch((e) => s.log.warn({ err: e, uuid }, 'cannot remove upload session data'));
    }
    let gone = false;
    try {
      gone = await s.db.transaction().execute(async (tx) => {
        await lockRepository(s, tx, id);
        // A push that resolved the repository before it was marked may have added a tag or a
        // manifest since: leave the row for a later pass, which purges them first.
        const res = await tx.deleteFrom('repositories').where('id', '=', id).where('state', '=', MARKED).where(repositoryEmpty).executeTakeFirst();
        return Number(res.numDeletedRows) === 1;
      });
    } catch (e) {
      // One repository that cannot go (a row that does not cascade) must not stop the collector.
      s.log.error({ err: e, repositoryId: id }, 'cannot delete repository marked for deletion');
    }
    if (!gone) continue;
    deleted++;
    await reached('repo-row-deleted', checkpoint);
  }
  return deleted;
}

/** Blob rows nothing links or references, then their objects (after the commit). */
export async function deleteUnreferencedBlobs(s: Services, batch: number, checkpoint?: GcOptions['checkpoint']): Promise<number> {
  const candidates = await s.db.selectFrom('blobs').select(['blobs.id', 'blobs.digest']).where(blobUnreferenced).limit(batch).execute();
  let deleted = 0;
  for (const c of candidates) {
    await withDigestLock(s, c.digest, async () => {
      const gone = await s.db.transaction().execute(async (tx) => {
        const res = await tx.deleteFrom('blobs').where('blobs.id', '=', c.id).where(blobUnreferenced).executeTakeFirst();
        return Number(res.numDeletedRows) === 1;
      });
      if (!gone) return;
      await reached('blob-row-deleted', checkpoint);
      await s.storage.delete(layout.blob(c.digest));
      if (++deleted === 1) await reached('blob-object-deleted', checkpoint);
    });
  }
  return deleted;
}

const BLOB_PATH = /^blobs\/(sha256)\/[0-9a-f]{2}\/([0-9a-f]{64})$/;

/** Objects under blobs/ with no row, older than the push grace window (an upload that just
 * published its object is about to insert the row). */
export async function sweepOrphanObjects(s: Services, signal?: AbortSignal, checkpoint?: GcOptions['checkpoint']): Promise<number> {
  const grace = s.config.pushTempTagExpirationSeconds * 1000;
  let swept = 0;
  for await (const path of s.storage.list('blobs/')) {
    if (signal?.aborted) break;
    const m = BLOB_PATH.exec(path);
    if (!m) continue;
    const digest = `${m[1]}:${m[2]}`;
    const row = await s.db.selectFrom('blobs').select('id').where('digest', '=', digest).executeTakeFirst();
    if (row) continue;
    await withDigestLock(s, digest, async () => {
      const again = await s.db.selectFrom('blobs').select('id').where('digest', '=', digest).executeTakeFirst();
      if (again) return;
      const st = await s.storage.stat(path);
      if (!st.exists || s.now() - st.modified.getTime() < grace) return;
      await s.storage.delete(path);
      if (++swept === 1) await reached('orphan-swept', checkpoint);
    });
  }
  return swept;
}

/** One full pass. Each step loops in batches until it finds nothing (bounded). */
export async function collectGarbage(s: Services, opts: GcOptions = {}): Promise<GcStats> {
  const batch = opts.batch ?? 500;
  const stats: GcStats = { tagsPurged: 0, manifestsDeleted: 0, repositoriesDeleted: 0, linksDeleted: 0, blobsDeleted: 0, orphansSwept: 0 };
  const loop = async (step: string, fn: () => Promise<number>, key: keyof GcStats) => {
    for (let i = 0; i < 1000; i++) {
      if (opts.signal?.aborted) return;
      const n = await fn();
      stats[key] += n;
      await opts.checkpoint?.(step);
      if (n < 1) return;
    }
  };
  // Deleting an index frees its children, and deleting a subject frees its referrers' tags:
  // repeat tags → manifests until a round changes nothing (bounded).
  for (let round = 0; round < 20; round++) {
    const before = stats.tagsPurged + stats.manifestsDeleted;
    await loop('repo-tags', () => purgeDeletedRepositoryTags(s, batch, opts.checkpoint), 'tagsPurged');
    await loop('tags', () => purgeTags(s, batch, opts.checkpoint), 'tagsPurged');
    await loop('manifests', () => deleteUnreferencedManifests(s, batch, opts.checkpoint), 'manifestsDeleted');
    if (stats.tagsPurged + stats.manifestsDeleted === before) break;
  }
  await loop('repositories', () => deleteMarkedRepositories(s, batch, opts.checkpoint), 'repositoriesDeleted');
  await loop('links', () => deleteExpiredLinks(s, batch, opts.checkpoint), 'linksDeleted');
  await loop('blobs', () => deleteUnreferencedBlobs(s, batch, opts.checkpoint), 'blobsDeleted');
  if (opts.sweep) stats.orphansSwept = await sweepOrphanObjects(s, opts.signal, opts.checkpoint);
  return stats;
}

// Pull statistics (FEATURE_IMAGE_PULL_STATS), as Quay keeps them: a pull by tag counts for the
// tag and for the manifest it served, a pull by digest for the manifest only. Pulls arrive in the
// pull-log batch (src/model/pull-log.ts) and are folded into one upsert per table per flush, so a
// busy tag costs one row update a second, not one per pull.
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { findManifest } from './manifest-details.ts';
import { repoRole, roleAtLeast } from './permissions.ts';
import { accessRepo, isReadonlySuperuser } from './repository-api.ts';
import type { Repo } from './repositories.ts';
import { aliveAt } from './tags.ts';

export interface PullEvent {
  repoId: number;
  /** The tag pulled, or null for a pull by digest. */
  tag: string | null;
  /** The digest served. */
  digest: string;
  at: number;
}

interface Counter { pullCount: number; lastPullAt: number; digest: string }

// Rows per statement: well under SQLite's bound-parameter limit at 5 columns a row.
const CHUNK = 500;

function bump(map: Map<string, Counter & { repoId: number; key: string }>, repoId: number, key: string, e: PullEvent): void {
  const id = `${repoId}\u0000${key}`;
  const c = map.get(id);
  if (!c) {
    map.set(id, { repoId, key, pullCount: 1, lastPullAt: e.at, digest: e.digest });
    return;
  }
  c.pullCount += 1;
  if (e.at >= c.lastPullAt) {
    c.lastPullAt = e.at;
    c.digest = e.digest;
  }
}

/** Adds a batch of pulls to the counters: one upsert per table, rows in key order (so concurrent
 * flushes on PostgreSQL lock rows in the same order). Pulls of repositories deleted since are dropped. */
export async function recordPullStatistics(s: Services, events: readonly PullEvent[]): Promise<void> {
  if (!events.length) return;
  const tags = new Map<string, Counter & { repoId: number; key: string }>();
  const manifests = new Map<string, Counter & { repoId: number; key: string }>();
  for (const e of events) {
    if (e.tag !== null) bump(tags, e.repoId, e.tag, e);
    bump(manifests, e.repoId, e.digest, e);
  }
  const repoIds = [...new Set(events.map((e) => e.repoId))];
  const live = new Set((await s.db.selectFrom('repositories').select('id').where('id', 'in', repoIds).execute()).map((r) => r.id));
  const order = (a: { repoId: number; key: string }, b: { repoId: number; key: string }) => a.repoId - b.repoId || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const tagRows = [...tags.values()].filter((c) => live.has(c.repoId)).sort(order).map((c) => ({
    repository_id: c.repoId, tag_name: c.key, pull_count: c.pullCount, last_pull_at: c.lastPullAt, current_manifest_digest: c.digest,
  }));
  const manifestRows = [...manifests.values()].filter((c) => live.has(c.repoId)).sort(order).map((c) => ({
    repository_id: c.repoId, manifest_digest: c.key, pull_count: c.pullCount, last_pull_at: c.lastPullAt,
  }));
  await s.db.transaction().execute(async (tx) => {
    for (let i = 0; i < tagRows.length; i += CHUNK) {
      await tx.insertInto('tag_pull_statistics').values(tagRows.slice(i, i + CHUNK))
        .onConflict((oc) => oc.columns(['repository_id', 'tag_name']).doUpdateSet((eb) => {
          const newer = eb('excluded.last_pull_at', '>=', eb.ref('tag_pull_statistics.last_pull_at'));
          return {
            pull_count: eb('tag_pull_statistics.pull_count', '+', eb.ref('excluded.pull_count')),
            last_pull_at: eb.case().when(newer).then(eb.ref('excluded.last_pull_at')).else(eb.ref('tag_pull_statistics.last_pull_at')).end(),
            current_manifest_digest: eb.case().when(newer).then(eb.ref('excluded.current_manifest_digest'))
              .else(eb.ref('tag_pull_statistics.current_manifest_digest')).end(),
          };
        }))
        .execute();
    }
    for (let i = 0; i < manifestRows.length; i += CHUNK) {
      await tx.insertInto('manifest_pull_statistics').values(manifestRows.slice(i, i + CHUNK))
        .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest']).doUpdateSet((eb) => ({
          pull_count: eb('manifest_pull_statistics.pull_count', '+', eb.ref('excluded.pull_count')),
          last_pull_at: eb.case().when('excluded.last_pull_at', '>', eb.ref('manifest_pull_statistics.last_pull_at'))
            .then(eb.ref('excluded.last_pull_at')).else(eb.ref('manifest_pull_statistics.last_pull_at')).end(),
        })))
        .execute();
    }
  });
}

/**
 * Quay's require_repo_read_grant: read access granted to the caller (own namespace, organization
 * admin, team or user permission, full-access or read-only superuser). Public visibility alone is
 * not enough: pull counts are private to those the repository is shared with.
 */
async function accessGranted(s: Services, p: Principal, namespace: string, name: string): Promise<Repo> {
  const { repo } = await accessRepo(s, p, namespace, name, 'read');
  if (repo.is_public && !isReadonlySuperuser(s, p) && !roleAtLeast(await repoRole(s, p, { ...repo, is_public: 0 }), 'read')) {
    throw new DomainError('denied', 'Unauthorized');
  }
  return repo;
}

async function manifestCounter(s: Services, repoId: number, digest: string): Promise<{ pull_count: number; last_pull_at: number } | undefined> {
  return s.db.selectFrom('manifest_pull_statistics').select(['pull_count', 'last_pull_at'])
    .where('repository_id', '=', repoId).where('manifest_digest', '=', digest).executeTakeFirst();
}

export interface TagPullStatistics {
  tagName: string;
  tagPullCount: number;
  lastTagPullAt: number | null;
  currentManifestDigest: string;
  manifestPullCount: number;
  lastManifestPullAt: number | null;
}

/** A live tag's counters, with those of the manifest it points at now. Like Quay, a tag never
 * pulled reports zeros for both, even if its manifest was pulled by digest. */
export async function tagPullStatistics(s: Services, p: Principal, namespace: string, name: string, tag: string): Promise<TagPullStatistics> {
  const repo = await accessGranted(s, p, namespace, name);
  const live = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id').select('manifests.digest')
    .where('tags.repository_id', '=', repo.id).where('tags.name', '=', tag).where('tags.hidden', '=', 0).where(aliveAt(s.now()))
    .orderBy('tags.lifetime_start', 'desc').executeTakeFirst();
  if (!live) throw new DomainError('not_found', 'Not Found');
  const t = await s.db.selectFrom('tag_pull_statistics').select(['pull_count', 'last_pull_at', 'current_manifest_digest'])
    .where('repository_id', '=', repo.id).where('tag_name', '=', tag).executeTakeFirst();
  if (!t) {
    return { tagName: tag, tagPullCount: 0, lastTagPullAt: null, currentManifestDigest: live.digest, manifestPullCount: 0, lastManifestPullAt: null };
  }
  const m = await manifestCounter(s, repo.id, live.digest);
  return {
    tagName: tag,
    tagPullCount: t.pull_count,
    lastTagPullAt: t.last_pull_at,
    // The digest the tag's last pull served (Quay keeps it with the tag's counters).
    currentManifestDigest: t.current_manifest_digest,
    manifestPullCount: m?.pull_count ?? 0,
    lastManifestPullAt: m?.last_pull_at ?? null,
  };
}

export interface ManifestPullStatistics { manifestDigest: string; manifestPullCount: number; lastManifestPullAt: number | null }

/** A reachable manifest's counters (by tag and by digest together). */
export async function manifestPullStatistics(s: Services, p: Principal, namespace: string, name: string, ref: string): Promise<ManifestPullStatistics> {
  const repo = await accessGranted(s, p, namespace, name);
  const m = await findManifest(s, repo.id, ref);
  const c = await manifestCounter(s, repo.id, m.digest);
  return { manifestDigest: ref, manifestPullCount: c?.pull_count ?? 0, lastManifestPullAt: c?.last_pull_at ?? null };
}

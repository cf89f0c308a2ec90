// Tags through the API: the full lifetime history (alive and ended), moving and expiring tags,
// and the time machine — restoring a tag to a manifest it pointed at within the namespace's
// window (users.tag_expiration_s), or pushing a tag out of that window for good.
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { LIST_TYPES } from './manifest-format.ts';
import { manifestByDigest } from './manifests.ts';
import { parseDuration, timeMachineWindowMs } from './tag-expiry.ts';
import type { Repo } from './repositories.ts';
import { aliveAt, deleteTag, lockRepository, setTag } from './tags.ts';
import { assertTagMutable, policyProtectedNames } from './immutability.ts';

type Tx = Transaction<Database>;

export interface TagHistoryItem {
  name: string;
  reversion: boolean;
  lifetimeStart: number;
  lifetimeEnd: number | null;
  manifestDigest: string;
  isManifestList: boolean;
  size: number | null;
  immutable: boolean;
}

export interface TagHistoryQuery {
  page: number;
  limit: number;
  specificTag: string | null;
  /** Quay's filter_tag_name: `like:<text>` (substring, any case) or `eq:<name>`. */
  filterTagName: string | null;
  onlyActive: boolean;
}

export const FILTER_SYNTAX_ERROR = "Unsupported syntax for filter_tag_name. Expected <operation>:<tag_name> where <operation>can be 'like' or 'eq'.";

export function parseTagFilter(filter: string | null): { op: 'like' | 'eq'; value: string } | null {
  if (!filter) return null;
  const colon = filter.indexOf(':');
  if (colon < 0) throw new DomainError('invalid_request', FILTER_SYNTAX_ERROR);
  const op = filter.slice(0, colon);
  const value = filter.slice(colon + 1);
  // Quay ignores an operation it does not know rather than failing.
  return op === 'like' || op === 'eq' ? { op, value } : null;
}

/** One page of the repository's tag history, newest lifetimes first (hidden tags never show). */
export async function listTagHistory(s: Services, repoId: number, query: TagHistoryQuery): Promise<{ tags: TagHistoryItem[]; hasAdditional: boolean }> {
  const filter = parseTagFilter(query.filterTagName);
  let q = s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.id', 'tags.name', 'tags.reversion', 'tags.lifetime_start', 'tags.lifetime_end', 'tags.immutable',
      'manifests.digest', 'manifests.media_type', 'manifests.layers_size'])
    .where('tags.repository_id', '=', repoId).where('tags.hidden', '=', 0);
  if (filter?.op === 'eq') q = q.where('tags.name', '=', filter.value);
  if (filter?.op === 'like') {
    const pattern = `%${filter.value.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    q = q.where(sql<boolean>`lower(tags.name) like ${pattern} escape '\\'`);
  }
  if (query.specificTag) q = q.where('tags.name', '=', query.specificTag);
  if (query.onlyActive) q = q.where(aliveAt(s.now()));
  const rows = await q.orderBy('tags.lifetime_start', 'desc').orderBy('tags.name').orderBy('tags.id', 'desc')
    .limit(query.limit + 1).offset(query.limit * (query.page - 1)).execute();
  const guarded = await policyGuardedAlive(s, repoId, rows);
  return {
    tags: rows.slice(0, query.limit).map((r) => ({
      name: r.name, reversion: r.reversion === 1, lifetimeStart: Number(r.lifetime_start), lifetimeEnd: r.lifetime_end === null ? null : Number(r.lifetime_end),
      manifestDigest: r.digest, isManifestList: LIST_TYPES.includes(r.media_type), size: r.layers_size === null ? null : Number(r.layers_size),
      immutable: r.immutable === 1 || guarded.has(r.id),
    })),
    hasAdditional: rows.length > query.limit,
  };
}

/** Ids of the alive rows an immutability policy protects: they list as immutable like flagged tags. */
async function policyGuardedAlive(s: Services, repoId: number, rows: { id: number; name: string; lifetime_end: number | null }[]): Promise<Set<number>> {
  if (!s.config.features.IMMUTABLE_TAGS) return new Set();
  const now = s.now();
  const alive = rows.filter((r) => r.lifetime_end === null || Number(r.lifetime_end) > now);
  const repo = alive.length ? await s.db.selectFrom('repositories').select(['id', 'namespace_id']).where('id', '=', repoId).executeTakeFirst() : undefined;
  if (!repo) return new Set();
  const names = await policyProtectedNames(s, repo, alive.map((r) => r.name));
  return new Set(alive.filter((r) => names.has(r.name)).map((r) => r.id));
}

/** Quay's disallow_for_non_normal_repositories, checked again under the repository lock. */
async function checkNormalState(tx: Tx, repo: Repo): Promise<void> {
  const row = await tx.selectFrom('repositories').select('state').where('id', '=', repo.id).executeTakeFirst();
  assertNormalState({ state: row?.state ?? repo.state });
}

async function lockNormalRepository(s: Services, tx: Tx, repo: Repo): Promise<void> {
  await lockRepository(s, tx, repo.id);
  await checkNormalState(tx, repo);
}

export function assertNormalState(repo: Pick<Repo, 'state'>): void {
  if (repo.state !== 'NORMAL') throw new DomainError('readonly', `Repository is in read only or mirror mode: RepositoryState.${repo.state}`);
}

async function aliveTag(tx: Tx, repoId: number, name: string, now: number) {
  return tx.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.id', 'tags.manifest_id', 'tags.lifetime_start', 'tags.lifetime_end', 'tags.immutable', 'manifests.digest'])
    .where('tags.repository_id', '=', repoId).where('tags.name', '=', name).where('tags.hidden', '=', 0).where(aliveAt(now))
    .executeTakeFirst();
}

/** Python's str(datetime) of a UTC instant, as Quay's change_tag_expiration log entries show it. */
function pyDate(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
}

export interface ChangeTagInput {
  /** Present: point the tag here (the manifest must be reachable in the repository). */
  manifestDigest?: string | null;
  /** Present: expire at this unix time (seconds), or never when null. Already checked to be in the future. */
  expiration?: number | null;
  /** Present (FEATURE_IMMUTABLE_TAGS): make the tag immutable or mutable again (admins only). */
  immutable?: boolean;
}

/** Quay's changeTag (PUT): expiration first, then the move, then immutability — in one transaction. */
export async function changeTag(
  s: Services, repo: Repo, tag: string, input: ChangeTagInput, who: { performer: Principal; ip: string | null; canAdmin: boolean },
): Promise<void> {
  const username = who.performer.kind === 'anonymous' ? null : who.performer.username;
  const target = input.manifestDigest !== undefined
    ? (input.manifestDigest ? await manifestByDigest(s, repo.id, input.manifestDigest) : null)
    : undefined;
  if (target === null) throw new DomainError('not_found', 'Not Found');
  await s.db.transaction().execute(async (tx) => {
    await lockNormalRepository(s, tx, repo);
    const now = s.now();
    if (input.expiration !== undefined) {
      const current = await aliveTag(tx, repo.id, tag, now);
      if (!current) throw new DomainError('not_found', 'Not Found');
      await assertTagMutable(s, tx, repo, { name: tag, immutable: current.immutable }, 'change expiration of');
      let end: number | null = null;
      if (input.expiration !== null) {
        // Quay clamps the lifetime between LABELED_EXPIRATION_MINIMUM and _MAXIMUM.
        const min = durationSetting(s, 'LABELED_EXPIRATION_MINIMUM', 3600);
        const max = durationSetting(s, 'LABELED_EXPIRATION_MAXIMUM', 104 * 604800);
        const startS = Math.floor(Number(current.lifetime_start) / 1000);
        const offset = Math.min(Math.max(Math.floor(input.expiration) - startS, min), max);
        end = Number(current.lifetime_start) + offset * 1000;
      }
      const old = current.lifetime_end === null ? null : Number(current.lifetime_end);
      if (end !== old) {
        await tx.updateTable('tags').set({ lifetime_end: end }).where('id', '=', current.id).execute();
        await logAction(s, 'change_tag_expiration', {
          namespaceId: repo.namespace_id, repositoryId: repo.id, performer: who.performer, ip: who.ip,
          metadata: { username, repo: repo.name, tag, namespace: repo.namespace, expiration_date: end === null ? null : pyDate(end), old_expiration_date: old },
        }, tx);
      }
    }
    if (target) {
      // The collector removes manifests under the same repository lock: re-check now that we hold it.
      const still = await tx.selectFrom('manifests').select('id').where('id', '=', target.id).executeTakeFirst();
      if (!still) throw new DomainError('not_found', 'Not Found');
      await setTag(s, tx, repo, tag, { id: target.id, digest: target.digest }, who.performer, who.ip, { logMetadata: { username } });
    }
    if (input.immutable !== undefined && s.config.features.IMMUTABLE_TAGS) {
      const current = await aliveTag(tx, repo.id, tag, s.now());
      if (!current) throw new DomainError('not_found', 'Not Found');
      if ((current.immutable === 1) !== input.immutable) {
        if (!input.immutable && !who.canAdmin) throw new DomainError('denied', 'Unauthorized');
        await tx.updateTable('tags').set({ immutable: input.immutable ? 1 : 0 }).where('id', '=', current.id).execute();
        await logAction(s, 'change_tag_immutability', {
          namespaceId: repo.namespace_id, repositoryId: repo.id, performer: who.performer, ip: who.ip,
          metadata: { username, repo: repo.name, tag, namespace: repo.namespace, immutable: input.immutable },
        }, tx);
      }
    }
  });
}

function durationSetting(s: Services, key: string, dflt: number): number {
  const v = s.config.raw[key];
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return parseDuration(v) ?? dflt;
  return dflt;
}

/**
 * Quay's restoreTag: points the tag (back) at a manifest of this repository that some tag still
 * references, or referenced within the time-machine window — past it, garbage collection may
 * already be reclaiming the manifest. The new lifetime is marked as a reversion.
 */
export async function restoreTag(s: Services, repo: Repo, tag: string, digest: string, performer: Principal, ip: string | null): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await lockNormalRepository(s, tx, repo);
    const now = s.now();
    const since = now - (await timeMachineWindowMs(tx, repo.namespace_id));
    const manifest = await tx.selectFrom('manifests').select(['manifests.id', 'manifests.digest'])
      .where('manifests.repository_id', '=', repo.id).where('manifests.digest', '=', digest)
      .where((eb) => eb.or([
        eb.exists(eb.selectFrom('tags').select('tags.id').whereRef('tags.manifest_id', '=', 'manifests.id')
          .where((e2) => e2.or([e2('tags.lifetime_end', 'is', null), e2('tags.lifetime_end', '>', since)]))),
        eb.exists(eb.selectFrom('manifest_children').innerJoin('tags', 'tags.manifest_id', 'manifest_children.manifest_id').select('tags.id')
          .whereRef('manifest_children.child_id', '=', 'manifests.id')
          .where((e2) => e2.or([e2('tags.lifetime_end', 'is', null), e2('tags.lifetime_end', '>', since)]))),
      ])).executeTakeFirst();
    if (!manifest) throw new DomainError('not_found', 'Not Found');
    await setTag(s, tx, repo, tag, manifest, performer, ip, { reversion: true, logMetadata: null });
    await logAction(s, 'revert_tag', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip,
      metadata: { username: performer.kind === 'anonymous' ? null : performer.username, repo: repo.name, tag, manifest_digest: digest },
    }, tx);
  });
}

export interface ExpireInput {
  isAlive: boolean;
  manifestDigest: string | null;
  /** Also end the temporary (hidden) tags keeping the manifest's children, so GC can take them with it. */
  includeSubmanifests?: boolean;
}

/**
 * Quay's removeTagFromTimemachine: moves the end of the alive tag (is_alive) or of the ended
 * lifetimes of `tag` on the manifest just past the time-machine window, so they can no longer be
 * restored and garbage collection may reclaim them. Returns false when nothing matched.
 */
export async function expireFromTimeMachine(s: Services, repo: Repo, tag: string, input: ExpireInput, performer: Principal, ip: string | null): Promise<boolean> {
  return s.db.transaction().execute(async (tx) => {
    await lockRepository(s, tx, repo.id);
    const now = s.now();
    const windowMs = await timeMachineWindowMs(tx, repo.namespace_id);
    const end = now - windowMs - 1;
    let digest: string;
    let manifestId: number;
    let ids: number[];
    if (input.isAlive) {
      const current = await aliveTag(tx, repo.id, tag, now);
      if (!current) throw new DomainError('not_found', 'Not Found');
      await assertTagMutable(s, tx, repo, { name: tag, immutable: current.immutable }, 'delete');
      digest = current.digest;
      manifestId = current.manifest_id;
      ids = [current.id];
    } else {
      const m = await tx.selectFrom('manifests').select(['id', 'digest']).where('repository_id', '=', repo.id).where('digest', '=', input.manifestDigest!).executeTakeFirst();
      if (!m) throw new DomainError('not_found', 'Not Found');
      digest = m.digest;
      manifestId = m.id;
      // Without a window nothing ended is still in the time machine (Quay finds nothing to move).
      ids = windowMs === 0 ? [] : (await tx.selectFrom('tags').select('id').where('repository_id', '=', repo.id).where('name', '=', tag).where('manifest_id', '=', m.id)
        .where('hidden', '=', 0).where('lifetime_end', 'is not', null).where('lifetime_end', '<=', now).where('lifetime_end', '>', end).execute()).map((r) => r.id);
    }
    if (!ids.length) return false;
    await tx.updateTable('tags').set({ lifetime_end: end }).where('id', 'in', ids).execute();
    // Quay's reset_child_manifest_expiration (unless RESET_CHILD_MANIFEST_EXPIRATION is false).
    if (input.includeSubmanifests && s.config.raw.RESET_CHILD_MANIFEST_EXPIRATION !== false) {
      await tx.updateTable('tags').set({ lifetime_end: end })
        .where('repository_id', '=', repo.id).where('hidden', '=', 1).where('lifetime_end', '>', end)
        .where('manifest_id', 'in', (qb) => qb.selectFrom('manifest_children').select('child_id').where('manifest_id', '=', manifestId))
        .execute();
    }
    await logAction(s, 'permanently_delete_tag', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip,
      metadata: { username: performer.kind === 'anonymous' ? null : performer.username, repo: repo.name, namespace: repo.namespace, tag, manifest_digest: digest },
    }, tx);
    return true;
  });
}

/** Ends the tag's lifetime through the API (Quay's deleteFullTag), refusing non-normal repositories. */
export async function deleteTagViaApi(s: Services, repo: Repo, tag: string, performer: Principal, ip: string | null): Promise<void> {
  try {
    await deleteTag(s, repo, tag, performer, ip, {
      guard: (tx) => checkNormalState(tx, repo),
      logMetadata: { username: performer.kind === 'anonymous' ? null : performer.username },
    });
  } catch (e) {
    if (e instanceof DomainError && e.code === 'manifest_unknown') throw new DomainError('not_found', 'Not Found');
    throw e;
  }
}

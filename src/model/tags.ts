// Tags with lifetimes: a tag row is one lifetime of a name pointing at a manifest. Alive means
// lifetime_end is null or in the future; ended rows are the history the time machine restores.
import { randomBytes } from 'node:crypto';
import { sql, type ExpressionBuilder, type Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { assertTagMutable } from './immutability.ts';
import { labelExpirySeconds } from './tag-expiry.ts';

type Tx = Transaction<Database>;

/** SQL condition: the tag row is alive at `now`. */
export function aliveAt(now: number) {
  return (eb: ExpressionBuilder<Database, 'tags'>) => eb.or([eb('tags.lifetime_end', 'is', null), eb('tags.lifetime_end', '>', now)]);
}

/** Serializes tag changes of one repository across connections and replicas. SQLite already
 * serializes write transactions; PostgreSQL takes the repository row lock. */
export async function lockRepository(s: Services, tx: Tx, repoId: number): Promise<void> {
  if (s.dialect === 'postgres') await sql`select id from repositories where id = ${repoId} for update`.execute(tx);
}

export type TagChange = 'created' | 'moved' | 'unchanged';

export interface SetTagOptions {
  /** A time-machine restore: the new lifetime is marked as a reversion (Quay's Tag.reversion). */
  reversion?: boolean;
  /** Extra create_tag/move_tag metadata, or null when the caller logs the change itself. */
  logMetadata?: Record<string, unknown> | null;
}

/** Points `name` at the manifest, ending the previous lifetime; the new lifetime expires as the
 * manifest's quay.expires-after label says. Call inside a transaction that holds lockRepository. */
export async function setTag(
  s: Services, tx: Tx, repo: { id: number; namespace_id: number; name: string; namespace: string }, name: string, manifest: { id: number; digest: string },
  performer: Principal, ip: string | null, opts: SetTagOptions = {},
): Promise<TagChange> {
  const now = s.now();
  const current = await tx.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.id', 'tags.manifest_id', 'tags.immutable', 'manifests.digest'])
    .where('tags.repository_id', '=', repo.id).where('tags.name', '=', name).where('tags.hidden', '=', 0).where(aliveAt(now))
    .executeTakeFirst();
  if (current && current.manifest_id === manifest.id) return 'unchanged';
  if (current) await assertTagMutable(s, tx, repo, { name, immutable: current.immutable }, 'overwrite');
  if (current) await tx.updateTable('tags').set({ lifetime_end: now }).where('id', '=', current.id).execute();
  const expiresAfter = await labelExpirySeconds(tx, manifest.id);
  await tx.insertInto('tags').values({
    repository_id: repo.id, name, manifest_id: manifest.id, lifetime_start: now, lifetime_end: expiresAfter === null ? null : now + expiresAfter * 1000,
    hidden: 0, immutable: 0, reversion: opts.reversion ? 1 : 0,
  }).execute();
  if (opts.logMetadata !== null) {
    const meta = {
      ...(opts.logMetadata ?? {}), repo: repo.name, namespace: repo.namespace, tag: name, manifest_digest: manifest.digest,
      ...(current ? { original_manifest_digest: current.digest } : {}),
    };
    await logAction(s, current ? 'move_tag' : 'create_tag', { namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip, metadata: meta }, tx);
  }
  return current ? 'moved' : 'created';
}

/** Keeps a manifest pushed by digest alive: a hidden tag, expiring after the push grace period
 * unless `forever` (referrers, which live as long as their subject). */
export async function ensureHiddenTag(s: Services, tx: Tx, repoId: number, manifestId: number, forever: boolean): Promise<void> {
  const now = s.now();
  const end = forever ? null : now + s.config.pushTempTagExpirationSeconds * 1000;
  const existing = await tx.selectFrom('tags').select(['id', 'lifetime_end']).where('repository_id', '=', repoId)
    .where('manifest_id', '=', manifestId).where('hidden', '=', 1).where(aliveAt(now)).executeTakeFirst();
  if (existing) {
    if (existing.lifetime_end !== null && (end === null || end > existing.lifetime_end)) {
      await tx.updateTable('tags').set({ lifetime_end: end }).where('id', '=', existing.id).execute();
    }
    return;
  }
  await tx.insertInto('tags').values({
    repository_id: repoId, name: `$hidden-${randomBytes(8).toString('hex')}`, manifest_id: manifestId,
    lifetime_start: now, lifetime_end: end, hidden: 1, immutable: 0,
  }).execute();
}

export async function findLiveTag(s: Services, repoId: number, name: string): Promise<{ id: number; manifest_id: number } | undefined> {
  return s.db.selectFrom('tags').select(['id', 'manifest_id']).where('repository_id', '=', repoId).where('name', '=', name)
    .where('hidden', '=', 0).where(aliveAt(s.now())).executeTakeFirst();
}

export interface DeleteTagOptions {
  /** Runs under the repository lock before anything changes (e.g. the API's repository-state check). */
  guard?: (tx: Tx) => Promise<void>;
  /** Extra delete_tag metadata. */
  logMetadata?: Record<string, unknown>;
}

/** Ends the tag's lifetime (it stays in history for the time machine). */
export async function deleteTag(
  s: Services, repo: { id: number; namespace_id: number; name: string; namespace: string }, name: string, performer: Principal, ip: string | null,
  opts: DeleteTagOptions = {},
): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await lockRepository(s, tx, repo.id);
    if (opts.guard) await opts.guard(tx);
    const now = s.now();
    const tag = await tx.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
      .select(['tags.id', 'tags.immutable', 'manifests.digest']).where('tags.repository_id', '=', repo.id).where('tags.name', '=', name)
      .where('tags.hidden', '=', 0).where(aliveAt(now)).executeTakeFirst();
    if (!tag) throw new DomainError('manifest_unknown', `tag ${name} not found`, { tag: name });
    await assertTagMutable(s, tx, repo, { name, immutable: tag.immutable }, 'delete');
    await tx.updateTable('tags').set({ lifetime_end: now }).where('id', '=', tag.id).execute();
    await logAction(s, 'delete_tag', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip,
      metadata: { ...(opts.logMetadata ?? {}), repo: repo.name, namespace: repo.namespace, tag: name, manifest_digest: tag.digest },
    }, tx);
  });
}

/** Live, visible tag names in lexical order, for /v2/<name>/tags/list paging. */
export async function listTagNames(s: Services, repoId: number, limit: number, after: string | null): Promise<string[]> {
  // Byte order on both databases (PostgreSQL's default collation would ignore '-' and '.').
  const name = s.dialect === 'postgres' ? sql<string>`name collate "C"` : sql<string>`name`;
  let q = s.db.selectFrom('tags').select('name').where('repository_id', '=', repoId).where('hidden', '=', 0).where(aliveAt(s.now()));
  if (after !== null) q = q.where(name, '>', after);
  const rows = await q.orderBy(name).limit(limit).execute();
  return rows.map((r) => r.name);
}

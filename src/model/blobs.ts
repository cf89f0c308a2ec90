// Content-addressed blobs: stored once, linked to every repository that pushed or mounted them.
import type { Readable } from 'node:stream';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { layout, PathNotFoundError } from '../storage/driver.ts';
import { repoRole, roleAtLeast } from './permissions.ts';
import { withDigestLock } from './digest-lock.ts';
import { lockRepository } from './tags.ts';

export type BlobStat = { exists: false } | { exists: true; id: number; digest: string; size: number };

/** Inserts the blob row (once per digest) and links it to the repository. A new link is protected
 * from GC until a manifest references it or PUSH_TEMP_TAG_EXPIRATION_SEC passes. */
export async function recordBlob(s: Services, tx: Transaction<Database>, repoId: number, digest: string, size: number): Promise<number> {
  const now = s.now();
  await tx.insertInto('blobs').values({ digest, size, created_at: now }).onConflict((oc) => oc.column('digest').doNothing()).execute();
  const blob = await tx.selectFrom('blobs').select(['id', 'size']).where('digest', '=', digest).executeTakeFirstOrThrow();
  const expires = now + s.config.pushTempTagExpirationSeconds * 1000;
  await tx.insertInto('repo_blobs').values({ repository_id: repoId, blob_id: blob.id, created_at: now, expires_at: expires })
    .onConflict((oc) => oc.columns(['repository_id', 'blob_id']).doUpdateSet({ expires_at: expires })).execute();
  return blob.id;
}

export async function statBlob(s: Services, repoId: number, digest: string): Promise<BlobStat> {
  const row = await s.db.selectFrom('blobs').innerJoin('repo_blobs', 'repo_blobs.blob_id', 'blobs.id')
    .select(['blobs.id', 'blobs.digest', 'blobs.size'])
    .where('repo_blobs.repository_id', '=', repoId).where('blobs.digest', '=', digest).executeTakeFirst();
  return row ? { exists: true, ...row } : { exists: false };
}

export interface BlobRange {
  start: number;
  end: number; // inclusive
}

/** Opens the blob's bytes (optionally a range). A row whose object is gone reads as unknown. */
export async function openBlob(s: Services, digest: string, range?: BlobRange, signal?: AbortSignal): Promise<Readable> {
  try {
    return await s.storage.read(layout.blob(digest), range ? { offset: range.start, length: range.end - range.start + 1, signal } : { signal });
  } catch (e) {
    if (e instanceof PathNotFoundError) throw new DomainError('blob_unknown', 'blob unknown to registry', { digest });
    throw e;
  }
}

export async function blobRedirectURL(s: Services, digest: string): Promise<string | null> {
  return s.storage.redirectURL(layout.blob(digest), 600);
}

/** Cross-repository mount: links a blob the principal can read elsewhere. `from` names the source
 * repository; without it any repository the principal can read that holds the blob will do. */
export async function mountBlob(
  s: Services, principal: Principal, targetRepoId: number, digest: string, from: { id: number; namespace_id: number; is_public: number; namespace_kind: string } | null,
): Promise<{ mounted: false } | { mounted: true; size: number }> {
  let candidates: { id: number; namespace_id: number; is_public: number; namespace_kind: string }[];
  const base = s.db.selectFrom('repo_blobs').innerJoin('blobs', 'blobs.id', 'repo_blobs.blob_id')
    .innerJoin('repositories', 'repositories.id', 'repo_blobs.repository_id').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select(['repositories.id', 'repositories.namespace_id', 'repositories.is_public', 'users.kind as namespace_kind'])
    .where('blobs.digest', '=', digest);
  if (from) candidates = await base.where('repositories.id', '=', from.id).execute();
  else candidates = await base.limit(25).execute();
  for (const c of candidates) {
    if (c.id === targetRepoId || roleAtLeast(await repoRole(s, principal, c), 'read')) {
      // Same lock as the collector: the row and object we link cannot vanish under us.
      const size = await withDigestLock(s, digest, async () => {
        const blob = await s.db.selectFrom('blobs').select(['size']).where('digest', '=', digest).executeTakeFirst();
        if (!blob || !(await s.storage.stat(layout.blob(digest))).exists) return null;
        await s.db.transaction().execute((tx) => recordBlob(s, tx, targetRepoId, digest, blob.size));
        return blob.size;
      });
      return size === null ? { mounted: false } : { mounted: true, size };
    }
  }
  return { mounted: false };
}

/** Removes the repository's link to a blob that no manifest of the repository uses. Check and
 * delete run in one transaction under the repository lock, as manifest PUT checks the links it
 * references: otherwise a PUT could commit a manifest whose layer was unlinked meanwhile. */
export async function unlinkBlob(s: Services, repoId: number, digest: string): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await lockRepository(s, tx, repoId);
    const st = await tx.selectFrom('blobs').innerJoin('repo_blobs', 'repo_blobs.blob_id', 'blobs.id').select('blobs.id')
      .where('repo_blobs.repository_id', '=', repoId).where('blobs.digest', '=', digest).executeTakeFirst();
    if (!st) throw new DomainError('blob_unknown', 'blob unknown to registry', { digest });
    const used = await tx.selectFrom('manifest_blobs').select('manifest_id').where('repository_id', '=', repoId).where('blob_id', '=', st.id).executeTakeFirst();
    if (used) throw new DomainError('unsupported', 'blob is referenced by a manifest in this repository; delete the manifest first', { digest });
    await tx.deleteFrom('repo_blobs').where('repository_id', '=', repoId).where('blob_id', '=', st.id).execute();
  });
}

// Manifests: stored byte-exact in the database, linked to the blobs and child manifests they
// reference, reachable while a tag (visible or hidden) or a live parent index points at them.
import { createHash } from 'node:crypto';

import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { parseManifest, effectiveArtifactType, LIST_TYPES, type ParsedManifest } from './manifest-format.ts';
import { aliveAt, ensureHiddenTag, lockRepository, setTag, type TagChange } from './tags.ts';
import { logAction } from './logs.ts';
import { TAG_RE, DIGEST_RE, parseDigest } from './names.ts';
import { prepared } from '../db/prepared.ts';
import { applyConfigLabels } from './labels.ts';
import type { Repo } from './repositories.ts';
import { assertTagMutable } from './immutability.ts';
import { schedulePruneAfterPush } from './autoprune.ts';
import { chargeManifest, noteQuotaRejection, noteQuotaWarning } from './quota-usage.ts';
import { notifyRepoPush } from './notifications.ts';

export interface StoredManifest {
  id: number;
  digest: string;
  media_type: string;
  bytes: Uint8Array;
  size: number;
}

export function isDigestRef(ref: string): boolean {
  return ref.includes(':');
}

/** Validates a /v2 manifest reference: a tag name or a digest. */
export function checkReference(ref: string): 'tag' | 'digest' {
  if (isDigestRef(ref)) {
    parseDigest(ref);
    return 'digest';
  }
  if (!TAG_RE.test(ref)) throw new DomainError('tag_invalid', 'invalid tag name', { tag: ref });
  return 'tag';
}

export interface PutResult {
  digest: string;
  subject: string | null;
  tagChange: TagChange | null;
}

export async function putManifest(
  s: Services, repo: Repo, ref: string, bytes: Uint8Array, contentType: string | undefined, performer: Principal, ip: string | null,
): Promise<PutResult> {
  const kind = checkReference(ref);
  if (bytes.length > s.config.maxManifestBytes) {
    throw new DomainError('manifest_invalid', `manifest is larger than ${s.config.maxManifestBytes} bytes`);
  }
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  if (kind === 'digest' && ref !== digest) throw new DomainError('digest_invalid', 'manifest digest does not match the reference', { expected: ref, actual: digest });
  const parsed = parseManifest(bytes, contentType);

  const blobDigests = parsed.isList ? [] : [parsed.config!, ...parsed.layers.filter((l) => !l.urls?.length)];
  const wanted = [...new Set(blobDigests.map((d) => d.digest))];
  const result = await s.db.transaction().execute(async (tx) => {
    await lockRepository(s, tx, repo.id);
    const blobs = wanted.length
      ? await tx.selectFrom('blobs').innerJoin('repo_blobs', 'repo_blobs.blob_id', 'blobs.id')
        .select(['blobs.id', 'blobs.digest', 'blobs.size']).where('repo_blobs.repository_id', '=', repo.id).where('blobs.digest', 'in', wanted).execute()
      : [];
    const byDigest = new Map(blobs.map((b) => [b.digest, b]));
    for (const d of blobDigests) {
      const b = byDigest.get(d.digest);
      if (!b) throw new DomainError('manifest_blob_unknown', 'manifest references a blob unknown to this repository', { digest: d.digest });
      if (b.size !== d.size) throw new DomainError('manifest_invalid', `descriptor size ${d.size} does not match blob ${d.digest} (${b.size} bytes)`, { digest: d.digest });
    }
    const childDigests = [...new Set(parsed.children.map((c) => c.digest))];
    const children = childDigests.length
      ? await tx.selectFrom('manifests').select(['id', 'digest']).where('repository_id', '=', repo.id).where('digest', 'in', childDigests).execute()
      : [];
    if (children.length !== childDigests.length) {
      const have = new Set(children.map((c) => c.digest));
      const missing = childDigests.find((d) => !have.has(d));
      throw new DomainError('manifest_blob_unknown', 'index references a manifest unknown to this repository', { digest: missing });
    }

    const { id: manifestId, created } = await insertManifest(s, tx, repo.id, digest, bytes, parsed);
    if (blobs.length) {
      await tx.insertInto('manifest_blobs').values(blobs.map((b) => ({ manifest_id: manifestId, blob_id: b.id, repository_id: repo.id })))
        .onConflict((oc) => oc.columns(['manifest_id', 'blob_id']).doNothing()).execute();
    }
    if (children.length) {
      await tx.insertInto('manifest_children').values(children.map((c) => ({ manifest_id: manifestId, child_id: c.id, repository_id: repo.id })))
        .onConflict((oc) => oc.columns(['manifest_id', 'child_id']).doNothing()).execute();
    }
    // Counts the new blobs and refuses a push over a Reject limit, rolling all of it back.
    const quota = await chargeManifest(s, tx, repo, manifestId, created);
    let tagChange: TagChange | null = null;
    if (kind === 'tag') tagChange = await setTag(s, tx, repo, ref, { id: manifestId, digest }, performer, ip);
    else await ensureHiddenTag(s, tx, repo.id, manifestId, parsed.subject !== null);
    await tx.updateTable('repositories').set({ last_modified: s.now() }).where('id', '=', repo.id).execute();
    await logAction(s, 'push_repo', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip,
      metadata: { repo: repo.name, namespace: repo.namespace, ...(kind === 'tag' ? { tag: ref } : {}), manifest_digest: digest },
    }, tx);
    return { tagChange, manifestId, created, quota };
  }).catch(async (e: unknown) => {
    await noteQuotaRejection(s, e);
    throw e;
  });
  await noteQuotaWarning(s, repo.namespace_id, result.quota);
  // Quay reads labels only when the manifest is first stored; a re-push or re-tag keeps them.
  if (result.created && parsed.config && IMAGE_CONFIG_TYPES.includes(parsed.config.mediaType)) {
    await applyConfigLabels(s, repo.id, { id: result.manifestId, configDigest: parsed.config.digest, configSize: parsed.config.size });
  }
  if (result.tagChange === 'created' || result.tagChange === 'moved') await schedulePruneAfterPush(s, repo);
  // Quay's spawn_notification after every push by tag, re-pushes of the same manifest included.
  if (result.tagChange !== null) await notifyRepoPush(s, repo, [ref], performer);
  return { digest, subject: parsed.subject?.digest ?? null, tagChange: result.tagChange };
}

/** Config media types whose blob is an image config (labels, history); artifacts' are not read. */
const IMAGE_CONFIG_TYPES = ['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json'];

async function insertManifest(
  s: Services, tx: Parameters<typeof lockRepository>[1], repoId: number, digest: string, bytes: Uint8Array, p: ParsedManifest,
): Promise<{ id: number; created: boolean }> {
  const existing = await tx.selectFrom('manifests').select('id').where('repository_id', '=', repoId).where('digest', '=', digest).executeTakeFirst();
  if (existing) return { id: existing.id, created: false };
  const layersSize = p.isList ? null : p.layers.reduce((n, l) => n + l.size, 0);
  const row = await tx.insertInto('manifests').values({
    repository_id: repoId, digest, media_type: p.mediaType, bytes: Buffer.from(bytes), size: bytes.length,
    config_digest: p.config?.digest ?? null, config_media_type: p.config?.mediaType ?? null, artifact_type: p.artifactType,
    subject_digest: p.subject?.digest ?? null, annotations: p.annotations ? JSON.stringify(p.annotations) : null,
    layers_size: layersSize, created_at: s.now(),
  }).onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing()).returning('id').executeTakeFirst();
  if (row) return { id: row.id, created: true };
  return { id: (await tx.selectFrom('manifests').select('id').where('repository_id', '=', repoId).where('digest', '=', digest).executeTakeFirstOrThrow()).id, created: false };
}

function toStored(row: { id: number; digest: string; media_type: string; bytes: Uint8Array; size: number }): StoredManifest {
  return { ...row, bytes: row.bytes instanceof Buffer ? row.bytes : Buffer.from(row.bytes) };
}

const COLUMNS = ['manifests.id', 'manifests.digest', 'manifests.media_type', 'manifests.bytes', 'manifests.size'] as const;

// `id in (…)` rather than a join with ORDER BY, which SQLite re-prepares on every run (this is
// every pull). A tag name has one live row (tags.ts ends the old one first).
const manifestForTagQuery = prepared((db, repoId: number, tag: string, now: number) => db.selectFrom('manifests').select(COLUMNS)
  .where('manifests.id', 'in', (eb) => eb.selectFrom('tags').select('tags.manifest_id')
    .where('tags.repository_id', '=', repoId).where('tags.name', '=', tag).where('tags.hidden', '=', 0).where(aliveAt(now))));

/** The manifest a live tag points at. */
export async function manifestForTag(s: Services, repoId: number, tag: string): Promise<StoredManifest | null> {
  const rows = await manifestForTagQuery(s.db, repoId, tag, s.now());
  if (rows.length <= 1) return rows[0] ? toStored(rows[0]) : null;
  // More than one live row (pointing at different manifests): the newest wins, as it always did.
  const row = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id').select(COLUMNS)
    .where('tags.repository_id', '=', repoId).where('tags.name', '=', tag).where('tags.hidden', '=', 0).where(aliveAt(s.now()))
    .orderBy('tags.lifetime_start', 'desc').executeTakeFirst();
  return row ? toStored(row) : null;
}

/** A manifest by digest, if reachable: tagged (visibly or hidden) or a child of a tagged index. */
export async function manifestByDigest(s: Services, repoId: number, digest: string): Promise<StoredManifest | null> {
  const now = s.now();
  const row = await s.db.selectFrom('manifests').select(COLUMNS)
    .where('manifests.repository_id', '=', repoId).where('manifests.digest', '=', digest)
    .where((eb) => eb.or([
      eb.exists(eb.selectFrom('tags').select('tags.id').whereRef('tags.manifest_id', '=', 'manifests.id').where(aliveAt(now))),
      eb.exists(eb.selectFrom('manifest_children').innerJoin('tags', 'tags.manifest_id', 'manifest_children.manifest_id')
        .select('tags.id').whereRef('manifest_children.child_id', '=', 'manifests.id').where(aliveAt(now))),
    ])).executeTakeFirst();
  return row ? toStored(row) : null;
}

/** Deleting by digest ends every tag pointing at the manifest (as Quay does); it is then no
 * longer reachable and garbage collection reclaims it after the time-machine window. */
export async function deleteManifestByDigest(s: Services, repo: Repo, digest: string, performer: Principal, ip: string | null): Promise<void> {
  if (!DIGEST_RE.test(digest)) parseDigest(digest);
  await s.db.transaction().execute(async (tx) => {
    await lockRepository(s, tx, repo.id);
    const now = s.now();
    const m = await tx.selectFrom('manifests').select('id').where('repository_id', '=', repo.id).where('digest', '=', digest).executeTakeFirst();
    if (!m) throw new DomainError('manifest_unknown', 'manifest unknown to registry', { digest });
    const tags = await tx.selectFrom('tags').select(['id', 'name', 'hidden', 'immutable']).where('manifest_id', '=', m.id).where(aliveAt(now)).execute();
    const parent = await tx.selectFrom('manifest_children').innerJoin('tags', 'tags.manifest_id', 'manifest_children.manifest_id')
      .select('tags.id').where('manifest_children.child_id', '=', m.id).where(aliveAt(now)).executeTakeFirst();
    if (tags.length === 0 && !parent) throw new DomainError('manifest_unknown', 'manifest unknown to registry', { digest });
    // Hidden tags are internal names: neither their flag nor policies apply to them.
    for (const t of tags) if (!t.hidden) await assertTagMutable(s, tx, repo, t, 'delete');
    if (tags.length) await tx.updateTable('tags').set({ lifetime_end: now }).where('id', 'in', tags.map((t) => t.id)).execute();
    for (const t of tags.filter((x) => !x.hidden)) {
      await logAction(s, 'delete_tag', { namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip, metadata: { repo: repo.name, namespace: repo.namespace, tag: t.name, manifest_digest: digest } }, tx);
    }
  });
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Manifests in the repository whose subject is `digest`, optionally of one artifact type. */
export async function listReferrers(s: Services, repoId: number, digest: string, artifactType: string | null): Promise<ReferrerDescriptor[]> {
  const now = s.now();
  let q = s.db.selectFrom('manifests').select(['digest', 'media_type', 'size', 'artifact_type', 'config_media_type', 'annotations'])
    .where('repository_id', '=', repoId).where('subject_digest', '=', digest)
    .where((eb) => eb.exists(eb.selectFrom('tags').select('tags.id').whereRef('tags.manifest_id', '=', 'manifests.id').where(aliveAt(now))));
  if (artifactType !== null) {
    q = q.where((eb) => eb.or([eb('artifact_type', '=', artifactType), eb.and([eb('artifact_type', 'is', null), eb('config_media_type', '=', artifactType)])]));
  }
  const rows = await q.orderBy('id').limit(s.config.referrersMaxCount).execute();
  return rows.map((r) => {
    const at = effectiveArtifactType(r);
    return {
      mediaType: r.media_type, digest: r.digest, size: r.size,
      ...(at ? { artifactType: at } : {}),
      ...(r.annotations ? { annotations: JSON.parse(r.annotations) as Record<string, string> } : {}),
    };
  });
}

export function isListType(mediaType: string): boolean {
  return LIST_TYPES.includes(mediaType);
}

/** For clients that cannot take an index: the linux/amd64 child, as Quay serves it. */
export async function defaultPlatformChild(s: Services, repoId: number, index: StoredManifest): Promise<StoredManifest | null> {
  const doc = JSON.parse(Buffer.from(index.bytes).toString('utf8')) as { manifests?: { digest: string; platform?: { os?: string; architecture?: string } }[] };
  const pick = doc.manifests?.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64');
  if (!pick) return null;
  const row = await s.db.selectFrom('manifests').select(COLUMNS).where('repository_id', '=', repoId).where('digest', '=', pick.digest).executeTakeFirst();
  return row ? toStored(row) : null;
}


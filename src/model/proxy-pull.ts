// Pull-through for proxy-cache organizations (Quay's ProxyModel): a manifest pulled by tag is
// checked against the upstream (a HEAD) and fetched when missing or changed, then stored as a
// normal manifest and tag in a repository created on demand; the tag expires expiration_s after
// its last confirmed pull. When the upstream cannot be reached, a cached tag that has not expired
// is served. Blobs of cached manifests are fetched on first request, verified against their
// digest while they stream to the client, and published through the upload path.
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { parseManifest } from './manifest-format.ts';
import { checkReference, manifestByDigest, manifestForTag, type StoredManifest } from './manifests.ts';
import { parseDigest } from './names.ts';
import { outboundPolicy, OutboundBlockedError } from './outbound.ts';
import type { ProxyCacheConfig } from './proxy-cache.ts';
import { createRepository, findRepo, type Repo } from './repositories.ts';
import { aliveAt, ensureHiddenTag, lockRepository, setTag } from './tags.ts';
import { cancelUpload, completeUpload, appendUpload, startUpload } from './uploads.ts';
import { UpstreamError, UpstreamRegistry, upstreamTarget } from './upstream-registry.ts';

type Tx = Transaction<Database>;

export interface ProxyPullInput {
  /** Repository name inside the organization ("library/alpine" or "alpine"). */
  name: string;
  ref: string;
  principal: Principal;
  ip: string | null;
  signal?: AbortSignal;
}

function clientFor(s: Services, cfg: ProxyCacheConfig, name: string): UpstreamRegistry {
  const target = upstreamTarget(cfg);
  const repo = target.namespace ? `${target.namespace}/${name}` : name;
  return new UpstreamRegistry(outboundPolicy(s.config), target, repo, cfg.orgname);
}

/** Failures of the upstream itself, as opposed to bugs: these fall back to the cache. */
function upstreamFailure(e: unknown): boolean {
  if (e instanceof UpstreamError || e instanceof OutboundBlockedError) return true;
  const err = e as { code?: unknown; name?: string };
  return typeof err.code === 'string' || err.name === 'AbortError' || err.name === 'TimeoutError';
}

function unknownManifest(ref: string, e: unknown): DomainError {
  const detail = e instanceof Error ? e.message : String(e);
  return new DomainError('manifest_unknown', `manifest unknown: ${detail}`, checkReference(ref) === 'tag' ? { tag: ref } : { digest: ref });
}

function expiry(s: Services, cfg: ProxyCacheConfig): number | null {
  return cfg.expirationS ? s.now() + cfg.expirationS * 1000 : null;
}

async function ensureRepo(s: Services, cfg: ProxyCacheConfig, input: ProxyPullInput): Promise<Repo> {
  const existing = await findRepo(s, cfg.orgname, input.name);
  if (existing) return existing;
  // Quay's CREATE_PRIVATE_REPO_ON_PULL_THROUGH defaults to private.
  const { repo } = await createRepository(s, {
    namespace: { id: cfg.orgId, username: cfg.orgname, kind: 'org' }, name: input.name, visibility: 'private', creator: input.principal, ip: input.ip,
  });
  return repo;
}

/** The manifest for a /v2 GET or HEAD in a proxy-cache organization, fetched when needed. */
export async function pullThroughManifest(s: Services, cfg: ProxyCacheConfig, input: ProxyPullInput): Promise<{ repo: Repo; manifest: StoredManifest }> {
  const kind = checkReference(input.ref);
  const client = clientFor(s, cfg, input.name);
  let repo = await findRepo(s, cfg.orgname, input.name);
  if (kind === 'digest') {
    // Content by digest never changes: a cached copy is served as is.
    const cached = repo ? await manifestByDigest(s, repo.id, input.ref) : null;
    if (cached && repo) return { repo, manifest: cached };
    let fetched: { bytes: Buffer; mediaType: string | undefined };
    try {
      fetched = await client.getManifest(input.ref, s.config.maxManifestBytes, input.signal);
    } catch (e) {
      if (upstreamFailure(e)) throw unknownManifest(input.ref, e);
      throw e;
    }
    const digest = `sha256:${createHash('sha256').update(fetched.bytes).digest('hex')}`;
    if (digest !== input.ref) throw new DomainError('manifest_unknown', 'upstream manifest does not match the requested digest', { digest: input.ref });
    repo ??= await ensureRepo(s, cfg, input);
    const manifest = await store(s, cfg, repo, null, fetched.bytes, fetched.mediaType, input);
    return { repo, manifest };
  }

  const cached = repo ? await manifestForTag(s, repo.id, input.ref) : null;
  let fetched: { bytes: Buffer; mediaType: string | undefined } | null = null;
  try {
    const upstreamDigest = await client.manifestDigest(input.ref, input.signal);
    if (cached && repo && upstreamDigest === cached.digest) {
      // Still current upstream: the cache is renewed for another expiration_s.
      await renewTag(s, cfg, repo.id, input.ref, cached.id);
      return { repo, manifest: cached };
    }
    fetched = await client.getManifest(input.ref, s.config.maxManifestBytes, input.signal);
  } catch (e) {
    if (!upstreamFailure(e)) throw e;
    if (cached && repo) {
      s.log.info({ err: e, repo: `${cfg.orgname}/${input.name}`, tag: input.ref }, 'upstream unavailable; serving the cached tag');
      return { repo, manifest: cached };
    }
    throw unknownManifest(input.ref, e);
  }
  repo ??= await ensureRepo(s, cfg, input);
  const manifest = await store(s, cfg, repo, input.ref, fetched.bytes, fetched.mediaType, input);
  return { repo, manifest };
}

async function renewTag(s: Services, cfg: ProxyCacheConfig, repoId: number, tag: string, manifestId: number): Promise<void> {
  await s.db.updateTable('tags').set({ lifetime_end: expiry(s, cfg) })
    .where('repository_id', '=', repoId).where('name', '=', tag).where('manifest_id', '=', manifestId).where('hidden', '=', 0)
    .where(aliveAt(s.now())).execute();
}

/** Stores an upstream manifest byte-exact: linked to the blobs and children already cached here
 * (the rest are linked when they are fetched), tagged — by name, or hidden for a digest — until
 * expiration_s from now. */
async function store(
  s: Services, cfg: ProxyCacheConfig, repo: Repo, tag: string | null, bytes: Buffer, mediaType: string | undefined, input: ProxyPullInput,
): Promise<StoredManifest> {
  const parsed = parseManifest(bytes, mediaType);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const id = await s.db.transaction().execute(async (tx) => {
    await lockRepository(s, tx, repo.id);
    let row = await tx.selectFrom('manifests').select('id').where('repository_id', '=', repo.id).where('digest', '=', digest).executeTakeFirst();
    if (!row) {
      row = await tx.insertInto('manifests').values({
        repository_id: repo.id, digest, media_type: parsed.mediaType, bytes, size: bytes.length,
        config_digest: parsed.config?.digest ?? null, config_media_type: parsed.config?.mediaType ?? null, artifact_type: parsed.artifactType,
        subject_digest: parsed.subject?.digest ?? null, annotations: parsed.annotations ? JSON.stringify(parsed.annotations) : null,
        layers_size: parsed.isList ? null : parsed.layers.reduce((n, l) => n + l.size, 0), created_at: s.now(),
      }).returning('id').executeTakeFirstOrThrow();
    }
    const manifestId = row.id;
    const blobDigests = parsed.isList ? [] : [...new Set([parsed.config!, ...parsed.layers].map((d) => d.digest))];
    if (blobDigests.length) await linkBlobs(tx, repo.id, manifestId, blobDigests);
    const childDigests = [...new Set(parsed.children.map((c) => c.digest))];
    if (childDigests.length) {
      const children = await tx.selectFrom('manifests').select('id').where('repository_id', '=', repo.id).where('digest', 'in', childDigests).execute();
      if (children.length) {
        await tx.insertInto('manifest_children').values(children.map((c) => ({ manifest_id: manifestId, child_id: c.id, repository_id: repo.id })))
          .onConflict((oc) => oc.columns(['manifest_id', 'child_id']).doNothing()).execute();
      }
    }
    await linkToParents(tx, repo.id, manifestId, digest);
    if (tag !== null) {
      await setTag(s, tx, repo, tag, { id: manifestId, digest }, input.principal, input.ip, { logMetadata: null });
      await tx.updateTable('tags').set({ lifetime_end: expiry(s, cfg) })
        .where('repository_id', '=', repo.id).where('name', '=', tag).where('manifest_id', '=', manifestId).where('hidden', '=', 0)
        .where(aliveAt(s.now())).execute();
    } else {
      await ensureHiddenTag(s, tx, repo.id, manifestId, false);
      const end = expiry(s, cfg);
      await tx.updateTable('tags').set({ lifetime_end: end }).where('repository_id', '=', repo.id).where('manifest_id', '=', manifestId)
        .where('hidden', '=', 1).where(aliveAt(s.now())).execute();
    }
    await tx.updateTable('repositories').set({ last_modified: s.now() }).where('id', '=', repo.id).execute();
    return manifestId;
  });
  return { id, digest, media_type: parsed.mediaType, bytes, size: bytes.length };
}

async function linkBlobs(tx: Tx, repoId: number, manifestId: number, digests: string[]): Promise<void> {
  const blobs = await tx.selectFrom('blobs').innerJoin('repo_blobs', 'repo_blobs.blob_id', 'blobs.id').select('blobs.id')
    .where('repo_blobs.repository_id', '=', repoId).where('blobs.digest', 'in', digests).execute();
  if (!blobs.length) return;
  await tx.insertInto('manifest_blobs').values(blobs.map((b) => ({ manifest_id: manifestId, blob_id: b.id, repository_id: repoId })))
    .onConflict((oc) => oc.columns(['manifest_id', 'blob_id']).doNothing()).execute();
}

/** A child fetched after its index: the index's manifest_children row makes it reachable (and
 * kept) for as long as the index is. */
async function linkToParents(tx: Tx, repoId: number, childId: number, digest: string): Promise<void> {
  const lists = await tx.selectFrom('manifests').select(['id', 'bytes']).where('repository_id', '=', repoId)
    .where('media_type', 'in', ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']).execute();
  const parents = lists.filter((l) => {
    try {
      const doc = JSON.parse(Buffer.from(l.bytes).toString('utf8')) as { manifests?: { digest?: string }[] };
      return doc.manifests?.some((m) => m.digest === digest) ?? false;
    } catch {
      return false;
    }
  });
  if (!parents.length) return;
  await tx.insertInto('manifest_children').values(parents.map((p) => ({ manifest_id: p.id, child_id: childId, repository_id: repoId })))
    .onConflict((oc) => oc.columns(['manifest_id', 'child_id']).doNothing()).execute();
}

/** The manifests of the repository that reference the blob, and its size there. */
async function referencingManifests(s: Services, repoId: number, digest: string): Promise<{ size: number; manifestIds: number[] } | null> {
  const rows = await s.db.selectFrom('manifests').select(['id', 'bytes']).where('repository_id', '=', repoId)
    .where('media_type', 'not in', ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']).execute();
  let size: number | null = null;
  const ids: number[] = [];
  for (const r of rows) {
    let doc: { config?: { digest?: string; size?: number }; layers?: { digest?: string; size?: number }[] };
    try {
      doc = JSON.parse(Buffer.from(r.bytes).toString('utf8')) as typeof doc;
    } catch {
      continue;
    }
    const d = [doc.config, ...(doc.layers ?? [])].find((x) => x?.digest === digest);
    if (d && typeof d.size === 'number') {
      size ??= d.size;
      ids.push(r.id);
    }
  }
  return size === null ? null : { size, manifestIds: ids };
}

export type ProxyBlob = { found: false } | { found: true; size: number; open(signal?: AbortSignal): Promise<Readable> };

/** A blob a cached manifest of the repository references but that is not stored here yet. */
export async function pullThroughBlob(s: Services, cfg: ProxyCacheConfig, repo: Repo, digest: string, principal: Principal): Promise<ProxyBlob> {
  if (parseDigest(digest).algorithm !== 'sha256') return { found: false };
  const refs = await referencingManifests(s, repo.id, digest);
  if (!refs) return { found: false };
  return { found: true, size: refs.size, open: (signal) => fetchBlob(s, cfg, repo, digest, refs, principal, signal) };
}

async function fetchBlob(
  s: Services, cfg: ProxyCacheConfig, repo: Repo, digest: string, refs: { size: number; manifestIds: number[] }, principal: Principal, signal?: AbortSignal,
): Promise<Readable> {
  const client = clientFor(s, cfg, repo.name);
  let res;
  try {
    // Not the client's signal: the blob is stored even when the client leaves half way.
    res = await client.getBlob(digest);
  } catch (e) {
    if (upstreamFailure(e)) throw new DomainError('blob_unknown', `blob unknown: ${(e as Error).message}`, { digest });
    throw e;
  }
  const hash = createHash('sha256');
  let count = 0;
  // The last chunk is held back until the digest is checked: a client is never handed every byte
  // of a blob that does not match (it sees the download cut short instead).
  let held: Buffer | null = null;
  const verify = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count += chunk.length;
      if (count > refs.size) return cb(new Error(`upstream blob ${digest} is longer than its descriptor (${refs.size} bytes)`));
      const out = held;
      held = chunk;
      cb(null, out ?? undefined);
    },
    flush(cb) {
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest || count !== refs.size) return cb(new Error(`upstream blob does not match ${digest} (got ${actual}, ${count} bytes)`));
      cb(null, held ?? undefined);
    },
  });
  const toClient = new PassThrough();
  const toStore = new PassThrough();
  const fail = (e: Error) => {
    toClient.destroy(e);
    // The store side is ended rather than destroyed (its reader may not be attached yet): what it
    // got is short of the last chunk, so publishing fails the digest check and drops the session.
    toStore.end();
  };
  res.body.on('error', (e) => verify.destroy(e));
  verify.on('error', fail);
  res.body.pipe(verify);
  verify.pipe(toClient);
  verify.pipe(toStore);
  // A client that leaves stops receiving; the store goes on.
  toClient.on('error', () => {});
  signal?.addEventListener('abort', () => verify.unpipe(toClient), { once: true });
  void storeBlob(s, repo, digest, refs.manifestIds, principal, toStore);
  return toClient;
}

async function storeBlob(s: Services, repo: Repo, digest: string, manifestIds: number[], principal: Principal, body: Readable): Promise<void> {
  const session = await startUpload(s, repo.id, principal);
  try {
    await appendUpload(s, session, body);
    await completeUpload(s, session, digest);
    await s.db.transaction().execute(async (tx) => {
      const blob = await tx.selectFrom('blobs').select('id').where('digest', '=', digest).executeTakeFirstOrThrow();
      const live = await tx.selectFrom('manifests').select('id').where('id', 'in', manifestIds).execute();
      if (live.length) {
        await tx.insertInto('manifest_blobs').values(live.map((m) => ({ manifest_id: m.id, blob_id: blob.id, repository_id: repo.id })))
          .onConflict((oc) => oc.columns(['manifest_id', 'blob_id']).doNothing()).execute();
      }
    });
  } catch (err) {
    s.log.warn({ err, digest, repo: `${repo.namespace}/${repo.name}` }, 'caching an upstream blob failed');
    body.resume();
    await cancelUpload(s, session).catch(() => {});
  }
}

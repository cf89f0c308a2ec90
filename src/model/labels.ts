// Manifest labels: key/value pairs attached to a manifest, either read from the image config when
// the manifest is pushed (source `manifest`, immutable) or added through the API (source `api`).
// The `quay.expires-after` label gives the manifest's tags an expiration, as in Quay.
import { randomUUID } from 'node:crypto';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { aliveAt, lockRepository } from './tags.ts';
import { readImageConfig } from './image-config.ts';
import { EXPIRES_AFTER_LABEL, parseDuration } from './tag-expiry.ts';

export const LABEL_KEY_RE = /^[a-z0-9](([a-z0-9]|[-.](?![.-]))*[a-z0-9])?$/;
export const LABEL_KEY_PATTERN = '^[a-z0-9](([a-z0-9]|[-.](?![.-]))*[a-z0-9])?$';
export const LABEL_MEDIA_TYPES = ['text/plain', 'application/json'] as const;
export const DEFAULT_RESERVED_PREFIXES = [
  'com.docker.', 'io.docker.', 'org.dockerproject.', 'org.opencontainers.', 'io.cncf.', 'io.kubernetes.', 'io.k8s.',
  'io.quay', 'com.coreos', 'com.tectonic', 'internal', 'quay',
];
/** Labels from these sources may only be removed by pushing a new manifest. */
const IMMUTABLE_SOURCES = new Set(['manifest', 'internal']);
const MAX_KEY_LENGTH = 255;

export interface Label {
  id: number;
  uuid: string;
  manifest_id: number;
  key: string;
  value: string;
  media_type: string;
  source_type: string;
  created_at: number;
}

type RepoRef = { id: number; namespace_id: number; name: string; namespace: string };

export function reservedPrefixes(s: Services): string[] {
  const extra = s.config.raw.LABEL_KEY_RESERVED_PREFIXES;
  return [...DEFAULT_RESERVED_PREFIXES, ...(Array.isArray(extra) ? extra.filter((p): p is string => typeof p === 'string') : [])];
}

export function hasReservedPrefix(s: Services, key: string): boolean {
  return reservedPrefixes(s).some((p) => key.startsWith(p));
}

export function validLabelKey(key: string): boolean {
  return key.length <= MAX_KEY_LENGTH && LABEL_KEY_RE.test(key);
}

/** Quay's is_json: only values that look like an object or array and parse count as JSON. */
export function isJsonValue(value: string): boolean {
  if (!((value.startsWith('{') && value.endsWith('}')) || (value.startsWith('[') && value.endsWith(']')))) return false;
  try {
    JSON.parse(value);
    return true;
  } catch {
    return false;
  }
}

// Durations moved to tag-expiry.ts with the rest of the expiration rules; kept exported here.
export { parseDuration };

export async function listLabels(s: Services, manifestId: number, prefix: string | null): Promise<Label[]> {
  // A manifest carries a handful of labels: the prefix is matched here, exactly (LIKE's case and
  // escape rules differ between the two databases).
  const rows = await s.db.selectFrom('labels').selectAll().where('manifest_id', '=', manifestId).orderBy('id').execute();
  return prefix ? rows.filter((r) => r.key.startsWith(prefix)) : rows;
}

export async function getLabel(s: Services, manifestId: number, uuid: string): Promise<Label | undefined> {
  return s.db.selectFrom('labels').selectAll().where('manifest_id', '=', manifestId).where('uuid', '=', uuid).executeTakeFirst();
}

export interface NewLabel {
  key: string;
  value: string;
  mediaType: string | null;
}

/** Adds an API label (source `api`) after Quay's key rules, and logs manifest_label_add. */
export async function addLabel(
  s: Services, repo: RepoRef, manifest: { id: number; digest: string }, input: NewLabel, performer: Principal, ip: string | null,
): Promise<Label> {
  if (hasReservedPrefix(s, input.key)) throw new DomainError('invalid_request', 'Label has a reserved prefix');
  if (!input.key || !validLabelKey(input.key)) {
    throw new DomainError('invalid_request', `Label is of an invalid format or missing please use ${LABEL_KEY_PATTERN} format for labels`);
  }
  const mediaType = input.mediaType ?? (isJsonValue(input.value) ? 'application/json' : 'text/plain');
  if (!(LABEL_MEDIA_TYPES as readonly string[]).includes(mediaType)) {
    throw new DomainError('invalid_request', 'Media type is invalid please use a valid media type: text/plain, application/json');
  }
  return s.db.transaction().execute(async (tx) => {
    const label = await tx.insertInto('labels').values({
      uuid: randomUUID(), manifest_id: manifest.id, key: input.key, value: input.value, media_type: mediaType, source_type: 'api', created_at: s.now(),
    }).returningAll().executeTakeFirstOrThrow();
    await logAction(s, 'manifest_label_add', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip,
      metadata: { id: label.uuid, key: label.key, value: label.value, manifest_digest: manifest.digest, media_type: label.media_type, namespace: repo.namespace, repo: repo.name },
    }, tx);
    return label;
  });
}

/** Removes an API label; labels that came from the manifest itself cannot be removed. */
export async function deleteLabel(
  s: Services, repo: RepoRef, manifest: { id: number; digest: string }, uuid: string, performer: Principal, ip: string | null,
): Promise<Label> {
  return s.db.transaction().execute(async (tx) => {
    const label = await tx.selectFrom('labels').selectAll().where('manifest_id', '=', manifest.id).where('uuid', '=', uuid).executeTakeFirst();
    if (!label) throw new DomainError('not_found', 'Not Found');
    if (IMMUTABLE_SOURCES.has(label.source_type)) throw new DomainError('invalid_request', 'Cannot delete immutable label');
    await tx.deleteFrom('labels').where('id', '=', label.id).execute();
    await logAction(s, 'manifest_label_delete', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip,
      metadata: { id: label.uuid, key: label.key, value: label.value, manifest_digest: manifest.digest, namespace: repo.namespace, repo: repo.name },
    }, tx);
    return label;
  });
}

/**
 * Runs after a new image manifest is stored: copies the config's Labels onto the manifest (source
 * `manifest`) and applies `quay.expires-after` to the tags now pointing at it. Never throws: a
 * config that is missing, huge or not JSON only means no labels.
 */
export async function applyConfigLabels(
  s: Services, repoId: number, manifest: { id: number; configDigest: string; configSize: number | null },
): Promise<void> {
  try {
    const config = await readImageConfig(s, manifest.configDigest, manifest.configSize);
    if (!config) return;
    // Docker allows empty and oddly formed keys in a Dockerfile; Quay keeps those (except empty
    // ones) since they are the image's own metadata. Keys beyond the column width are dropped.
    const entries = Object.entries(config.labels).filter(([k]) => k.length > 0 && k.length <= MAX_KEY_LENGTH);
    if (!entries.length) return;
    const now = s.now();
    await s.db.transaction().execute(async (tx) => {
      await lockRepository(s, tx, repoId);
      const existing = await tx.selectFrom('labels').select('id').where('manifest_id', '=', manifest.id).where('source_type', '=', 'manifest').executeTakeFirst();
      if (existing) return;
      await tx.insertInto('labels').values(entries.map(([key, value]) => ({
        uuid: randomUUID(), manifest_id: manifest.id, key, value, media_type: isJsonValue(value) ? 'application/json' : 'text/plain',
        source_type: 'manifest', created_at: now,
      }))).execute();
      const expires = config.labels[EXPIRES_AFTER_LABEL];
      const seconds = expires === undefined ? null : parseDuration(expires);
      if (seconds !== null && seconds > 0) {
        const tags = await tx.selectFrom('tags').select(['id', 'lifetime_start']).where('manifest_id', '=', manifest.id)
          .where('hidden', '=', 0).where(aliveAt(now)).execute();
        for (const t of tags) await tx.updateTable('tags').set({ lifetime_end: t.lifetime_start + seconds * 1000 }).where('id', '=', t.id).execute();
      }
    });
  } catch (err) {
    s.log.warn({ err, manifest: manifest.id }, 'applying image config labels failed');
  }
}

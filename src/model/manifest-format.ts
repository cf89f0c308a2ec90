// Parsing and validation of the manifest formats the registry accepts: OCI image manifest and
// index, Docker schema2 manifest and manifest list. Pure functions: no storage, no database.
import { DomainError } from './errors.ts';
import { DIGEST_RE } from './names.ts';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_SCHEMA1 = ['application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws'];
export const MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];
export const LIST_TYPES = [OCI_INDEX, DOCKER_LIST];

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string; variant?: string };
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  isList: boolean;
  config: Descriptor | null;
  layers: Descriptor[];
  children: Descriptor[];
  subject: Descriptor | null;
  artifactType: string | null;
  annotations: Record<string, string> | null;
}

const invalid = (msg: string, detail?: unknown): never => {
  throw new DomainError('manifest_invalid', msg, detail);
};

function descriptor(v: unknown, where: string): Descriptor {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return invalid(`${where} must be a descriptor object`);
  const d = v as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType.length === 0 || d.mediaType.length > 255) invalid(`${where}.mediaType must be a non-empty string`);
  if (typeof d.digest !== 'string' || !DIGEST_RE.test(d.digest)) invalid(`${where}.digest is not a valid digest`, { digest: d.digest });
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) invalid(`${where}.size must be a non-negative integer`);
  if (d.artifactType !== undefined && typeof d.artifactType !== 'string') invalid(`${where}.artifactType must be a string`);
  if (d.annotations !== undefined) annotationsOf(d.annotations, `${where}.annotations`);
  if (d.urls !== undefined && (!Array.isArray(d.urls) || d.urls.some((u) => typeof u !== 'string'))) invalid(`${where}.urls must be a list of strings`);
  return d as unknown as Descriptor;
}

function annotationsOf(v: unknown, where: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) return invalid(`${where} must be a map of strings`);
  for (const x of Object.values(v as object)) if (typeof x !== 'string') invalid(`${where} values must be strings`);
  return v as Record<string, string>;
}

/** Parses and validates manifest bytes. `contentType` is the request's Content-Type, if any. */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return invalid('manifest is not valid UTF-8 JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return invalid('manifest must be a JSON object');
  const m = doc as Record<string, unknown>;
  const header = contentType?.split(';')[0]!.trim().toLowerCase();
  if (DOCKER_SCHEMA1.includes(header ?? '') || m.schemaVersion === 1) {
    throw new DomainError('manifest_invalid', 'Docker schema1 manifests are not supported; push with schema2 or OCI', { mediaType: header });
  }
  if (m.schemaVersion !== 2) invalid('schemaVersion must be 2');
  if (m.mediaType !== undefined && (typeof m.mediaType !== 'string' || m.mediaType === '')) invalid('mediaType must be a non-empty string');
  const declared = m.mediaType as string | undefined;
  let mediaType = declared ?? (header && header !== 'application/json' && header !== 'application/octet-stream' ? header : undefined);
  if (!mediaType) mediaType = Array.isArray(m.manifests) ? OCI_INDEX : OCI_MANIFEST;
  if (declared && header && MANIFEST_TYPES.includes(header) && header !== declared) {
    invalid(`Content-Type ${header} does not match the manifest's mediaType ${declared}`);
  }
  if (!MANIFEST_TYPES.includes(mediaType)) invalid(`unsupported manifest media type ${mediaType}`, { mediaType });
  const isList = LIST_TYPES.includes(mediaType);
  const subject = m.subject === undefined || m.subject === null ? null : descriptor(m.subject, 'subject');
  const annotations = annotationsOf(m.annotations, 'annotations');
  if (m.artifactType !== undefined && (typeof m.artifactType !== 'string' || m.artifactType.length > 255)) invalid('artifactType must be a string');
  if (isList) {
    if (!Array.isArray(m.manifests)) invalid('an index must have a manifests list');
    const children = (m.manifests as unknown[]).map((d, i) => descriptor(d, `manifests[${i}]`));
    if (children.length > 1000) invalid('too many manifests in the index');
    if (mediaType === DOCKER_LIST && children.some((c) => !c.platform)) invalid('every manifest list entry needs a platform');
    return { mediaType, isList, config: null, layers: [], children, subject, artifactType: (m.artifactType as string) ?? null, annotations };
  }
  if (Array.isArray(m.manifests)) invalid('an image manifest cannot have a manifests list');
  const config = descriptor(m.config, 'config');
  if (!Array.isArray(m.layers)) invalid('layers must be a list');
  const layers = (m.layers as unknown[]).map((d, i) => descriptor(d, `layers[${i}]`));
  if (layers.length > 10000) invalid('too many layers');
  if (mediaType === DOCKER_MANIFEST && layers.length === 0) invalid('a Docker image manifest needs at least one layer');
  return {
    mediaType, isList, config, layers, children: [], subject,
    artifactType: (m.artifactType as string | undefined) ?? null, annotations,
  };
}

/** The artifact type reported by the referrers API (image-spec rules). */
export function effectiveArtifactType(p: { artifact_type: string | null; config_media_type: string | null }): string | null {
  return p.artifact_type ?? p.config_media_type;
}

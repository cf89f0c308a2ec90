// A manifest as Quay's getRepoManifest shows it: the stored bytes, and for an image its layers
// with sizes and the build history (command, author, comment, date) read from the image config.
import type { Services } from './context.ts';
import { DomainError } from './errors.ts';
import { LIST_TYPES, parseManifest, type Descriptor } from './manifest-format.ts';
import { manifestByDigest } from './manifests.ts';
import { DIGEST_RE } from './names.ts';
import { readImageConfig, type HistoryEntry } from './image-config.ts';
import { readModelcard } from './modelcard.ts';

export interface ManifestLayer {
  index: number;
  compressedSize: number | null;
  isRemote: boolean;
  urls: string[] | null;
  command: string[] | null;
  comment: string | null;
  author: string | null;
  blobDigest: string;
  created: number | null;
}

export interface ManifestDetails {
  id: number;
  digest: string;
  mediaType: string;
  isManifestList: boolean;
  manifestData: string;
  configMediaType: string | null;
  layersCompressedSize: number;
  layers: ManifestLayer[] | null;
  /** The model card markdown, when asked for and the manifest carries one (FEATURE_UI_MODELCARD). */
  modelcard?: string;
}

/** A manifest reachable in the repository by digest (what the manifest and label endpoints act on). */
export async function findManifest(s: Services, repoId: number, ref: string): Promise<{ id: number; digest: string; media_type: string; bytes: Uint8Array }> {
  // Quay routes only digests here; anything else is simply not a manifest of this repository.
  const m = DIGEST_RE.test(ref) ? await manifestByDigest(s, repoId, ref) : null;
  if (!m) throw new DomainError('not_found', 'Not Found');
  return m;
}

/** Quay's _layer_dict command: a JSON array kept as is, any other text wrapped in a list. */
function commandOf(createdBy: string | null): string[] | null {
  if (!createdBy) return null;
  try {
    const v = JSON.parse(createdBy) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // plain shell text
  }
  return [createdBy];
}

export async function manifestDetails(s: Services, repoId: number, ref: string, opts: { modelcard?: boolean } = {}): Promise<ManifestDetails> {
  const m = await findManifest(s, repoId, ref);
  const bytes = Buffer.from(m.bytes);
  const isList = LIST_TYPES.includes(m.media_type);
  const row = await s.db.selectFrom('manifests').select(['config_media_type', 'layers_size']).where('id', '=', m.id).executeTakeFirstOrThrow();
  let layers: ManifestLayer[] | null = null;
  let modelcard: string | null = null;
  if (!isList) {
    const parsed = parseManifest(bytes, m.media_type);
    const config = parsed.config ? await readImageConfig(s, parsed.config.digest, parsed.config.size) : null;
    layers = layerViews(parsed.layers, config?.history ?? []);
    if (opts.modelcard && s.config.features.UI_MODELCARD) modelcard = await readModelcard(s, repoId, parsed);
  }
  return {
    id: m.id,
    digest: m.digest,
    mediaType: m.media_type,
    isManifestList: isList,
    manifestData: bytes.toString('utf8'),
    configMediaType: row.config_media_type,
    layersCompressedSize: isList ? 0 : Number(row.layers_size ?? 0),
    // Quay answers null rather than [] for an image without layers, too.
    layers: layers && layers.length ? layers : null,
    ...(modelcard !== null ? { modelcard } : {}),
  };
}

/** Pairs each layer with its history entry: entries marked empty_layer have no layer of their own. */
export function layerViews(layers: Descriptor[], history: HistoryEntry[]): ManifestLayer[] {
  const filled = history.filter((h) => !h.emptyLayer);
  return layers.map((l, index) => {
    const h = filled[index];
    const created = h?.created ? Date.parse(h.created) : NaN;
    return {
      index,
      compressedSize: l.size,
      isRemote: !!l.urls?.length,
      urls: l.urls?.length ? l.urls : null,
      command: commandOf(h?.createdBy ?? null),
      comment: h?.comment ?? null,
      author: h?.author ?? null,
      blobDigest: l.digest,
      created: Number.isFinite(created) ? created : null,
    };
  });
}

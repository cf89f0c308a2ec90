// The model card of an ML model artifact (FEATURE_UI_MODELCARD): the markdown layer Quay's UI
// shows. Which layer, per Quay's rules and config keys:
// - artifactType equals UI_MODELCARD_ARTIFACT_TYPE: its only layer, or else the first layer whose
//   annotations include UI_MODELCARD_LAYER_ANNOTATION;
// - otherwise, when the manifest's annotations include a non-empty UI_MODELCARD_ANNOTATION: the
//   first layer whose annotations include UI_MODELCARD_LAYER_ANNOTATION.
import type { Services } from './context.ts';
import { openBlob, statBlob } from './blobs.ts';
import { OCI_MANIFEST, type Descriptor, type ParsedManifest } from './manifest-format.ts';

/** A model card is a README; anything far bigger is not one we load into a JSON response. */
export const MAX_MODELCARD_BYTES = 4 * 1024 * 1024;

export interface ModelcardConfig {
  artifactType: string | null;
  manifestAnnotation: Record<string, string>;
  layerAnnotation: Record<string, string>;
}

function stringMap(v: unknown, dflt: Record<string, string>): Record<string, string> {
  if (v === undefined) return dflt;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([, x]) => typeof x === 'string')) as Record<string, string>;
}

/** Quay's defaults: artifact type application/x-mlmodel, no manifest annotation, a layer titled README.md. */
export function modelcardConfig(s: Services): ModelcardConfig {
  const raw = s.config.raw;
  const type = raw.UI_MODELCARD_ARTIFACT_TYPE;
  return {
    artifactType: type === undefined ? 'application/x-mlmodel' : typeof type === 'string' ? type : null,
    manifestAnnotation: stringMap(raw.UI_MODELCARD_ANNOTATION, {}),
    layerAnnotation: stringMap(raw.UI_MODELCARD_LAYER_ANNOTATION, { 'org.opencontainers.image.title': 'README.md' }),
  };
}

const includes = (have: Record<string, string> | null | undefined, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => have?.[k] === v);

/** The layer holding the model card, if the manifest carries one. Only OCI image manifests do. */
export function modelcardLayer(m: ParsedManifest, cfg: ModelcardConfig): Descriptor | null {
  if (m.isList || m.mediaType !== OCI_MANIFEST) return null;
  const annotated = () => m.layers.find((l) => includes(l.annotations, cfg.layerAnnotation)) ?? null;
  if (m.artifactType && m.artifactType === cfg.artifactType) return m.layers.length === 1 ? m.layers[0]! : annotated();
  if (Object.keys(cfg.manifestAnnotation).length && includes(m.annotations, cfg.manifestAnnotation)) return annotated();
  return null;
}

/** The model card text of a manifest of the repository, or null when there is none (or it is not
 * linked to the repository, or is too big to return). */
export async function readModelcard(s: Services, repoId: number, m: ParsedManifest): Promise<string | null> {
  const layer = modelcardLayer(m, modelcardConfig(s));
  if (!layer) return null;
  const stat = await statBlob(s, repoId, layer.digest);
  if (!stat.exists) return null;
  if (stat.size > MAX_MODELCARD_BYTES) {
    s.log.warn({ digest: layer.digest, size: stat.size }, 'model card layer too large to return');
    return null;
  }
  const chunks: Buffer[] = [];
  try {
    const stream = await openBlob(s, layer.digest);
    let total = 0;
    for await (const chunk of stream) {
      total += (chunk as Buffer).length;
      // The row's size is trusted above; the bound here holds even if the object disagrees.
      if (total > MAX_MODELCARD_BYTES) {
        stream.destroy();
        return null;
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    s.log.warn({ err, digest: layer.digest }, 'model card layer unreadable');
    return null;
  }
  return Buffer.concat(chunks).toString('utf8');
}

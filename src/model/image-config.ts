// An image's config blob (Docker schema2 / OCI): labels and layer history for the API. Read from
// storage with a hard size bound, because a config is pushed by clients and can be anything.
import type { Services } from './context.ts';
import { openBlob } from './blobs.ts';

/** Configs are small JSON documents (a few KiB); anything far bigger is not one we parse. */
export const MAX_CONFIG_BYTES = 2 * 1024 * 1024;

export interface HistoryEntry {
  created: string | null;
  createdBy: string | null;
  author: string | null;
  comment: string | null;
  emptyLayer: boolean;
}

export interface ImageConfig {
  labels: Record<string, string>;
  history: HistoryEntry[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Reads and parses the config blob; null when it is missing, too big or not a JSON object. */
export async function readImageConfig(s: Services, digest: string, declaredSize: number | null): Promise<ImageConfig | null> {
  if (declaredSize !== null && declaredSize > MAX_CONFIG_BYTES) return null;
  let text: string;
  try {
    const stream = await openBlob(s, digest);
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of stream) {
      total += (chunk as Buffer).length;
      if (total > MAX_CONFIG_BYTES) {
        stream.destroy();
        return null;
      }
      chunks.push(chunk as Buffer);
    }
    text = Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    s.log.warn({ err, digest }, 'image config unreadable');
    return null;
  }
  return parseImageConfig(text);
}

export function parseImageConfig(text: string): ImageConfig | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return null;
  const d = doc as Record<string, unknown>;
  const cfg = d.config && typeof d.config === 'object' ? (d.config as Record<string, unknown>) : {};
  const labels: Record<string, string> = {};
  if (cfg.Labels && typeof cfg.Labels === 'object' && !Array.isArray(cfg.Labels)) {
    for (const [k, v] of Object.entries(cfg.Labels as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  const history: HistoryEntry[] = [];
  if (Array.isArray(d.history)) {
    for (const h of d.history as unknown[]) {
      const e = h && typeof h === 'object' ? (h as Record<string, unknown>) : {};
      history.push({
        created: str(e.created), createdBy: str(e.created_by), author: str(e.author), comment: str(e.comment), emptyLayer: e.empty_layer === true,
      });
    }
  }
  return { labels, history };
}

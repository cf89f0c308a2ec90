// Pushes small images with a chosen config (labels, history) over /v2, for the repository, tag,
// manifest and label API tests.
import { randomBytes } from 'node:crypto';
import type { World } from '../../support/world.ts';
import { PASSWORD } from '../../support/world.ts';
import { RegistryClient, sha256 } from '../../support/registry-client.ts';

export const OCI = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface PushedImage {
  digest: string;
  manifest: string;
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

export interface ImageOptions {
  labels?: Record<string, string>;
  history?: Record<string, unknown>[];
  layerSizes?: number[];
  /** Raw config bytes (e.g. not JSON), replacing the generated config. */
  rawConfig?: string;
  configMediaType?: string;
}

const clients = new WeakMap<World, Map<string, RegistryClient>>();

/** A /v2 client for a world user; cached, since each token costs a bcrypt check. */
export function client(w: World, user = 'orgadmin'): RegistryClient {
  let m = clients.get(w);
  if (!m) clients.set(w, (m = new Map()));
  let c = m.get(user);
  if (!c) m.set(user, (c = new RegistryClient(w.t.url, user, PASSWORD)));
  return c;
}

/** Pushes layers, a config and an OCI manifest to `repo` (ns/name) under `ref` (a tag, or the digest). */
export async function pushImage(w: World, repo: string, ref: string | null, opts: ImageOptions = {}): Promise<PushedImage> {
  const c = client(w);
  const layers: { digest: string; size: number }[] = [];
  for (const size of opts.layerSizes ?? [300]) {
    const bytes = randomBytes(size);
    layers.push({ digest: await c.pushBlob(repo, bytes), size });
  }
  const configText = opts.rawConfig ?? JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/bin'], ...(opts.labels ? { Labels: opts.labels } : {}) },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    ...(opts.history ? { history: opts.history } : {}),
  });
  const configBytes = Buffer.from(configText);
  const config = { digest: await c.pushBlob(repo, configBytes), size: configBytes.length };
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: OCI,
    config: { mediaType: opts.configMediaType ?? OCI_CONFIG, ...config },
    layers: layers.map((l) => ({ mediaType: LAYER, ...l })),
  });
  const digest = sha256(manifest);
  const res = await c.pushManifest(repo, ref ?? digest, manifest, OCI);
  if (res.status !== 201) throw new Error(`manifest push failed: ${res.status} ${await res.text()}`);
  return { digest, manifest, config, layers };
}

/** Pushes an OCI index over already pushed manifests. */
export async function pushIndex(w: World, repo: string, ref: string, children: PushedImage[]): Promise<{ digest: string; manifest: string }> {
  const manifest = JSON.stringify({
    schemaVersion: 2, mediaType: OCI_INDEX,
    manifests: children.map((m, i) => ({ mediaType: OCI, digest: m.digest, size: Buffer.byteLength(m.manifest), platform: { os: 'linux', architecture: i ? 'arm64' : 'amd64' } })),
  });
  const res = await client(w).pushManifest(repo, ref, manifest, OCI_INDEX);
  if (res.status !== 201) throw new Error(`index push failed: ${res.status} ${await res.text()}`);
  return { digest: sha256(manifest), manifest };
}

/** GET /v2 manifest status as orgadmin (200 when the tag or digest resolves). */
export async function pullStatus(w: World, repo: string, ref: string): Promise<number> {
  const res = await client(w).req('GET', `/v2/${repo}/manifests/${ref}`, { scope: `repository:${repo}:pull`, headers: { accept: `${OCI}, ${OCI_INDEX}` } });
  await res.arrayBuffer();
  return res.status;
}

export const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} -0000$/;

export async function json(res: Response): Promise<any> {
  const text = await res.text();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return text;
  }
}

export async function logsOf(w: World, kind: string): Promise<{ kind: string; performer_id: number | null; repository_id: number | null; metadata: Record<string, any> }[]> {
  const rows = await w.t.app.services.db.selectFrom('logs').select(['kind', 'performer_id', 'repository_id', 'metadata']).where('kind', '=', kind).orderBy('id').execute();
  return rows.map((r) => ({ ...r, metadata: JSON.parse(r.metadata) as Record<string, any> }));
}

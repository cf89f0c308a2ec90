// A small /v2 client for protocol tests: token auth, blob and manifest pushes, raw requests.
import { createHash } from 'node:crypto';

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

export class RegistryClient {
  readonly base: string;
  readonly user: string | null;
  readonly pass: string | null;
  private readonly tokens = new Map<string, string>();

  constructor(base: string, user: string | null = null, pass: string | null = null) {
    this.base = base;
    this.user = user;
    this.pass = pass;
  }

  async token(scope: string | string[]): Promise<string> {
    const scopes = Array.isArray(scope) ? scope : [scope];
    const key = scopes.join(' ');
    const hit = this.tokens.get(key);
    if (hit) return hit;
    const qs = new URLSearchParams({ service: 'test' });
    for (const s of scopes) qs.append('scope', s);
    const headers: Record<string, string> = {};
    if (this.user !== null) headers.authorization = basic(this.user, this.pass ?? '');
    const res = await fetch(`${this.base}/v2/auth?${qs}`, { headers });
    if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { token: string };
    this.tokens.set(key, body.token);
    return body.token;
  }

  /** A request to /v2 with a token for `scope` (or none when scope is null). */
  async req(method: string, path: string, opts: { scope?: string | string[] | null; body?: BodyInit | Uint8Array; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.scope) headers.authorization = `Bearer ${await this.token(opts.scope)}`;
    return fetch(`${this.base}${path}`, { method, headers, body: opts.body as BodyInit, redirect: 'manual', duplex: 'half' } as RequestInit);
  }

  async pushBlob(repo: string, data: Uint8Array): Promise<string> {
    const digest = sha256(data);
    const scope = `repository:${repo}:pull,push`;
    const start = await this.req('POST', `/v2/${repo}/blobs/uploads/`, { scope });
    if (start.status !== 202) throw new Error(`upload start ${start.status} ${await start.text()}`);
    const loc = start.headers.get('location')!;
    const put = await this.req('PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${digest}`, { scope, body: data, headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`upload put ${put.status} ${await put.text()}`);
    return digest;
  }

  async pushManifest(repo: string, ref: string, manifest: object | string, mediaType = 'application/vnd.oci.image.manifest.v1+json'): Promise<Response> {
    const body = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
    return this.req('PUT', `/v2/${repo}/manifests/${ref}`, { scope: `repository:${repo}:pull,push`, body, headers: { 'content-type': mediaType } });
  }

  /** Pushes a config + one layer and an OCI manifest for them; returns the manifest digest. */
  async pushImage(repo: string, ref: string, seed = 'x', extra: Record<string, unknown> = {}): Promise<{ digest: string; manifest: string; config: string; layer: string }> {
    const layerBytes = new TextEncoder().encode(`layer-${seed}-${Math.random()}`);
    const configBytes = new TextEncoder().encode(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layerBytes)] }, config: {} }));
    const layer = await this.pushBlob(repo, layerBytes);
    const config = await this.pushBlob(repo, configBytes);
    const manifest = JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configBytes.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerBytes.length }],
      ...extra,
    });
    const res = await this.pushManifest(repo, ref, manifest);
    if (res.status !== 201) throw new Error(`manifest put ${res.status} ${await res.text()}`);
    return { digest: res.headers.get('docker-content-digest')!, manifest, config, layer };
  }
}

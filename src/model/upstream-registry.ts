// A small client for an upstream registry (the proxy cache's source): Docker token auth or Basic
// auth with the configured credentials (or anonymous), manifest GET/HEAD and streaming blob GET.
// Every request goes through the outbound guard (src/model/outbound.ts).
import { createHash } from 'node:crypto';
import { outboundRequest, type OutboundPolicy, type OutboundResponse } from './outbound.ts';

/** Docker Hub's registry lives on another host than its name. */
const REGISTRY_HOSTS: Record<string, string> = { 'docker.io': 'registry-1.docker.io' };

export interface UpstreamTarget {
  baseUrl: string;
  /** Namespace prefix inside the upstream ('' to proxy the whole registry). */
  namespace: string;
  username: string | null;
  password: string | null;
}

export function upstreamTarget(c: { upstreamRegistry: string; insecure: boolean; username: string | null; password: string | null }): UpstreamTarget {
  const slash = c.upstreamRegistry.indexOf('/');
  const host = slash < 0 ? c.upstreamRegistry : c.upstreamRegistry.slice(0, slash);
  const namespace = slash < 0 ? '' : c.upstreamRegistry.slice(slash + 1);
  return {
    baseUrl: `${c.insecure ? 'http' : 'https'}://${REGISTRY_HOSTS[host] ?? host}`, namespace,
    username: c.username, password: c.password,
  };
}

/** The upstream refused or failed (status), or its token service did. */
export class UpstreamError extends Error {
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(`the requested image may not exist in the upstream registry, or the configured organization credentials have insufficient rights to access it (${message})`);
    this.status = status;
    this.name = 'UpstreamError';
  }
}

/** Login to the upstream failed (its token service refused the credentials). */
export class UpstreamAuthError extends UpstreamError {
  constructor(message: string, status: number | null) {
    super(message, status);
    this.name = 'UpstreamAuthError';
  }
}

const TOKEN_LIFETIME_S = 3600;
const RENEW_BEFORE_S = 10;
const tokens = new Map<string, { header: string; until: number }>();

export const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
];

function parseChallenge(value: string): { scheme: string; params: Record<string, string> } {
  const scheme = value.split(' ', 1)[0] ?? '';
  const params: Record<string, string> = {};
  for (const m of value.matchAll(/(\w+)=\s?"?([^",]+)"?/g)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme, params };
}

export class UpstreamRegistry {
  private readonly policy: OutboundPolicy;
  private readonly target: UpstreamTarget;
  /** The upstream repository path ("library/alpine"), or null for registry-wide calls. */
  private readonly repo: string | null;
  private readonly cacheKey: string;
  private auth: string | null = null;

  /** `fresh`: ignore cached tokens (validation must prove the credentials it was given). */
  constructor(policy: OutboundPolicy, target: UpstreamTarget, repo: string | null, owner: string, fresh = false) {
    this.policy = policy;
    this.target = target;
    this.repo = repo;
    const secret = createHash('sha256').update(`${target.username ?? ''}\0${target.password ?? ''}`).digest('hex');
    this.cacheKey = JSON.stringify([owner, target.baseUrl, secret, repo]);
    const cached = fresh ? undefined : tokens.get(this.cacheKey);
    if (cached && cached.until > Date.now()) this.auth = cached.header;
  }

  private basic(): string | null {
    const { username, password } = this.target;
    return username !== null && password !== null ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` : null;
  }

  private async send(method: string, path: string, headers: Record<string, string>, signal?: AbortSignal): Promise<OutboundResponse> {
    return outboundRequest(this.policy, `${this.target.baseUrl}${path}`, {
      method, headers: { ...headers, ...(this.auth ? { authorization: this.auth } : {}) }, signal, timeoutMs: 60_000,
    });
  }

  /** Answers the challenge of a 401: Basic credentials, or a bearer token from the realm. Returns
   * false when the upstream wants credentials this configuration does not have. */
  private async authorize(challenge: string, signal?: AbortSignal): Promise<boolean> {
    const { scheme, params } = parseChallenge(challenge);
    const basic = this.basic();
    if (scheme.toLowerCase() === 'basic') {
      if (!basic) return false;
      this.auth = basic;
      return true;
    }
    if (scheme.toLowerCase() !== 'bearer' || !params.realm) throw new UpstreamError(`unsupported authentication challenge ${JSON.stringify(scheme)}`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    if (this.repo !== null) url.searchParams.set('scope', `repository:${this.repo}:pull`);
    const res = await outboundRequest(this.policy, url, { headers: basic ? { authorization: basic } : {}, signal, timeoutMs: 30_000 });
    const text = await res.text(64 * 1024);
    if ((res.status === 401 || res.status === 403) && !basic && this.repo === null) return false;
    if (res.status !== 200) throw new UpstreamAuthError(`Failed to get token from: '${params.realm}', with status code: ${res.status}`, res.status);
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new UpstreamAuthError(`Failed to get authentication token from: '${params.realm}' response`, res.status);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new UpstreamAuthError(`Failed to get authentication token from: '${params.realm}' response`, res.status);
    this.auth = `Bearer ${token}`;
    const life = (typeof body.expires_in === 'number' ? body.expires_in : TOKEN_LIFETIME_S) - RENEW_BEFORE_S;
    if (life > 0) {
      if (tokens.size > 10_000) tokens.clear();
      tokens.set(this.cacheKey, { header: this.auth, until: Date.now() + life * 1000 });
    }
    return true;
  }

  /** A request, authorizing and retrying once on 401. The caller owns the response body. */
  async request(method: string, path: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<OutboundResponse> {
    let res = await this.send(method, path, headers, signal);
    if (res.status !== 401) return res;
    res.body.resume();
    this.auth = null;
    tokens.delete(this.cacheKey);
    if (!(await this.authorize(String(res.headers['www-authenticate'] ?? ''), signal))) {
      return this.send(method, path, headers, signal);
    }
    res = await this.send(method, path, headers, signal);
    return res;
  }

  /** GET /v2/ with whatever authorization the upstream asks for: 200, or 401 when it still wants
   * credentials. Throws UpstreamAuthError when its token service refuses them. */
  async ping(signal?: AbortSignal): Promise<number> {
    const res = await this.request('GET', '/v2/', {}, signal);
    res.body.resume();
    return res.status;
  }

  private manifestPath(ref: string): string {
    if (this.repo === null) throw new Error('no upstream repository');
    return `/v2/${this.repo}/manifests/${ref}`;
  }

  /** The digest the upstream serves for the reference now. */
  async manifestDigest(ref: string, signal?: AbortSignal): Promise<string | null> {
    const res = await this.request('HEAD', this.manifestPath(ref), { accept: MANIFEST_TYPES.join(', ') }, signal);
    res.body.resume();
    if (res.status !== 200) throw new UpstreamError(String(res.status), res.status);
    const d = res.headers['docker-content-digest'];
    return typeof d === 'string' ? d : null;
  }

  async getManifest(ref: string, maxBytes: number, signal?: AbortSignal): Promise<{ bytes: Buffer; mediaType: string | undefined }> {
    const res = await this.request('GET', this.manifestPath(ref), { accept: MANIFEST_TYPES.join(', ') }, signal);
    if (res.status !== 200) {
      res.body.resume();
      throw new UpstreamError(String(res.status), res.status);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        res.body.destroy();
        throw new UpstreamError(`manifest larger than ${maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const type = res.headers['content-type'];
    return { bytes: Buffer.concat(chunks), mediaType: type ? type.split(';')[0]!.trim() : undefined };
  }

  /** The blob's bytes as a stream (redirects followed through the guard). */
  async getBlob(digest: string, signal?: AbortSignal): Promise<OutboundResponse> {
    if (this.repo === null) throw new Error('no upstream repository');
    const res = await this.request('GET', `/v2/${this.repo}/blobs/${digest}`, { 'accept-encoding': 'identity' }, signal);
    if (res.status !== 200) {
      res.body.resume();
      throw new UpstreamError(String(res.status), res.status);
    }
    return res;
  }
}

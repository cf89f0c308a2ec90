import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
// The load generator receives bodies like the server does: pace scavenges so its own garbage
// collection is not what a pull measures (`npm run bench` passes --expose-gc).
import { transientBytesConsumed } from '../src/storage/young-gc.ts';

// A deliberately small OCI distribution client: enough of the push/pull flow
// and of docker's token dance to drive both servers identically.

export type BodySource = Buffer | string | (() => Readable);

export interface RequestOptions {
  method: string;
  /** Path (with query) or absolute URL; absolute non-loopback URLs are pinned to the base origin. */
  url: string;
  /** Repository the request acts on; selects the cached bearer token scope. */
  repo?: string;
  headers?: Record<string, string>;
  /** A factory for streams, so a request can be replayed after a 401. */
  body?: BodySource;
  /** Count the response bytes instead of buffering them (blob pulls). */
  discardBody?: boolean;
  timeoutMs?: number;
}

export interface RegistryResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  bytes: number;
}

export interface ClientOptions {
  baseUrl: string;
  username?: string;
  password?: string;
  maxSockets?: number;
}

interface Challenge {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
const MAX_REDIRECTS = 3;

export class RegistryError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

export class RegistryClient {
  readonly base: URL;
  private readonly agent: http.Agent;
  private readonly username?: string;
  private readonly password?: string;
  private challenge?: Challenge;
  private readonly tokens = new Map<string, string>();
  private readonly pendingTokens = new Map<string, Promise<string>>();
  /** Requests issued, including auth round trips and replays. */
  requestCount = 0;

  constructor(opts: ClientOptions) {
    this.base = new URL(opts.baseUrl);
    this.username = opts.username;
    this.password = opts.password;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 64, maxFreeSockets: opts.maxSockets ?? 64 });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Benchmarks must never send load off this host, whatever a server puts in Location or realm. */
  resolve(url: string): URL {
    const u = new URL(url, this.base);
    if (!LOOPBACK.has(u.hostname)) {
      return new URL(u.pathname + u.search, this.base);
    }
    return u;
  }

  async request(opts: RequestOptions): Promise<RegistryResponse> {
    let url = this.resolve(opts.url);
    let method = opts.method;
    let body = opts.body;
    let authRetried = false;
    for (let hop = 0; hop <= MAX_REDIRECTS; ) {
      const sameOrigin = url.origin === this.base.origin;
      const auth = sameOrigin ? await this.authorizationFor(opts.repo) : undefined;
      const res = await this.send(url, method, { ...opts.headers, ...(auth ? { authorization: auth } : {}) }, body, opts);
      if (res.status === 401 && sameOrigin && !authRetried && this.canAuthenticate()) {
        authRetried = true;
        const learned = this.learnChallenge(res.headers['www-authenticate']);
        if (learned) {
          this.tokens.delete(scopeOf(opts.repo));
          continue;
        }
      }
      if (isRedirect(res.status) && res.headers.location && (method === 'GET' || method === 'HEAD')) {
        url = this.resolve(new URL(res.headers.location, url).toString());
        hop++;
        continue;
      }
      if (res.status === 303) {
        method = 'GET';
        body = undefined;
      }
      return res;
    }
    throw new RegistryError(`too many redirects for ${opts.method} ${opts.url}`, 0);
  }

  /** Learns the auth scheme up front so that later streamed bodies are not rejected mid-flight. */
  async ping(): Promise<number> {
    const res = await this.request({ method: 'GET', url: '/v2/' });
    if (res.status !== 200) throw new RegistryError(`GET /v2/ -> ${res.status} ${res.body.toString().slice(0, 200)}`, res.status);
    return res.status;
  }

  /** Fetches (and caches) the pull,push token for a repository now; a no-op without token auth. */
  async authorize(repo: string): Promise<void> {
    await this.authorizationFor(repo);
  }

  private canAuthenticate(): boolean {
    return this.username !== undefined && this.password !== undefined;
  }

  private basic(): string {
    return 'Basic ' + Buffer.from(`${this.username}:${this.password}`).toString('base64');
  }

  private learnChallenge(header: string | undefined): boolean {
    if (!header) return false;
    const parsed = parseChallenge(header);
    if (!parsed) return false;
    this.challenge = parsed;
    return true;
  }

  private async authorizationFor(repo: string | undefined): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch || !this.canAuthenticate()) return undefined;
    if (ch.scheme === 'basic') return this.basic();
    const scope = scopeOf(repo);
    const cached = this.tokens.get(scope);
    if (cached) return `Bearer ${cached}`;
    let pending = this.pendingTokens.get(scope);
    if (!pending) {
      pending = this.fetchToken(ch, repo).finally(() => this.pendingTokens.delete(scope));
      this.pendingTokens.set(scope, pending);
    }
    const token = await pending;
    this.tokens.set(scope, token);
    return `Bearer ${token}`;
  }

  private async fetchToken(ch: Challenge, repo: string | undefined): Promise<string> {
    if (!ch.realm) throw new RegistryError('bearer challenge without realm', 401);
    const url = this.resolve(ch.realm);
    if (ch.service) url.searchParams.set('service', ch.service);
    if (repo) url.searchParams.set('scope', `repository:${repo}:pull,push`);
    const res = await this.send(url, 'GET', { authorization: this.basic() }, undefined, { method: 'GET', url: url.toString() });
    if (res.status !== 200) {
      throw new RegistryError(`token endpoint ${url.pathname} -> ${res.status} ${res.body.toString().slice(0, 200)}`, res.status);
    }
    const json = JSON.parse(res.body.toString()) as { token?: string; access_token?: string };
    const token = json.token ?? json.access_token;
    if (!token) throw new RegistryError('token endpoint returned no token', res.status);
    return token;
  }

  private send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: BodySource | undefined,
    opts: RequestOptions,
  ): Promise<RegistryResponse> {
    this.requestCount++;
    return new Promise((resolvePromise, reject) => {
      const finalHeaders: Record<string, string> = { ...headers };
      let stream: Readable | undefined;
      if (typeof body === 'function') {
        stream = body();
      } else if (body !== undefined) {
        finalHeaders['content-length'] = String(Buffer.byteLength(body));
      } else if (method === 'PUT' || method === 'POST' || method === 'PATCH') {
        finalHeaders['content-length'] = '0';
      }
      const req = http.request(url, { method, headers: finalHeaders, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          transientBytesConsumed(c.length);
          if (!opts.discardBody) chunks.push(c);
        });
        res.on('end', () => {
          // A server may answer before draining a streamed body (e.g. 401); stop feeding it.
          stream?.unpipe(req);
          stream?.destroy();
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), bytes });
        });
        res.on('error', reject);
      });
      req.setTimeout(opts.timeoutMs ?? 60_000, () => req.destroy(new Error(`timeout: ${method} ${url.pathname}`)));
      req.on('error', (err) => {
        stream?.destroy();
        reject(err);
      });
      if (stream) {
        stream.on('error', (err) => req.destroy(err));
        stream.pipe(req);
      } else {
        req.end(body);
      }
    });
  }

  // --- registry operations -------------------------------------------------

  async startUpload(repo: string, query = ''): Promise<RegistryResponse> {
    return this.request({ method: 'POST', url: `/v2/${repo}/blobs/uploads/${query}`, repo });
  }

  private async openUpload(repo: string): Promise<URL> {
    const res = await this.startUpload(repo);
    expectStatus(res, [202], 'POST blob upload');
    return this.locationOf(res);
  }

  private locationOf(res: RegistryResponse): URL {
    const loc = res.headers.location;
    if (!loc) throw new RegistryError('upload response without Location', res.status);
    return this.resolve(loc);
  }

  /** POST to open, PUT with digest: the two-request monolithic push docker and containerd use. */
  async pushBlob(repo: string, digest: string, data: Buffer): Promise<void> {
    const loc = await this.openUpload(repo);
    loc.searchParams.set('digest', digest);
    const res = await this.request({
      method: 'PUT',
      url: loc.toString(),
      repo,
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    expectStatus(res, [201], 'PUT blob');
  }

  /**
   * Single-request monolithic POST (`?digest=`), optional in the spec.
   * Returns false, after cancelling the session it opened, when the server ignored the digest.
   */
  async pushBlobSinglePost(repo: string, digest: string, data: Buffer): Promise<boolean> {
    const res = await this.request({
      method: 'POST',
      url: `/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(digest)}`,
      repo,
      headers: { 'content-type': 'application/octet-stream' },
      body: data,
    });
    if (res.status === 201) return true;
    if (res.status === 202) {
      if (res.headers.location) {
        await this.request({ method: 'DELETE', url: this.locationOf(res).toString(), repo });
      }
      return false;
    }
    throw new RegistryError(`single POST upload -> ${res.status} ${res.body.toString().slice(0, 200)}`, res.status);
  }

  async pushBlobStream(repo: string, digest: string, size: number, body: Buffer | (() => Readable), timeoutMs: number): Promise<void> {
    const loc = await this.openUpload(repo);
    loc.searchParams.set('digest', digest);
    const res = await this.request({
      method: 'PUT',
      url: loc.toString(),
      repo,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body,
      timeoutMs,
    });
    expectStatus(res, [201], 'PUT streamed blob');
  }

  async pushBlobChunked(
    repo: string,
    digest: string,
    size: number,
    chunkSize: number,
    chunk: (start: number, length: number) => Buffer | Readable,
    timeoutMs: number,
  ): Promise<void> {
    let loc = await this.openUpload(repo);
    for (let start = 0; start < size; start += chunkSize) {
      const length = Math.min(chunkSize, size - start);
      const res = await this.request({
        method: 'PATCH',
        url: loc.toString(),
        repo,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(length),
          'content-range': `${start}-${start + length - 1}`,
        },
        body: chunkBody(chunk(start, length)),
        timeoutMs,
      });
      expectStatus(res, [202], `PATCH chunk at ${start}`);
      loc = this.locationOf(res);
    }
    loc.searchParams.set('digest', digest);
    const res = await this.request({ method: 'PUT', url: loc.toString(), repo, timeoutMs });
    expectStatus(res, [201], 'PUT closing chunked upload');
  }

  async putManifest(repo: string, ref: string, mediaType: string, body: Buffer): Promise<void> {
    const res = await this.request({
      method: 'PUT',
      url: `/v2/${repo}/manifests/${ref}`,
      repo,
      headers: { 'content-type': mediaType },
      body,
    });
    expectStatus(res, [201], `PUT manifest ${ref}`);
  }

  async getManifest(repo: string, ref: string, accept: string): Promise<RegistryResponse> {
    const res = await this.request({ method: 'GET', url: `/v2/${repo}/manifests/${ref}`, repo, headers: { accept } });
    expectStatus(res, [200], `GET manifest ${ref}`);
    return res;
  }

  /** Returns the byte count only: pulls are measured, not kept. */
  async pullBlob(repo: string, digest: string, timeoutMs = 60_000): Promise<number> {
    const res = await this.request({ method: 'GET', url: `/v2/${repo}/blobs/${digest}`, repo, discardBody: true, timeoutMs });
    expectStatus(res, [200], `GET blob ${digest.slice(0, 19)}`);
    return res.bytes;
  }

  /** Follows `Link: rel="next"` so capped servers still return every tag. */
  async listTags(repo: string, pageSize?: number, maxPages = 10_000): Promise<{ tags: string[]; pages: number }> {
    const tags: string[] = [];
    let url: string | undefined = `/v2/${repo}/tags/list${pageSize ? `?n=${pageSize}` : ''}`;
    let pages = 0;
    while (url && pages < maxPages) {
      const res = await this.request({ method: 'GET', url, repo });
      expectStatus(res, [200], 'GET tags/list');
      pages++;
      const json = JSON.parse(res.body.toString()) as { tags?: string[] | null };
      const page = json.tags ?? [];
      tags.push(...page);
      url = page.length > 0 ? nextLink(res.headers.link) : undefined;
    }
    return { tags, pages };
  }
}

function scopeOf(repo: string | undefined): string {
  return repo ? `repository:${repo}:pull,push` : '';
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** A chunk as a request body: a buffer is sent as is; a stream is read once per attempt. */
function chunkBody(c: Buffer | Readable): BodySource {
  return Buffer.isBuffer(c) ? c : () => c;
}

export function expectStatus(res: RegistryResponse, ok: number[], what: string): void {
  if (!ok.includes(res.status)) {
    throw new RegistryError(`${what}: HTTP ${res.status} ${res.body.toString().slice(0, 300)}`, res.status);
  }
}

export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'basic') return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) {
    params[p[1].toLowerCase()] = p[2] ?? p[3] ?? '';
  }
  return { scheme, realm: params.realm, service: params.service };
}

export function nextLink(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return undefined;
  for (const part of value.split(/,(?=\s*<)/)) {
    const m = /<([^>]+)>\s*;(.*)$/.exec(part.trim());
    if (m && /rel\s*=\s*"?next"?/i.test(m[2])) return m[1];
  }
  return undefined;
}

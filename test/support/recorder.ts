// A recording reverse proxy for the registry API: put it in front of any registry (Distribution or
// Quayside) to see exactly which requests real clients make — methods, Accept headers, upload
// chunking, cross-repo mounts, token scopes. Optionally it plays a Bearer-token auth server itself
// (realm on plain http://127.0.0.1), so client token flows can be observed without a real one.
import { randomUUID } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  status: number;
  responseHeaders: IncomingHttpHeaders;
  requestBytes: number;
  responseBytes: number;
}

export interface TokenRequest {
  method: string;
  url: string;
  /** All `scope` values (GET query or POST form); clients may send several. */
  scopes: string[];
  service?: string;
  account?: string;
  /** 'basic' | 'none' for GET; grant_type for the OAuth2 POST flow. */
  credential: string;
  user?: string;
}

export interface RecorderOptions {
  /** Base URL of the registry to forward to, e.g. http://127.0.0.1:5000 */
  upstream: string;
  /** 'bearer': answer 401 + WWW-Authenticate: Bearer and serve /token here; upstream gets no auth. */
  auth?: 'none' | 'bearer';
  /** Accepted Basic credentials at the token endpoint; anonymous tokens are always issued. */
  users?: Record<string, string>;
  service?: string;
}

export interface Recorder {
  url: string;
  host: string;
  requests: RecordedRequest[];
  tokenRequests: TokenRequest[];
  clear(): void;
  stop(): Promise<void>;
}

function scopeFor(method: string, path: string): string | undefined {
  const m = /^\/v2\/(.+?)\/(manifests|blobs|tags|referrers)\//.exec(path);
  if (!m) return undefined;
  return `repository:${m[1]}:${method === 'GET' || method === 'HEAD' ? 'pull' : 'pull,push'}`;
}

export async function startRecorder(opts: RecorderOptions): Promise<Recorder> {
  const upstream = new URL(opts.upstream);
  const service = opts.service ?? 'recorder';
  const requests: RecordedRequest[] = [];
  const tokenRequests: TokenRequest[] = [];
  const tokens = new Set<string>();
  let base = '';

  async function readBody(req: IncomingMessage): Promise<string> {
    let s = '';
    for await (const chunk of req) s += chunk;
    return s;
  }

  async function token(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const body = req.method === 'POST' ? new URLSearchParams(await readBody(req)) : url.searchParams;
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    let user: string | undefined;
    let credential = req.method === 'POST' ? `oauth2:${body.get('grant_type')}` : basic ? 'basic' : 'none';
    if (basic) {
      const [u, ...rest] = Buffer.from(basic[1], 'base64').toString().split(':');
      if (opts.users && opts.users[u] !== rest.join(':')) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        tokenRequests.push({ method: req.method!, url: req.url!, scopes: body.getAll('scope'), credential: 'basic-rejected', user: u });
        return;
      }
      user = u;
    } else if (req.method === 'POST') {
      user = body.get('username') ?? undefined;
      credential = `oauth2:${body.get('grant_type')}`;
    }
    tokenRequests.push({
      method: req.method!,
      url: req.url!,
      scopes: body.getAll('scope'),
      service: body.get('service') ?? undefined,
      account: body.get('account') ?? undefined,
      credential,
      user,
    });
    const t = randomUUID();
    tokens.add(t);
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token: t, access_token: t, expires_in: 300, issued_at: new Date().toISOString() }));
  }

  function forward(req: IncomingMessage, res: ServerResponse): void {
    const headers = { ...req.headers };
    // In bearer mode the tokens are ours; upstream is expected to run without auth.
    if (opts.auth === 'bearer') delete headers.authorization;
    const rec: RecordedRequest = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      status: 0,
      responseHeaders: {},
      requestBytes: 0,
      responseBytes: 0,
    };
    requests.push(rec);
    const up = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (upRes) => {
        rec.status = upRes.statusCode ?? 0;
        rec.responseHeaders = upRes.headers;
        const out = { ...upRes.headers };
        // Distribution builds absolute Locations from the Host header we pass through, so they
        // already point here; only rewrite ones aimed at the upstream directly.
        if (typeof out.location === 'string' && out.location.startsWith(upstream.origin)) {
          out.location = base + out.location.slice(upstream.origin.length);
        }
        res.writeHead(rec.status, out);
        upRes.on('data', (c: Buffer) => (rec.responseBytes += c.length));
        upRes.pipe(res);
      },
    );
    up.on('error', (err) => {
      rec.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
    req.on('data', (c: Buffer) => (rec.requestBytes += c.length));
    req.pipe(up);
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    if (opts.auth === 'bearer') {
      if (url.pathname === '/token') {
        token(req, res, url).catch((err) => res.writeHead(500).end(String(err)));
        return;
      }
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
      if (!bearer || !tokens.has(bearer[1])) {
        const scope = scopeFor(req.method!, url.pathname);
        requests.push({
          method: req.method!,
          url: req.url!,
          headers: req.headers,
          status: 401,
          responseHeaders: {},
          requestBytes: 0,
          responseBytes: 0,
        });
        req.resume();
        res
          .writeHead(401, {
            'content-type': 'application/json',
            'docker-distribution-api-version': 'registry/2.0',
            'www-authenticate': `Bearer realm="${base}/token",service="${service}"${scope ? `,scope="${scope}"` : ''}`,
          })
          .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
    }
    forward(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    url: base,
    host: `127.0.0.1:${port}`,
    requests,
    tokenRequests,
    clear() {
      requests.length = 0;
      tokenRequests.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One line per request, for printing in test diagnostics. */
export function summarize(requests: RecordedRequest[]): string[] {
  return requests.map((r) => {
    const h = r.headers;
    const bits = [`${r.method} ${r.url} -> ${r.status}`];
    if (h.accept) bits.push(`accept=[${h.accept}]`);
    if (h['content-type']) bits.push(`ct=${h['content-type']}`);
    if (h['content-length']) bits.push(`len=${h['content-length']}`);
    if (h['transfer-encoding']) bits.push(`te=${h['transfer-encoding']}`);
    if (h['content-range']) bits.push(`range=${h['content-range']}`);
    if (h.authorization) bits.push(`auth=${String(h.authorization).split(' ')[0]}`);
    return bits.join(' ');
  });
}

// HTTP requests whose body the test sends piece by piece (so a server can be killed mid-body) and
// whose path goes out byte for byte (no URL normalisation of '..' or percent-escapes).
import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  req: http.ClientRequest;
  /** Resolves with the response, or with the error that ended the exchange (server killed…). */
  done: Promise<RawResponse | Error>;
  /** Resolves once everything written so far, and the end of the request, reached the socket. */
  finished: Promise<void>;
  write(chunk: Uint8Array): Promise<void>;
}

export function rawRequest(base: string, method: string, path: string, headers: Record<string, string | number>): RawRequest {
  const u = new URL(base);
  const req = http.request({ host: u.hostname, port: Number(u.port), method, path, headers, agent: false });
  const done = new Promise<RawResponse | Error>((resolve) => {
    req.on('error', resolve);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', resolve);
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
  });
  const finished = new Promise<void>((resolve) => {
    req.on('finish', resolve);
    req.on('error', () => resolve());
  });
  req.flushHeaders();
  return {
    req, done, finished,
    write: (chunk) => new Promise<void>((resolve) => {
      req.write(chunk, () => resolve());
    }),
  };
}

/** A whole request in one go. */
export async function raw(base: string, method: string, path: string, headers: Record<string, string | number> = {}, body?: Uint8Array): Promise<RawResponse> {
  const r = rawRequest(base, method, path, { ...(body ? { 'content-length': body.length } : {}), ...headers });
  if (body) r.req.end(body);
  else r.req.end();
  const res = await r.done;
  if (res instanceof Error) throw res;
  return res;
}

/** The codes of an OCI error envelope; throws, showing the body, when it is not one. */
export function errorCodes(res: { status: number; body: Buffer }): string[] {
  const text = res.body.toString('utf8');
  type Envelope = { errors?: { code?: unknown }[] } | null;
  let parsed: Envelope = null;
  try {
    parsed = JSON.parse(text) as Envelope;
  } catch {
    // reported below
  }
  if (!parsed || !Array.isArray(parsed.errors) || parsed.errors.some((e) => typeof e?.code !== 'string')) {
    throw new Error(`not an OCI error envelope (${res.status}): ${text.slice(0, 300)}`);
  }
  return parsed.errors.map((e) => e.code as string);
}

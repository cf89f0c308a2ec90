// GET/HEAD/DELETE /v2/<name>/blobs/<digest>
import type { FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import { requestClosedSignal, resolveRepo, type RegistryRequest } from './index.ts';
import { OciError } from './errors.ts';
import { parseDigest } from '../../model/names.ts';
import { blobRedirectURL, openBlob, statBlob, unlinkBlob, type BlobRange } from '../../model/blobs.ts';
import type { WritesTo } from '../../storage/fs.ts';
import type { Repo } from '../../model/repositories.ts';
import { proxyCacheForNamespace } from '../../model/proxy-cache.ts';
import { pullThroughBlob } from '../../model/proxy-pull.ts';

function parseRange(header: string | undefined, size: number): BlobRange | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null; // malformed or multi-range: ignore, send all
  let start: number, end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

export async function get(rr: RegistryRequest): Promise<FastifyReply> {
  const { ctx, req, reply, arg: digest } = rr;
  const s = ctx.services;
  parseDigest(digest);
  const repo = await resolveRepo(rr, 'pull');
  const st = await statBlob(s, repo.id, digest);
  if (!st.exists) return proxyGet(rr, repo, digest);
  reply.header('Docker-Content-Digest', digest).header('Accept-Ranges', 'bytes').header('ETag', `"${digest}"`)
    .header('Cache-Control', 'max-age=31536000');
  if (req.method === 'HEAD') {
    return reply.code(200).header('Content-Length', st.size).type('application/octet-stream').send();
  }
  const redirect = await blobRedirectURL(s, digest);
  if (redirect) return reply.redirect(redirect, 307);
  const range = parseRange(req.headers.range, st.size);
  if (range === 'unsatisfiable') {
    return reply.code(416).header('Content-Range', `bytes */${st.size}`).send();
  }
  const stream = await openBlob(s, digest, range ?? undefined, requestClosedSignal(rr));
  reply.type('application/octet-stream');
  if (range) {
    reply.code(206).header('Content-Range', `bytes ${range.start}-${range.end}/${st.size}`).header('Content-Length', range.end - range.start + 1);
  } else {
    reply.code(200).header('Content-Length', st.size);
  }
  if (writesTo(stream)) return sendDirect(rr, stream);
  return reply.send(stream);
}

/** A blob not stored here: in a proxy-cache organization, fetched from the upstream when a
 * cached manifest references it, stored and streamed at once. */
async function proxyGet(rr: RegistryRequest, repo: Repo, digest: string): Promise<FastifyReply> {
  const { ctx, req, reply } = rr;
  const s = ctx.services;
  const proxy = await proxyCacheForNamespace(s, repo.namespace);
  const blob = proxy ? await pullThroughBlob(s, proxy, repo, digest, rr.principal) : { found: false as const };
  if (!blob.found) throw new OciError('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
  reply.header('Docker-Content-Digest', digest).header('ETag', `"${digest}"`).header('Content-Length', blob.size).type('application/octet-stream');
  if (req.method === 'HEAD') return reply.code(200).send();
  return reply.code(200).send(await blob.open(requestClosedSignal(rr)));
}

function writesTo(stream: Readable): stream is Readable & WritesTo {
  return typeof (stream as Partial<WritesTo>).writeTo === 'function';
}

/** Filesystem blobs bypass Fastify's stream piping, which cannot reuse buffers: with a fresh buffer
 * per chunk, large pulls spent half their CPU in garbage collection. */
async function sendDirect(rr: RegistryRequest, stream: Readable & WritesTo): Promise<FastifyReply> {
  const { req, reply } = rr;
  reply.hijack();
  const res = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) res.setHeader(name, value);
  // onSend hooks do not run for a hijacked reply: the request id header is added here.
  res.setHeader('X-Request-Id', req.id);
  res.writeHead(reply.statusCode);
  try {
    await stream.writeTo(res);
    res.end();
  } catch (err) {
    // Headers are gone: all that is left is to cut the connection so the client sees a short body.
    req.log.info({ err }, 'blob download ended early');
    res.destroy();
  }
  return reply;
}

export async function del(rr: RegistryRequest): Promise<FastifyReply> {
  parseDigest(rr.arg);
  const repo = await resolveRepo(rr, 'delete');
  await unlinkBlob(rr.ctx.services, repo.id, rr.arg);
  return rr.reply.code(202).header('Content-Length', 0).send();
}

// Blob uploads: POST (open / monolithic / mount), PATCH (chunk), PUT (close), GET (status), DELETE.
import type { FastifyReply } from 'fastify';
import { resolveRepo, type RegistryRequest } from './index.ts';
import { OciError } from './errors.ts';
import { granted } from './auth.ts';
import { parseDigest, splitRepoPath } from '../../model/names.ts';
import { appendUpload, cancelUpload, completeUpload, getUpload, startUpload, type UploadSession } from '../../model/uploads.ts';
import { mountBlob } from '../../model/blobs.ts';
import { findRepo } from '../../model/repositories.ts';
import { enforceUploadQuota } from '../../model/quota-usage.ts';

function sessionHeaders(rr: RegistryRequest, u: UploadSession): FastifyReply {
  return rr.reply.header('Location', `/v2/${rr.name}/blobs/uploads/${u.uuid}`).header('Docker-Upload-UUID', u.uuid)
    .header('Range', `0-${Math.max(0, u.size - 1)}`).header('Content-Length', 0);
}

function created(rr: RegistryRequest, digest: string): FastifyReply {
  return rr.reply.code(201).header('Location', `/v2/${rr.name}/blobs/${digest}`).header('Docker-Content-Digest', digest).header('Content-Length', 0).send();
}

function contentLength(rr: RegistryRequest): number | undefined {
  const h = rr.req.headers['content-length'];
  if (h === undefined) return undefined;
  const n = Number(h);
  if (!Number.isSafeInteger(n) || n < 0) throw new OciError('SIZE_INVALID', 'invalid Content-Length');
  return n;
}

function hasBody(rr: RegistryRequest): boolean {
  const len = contentLength(rr);
  return len !== undefined ? len > 0 : rr.req.headers['transfer-encoding'] !== undefined;
}

function abortSignal(rr: RegistryRequest): AbortSignal {
  const ac = new AbortController();
  rr.req.raw.on('close', () => {
    if (!rr.req.raw.complete) ac.abort();
  });
  return ac.signal;
}

export async function start(rr: RegistryRequest): Promise<FastifyReply> {
  const s = rr.ctx.services;
  const q = rr.req.query as Record<string, string | undefined>;
  const repo = await resolveRepo(rr, 'push');
  await enforceUploadQuota(s, repo.id, null);
  if (q.mount) {
    parseDigest(q.mount);
    let from = null;
    let mayTry = true;
    if (q.from) {
      // The caller must be able to read the source: the token has to carry pull on it.
      try {
        const { namespace, repo: name } = splitRepoPath(q.from, s.config.features.EXTENDED_REPOSITORY_NAMES);
        from = (await findRepo(s, namespace, name)) ?? null;
      } catch {
        from = null;
      }
      mayTry = from !== null && granted(rr.token, 'repository', q.from, ['pull']);
    }
    if (mayTry) {
      const r = await mountBlob(s, rr.principal, repo.id, q.mount, from);
      if (r.mounted) return created(rr, q.mount);
    }
  }
  if (q.digest !== undefined) {
    parseDigest(q.digest);
    const session = await startUpload(s, repo.id, rr.principal);
    await appendUpload(s, session, rr.req.raw, { expectedLength: contentLength(rr), signal: abortSignal(rr) });
    await completeUpload(s, session, q.digest);
    return created(rr, q.digest);
  }
  const session = await startUpload(s, repo.id, rr.principal);
  return sessionHeaders(rr, session).code(202).send();
}

async function session(rr: RegistryRequest): Promise<UploadSession> {
  const repo = await resolveRepo(rr, 'push');
  return getUpload(rr.ctx.services, rr.arg, repo.id, rr.principal);
}

function parseContentRange(h: string | undefined): { start: number; end: number } | undefined {
  if (h === undefined) return undefined;
  const m = /^(?:bytes )?(\d+)-(\d+)$/.exec(h.trim());
  if (!m) throw new OciError('RANGE_INVALID', 'invalid Content-Range');
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) throw new OciError('RANGE_INVALID', 'invalid Content-Range');
  return { start, end };
}

export async function patch(rr: RegistryRequest): Promise<FastifyReply> {
  const u = await session(rr);
  await enforceUploadQuota(rr.ctx.services, u.repository_id, u);
  const range = parseContentRange(rr.req.headers['content-range']);
  const len = contentLength(rr);
  if (range && len !== undefined && len !== range.end - range.start + 1) throw new OciError('RANGE_INVALID', 'Content-Range does not match Content-Length');
  if (range && range.start !== u.size) {
    return rr.reply.code(416).header('Location', `/v2/${rr.name}/blobs/uploads/${u.uuid}`).header('Range', `0-${Math.max(0, u.size - 1)}`)
      .header('Docker-Upload-UUID', u.uuid).type('application/json')
      .send({ errors: [{ code: 'RANGE_INVALID', message: `chunk must start at ${u.size}`, detail: {} }] });
  }
  const expected = range ? range.end - range.start + 1 : len;
  await appendUpload(rr.ctx.services, u, rr.req.raw, { rangeStart: range?.start, expectedLength: expected, signal: abortSignal(rr) });
  return sessionHeaders(rr, u).code(202).send();
}

export async function finish(rr: RegistryRequest): Promise<FastifyReply> {
  const q = rr.req.query as Record<string, string | undefined>;
  if (!q.digest) throw new OciError('DIGEST_INVALID', 'digest query parameter is required');
  parseDigest(q.digest);
  const u = await session(rr);
  const s = rr.ctx.services;
  await enforceUploadQuota(s, u.repository_id, u);
  if (hasBody(rr)) {
    const range = parseContentRange(rr.req.headers['content-range']);
    await appendUpload(s, u, rr.req.raw, { rangeStart: range?.start, expectedLength: contentLength(rr), signal: abortSignal(rr) });
  }
  await completeUpload(s, u, q.digest);
  return created(rr, q.digest);
}

export async function status(rr: RegistryRequest): Promise<FastifyReply> {
  const u = await session(rr);
  return sessionHeaders(rr, u).code(204).send();
}

export async function cancel(rr: RegistryRequest): Promise<FastifyReply> {
  const u = await session(rr);
  await cancelUpload(rr.ctx.services, u);
  return rr.reply.code(204).header('Content-Length', 0).send();
}

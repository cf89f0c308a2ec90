// GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>
import type { FastifyReply } from 'fastify';
import type { Readable } from 'node:stream';
import { checkAccess, requestClosedSignal, resolveRepo, type RegistryRequest } from './index.ts';
import { OciError } from './errors.ts';
import {
  checkReference, defaultPlatformChild, deleteManifestByDigest, isListType, manifestByDigest, manifestForTag, putManifest, type StoredManifest,
} from '../../model/manifests.ts';
import { deleteTag } from '../../model/tags.ts';
import { logPull } from '../../model/pull-log.ts';
import { splitRepoPath } from '../../model/names.ts';
import { proxyCacheForNamespace } from '../../model/proxy-cache.ts';
import { pullThroughManifest } from '../../model/proxy-pull.ts';
import type { Repo } from '../../model/repositories.ts';

function accepts(header: string | undefined, mediaType: string): boolean {
  if (!header) return true;
  const types = header.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  return types.some((t) => t === mediaType || t === '*/*' || t === 'application/*' || t === '');
}

export async function get(rr: RegistryRequest): Promise<FastifyReply> {
  const { ctx, req, reply, arg: ref } = rr;
  const s = ctx.services;
  const kind = checkReference(ref);
  const proxy = await proxyCacheForNamespace(s, splitRepoPath(rr.name, s.config.features.EXTENDED_REPOSITORY_NAMES).namespace);
  let repo: Repo;
  let m: StoredManifest | null;
  if (proxy) {
    const { repo: name } = checkAccess(rr, 'pull');
    ({ repo, manifest: m } = await pullThroughManifest(s, proxy, { name, ref, principal: rr.principal, ip: req.ip, signal: requestClosedSignal(rr) }));
  } else {
    repo = await resolveRepo(rr, 'pull');
    m = kind === 'tag' ? await manifestForTag(s, repo.id, ref) : await manifestByDigest(s, repo.id, ref);
  }
  if (!m) throw new OciError('MANIFEST_UNKNOWN', 'manifest unknown to registry', kind === 'tag' ? { tag: ref } : { digest: ref });
  const accept = req.headers.accept;
  if (kind === 'tag' && isListType(m.media_type) && !accepts(accept, m.media_type)) {
    // An old client that cannot read an index gets the linux/amd64 image, as Quay does.
    m = (await defaultPlatformChild(s, repo.id, m)) ?? m;
  }
  reply.header('Docker-Content-Digest', m.digest).header('ETag', `"${m.digest}"`).header('Content-Length', m.size).type(m.media_type);
  if (req.method === 'HEAD') return reply.code(200).send();
  logPull(s, { repo, performer: rr.principal, ip: req.ip, ref, digest: m.digest });
  return reply.code(200).send(Buffer.isBuffer(m.bytes) ? m.bytes : Buffer.from(m.bytes));
}

async function readLimited(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  // Not destroyed on the way out: the 413 must still reach the client (the registry error
  // handler discards the rest of the body).
  for await (const chunk of stream.iterator({ destroyOnReturn: false })) {
    total += (chunk as Buffer).length;
    if (total > limit) {
      throw new OciError('MANIFEST_INVALID', `manifest is larger than ${limit} bytes`, undefined, 413);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function put(rr: RegistryRequest): Promise<FastifyReply> {
  const { ctx, req, reply, arg: ref } = rr;
  const s = ctx.services;
  checkReference(ref);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > s.config.maxManifestBytes) throw new OciError('MANIFEST_INVALID', `manifest is larger than ${s.config.maxManifestBytes} bytes`, undefined, 413);
  const repo = await resolveRepo(rr, 'push');
  const bytes = await readLimited(req.raw, s.config.maxManifestBytes);
  const res = await putManifest(s, repo, ref, bytes, req.headers['content-type'], rr.principal, req.ip);
  if (res.subject) reply.header('OCI-Subject', res.subject);
  return reply.code(201).header('Location', `/v2/${rr.name}/manifests/${res.digest}`).header('Docker-Content-Digest', res.digest)
    .header('Content-Length', 0).send();
}

export async function del(rr: RegistryRequest): Promise<FastifyReply> {
  const { ctx, req, reply, arg: ref } = rr;
  const kind = checkReference(ref);
  const repo = await resolveRepo(rr, 'delete');
  if (kind === 'tag') await deleteTag(ctx.services, repo, ref, rr.principal, req.ip);
  else await deleteManifestByDigest(ctx.services, repo, ref, rr.principal, req.ip);
  return reply.code(202).header('Content-Length', 0).send();
}

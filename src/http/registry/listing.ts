// Listings: tags/list, _catalog and the referrers API — all paged and capped.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { resolveRepo, type RegistryRequest } from './index.ts';
import { OciError } from './errors.ts';
import { challenge } from './auth.ts';
import { listTagNames } from '../../model/tags.ts';
import { listReferrers } from '../../model/manifests.ts';
import { listVisibleRepositories } from '../../model/catalog.ts';
import { parseDigest } from '../../model/names.ts';
import type { VerifiedToken } from '../../model/registry-tokens.ts';
import { ANONYMOUS } from '../../model/context.ts';
import { OCI_INDEX } from '../../model/manifest-format.ts';

function paging(req: FastifyRequest, max: number): { n: number; last: string | null } {
  const q = req.query as Record<string, string | undefined>;
  let n = max;
  if (q.n !== undefined && q.n !== '') {
    n = Number(q.n);
    if (!Number.isInteger(n) || n < 0) throw new OciError('UNSUPPORTED', 'n must be a non-negative integer', { n: q.n }, 400);
    n = Math.min(n, max);
  }
  const last = q.last !== undefined && q.last !== '' ? q.last : null;
  if (last !== null && last.length > 512) throw new OciError('UNSUPPORTED', 'last is too long', undefined, 400);
  return { n, last };
}

function link(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}

export async function tags(rr: RegistryRequest): Promise<FastifyReply> {
  const s = rr.ctx.services;
  const repo = await resolveRepo(rr, 'pull');
  const { n, last } = paging(rr.req, s.config.tagListMaxPageSize);
  const names = n === 0 ? [] : await listTagNames(s, repo.id, n + 1, last);
  const more = names.length > n;
  const page = more ? names.slice(0, n) : names;
  if (more) rr.reply.header('Link', link(`/v2/${rr.name}/tags/list`, n, page[page.length - 1]!));
  return rr.reply.type('application/json').send({ name: rr.name, tags: page });
}

export async function catalog(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply, token: VerifiedToken | null): Promise<FastifyReply> {
  const s = ctx.services;
  const principal = token?.principal ?? ANONYMOUS;
  if (principal.kind === 'anonymous' && !(s.config.features.ANONYMOUS_ACCESS && s.config.features.PUBLIC_CATALOG)) {
    if (!token) reply.header('WWW-Authenticate', challenge(ctx, req, 'registry:catalog:*'));
    throw new OciError('UNAUTHORIZED', 'authentication required');
  }
  const { n, last } = paging(req, s.config.catalogMaxPageSize);
  const names = n === 0 ? [] : await listVisibleRepositories(s, principal, n + 1, last);
  const more = names.length > n;
  const page = more ? names.slice(0, n) : names;
  if (more) reply.header('Link', link('/v2/_catalog', n, page[page.length - 1]!));
  return reply.type('application/json').send({ repositories: page });
}

export async function referrers(rr: RegistryRequest): Promise<FastifyReply> {
  const s = rr.ctx.services;
  parseDigest(rr.arg);
  const repo = await resolveRepo(rr, 'pull');
  const q = rr.req.query as Record<string, string | string[] | undefined>;
  const artifactType = typeof q.artifactType === 'string' && q.artifactType !== '' ? q.artifactType : null;
  const manifests = await listReferrers(s, repo.id, rr.arg, artifactType);
  if (artifactType !== null) rr.reply.header('OCI-Filters-Applied', 'artifactType');
  // A Buffer body keeps Fastify from appending '; charset=utf-8' to the OCI media type.
  return rr.reply.code(200).type(OCI_INDEX).send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })));
}

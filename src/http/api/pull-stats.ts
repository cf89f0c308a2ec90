// Pull counts and last pull dates of a tag or a manifest (FEATURE_IMAGE_PULL_STATS). Only callers
// the repository is shared with may read them, even when it is public (Quay's require_repo_read_grant).
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import { manifestPullStatistics, tagPullStatistics } from '../../model/pull-stats.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { ManifestParams, manifestParamDocs } from './manifest.ts';
import { splitRepositoryParam } from './repo-path.ts';
import { REPOSITORY_DOC } from './repository.ts';
import { formatDate } from './shapes.ts';

function repoName(s: Services, req: FastifyRequest): { namespace: string; name: string } {
  const lib = typeof s.config.raw.LIBRARY_NAMESPACE === 'string' && s.config.raw.LIBRARY_NAMESPACE ? s.config.raw.LIBRARY_NAMESPACE : 'library';
  return splitRepositoryParam((req.params as { repository: string }).repository, lib);
}

export const pullStatsRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository/{repository}/tag/{tag}/pull_statistics', nickname: 'getTagPullStatistics', tag: 'tag',
    scopes: ['repo:read'], features: ['IMAGE_PULL_STATS'],
    description: 'Get pull statistics for a specific tag.',
    paramDocs: { repository: REPOSITORY_DOC, tag: 'The name of the tag' },
    params: Type.Object({ repository: Type.String(), tag: Type.String() }),
    response: Type.Object({
      tag_name: Type.String(),
      tag_pull_count: Type.Integer(),
      last_tag_pull_date: Nullable(Type.String()),
      current_manifest_digest: Nullable(Type.String()),
      manifest_pull_count: Type.Integer(),
      last_manifest_pull_date: Nullable(Type.String()),
    }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { namespace, name } = repoName(s, req);
      const t = await tagPullStatistics(s, req.principal, namespace, name, req.params.tag);
      return {
        tag_name: t.tagName,
        tag_pull_count: t.tagPullCount,
        last_tag_pull_date: formatDate(t.lastTagPullAt),
        current_manifest_digest: t.currentManifestDigest,
        manifest_pull_count: t.manifestPullCount,
        last_manifest_pull_date: formatDate(t.lastManifestPullAt),
      };
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/manifest/{manifestref}/pull_statistics', nickname: 'getManifestPullStatistics', tag: 'manifest',
    scopes: ['repo:read'], features: ['IMAGE_PULL_STATS'],
    description: 'Get pull statistics for a specific manifest.',
    paramDocs: manifestParamDocs, params: ManifestParams,
    response: Type.Object({
      manifest_digest: Type.String(),
      manifest_pull_count: Type.Integer(),
      last_manifest_pull_date: Nullable(Type.String()),
    }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { namespace, name } = repoName(s, req);
      const m = await manifestPullStatistics(s, req.principal, namespace, name, req.params.manifestref);
      return { manifest_digest: m.manifestDigest, manifest_pull_count: m.manifestPullCount, last_manifest_pull_date: formatDate(m.lastManifestPullAt) };
    },
  }),
];

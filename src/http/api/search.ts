// Search: /find/repositories (paged repository search) and /find/all (everything the caller can
// see whose name matches). /entities/{prefix} lives with the entity autocomplete.
import { Type } from 'typebox';
import type { Principal, Services } from '../../model/context.ts';
import {
  lastModified, SEARCH_SCORES, searchAll, searchRepositories, searchSettings, type RepoHit, type SearchAccount,
} from '../../model/search.ts';
import { defineRoute, Nullable, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { AvatarSchema, avatar, userAvatar } from './shapes.ts';

const EntityView = Type.Object({
  title: Type.String(),
  kind: Type.String(),
  avatar: Nullable(AvatarSchema),
  name: Type.String(),
  score: Type.Number(),
  href: Type.String(),
  short_name: Type.Optional(Type.String()),
});

const RepoView = Type.Object({
  kind: Type.String(),
  title: Type.String(),
  namespace: EntityView,
  name: Type.String(),
  description: Nullable(Type.String()),
  is_public: Type.Boolean(),
  score: Type.Number(),
  href: Type.String(),
  last_modified: Type.Optional(Nullable(Type.Integer())),
  stars: Type.Optional(Type.Integer()),
  popularity: Type.Optional(Type.Number()),
});

const TeamView = Type.Object({
  kind: Type.String(),
  name: Type.String(),
  organization: EntityView,
  avatar: AvatarSchema,
  score: Type.Number(),
  href: Type.String(),
});

const AnyResult = Type.Union([RepoView, TeamView, EntityView]);

function viewerName(p: Principal): string | null {
  return p.kind === 'anonymous' ? null : p.username;
}

/** Quay's search_entity_view for a user, organization or robot. */
function entityView(s: Services, viewer: string | null, a: SearchAccount, shortName?: string): Record<string, unknown> {
  let view: Record<string, unknown>;
  if (a.kind === 'org') {
    view = { title: 'org', kind: 'organization', avatar: avatar(s, a.username, a.email, 'org'), name: a.username, href: `/organization/${a.username}` };
  } else if (a.kind === 'robot') {
    const owner = a.username.slice(0, a.username.indexOf('+'));
    const href = owner === viewer
      ? `/user/${owner}?tab=robots&showRobot=${a.username}`
      : `/organization/${owner}?tab=robots&showRobot=${a.username}`;
    view = { title: 'robot', kind: 'robot', avatar: null, name: a.username, href };
  } else {
    view = { title: 'user', kind: 'user', avatar: userAvatar(s, a), name: a.username, href: `/user/${a.username}` };
  }
  view.score = SEARCH_SCORES.entity;
  if (shortName !== undefined) view.short_name = shortName;
  return view;
}

/** Quay's repo_result_view. */
function repoView(s: Services, viewer: string | null, r: RepoHit, usage?: { lastModified: number | null }): Record<string, unknown> {
  const kind = r.kind === 'application' ? 'application' : 'repository';
  const view: Record<string, unknown> = {
    kind,
    title: kind === 'application' ? 'app' : 'repo',
    namespace: entityView(s, viewer, r.namespace),
    name: r.name,
    description: r.description,
    is_public: r.isPublic,
    score: SEARCH_SCORES.repository,
    href: `/${kind}/${r.namespace.username}/${r.name}`,
  };
  if (usage) {
    if (usage.lastModified !== null) view.last_modified = usage.lastModified;
    view.stars = r.stars;
    view.popularity = r.popularity;
  }
  return view;
}

export const searchRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/find/repositories', nickname: 'conductRepoSearch', tag: 'search',
    description: 'Get a list of apps and repositories that match the specified query.',
    querystring: Type.Object({
      query: Type.String({ description: 'The search query.', default: '' }),
      page: Type.Integer({ description: 'The page.', default: 1 }),
      includeUsage: Type.Optional(TruthyBool('Whether to include usage metadata')),
    }),
    response: Type.Object({
      results: Type.Array(RepoView),
      has_additional: Type.Boolean(),
      page: Type.Integer(),
      page_size: Type.Integer(),
      start_index: Type.Integer(),
    }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { perPage, maxPages } = searchSettings(s);
      const page = Math.min(Math.max(1, req.query.page), maxPages);
      const offset = (page - 1) * perPage;
      const hits = await searchRepositories(s, req.principal, req.query.query, { offset, limit: perPage + 1 });
      const shown = hits.slice(0, perPage);
      const viewer = viewerName(req.principal);
      const usage = truthy(req.query.includeUsage) ? await lastModified(s, shown.map((h) => h.id)) : null;
      return {
        results: shown.map((h) => repoView(s, viewer, h, usage ? { lastModified: usage.get(h.id) ?? null } : undefined)),
        has_additional: hits.length > perPage,
        page,
        page_size: perPage,
        start_index: offset,
      };
    },
  }),
  defineRoute({
    method: 'GET', path: '/find/all', nickname: 'conductSearch', scopes: ['repo:read'], tag: 'search',
    description: 'Get a list of entities and resources that match the specified query.',
    querystring: Type.Object({ query: Type.String({ description: 'The search query.', default: '' }) }),
    response: Type.Object({ results: Type.Array(AnyResult) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const viewer = viewerName(req.principal);
      const hits = await searchAll(s, req.principal, req.query.query);
      return {
        results: hits.map((h) => {
          switch (h.kind) {
            case 'repository': return { ...repoView(s, viewer, h.repo), score: h.score };
            case 'namespace': return { ...entityView(s, viewer, h.account), score: h.score };
            case 'robot': return { ...entityView(s, viewer, h.account, h.shortName), score: h.score };
            case 'team': return {
              kind: 'team', name: h.team.name, organization: entityView(s, viewer, h.org),
              avatar: avatar(s, h.team.name, h.team.name, 'team'), score: h.score, href: `/organization/${h.org.username}/teams/${h.team.name}`,
            };
          }
        }),
      };
    },
  }),
];

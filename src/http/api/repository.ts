// /api/v1/repository: list, create, view, describe, delete, visibility, state and trust of
// repositories, plus the long-removed repository tokens (410 Gone, as in Quay).
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import { DomainError } from '../../model/errors.ts';
import type { Role } from '../../model/permissions.ts';
import {
  accessRepo, createRepositoryViaApi, listRepositories, markRepositoryForDeletion, repositoryView, setDescription, setRepositoryState, setTrust,
  REPO_STATES, type RepoAccess, type SettableRepoState,
} from '../../model/repository-api.ts';
import { setVisibility } from '../../model/repositories.ts';
import { PlainError } from './abort.ts';
import { defineRoute, Nullable, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { splitRepositoryParam } from './repo-path.ts';
import { formatDate } from './shapes.ts';

export const REPOSITORY_DOC = 'The full path of the repository. e.g. namespace/name';
export const RepoParams = Type.Object({ repository: Type.String() });

/** flask's abort(400) without a message, which several Quay handlers use. */
export const BAD_REQUEST_MESSAGE = 'The browser (or proxy) sent a request that this server could not understand.';

function libraryNamespace(s: Services): string {
  const v = s.config.raw.LIBRARY_NAMESPACE;
  return typeof v === 'string' && v ? v : 'library';
}

/** Resolves {repository} and checks the caller's role on it (Quay's require_repo_* decorators). */
export async function repoFor(
  s: Services, req: FastifyRequest, need: Role, opts: { readonlySuperuser?: boolean } = {},
): Promise<RepoAccess> {
  const { namespace, name } = splitRepositoryParam((req.params as { repository: string }).repository, libraryNamespace(s));
  return accessRepo(s, req.principal, namespace, name, need, opts);
}

/** Runs a model call whose invalid_request failures Quay reports as flask-restful abort(400, message). */
export async function plain400<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof DomainError && e.code === 'invalid_request') throw new PlainError(400, e.message);
    throw e;
  }
}

const Success = Type.Object({ success: Type.Boolean() });

const RepoListItem = Type.Object({
  namespace: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  is_public: Type.Boolean(),
  kind: Type.String(),
  state: Nullable(Type.String()),
  last_modified: Type.Optional(Nullable(Type.Integer())),
  popularity: Type.Optional(Type.Number()),
  is_starred: Type.Optional(Type.Boolean()),
  quota_report: Type.Optional(Type.Object({ quota_bytes: Type.Integer(), configured_quota: Nullable(Type.Integer()) })),
});

const RepoViewTag = Type.Object({
  name: Type.String(),
  size: Nullable(Type.Integer()),
  last_modified: Type.Optional(Type.String()),
  expiration: Type.Optional(Type.String()),
  manifest_digest: Type.Optional(Type.String()),
});

const RepoView = Type.Object({
  namespace: Type.String(),
  name: Type.String(),
  kind: Type.String(),
  description: Nullable(Type.String()),
  is_public: Type.Boolean(),
  is_organization: Type.Boolean(),
  is_starred: Type.Boolean(),
  status_token: Type.String(),
  trust_enabled: Type.Boolean(),
  tag_expiration_s: Type.Integer(),
  is_free_account: Type.Boolean(),
  state: Nullable(Type.String()),
  tags: Type.Optional(Type.Record(Type.String(), RepoViewTag)),
  can_write: Type.Boolean(),
  can_admin: Type.Boolean(),
  stats: Type.Optional(Type.Array(Type.Object({ date: Type.String(), count: Type.Integer() }))),
});

const Visibility = Type.Unsafe<'public' | 'private'>({ type: 'string', enum: ['public', 'private'], description: 'Visibility which the repository will start with' });
const ChangeVisibility = Type.Object({ visibility: Visibility }, { description: 'Change the visibility for the repository.' });

const NewRepo = Type.Object({
  repository: Type.String({ description: 'Repository name' }),
  visibility: Visibility,
  namespace: Type.Optional(Type.String({ description: 'Namespace in which the repository should be created. If omitted, the username of the caller is used' })),
  description: Type.String({ description: 'Markdown encoded description for the repository' }),
  repo_kind: Type.Optional(Type.Unsafe<'image' | null>({ type: ['string', 'null'], enum: ['image', null], description: 'The kind of repository' })),
}, { description: 'Description of a new repository' });


const GONE = { list: 'Handling of access tokens is no longer supported', create: 'Creation of access tokens is no longer supported' };
const TokenParams = Type.Object({ repository: Type.String(), code: Type.String() });
const Message = Type.Object({ message: Type.String() });

function tokenRoute(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, nickname: string, message: string, body?: ReturnType<typeof Type.Object>, bodyName?: string): AnyRoute {
  return defineRoute({
    method, path, nickname, tag: 'repotoken', scopes: ['repo:admin'], status: 410,
    description: 'Legacy repository access tokens (no longer supported).',
    paramDocs: { repository: REPOSITORY_DOC, code: 'The token code' },
    params: path.includes('{code}') ? TokenParams : RepoParams,
    ...(body ? { body, bodyName } : {}),
    response: Message,
    async handler(req, _reply, env) {
      await repoFor(env.ctx.services, req, 'admin', { readonlySuperuser: method === 'GET' });
      return { message };
    },
  });
}

export const repositoryRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository', nickname: 'listRepos', scopes: ['repo:read'],
    description: 'Fetch the list of repositories visible to the current user under a variety of situations.',
    querystring: Type.Object({
      namespace: Type.Optional(Type.String({ description: 'Filters the repositories returned to this namespace' })),
      starred: Type.Optional(TruthyBool('Filters the repositories returned to those starred by the user')),
      public: Type.Optional(TruthyBool('Adds any repositories visible to the user by virtue of being public')),
      last_modified: Type.Optional(TruthyBool('Whether to include when the repository was last modified.')),
      popularity: Type.Optional(TruthyBool("Whether to include the repository's popularity metric.")),
      repo_kind: Type.Optional(Type.String({ description: 'The kind of repositories to return', default: 'image' })),
      next_page: Type.Optional(Type.String({ description: 'The page token for the next page' })),
    }),
    response: Type.Object({ repositories: Type.Array(RepoListItem), next_page: Type.Optional(Type.String()) }),
    async handler(req, _reply, env) {
      const q = req.query;
      const starred = truthy(q.starred);
      // Quay's bare abort(400): nobody has no stars.
      if (starred && req.principal.kind === 'anonymous') throw new PlainError(400, BAD_REQUEST_MESSAGE);
      const r = await listRepositories(env.ctx.services, req.principal, {
        namespace: q.namespace || null, starred, public: truthy(q.public), lastModified: truthy(q.last_modified), popularity: truthy(q.popularity),
        repoKind: q.repo_kind ?? 'image', nextPage: q.next_page ?? null,
      });
      return { repositories: r.repositories, ...(r.nextPage ? { next_page: r.nextPage } : {}) };
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository', nickname: 'createRepo', scopes: ['repo:create'], status: 201,
    description: 'Create a new repository.',
    body: NewRepo, bodyName: 'NewRepo',
    response: Type.Object({ namespace: Type.String(), name: Type.String(), kind: Type.String() }),
    async handler(req, _reply, env) {
      const b = req.body;
      const repo = await createRepositoryViaApi(env.ctx.services, req.principal, {
        namespace: b.namespace ?? null, name: b.repository, visibility: b.visibility, description: b.description, kind: b.repo_kind ?? 'image',
      }, req.ip);
      return { namespace: repo.namespace, name: repo.name, kind: repo.kind };
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}', nickname: 'getRepo', scopes: ['repo:read'],
    description: 'Fetch the specified repository.',
    paramDocs: { repository: REPOSITORY_DOC },
    params: RepoParams,
    querystring: Type.Object({
      includeStats: Type.Optional(TruthyBool('Whether to include action statistics')),
      includeTags: Type.Optional(TruthyBool('Whether to include repository tags')),
    }),
    response: RepoView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const access = await repoFor(s, req, 'read');
      const v = await repositoryView(s, req.principal, access, { includeTags: truthy(req.query.includeTags, true), includeStats: truthy(req.query.includeStats) });
      const r = v.repo;
      return {
        namespace: r.namespace, name: r.name, kind: r.kind, description: r.description, is_public: r.is_public === 1,
        is_organization: v.is_organization, is_starred: v.is_starred, status_token: v.status_token, trust_enabled: v.trust_enabled,
        tag_expiration_s: v.tag_expiration_s, is_free_account: true, state: r.state,
        ...(v.tags ? {
          tags: Object.fromEntries(v.tags.map((t) => [t.name, {
            name: t.name, size: t.size,
            ...(t.last_modified !== undefined ? { last_modified: formatDate(t.last_modified)! } : {}),
            ...(t.expiration !== undefined ? { expiration: formatDate(t.expiration)! } : {}),
            manifest_digest: t.manifest_digest,
          }])),
        } : {}),
        can_write: v.can_write, can_admin: v.can_admin,
        ...(v.stats ? { stats: v.stats } : {}),
      };
    },
  }),
  defineRoute({
    method: 'PUT', path: '/repository/{repository}', nickname: 'updateRepo', scopes: ['repo:write'],
    description: 'Update the description in the specified repository.',
    paramDocs: { repository: REPOSITORY_DOC },
    params: RepoParams,
    body: Type.Object({ description: Type.String({ description: 'Markdown encoded description for the repository' }) }, { description: 'Fields which can be updated in a repository.' }),
    bodyName: 'RepoUpdate',
    response: Success,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'write');
      await setDescription(s, repo, req.body.description, { performer: req.principal, ip: req.ip });
      return { success: true };
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/repository/{repository}', nickname: 'deleteRepository', scopes: ['repo:admin'], status: 204,
    description: 'Delete a repository.',
    paramDocs: { repository: REPOSITORY_DOC },
    params: RepoParams,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'admin');
      await markRepositoryForDeletion(s, repo, { performer: req.principal, ip: req.ip });
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository/{repository}/changevisibility', nickname: 'changeRepoVisibility', scopes: ['repo:admin'],
    description: 'Change the visibility of a repository.',
    paramDocs: { repository: REPOSITORY_DOC },
    params: RepoParams,
    body: ChangeVisibility, bodyName: 'ChangeVisibility',
    response: Success,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'admin');
      await setVisibility(s, repo, req.body.visibility, req.principal, req.ip);
      return { success: true };
    },
  }),
  defineRoute({
    method: 'PUT', path: '/repository/{repository}/changestate', nickname: 'changeRepoState', scopes: ['repo:admin'], features: ['REPO_MIRROR'],
    description: 'Change the state of a repository.',
    paramDocs: { repository: REPOSITORY_DOC },
    params: RepoParams,
    body: Type.Object({
      state: Type.Unsafe<SettableRepoState>({ type: 'string', enum: [...REPO_STATES], description: 'Determines whether pushes are allowed.' }),
    }, { description: 'Change the state of the repository.' }),
    bodyName: 'ChangeRepoState',
    response: Success,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'admin');
      await setRepositoryState(s, repo, req.body.state, { performer: req.principal, ip: req.ip });
      return { success: true };
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository/{repository}/changetrust', nickname: 'changeRepoTrust', scopes: ['repo:admin'], features: ['SIGNING'],
    description: 'Change the trust settings of a repository.',
    paramDocs: { repository: REPOSITORY_DOC },
    params: RepoParams,
    body: Type.Object({
      trust_enabled: Type.Boolean({ description: 'Whether or not signing is enabled for the repository.' }),
    }, { description: 'Change the trust settings for the repository.' }),
    bodyName: 'ChangeRepoTrust',
    response: Success,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'admin');
      await setTrust(s, repo, req.body.trust_enabled, { performer: req.principal, ip: req.ip });
      return { success: true };
    },
  }),
  tokenRoute('GET', '/repository/{repository}/tokens/', 'listRepoTokens', GONE.list),
  tokenRoute('POST', '/repository/{repository}/tokens/', 'createToken', GONE.create,
    Type.Object({ friendlyName: Type.String({ description: 'Friendly name to help identify the token' }) }, { description: 'Description of a new token.' }), 'NewToken'),
  tokenRoute('GET', '/repository/{repository}/tokens/{code}', 'getTokens', GONE.list),
  tokenRoute('PUT', '/repository/{repository}/tokens/{code}', 'changeToken', GONE.list,
    Type.Object({ role: Type.Unsafe<string>({ type: 'string', enum: ['read', 'write', 'admin'], description: 'Role to use for the token' }) }, { description: 'Description of a token permission' }), 'TokenPermission'),
  tokenRoute('DELETE', '/repository/{repository}/tokens/{code}', 'deleteToken', GONE.list),
];

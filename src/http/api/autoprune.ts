// /api/v1 auto-prune policies (FEATURE_AUTO_PRUNE): an organization's, the calling user's own
// namespace's, and a repository's (Quay's endpoints/api/policy.py).
import { Type, type TSchema, type TUnsafe } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../model/context.ts';
import {
  createAutoprunePolicy, deleteAutoprunePolicy, getAutoprunePolicy, listAutoprunePolicies, updateAutoprunePolicy,
  type AutoprunePolicy, type PolicyOwner,
} from '../../model/autoprune.ts';
import { actorOf } from './data-model.ts';
import { splitRepositoryParam } from './repo-path.ts';
import { REPOSITORY_DOC } from './repository.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';

const IntOrString = (description?: string): TUnsafe<number | string> =>
  Type.Unsafe<number | string>({ type: ['integer', 'string'], ...(description ? { description } : {}) } as unknown as TSchema);

const PolicyView = Type.Object({
  uuid: Type.String(),
  method: Nullable(Type.String()),
  value: Type.Unsafe<number | string | null>({ type: ['integer', 'string', 'null'] } as unknown as TSchema),
  tagPattern: Nullable(Type.String()),
  tagPatternMatches: Nullable(Type.Boolean()),
});
const PolicyList = Type.Object({ policies: Type.Array(PolicyView) });
const UuidView = Type.Object({ uuid: Type.String() });

function configSchema(target: string) {
  return Type.Object({
    method: Type.String({ description: 'The method to use for pruning tags (number_of_tags, creation_date)' }),
    value: IntOrString('The value to use for the pruning method (number of tags e.g. 10, time delta e.g. 7d (7 days))'),
    tagPattern: Type.Optional(Type.String({ description: 'Tags only matching this pattern will be pruned' })),
    tagPatternMatches: Type.Optional(Type.Boolean({ description: 'Determine whether pruned tags should or should not match the tagPattern' })),
  }, { description: `The policy configuration that is to be applied to the ${target}` });
}

function view(p: AutoprunePolicy) {
  return { uuid: p.uuid, method: p.method, value: p.value, tagPattern: p.tagPattern, tagPatternMatches: p.tagPatternMatches };
}

/** `namespace/name` from Quay's {repository} parameter (a bare name is in LIBRARY_NAMESPACE). */
export function repoOwner(s: Services, repository: string): { kind: 'repo'; namespace: string; name: string } {
  const lib = typeof s.config.raw.LIBRARY_NAMESPACE === 'string' && s.config.raw.LIBRARY_NAMESPACE ? s.config.raw.LIBRARY_NAMESPACE : 'library';
  return { kind: 'repo', ...splitRepositoryParam(repository, lib) };
}

interface Area {
  /** Path below /api/v1 up to and including `autoprunepolicy/`. */
  base: string;
  scope: string;
  nick: { list: string; create: string; get: string; update: string; delete: string };
  target: string;
  params: Record<string, TSchema>;
  docs: Record<string, string>;
  owner(s: Services, req: FastifyRequest): PolicyOwner;
}

const UUID_DOC = 'The unique ID of the policy';

const AREAS: Area[] = [
  {
    base: '/organization/{orgname}/autoprunepolicy/', scope: 'org:admin', target: 'organization',
    nick: {
      list: 'listOrganizationAutoPrunePolicies', create: 'createOrganizationAutoPrunePolicy', get: 'getOrganizationAutoPrunePolicy',
      update: 'updateOrganizationAutoPrunePolicy', delete: 'deleteOrganizationAutoPrunePolicy',
    },
    params: { orgname: Type.String() }, docs: { orgname: 'The name of the organization' },
    owner: (_s, req) => ({ kind: 'org', orgname: (req.params as { orgname: string }).orgname }),
  },
  {
    base: '/repository/{repository}/autoprunepolicy/', scope: 'repo:admin', target: 'repository',
    nick: {
      list: 'listRepositoryAutoPrunePolicies', create: 'createRepositoryAutoPrunePolicy', get: 'getRepositoryAutoPrunePolicy',
      update: 'updateRepositoryAutoPrunePolicy', delete: 'deleteRepositoryAutoPrunePolicy',
    },
    params: { repository: Type.String() }, docs: { repository: REPOSITORY_DOC },
    owner: (s, req) => repoOwner(s, (req.params as { repository: string }).repository),
  },
  {
    base: '/user/autoprunepolicy/', scope: 'user:admin', target: 'user namespace',
    nick: {
      list: 'listUserAutoPrunePolicies', create: 'createUserAutoPrunePolicy', get: 'getUserAutoPrunePolicy',
      update: 'updateUserAutoPrunePolicy', delete: 'deleteUserAutoPrunePolicy',
    },
    params: {}, docs: {},
    owner: () => ({ kind: 'user' }),
  },
];

function areaRoutes(a: Area): AnyRoute[] {
  const common = { tag: 'policy', scopes: [a.scope], features: ['AUTO_PRUNE'] };
  const listParams = Type.Object(a.params);
  const oneParams = Type.Object({ ...a.params, policy_uuid: Type.String() });
  const oneDocs = { ...a.docs, policy_uuid: UUID_DOC };
  const body = configSchema(a.target);
  return [
    defineRoute({
      ...common, method: 'GET', path: a.base, nickname: a.nick.list, paramDocs: a.docs,
      description: `Lists the auto-prune policies for the ${a.target}`,
      ...(Object.keys(a.params).length ? { params: listParams } : {}), response: PolicyList,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return { policies: (await listAutoprunePolicies(s, req.principal, a.owner(s, req))).map(view) };
      },
    }),
    defineRoute({
      ...common, method: 'POST', path: a.base, nickname: a.nick.create, paramDocs: a.docs, status: 201,
      description: `Creates an auto-prune policy for the ${a.target}`,
      ...(Object.keys(a.params).length ? { params: listParams } : {}), body, bodyName: 'AutoPrunePolicyConfig', response: UuidView,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return { uuid: await createAutoprunePolicy(s, actorOf(req), a.owner(s, req), req.body) };
      },
    }),
    defineRoute({
      ...common, method: 'GET', path: `${a.base}{policy_uuid}`, nickname: a.nick.get, paramDocs: oneDocs,
      description: `Fetches the auto-prune policy for the ${a.target}`,
      params: oneParams, response: PolicyView,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return view(await getAutoprunePolicy(s, req.principal, a.owner(s, req), (req.params as { policy_uuid: string }).policy_uuid));
      },
    }),
    defineRoute({
      ...common, method: 'PUT', path: `${a.base}{policy_uuid}`, nickname: a.nick.update, paramDocs: oneDocs, status: 204,
      description: `Updates the auto-prune policy for the ${a.target}`,
      params: oneParams, body, bodyName: 'AutoPrunePolicyConfig',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        // Quay answers {"uuid"} with a 204, so clients never see a body.
        await updateAutoprunePolicy(s, actorOf(req), a.owner(s, req), (req.params as { policy_uuid: string }).policy_uuid, req.body);
      },
    }),
    defineRoute({
      ...common, method: 'DELETE', path: `${a.base}{policy_uuid}`, nickname: a.nick.delete, paramDocs: oneDocs,
      description: `Deletes the auto-prune policy for the ${a.target}`,
      params: oneParams, response: UuidView,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        const uuid = (req.params as { policy_uuid: string }).policy_uuid;
        await deleteAutoprunePolicy(s, actorOf(req), a.owner(s, req), uuid);
        return { uuid };
      },
    }),
  ];
}

export const autopruneRoutes: AnyRoute[] = AREAS.flatMap(areaRoutes);

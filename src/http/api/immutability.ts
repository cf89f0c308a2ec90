// /api/v1 tag-immutability policies (FEATURE_IMMUTABLE_TAGS) of organizations and repositories
// (Quay's endpoints/api/immutability_policy.py).
import { Type, type TSchema } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../model/context.ts';
import {
  createImmutabilityPolicy, deleteImmutabilityPolicy, getImmutabilityPolicy, listImmutabilityPolicies, updateImmutabilityPolicy,
  type ImmutabilityOwner, type ImmutabilityPolicy,
} from '../../model/immutability.ts';
import { repoOwner } from './autoprune.ts';
import { actorOf } from './data-model.ts';
import { REPOSITORY_DOC } from './repository.ts';
import { defineRoute, type AnyRoute } from './route.ts';

const PolicyView = Type.Object({ uuid: Type.String(), tagPattern: Type.String(), tagPatternMatches: Type.Boolean() });
const UuidView = Type.Object({ uuid: Type.String() });
const Config = Type.Object({
  tagPattern: Type.String({ description: 'Regex pattern to match tag names' }),
  tagPatternMatches: Type.Optional(Type.Boolean({ description: 'If true, matching tags are immutable. If false, non-matching tags are immutable.' })),
}, { description: 'The immutability policy configuration' });

function view(p: ImmutabilityPolicy) {
  return { uuid: p.uuid, tagPattern: p.tagPattern, tagPatternMatches: p.tagPatternMatches };
}

interface Area {
  base: string;
  scope: string;
  nick: { list: string; create: string; get: string; update: string; delete: string };
  params: Record<string, TSchema>;
  docs: Record<string, string>;
  owner(s: Services, req: FastifyRequest): ImmutabilityOwner;
}

const AREAS: Area[] = [
  {
    base: '/organization/{orgname}/immutabilitypolicy/', scope: 'org:admin',
    nick: {
      list: 'listOrgImmutabilityPolicies', create: 'createOrgImmutabilityPolicy', get: 'getOrgImmutabilityPolicy',
      update: 'updateOrgImmutabilityPolicy', delete: 'deleteOrgImmutabilityPolicy',
    },
    params: { orgname: Type.String() }, docs: { orgname: 'The name of the organization' },
    owner: (_s, req) => ({ kind: 'org', orgname: (req.params as { orgname: string }).orgname }),
  },
  {
    base: '/repository/{repository}/immutabilitypolicy/', scope: 'repo:admin',
    nick: {
      list: 'listRepositoryImmutabilityPolicies', create: 'createRepositoryImmutabilityPolicy', get: 'getRepositoryImmutabilityPolicy',
      update: 'updateRepositoryImmutabilityPolicy', delete: 'deleteRepositoryImmutabilityPolicy',
    },
    params: { repository: Type.String() }, docs: { repository: REPOSITORY_DOC },
    owner: (s, req) => repoOwner(s, (req.params as { repository: string }).repository),
  },
];

function areaRoutes(a: Area): AnyRoute[] {
  const common = { tag: 'immutability_policy', scopes: [a.scope], features: ['IMMUTABLE_TAGS'] };
  const listParams = Type.Object(a.params);
  const oneParams = Type.Object({ ...a.params, policy_uuid: Type.String() });
  const oneDocs = { ...a.docs, policy_uuid: 'The unique ID of the policy' };
  const uuidOf = (req: FastifyRequest) => (req.params as { policy_uuid: string }).policy_uuid;
  return [
    defineRoute({
      ...common, method: 'GET', path: a.base, nickname: a.nick.list, paramDocs: a.docs,
      description: 'Lists the tag immutability policies', params: listParams, response: Type.Object({ policies: Type.Array(PolicyView) }),
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return { policies: (await listImmutabilityPolicies(s, req.principal, a.owner(s, req))).map(view) };
      },
    }),
    defineRoute({
      ...common, method: 'POST', path: a.base, nickname: a.nick.create, paramDocs: a.docs, status: 201,
      description: 'Creates a tag immutability policy', params: listParams, body: Config, bodyName: 'ImmutabilityPolicyConfig', response: UuidView,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return { uuid: await createImmutabilityPolicy(s, actorOf(req), a.owner(s, req), req.body) };
      },
    }),
    defineRoute({
      ...common, method: 'GET', path: `${a.base}{policy_uuid}`, nickname: a.nick.get, paramDocs: oneDocs,
      description: 'Fetches a tag immutability policy', params: oneParams, response: PolicyView,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return view(await getImmutabilityPolicy(s, req.principal, a.owner(s, req), uuidOf(req)));
      },
    }),
    defineRoute({
      ...common, method: 'PUT', path: `${a.base}{policy_uuid}`, nickname: a.nick.update, paramDocs: oneDocs, status: 204,
      description: 'Updates a tag immutability policy', params: oneParams, body: Config, bodyName: 'ImmutabilityPolicyConfig',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        // Quay answers {"uuid"} with a 204, so clients never see a body.
        await updateImmutabilityPolicy(s, actorOf(req), a.owner(s, req), uuidOf(req), req.body);
      },
    }),
    defineRoute({
      ...common, method: 'DELETE', path: `${a.base}{policy_uuid}`, nickname: a.nick.delete, paramDocs: oneDocs,
      description: 'Deletes a tag immutability policy', params: oneParams, response: UuidView,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        await deleteImmutabilityPolicy(s, actorOf(req), a.owner(s, req), uuidOf(req));
        return { uuid: uuidOf(req) };
      },
    }),
  ];
}

export const immutabilityRoutes: AnyRoute[] = AREAS.flatMap(areaRoutes);

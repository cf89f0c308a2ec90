// GET /api/v1/entities/{prefix}: autocomplete for users, robots, teams and organizations.
// POST /api/v1/entities/link/{username}: link an external directory user (federated backends only).
import { Type } from 'typebox';
import { linkExternalUser, searchEntities } from '../../model/entities.ts';
import { NOT_FOUND_MESSAGE, PlainError } from './abort.ts';
import { teamAvatar } from './organization.ts';
import { defineRoute, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { AvatarSchema, avatar, userAvatar } from './shapes.ts';

// Users (and robots), then teams and organizations, each in Quay's field order.
const UserEntity = Type.Object({
  name: Type.String(),
  kind: Type.String(),
  is_robot: Type.Boolean(),
  avatar: AvatarSchema,
  is_org_member: Type.Optional(Type.Boolean()),
});
const GroupEntity = Type.Object({ name: Type.String(), kind: Type.String(), is_org_member: Type.Boolean(), avatar: AvatarSchema });
const EntityView = Type.Union([UserEntity, GroupEntity]);
const LinkedEntity = Type.Object({
  entity: Type.Object({ name: Type.String(), kind: Type.String(), is_robot: Type.Boolean(), avatar: AvatarSchema }),
});

export const entitiesRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/entities/{prefix}', nickname: 'getMatchingEntities', tag: 'search',
    description: 'Get a list of entities that match the specified prefix.',
    paramDocs: { prefix: 'The prefix of the entities being looked up' },
    params: Type.Object({ prefix: Type.String() }),
    querystring: Type.Object({
      namespace: Type.Optional(Type.String({ description: 'Namespace to use when querying for org entities.' })),
      includeTeams: Type.Optional(TruthyBool('Whether to include team names.')),
      includeOrgs: Type.Optional(TruthyBool('Whether to include orgs names.')),
    }),
    response: Type.Object({ results: Type.Array(EntityView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const r = await searchEntities(s, req.principal, req.params.prefix, {
        namespace: req.query.namespace ?? '', includeTeams: truthy(req.query.includeTeams), includeOrgs: truthy(req.query.includeOrgs),
      });
      const teams = r.teams.map((t) => ({ name: t.name, kind: 'team', is_org_member: true, avatar: teamAvatar(s, t.name) }));
      const users = r.users.map((u) => ({
        name: u.user.username, kind: 'user', is_robot: u.user.kind === 'robot', avatar: userAvatar(s, u.user),
        ...(u.isOrgMember !== null ? { is_org_member: u.isOrgMember } : {}),
      }));
      const orgs = r.org ? [{ name: r.org.username, kind: 'org', is_org_member: true, avatar: avatar(s, r.org.username, r.org.email, 'org') }] : [];
      return { results: [...teams, ...users, ...orgs] };
    },
  }),
  defineRoute({
    method: 'POST', path: '/entities/link/{username}', nickname: 'linkExternalUser', tag: 'search', internal: true,
    params: Type.Object({ username: Type.String() }),
    response: LinkedEntity, responseName: 'LinkedEntity',
    async handler(req, _reply, env) {
      // Quay answers a non-federated backend with a bare abort(404), before looking at the caller.
      const r = linkExternalUser(env.ctx.services, req.params.username);
      if (r.reason === 'not_federated') throw new PlainError(404, NOT_FOUND_MESSAGE);
    },
  }),
];

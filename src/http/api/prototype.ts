// /api/v1/organization/{orgname}/prototypes: an organization's default permissions.
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import { createPrototype, deletePrototype, listPrototypes, updatePrototype, type Prototype, type PrototypeUser } from '../../model/prototypes.ts';
import { actorOf, dataModel } from './data-model.ts';
import { teamAvatar } from './organization.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { AvatarSchema, userAvatar } from './shapes.ts';
import { StringEnum } from './string-enum.ts';

const DOCS = { orgname: 'The name of the organization', prototypeid: 'The ID of the prototype' };
const ROLES = ['read', 'write', 'admin'] as const;

const UserEntity = Type.Object({
  name: Type.String(),
  is_robot: Type.Boolean(),
  kind: Type.String(),
  is_org_member: Type.Boolean(),
  avatar: AvatarSchema,
});
const TeamEntity = Type.Object({ name: Type.String(), kind: Type.String(), avatar: AvatarSchema });
const EntityView = Type.Union([UserEntity, TeamEntity]);

const PrototypeView = Type.Object({
  activating_user: Type.Union([UserEntity, Type.Null()]),
  delegate: EntityView,
  role: Type.String(),
  id: Type.String(),
});

function userView(s: Services, u: PrototypeUser) {
  return { name: u.user.username, is_robot: u.user.kind === 'robot', kind: 'user', is_org_member: u.isOrgMember, avatar: userAvatar(s, u.user) };
}

/** Quay's prototype_view. */
function prototypeView(s: Services, p: Prototype) {
  return {
    activating_user: p.activatingUser ? userView(s, p.activatingUser) : null,
    delegate: p.delegate.kind === 'user' ? userView(s, p.delegate.user) : { name: p.delegate.team.name, kind: 'team', avatar: teamAvatar(s, p.delegate.team.name) },
    role: p.role,
    id: p.uuid,
  };
}

const NewPrototype = Type.Object({
  role: StringEnum(ROLES, 'Role that should be applied to the delegate'),
  activating_user: Type.Optional(Type.Object({
    name: Type.String({ description: 'The username for the activating_user' }),
  }, { description: 'Repository creating user to whom the rule should apply' })),
  delegate: Type.Object({
    name: Type.String({ description: 'The name for the delegate team or user' }),
    kind: StringEnum(['user', 'team'] as const, 'Whether the delegate is a user or a team'),
  }, { description: 'Information about the user or team to which the rule grants access' }),
}, { description: 'Description of a new prototype' });

const OrgParams = Type.Object({ orgname: Type.String() });
const ProtoParams = Type.Object({ orgname: Type.String(), prototypeid: Type.String() });

export const prototypeRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/prototypes', nickname: 'getOrganizationPrototypePermissions', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'List the existing prototypes for this organization.',
    params: OrgParams, response: Type.Object({ prototypes: Type.Array(PrototypeView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return { prototypes: (await listPrototypes(s, req.principal, req.params.orgname)).map((p) => prototypeView(s, p)) };
    },
  }),
  defineRoute({
    method: 'POST', path: '/organization/{orgname}/prototypes', nickname: 'createOrganizationPrototypePermission', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Create a new permission prototype.',
    params: OrgParams, body: NewPrototype, bodyName: 'NewPrototype', response: PrototypeView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const b = req.body;
      const p = await dataModel(createPrototype(s, actorOf(req), req.params.orgname, {
        role: b.role, activatingUser: b.activating_user?.name ?? null, delegate: { kind: b.delegate.kind, name: b.delegate.name },
      }));
      return prototypeView(s, p);
    },
  }),
  defineRoute({
    method: 'PUT', path: '/organization/{orgname}/prototypes/{prototypeid}', nickname: 'updateOrganizationPrototypePermission', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Update the role of an existing permission prototype.',
    params: ProtoParams, body: Type.Object({ role: StringEnum(ROLES, 'Role that should be applied to the permission') }, { description: 'Description of a the new prototype role' }),
    bodyName: 'PrototypeUpdate', response: PrototypeView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return prototypeView(s, await updatePrototype(s, actorOf(req), req.params.orgname, req.params.prototypeid, req.body.role));
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/prototypes/{prototypeid}', nickname: 'deleteOrganizationPrototypePermission', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Delete an existing permission prototype.',
    params: ProtoParams, status: 204,
    async handler(req, _reply, env) {
      await deletePrototype(env.ctx.services, actorOf(req), req.params.orgname, req.params.prototypeid);
    },
  }),
];

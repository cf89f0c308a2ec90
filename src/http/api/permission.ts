// /api/v1/repository/{repository}/permissions: the direct roles users, robots and teams hold on a
// repository, and a user's effective roles through their teams.
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../model/context.ts';
import {
  deleteTeamPermission, deleteUserPermission, getTeamPermission, getUserPermission, listTeamPermissions, listUserPermissions,
  setTeamPermission, setUserPermission, transitivePermissions, type RepoRef, type UserPermission,
} from '../../model/repo-permissions.ts';
import { actorOf, dataModel } from './data-model.ts';
import { teamAvatar } from './organization.ts';
import { splitRepositoryParam } from './repo-path.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { AvatarSchema, userAvatar } from './shapes.ts';
import { StringEnum } from './string-enum.ts';

const DOCS = {
  repository: 'The full path of the repository. e.g. namespace/name',
  username: 'The username of the user to which the permission applies',
  teamname: 'The name of the team to which the permission applies',
};
const ROLES = ['read', 'write', 'admin'] as const;

function repoRef(s: Services, req: FastifyRequest): RepoRef {
  const lib = typeof s.config.raw.LIBRARY_NAMESPACE === 'string' ? s.config.raw.LIBRARY_NAMESPACE : 'library';
  const { namespace, name } = splitRepositoryParam((req.params as { repository: string }).repository, lib);
  return { namespace, name };
}

const UserPermissionView = Type.Object({
  role: Type.String(),
  name: Type.String(),
  is_robot: Type.Boolean(),
  avatar: AvatarSchema,
  is_org_member: Type.Optional(Type.Boolean()),
});

function userPermissionView(s: Services, p: UserPermission) {
  const view: Record<string, unknown> = { role: p.role, name: p.user.username, is_robot: p.user.kind === 'robot', avatar: userAvatar(s, p.user) };
  if (p.isOrgMember !== null) view.is_org_member = p.isOrgMember;
  return view;
}

const TeamPermissionView = Type.Object({ role: Type.String(), name: Type.String(), avatar: AvatarSchema });

const RepoParams = Type.Object({ repository: Type.String() });
const UserParams = Type.Object({ repository: Type.String(), username: Type.String() });
const TeamParams = Type.Object({ repository: Type.String(), teamname: Type.String() });

export const permissionRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository/{repository}/permissions/team/', nickname: 'listRepoTeamPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'List all team permission.',
    params: RepoParams, response: Type.Object({ permissions: Type.Record(Type.String(), TeamPermissionView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const perms = await listTeamPermissions(s, req.principal, repoRef(s, req));
      return { permissions: Object.fromEntries(perms.map((p) => [p.team.name, { role: p.role, name: p.team.name, avatar: teamAvatar(s, p.team.name) }])) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/permissions/user/', nickname: 'listRepoUserPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'List all user permissions.',
    params: RepoParams, response: Type.Object({ permissions: Type.Record(Type.String(), UserPermissionView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const perms = await listUserPermissions(s, req.principal, repoRef(s, req));
      return { permissions: Object.fromEntries(perms.map((p) => [p.user.username, userPermissionView(s, p)])) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/permissions/user/{username}/transitive', nickname: 'getUserTransitivePermission', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'Get the fetch the permission for the specified user.',
    params: UserParams, response: Type.Object({ permissions: Type.Array(Type.Object({ role: Type.String() })) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const roles = await transitivePermissions(s, req.principal, repoRef(s, req), req.params.username);
      return { permissions: roles.map((role) => ({ role })) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/permissions/user/{username}', nickname: 'getUserPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'Get the permission for the specified user.',
    params: UserParams, response: UserPermissionView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return userPermissionView(s, await dataModel(getUserPermission(s, req.principal, repoRef(s, req), req.params.username)));
    },
  }),
  defineRoute({
    method: 'PUT', path: '/repository/{repository}/permissions/user/{username}', nickname: 'changeUserPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'Update the perimssions for an existing repository.',
    params: UserParams, body: Type.Object({ role: StringEnum(ROLES, 'Role to use for the user') }, { description: 'Description of a user permission.' }),
    bodyName: 'UserPermission', response: UserPermissionView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return userPermissionView(s, await setUserPermission(s, actorOf(req), repoRef(s, req), req.params.username, req.body.role));
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/repository/{repository}/permissions/user/{username}', nickname: 'deleteUserPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'Delete the permission for the user.',
    params: UserParams, status: 204,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await deleteUserPermission(s, actorOf(req), repoRef(s, req), req.params.username);
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/permissions/team/{teamname}', nickname: 'getTeamPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'Fetch the permission for the specified team.',
    params: TeamParams, response: Type.Object({ role: Type.String() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return { role: await dataModel(getTeamPermission(s, req.principal, repoRef(s, req), req.params.teamname)) };
    },
  }),
  defineRoute({
    method: 'PUT', path: '/repository/{repository}/permissions/team/{teamname}', nickname: 'changeTeamPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'Update the existing team permission.',
    params: TeamParams, body: Type.Object({ role: StringEnum(ROLES, 'Role to use for the team') }, { description: 'Description of a team permission.' }),
    bodyName: 'TeamPermission', response: TeamPermissionView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await setTeamPermission(s, actorOf(req), repoRef(s, req), req.params.teamname, req.body.role);
      return { role: p.role, name: p.team.name, avatar: teamAvatar(s, p.team.name) };
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/repository/{repository}/permissions/team/{teamname}', nickname: 'deleteTeamPermissions', scopes: ['repo:admin'], paramDocs: DOCS,
    description: 'Delete the permission for the specified team.',
    params: TeamParams, status: 204,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await deleteTeamPermission(s, actorOf(req), repoRef(s, req), req.params.teamname);
    },
  }),
];

// /api/v1/organization/{orgname}/team: teams, their members and invites, the repository
// permissions they hold; /api/v1/teaminvite for the invited user (mailing only).
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import type { User } from '../../model/accounts.ts';
import {
  acceptInvite, addTeamMember, declineInvite, deleteEmailInvite, deleteTeam, disableTeamSync, enableTeamSync, inviteEmail,
  listTeamMembers, listTeamPermissions, removeTeamMember, upsertTeam, type TeamInvite, type TeamResult,
} from '../../model/teams.ts';
import { requireFreshLogin, requireUser } from './auth.ts';
import { actorOf, dataModel } from './data-model.ts';
import { teamAvatar } from './organization.ts';
import { defineRoute, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { AvatarSchema, avatar, userAvatar } from './shapes.ts';
import { StringEnum } from './string-enum.ts';

const TeamParams = Type.Object({ orgname: Type.String(), teamname: Type.String() });
const MemberParams = Type.Object({ orgname: Type.String(), teamname: Type.String(), membername: Type.String() });
const InviteParams = Type.Object({ orgname: Type.String(), teamname: Type.String(), email: Type.String() });
const DOCS = {
  orgname: 'The name of the organization', teamname: 'The name of the team',
  membername: 'The username of the team member', email: 'The e-mail address of the invite', code: 'The invite code',
};

const TeamView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  can_view: Type.Boolean(),
  role: Type.String(),
  avatar: AvatarSchema,
  new_team: Type.Boolean(),
});

function teamView(s: Services, r: TeamResult) {
  return { name: r.team.name, description: r.team.description, can_view: r.canView, role: r.team.role, avatar: teamAvatar(s, r.team.name), new_team: r.created };
}

const MemberView = Type.Object({
  name: Type.String(),
  kind: Type.String(),
  is_robot: Type.Boolean(),
  avatar: AvatarSchema,
  invited: Type.Boolean(),
});
const EmailInviteView = Type.Object({
  email: Type.String(),
  kind: Type.String(),
  avatar: AvatarSchema,
  invited: Type.Boolean(),
});
/** Team listings mix members (users and robots) with pending e-mail invites. */
const MemberOrInvite = Type.Union([MemberView, EmailInviteView]);

function memberView(s: Services, user: User, invited: boolean) {
  return { name: user.username, kind: 'user', is_robot: user.kind === 'robot', avatar: userAvatar(s, user), invited };
}

function inviteView(s: Services, i: TeamInvite) {
  if (i.user) return memberView(s, i.user, true);
  return { email: i.email!, kind: 'invite', avatar: avatar(s, i.email!, i.email!, 'user'), invited: true };
}

const TeamDescription = Type.Object({
  role: StringEnum(['member', 'creator', 'admin'], 'Org wide permissions that should apply to the team'),
  description: Type.Optional(Type.String({ description: 'Markdown description for the team' })),
}, { description: 'Description of a team' });

export const teamRoutes: AnyRoute[] = [
  defineRoute({
    method: 'PUT', path: '/organization/{orgname}/team/{teamname}', nickname: 'updateOrganizationTeam', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Update the org-wide permission for the specified team.',
    params: TeamParams, body: TeamDescription, bodyName: 'TeamDescription', response: TeamView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const r = await dataModel(upsertTeam(s, actorOf(req), req.params.orgname, req.params.teamname, { role: req.body.role, description: req.body.description }));
      return teamView(s, r);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/team/{teamname}', nickname: 'deleteOrganizationTeam', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Delete the specified team.',
    params: TeamParams, status: 204,
    async handler(req, _reply, env) {
      await dataModel(deleteTeam(env.ctx.services, actorOf(req), req.params.orgname, req.params.teamname));
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/team/{teamname}/members', nickname: 'getOrganizationTeamMembers', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Retrieve the list of members for the specified team.',
    params: TeamParams, querystring: Type.Object({ includePending: Type.Optional(TruthyBool('Whether to include pending members')) }),
    response: Type.Object({ name: Type.String(), members: Type.Array(MemberOrInvite), can_edit: Type.Boolean() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const r = await listTeamMembers(s, req.principal, req.params.orgname, req.params.teamname, truthy(req.query.includePending));
      return {
        name: req.params.teamname,
        members: [...r.members.map((m) => memberView(s, m, false)), ...r.invites.map((i) => inviteView(s, i))],
        can_edit: r.canEdit,
      };
    },
  }),
  defineRoute({
    method: 'PUT', path: '/organization/{orgname}/team/{teamname}/members/{membername}', nickname: 'updateOrganizationTeamMember', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Adds or invites a member to an existing team.',
    params: MemberParams, response: MemberView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { user, invited } = await dataModel(addTeamMember(s, actorOf(req), req.params.orgname, req.params.teamname, req.params.membername));
      return memberView(s, user, invited);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/team/{teamname}/members/{membername}', nickname: 'deleteOrganizationTeamMember', scopes: ['org:admin'], paramDocs: DOCS,
    description: 'Delete a member of a team. If the user is merely invited to join the team, then the invite is removed instead.',
    params: MemberParams, status: 204,
    async handler(req, _reply, env) {
      await dataModel(removeTeamMember(env.ctx.services, actorOf(req), req.params.orgname, req.params.teamname, req.params.membername));
    },
  }),
  defineRoute({
    method: 'PUT', path: '/organization/{orgname}/team/{teamname}/invite/{email}', nickname: 'inviteTeamMemberEmail', scopes: ['org:admin'], features: ['MAILING'], paramDocs: DOCS,
    description: 'Invites an email address to an existing team.',
    params: InviteParams, response: MemberOrInvite,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return inviteView(s, await inviteEmail(s, actorOf(req), req.params.orgname, req.params.teamname, req.params.email));
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/team/{teamname}/invite/{email}', nickname: 'deleteTeamMemberEmailInvite', scopes: ['org:admin'], features: ['MAILING'], paramDocs: DOCS,
    description: 'Delete an invite of an email address to join a team.',
    params: InviteParams, status: 204,
    async handler(req, _reply, env) {
      await deleteEmailInvite(env.ctx.services, actorOf(req), req.params.orgname, req.params.teamname, req.params.email);
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/team/{teamname}/permissions', nickname: 'getOrganizationTeamPermissions', paramDocs: DOCS,
    description: "Returns the list of repository permissions for the org's team.",
    params: TeamParams,
    response: Type.Object({ permissions: Type.Array(Type.Object({ repository: Type.Object({ name: Type.String(), is_public: Type.Boolean() }), role: Type.String() })) }),
    async handler(req, _reply, env) {
      const perms = await listTeamPermissions(env.ctx.services, req.principal, req.params.orgname, req.params.teamname);
      return { permissions: perms.map((p) => ({ repository: { name: p.repository, is_public: p.isPublic }, role: p.role })) };
    },
  }),
  defineRoute({
    method: 'POST', path: '/organization/{orgname}/team/{teamname}/syncing', nickname: 'enableOrganizationTeamSync', scopes: ['org:admin', 'super:user'], features: ['TEAM_SYNCING'], paramDocs: DOCS,
    params: TeamParams, response: TeamView,
    async handler(req, _reply, env) {
      // Quay's @require_fresh_login runs before the method's own permission check.
      await requireFreshLogin(env.ctx, req);
      return enableTeamSync(env.ctx.services, req.principal, req.params.orgname, req.params.teamname);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/team/{teamname}/syncing', nickname: 'disableOrganizationTeamSync', scopes: ['org:admin', 'super:user'], features: ['TEAM_SYNCING'], paramDocs: DOCS,
    params: TeamParams, response: TeamView,
    async handler(req, _reply, env) {
      // Quay's @require_fresh_login runs before the method's own permission check.
      await requireFreshLogin(env.ctx, req);
      const s = env.ctx.services;
      return teamView(s, await disableTeamSync(s, req.principal, req.params.orgname, req.params.teamname));
    },
  }),
  defineRoute({
    method: 'PUT', path: '/teaminvite/{code}', nickname: 'acceptOrganizationTeamInvite', scopes: ['user:admin'], features: ['MAILING'], internal: true, paramDocs: DOCS,
    description: 'Accepts an invite to join a team in an organization.',
    params: Type.Object({ code: Type.String() }), response: Type.Object({ org: Type.String(), team: Type.String() }),
    async handler(req, _reply, env) {
      requireUser(req);
      return dataModel(acceptInvite(env.ctx.services, actorOf(req), req.params.code));
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/teaminvite/{code}', nickname: 'declineOrganizationTeamInvite', scopes: ['user:admin'], features: ['MAILING'], internal: true, paramDocs: DOCS,
    description: 'Delete an existing invitation to join a team.',
    params: Type.Object({ code: Type.String() }), status: 204,
    async handler(req, _reply, env) {
      requireUser(req);
      await dataModel(declineInvite(env.ctx.services, actorOf(req), req.params.code));
    },
  }),
];

// /api/v1/organization: create, view, change and delete organizations; their members and outside
// collaborators.
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import type { User } from '../../model/accounts.ts';
import {
  createOrg, deleteOrganization, getMember, getOrganization, listCollaborators, listMembers, removeMember, updateOrganization,
  type OrgDetails,
} from '../../model/organizations.ts';
import { namespaceQuotas, quotaReport } from '../../model/profile.ts';
import { requireFreshLogin, requireUser } from './auth.ts';
import { actorOf, dataModel } from './data-model.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { AvatarSchema, avatar, userAvatar } from './shapes.ts';

const OrgParams = Type.Object({ orgname: Type.String() });
const MemberParams = Type.Object({ orgname: Type.String(), membername: Type.String() });
const ORG_DOCS = { orgname: 'The name of the organization', membername: 'The username of the organization member' };

export const teamAvatar = (s: Services, name: string) => avatar(s, name, name, 'team');

const TeamSummaryView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  role: Type.String(),
  avatar: AvatarSchema,
  can_view: Type.Boolean(),
  repo_count: Type.Integer(),
  member_count: Type.Integer(),
  is_synced: Type.Boolean(),
});

const QuotaView = Type.Object({
  id: Type.Integer(),
  limit_bytes: Type.Integer(),
  limits: Type.Array(Type.Object({ id: Type.Integer(), type: Type.String(), limit_percent: Type.Integer() })),
});

export const OrgView = Type.Object({
  name: Type.String(),
  email: Nullable(Type.String()),
  avatar: AvatarSchema,
  is_admin: Type.Boolean(),
  is_member: Type.Boolean(),
  teams: Type.Optional(Type.Record(Type.String(), TeamSummaryView)),
  ordered_teams: Type.Optional(Type.Array(Type.String())),
  invoice_email: Type.Optional(Type.Boolean()),
  invoice_email_address: Type.Optional(Nullable(Type.String())),
  tag_expiration_s: Type.Optional(Type.Integer()),
  is_free_account: Type.Optional(Type.Boolean()),
  quotas: Type.Optional(Type.Array(QuotaView)),
  quota_report: Type.Optional(Type.Object({
    quota_bytes: Type.Integer(), configured_quota: Nullable(Type.Integer()), running_backfill: Type.String(), backfill_status: Type.String(),
  })),
}, { description: 'Describes an organization' });

/** Quay's org_view. The organization's own avatar is built like a user's (kind "user"), as Quay does. */
export async function orgView(s: Services, d: OrgDetails): Promise<Record<string, unknown>> {
  const { org, access } = d;
  const view: Record<string, unknown> = {
    name: org.username,
    email: d.showEmail ? org.email : '',
    avatar: avatar(s, org.username, org.email, 'user'),
    is_admin: access.admin,
    is_member: access.member,
  };
  if (d.teams) {
    view.teams = Object.fromEntries(d.teams.map((t) => [t.name, {
      name: t.name, description: t.description, role: t.role, avatar: teamAvatar(s, t.name),
      can_view: t.canView, repo_count: t.repoCount, member_count: t.memberCount, is_synced: t.isSynced,
    }]));
    view.ordered_teams = d.teams.map((t) => t.name);
  }
  if (access.admin) {
    Object.assign(view, {
      invoice_email: org.invoice_email === 1,
      invoice_email_address: org.invoice_email_address,
      tag_expiration_s: org.tag_expiration_s,
      is_free_account: true,
    });
  }
  if ((access.admin || access.member) && s.config.features.QUOTA_MANAGEMENT && s.config.features.EDIT_QUOTA) {
    view.quotas = await namespaceQuotas(s, org.id);
    view.quota_report = await quotaReport(s, org.id);
  }
  return view;
}

const TeamRef = Type.Object({ name: Type.String(), avatar: AvatarSchema });
const MemberView = Type.Object({
  name: Type.String(),
  kind: Type.String(),
  avatar: AvatarSchema,
  teams: Type.Array(TeamRef),
  repositories: Type.Array(Type.String()),
});

function memberView(s: Services, m: { user: User; teams: { name: string }[]; repositories: string[] }) {
  return {
    name: m.user.username,
    kind: m.user.kind === 'robot' ? 'robot' : 'user',
    avatar: userAvatar(s, m.user),
    teams: m.teams.map((t) => ({ name: t.name, avatar: teamAvatar(s, t.name) })),
    repositories: m.repositories,
  };
}

const NewOrg = Type.Object({
  name: Type.String({ description: 'Organization username' }),
  email: Type.Optional(Type.String({ description: 'Organization contact email' })),
  contact_email: Type.Optional(Type.String({ description: 'Optional contact email for organization recovery and notifications' })),
  recaptcha_response: Type.Optional(Type.String({ description: 'The (may be disabled) recaptcha response code for verification' })),
}, { description: 'Description of a new organization.' });

const UpdateOrg = Type.Object({
  email: Type.Optional(Type.String({ description: 'Organization contact email' })),
  contact_email: Type.Optional(Nullable(Type.String({ description: 'Organization contact email' }))),
  invoice_email: Type.Optional(Type.Boolean({ description: 'Whether the organization desires to receive emails for invoices' })),
  invoice_email_address: Type.Optional(Nullable(Type.String({ description: 'The email address at which to receive invoices' }))),
  tag_expiration_s: Type.Optional(Type.Integer({ minimum: 0, description: 'The number of seconds for tag expiration' })),
}, { description: 'Description of updates for an existing organization' });

export const organizationRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST', path: '/organization/', nickname: 'createOrganization', scopes: ['user:admin'],
    description: 'Create a new organization.',
    body: NewOrg, bodyName: 'NewOrg', response: Type.String(), status: 201,
    async handler(req, reply, env) {
      requireUser(req);
      const b = req.body;
      await createOrg(env.ctx.services, actorOf(req), { name: b.name, email: b.email ?? null, contactEmail: b.contact_email ?? null });
      // Quay's body is the JSON string "Created"; Fastify would send a bare string as text/plain.
      return reply.code(201).type('application/json').send(JSON.stringify('Created'));
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}', nickname: 'getOrganization', paramDocs: ORG_DOCS,
    description: 'Get the details for the specified organization',
    params: OrgParams, response: OrgView, responseName: 'OrgView',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return orgView(s, await getOrganization(s, req.principal, req.params.orgname));
    },
  }),
  defineRoute({
    method: 'PUT', path: '/organization/{orgname}', nickname: 'changeOrganizationDetails', scopes: ['org:admin'], paramDocs: ORG_DOCS,
    description: 'Change the details for the specified organization.',
    params: OrgParams, body: UpdateOrg, bodyName: 'UpdateOrg', response: OrgView, responseName: 'OrgView',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const b = req.body;
      const d = await dataModel(updateOrganization(s, actorOf(req), req.params.orgname, {
        email: b.email, contactEmail: b.contact_email, invoiceEmail: b.invoice_email,
        invoiceEmailAddress: b.invoice_email_address, tagExpirationS: b.tag_expiration_s,
      }));
      return orgView(s, d);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}', nickname: 'deleteAdminedOrganization', scopes: ['org:admin'], paramDocs: ORG_DOCS,
    description: 'Deletes the specified organization.',
    params: OrgParams, status: 204,
    async handler(req, _reply, env) {
      // Quay's @require_fresh_login runs before the method's own permission check.
      await requireFreshLogin(env.ctx, req);
      await deleteOrganization(env.ctx.services, actorOf(req), req.params.orgname);
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/collaborators', nickname: 'getOrganizationCollaborators', scopes: ['org:admin'], paramDocs: ORG_DOCS,
    description: 'List outside collaborators of the specified organization.',
    params: OrgParams,
    response: Type.Object({ collaborators: Type.Array(Type.Object({ kind: Type.String(), name: Type.String(), avatar: AvatarSchema, repositories: Type.Array(Type.String()) })) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const list = await listCollaborators(s, req.principal, req.params.orgname);
      return { collaborators: list.map((c) => ({ kind: 'user', name: c.user.username, avatar: userAvatar(s, c.user), repositories: c.repositories })) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/members', nickname: 'getOrganizationMembers', scopes: ['org:admin'], paramDocs: ORG_DOCS,
    description: 'List the human members of the specified organization.',
    params: OrgParams, response: Type.Object({ members: Type.Array(MemberView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return { members: (await listMembers(s, req.principal, req.params.orgname)).map((m) => memberView(s, m)) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/members/{membername}', nickname: 'getOrganizationMember', scopes: ['org:admin'], paramDocs: ORG_DOCS,
    description: 'Retrieves the details of a member of the organization.',
    params: MemberParams, response: MemberView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return memberView(s, await getMember(s, req.principal, req.params.orgname, req.params.membername));
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/members/{membername}', nickname: 'removeOrganizationMember', scopes: ['org:admin'], paramDocs: ORG_DOCS,
    description: 'Removes a member from an organization, revoking all its repository priviledges and removing it from all teams in the organization.',
    params: MemberParams, status: 204,
    async handler(req, _reply, env) {
      await dataModel(removeMember(env.ctx.services, actorOf(req), req.params.orgname, req.params.membername));
    },
  }),
];

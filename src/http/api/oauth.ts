// OAuth applications of organizations (Quay's endpoints/api/organization.py), public application
// information, and the caller's authorizations and token assignments (endpoints/api/user.py).
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../model/context.ts';
import type { User } from '../../model/accounts.ts';
import { orgAccess, requireOrgAdmin } from '../../model/organizations.ts';
import { namespaceQuotas, quotaReport } from '../../model/profile.ts';
import {
  applicationByClientId, clientSecret, createApplication, deleteApplication, deleteAssignment, findApplication, getAuthorization,
  listApplications, listAssignments, listAuthorizations, resetClientSecret, revokeAuthorization, scopeInformation, updateApplication,
  type Authorization, type AssignmentView, type OAuthApplication,
} from '../../model/oauth.ts';
import { requireScope, requireUser } from './auth.ts';
import { ApiError } from './errors.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { AvatarSchema, avatar } from './shapes.ts';

const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });

const AppView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  application_uri: Type.String(),
  client_id: Type.String(),
  client_secret: Nullable(Type.String()),
  redirect_uri: Nullable(Type.String()),
  avatar_email: Nullable(Type.String()),
});

const NewApp = Type.Object({
  name: Type.String({ description: 'The name of the application' }),
  redirect_uri: Type.Optional(Type.String({ description: "The URI for the application's OAuth redirect" })),
  application_uri: Type.Optional(Type.String({ description: "The URI for the application's homepage" })),
  description: Type.Optional(Type.String({ description: 'The human-readable description for the application' })),
  avatar_email: Type.Optional(Type.String({ description: 'The e-mail address of the avatar to use for the application' })),
}, { description: 'Description of a new organization application.' });

const UpdateApp = Type.Object({
  name: Type.String({ description: 'The name of the application' }),
  redirect_uri: Type.String({ description: "The URI for the application's OAuth redirect" }),
  application_uri: Type.String({ description: "The URI for the application's homepage" }),
  description: Type.Optional(Type.String({ description: 'The human-readable description for the application' })),
  avatar_email: Type.Optional(Type.String({ description: 'The e-mail address of the avatar to use for the application' })),
}, { description: 'Description of an updated application.' });

const ScopeView = Type.Object({ scope: Type.String(), icon: Type.String(), dangerous: Type.Boolean(), title: Type.String(), description: Type.String() });
const AppSummary = Type.Object({
  name: Type.String(), clientId: Type.Optional(Type.String()), description: Type.String(), url: Type.String(), avatar: AvatarSchema,
  organization: Type.Object({ name: Type.String(), avatar: AvatarSchema }),
});
const AuthorizationView = Type.Object({ application: AppSummary, scopes: Type.Array(ScopeView), uuid: Type.String() });
const AssignedView = Type.Object({
  application: AppSummary, uuid: Type.String(), redirectUri: Nullable(Type.String()), scopes: Type.Array(ScopeView), responseType: Nullable(Type.String()),
});

const OrgParams = Type.Object({ orgname: Type.String() });
const AppParams = Type.Object({ orgname: Type.String(), client_id: Type.String() });
const paramDocs = { orgname: 'The name of the organization', client_id: 'The OAuth client ID' };

/** Quay's app_view: the secret, redirect URI and avatar e-mail only for the organization's admins. */
function appView(s: Services, app: OAuthApplication, isAdmin: boolean): Record<string, unknown> {
  return {
    name: app.name,
    description: app.description,
    application_uri: app.application_uri,
    client_id: app.client_id,
    client_secret: isAdmin ? clientSecret(s, app) : null,
    redirect_uri: isAdmin ? app.redirect_uri : null,
    avatar_email: isAdmin ? app.avatar_email : null,
  };
}

function appAvatar(s: Services, app: OAuthApplication, org: User) {
  return avatar(s, app.name, app.avatar_email || org.email, 'app');
}

function appSummary(s: Services, app: OAuthApplication, org: User, withClientId: boolean): Record<string, unknown> {
  return {
    name: app.name,
    ...(withClientId ? { clientId: app.client_id } : {}),
    description: app.description,
    url: app.application_uri,
    avatar: appAvatar(s, app, org),
    organization: { name: org.username, avatar: avatar(s, org.username, org.email, 'org') },
  };
}

function authorizationView(s: Services, a: Authorization): Record<string, unknown> {
  return { application: appSummary(s, a.app, a.org, false), scopes: scopeInformation(a.token.scope), uuid: a.token.uuid };
}

function assignedView(s: Services, a: AssignmentView): Record<string, unknown> {
  return {
    application: appSummary(s, a.app, a.org, true),
    uuid: a.assignment.uuid,
    redirectUri: a.assignment.redirect_uri,
    scopes: scopeInformation(a.assignment.scope),
    responseType: a.assignment.response_type,
  };
}

async function adminOf(req: FastifyRequest, s: Services, orgname: string, mode: 'read' | 'write') {
  requireUser(req);
  const { org, access } = await requireOrgAdmin(s, req.principal, orgname, mode);
  return { org, isAdmin: access.admin || access.fullAccess };
}

function userPrincipal(req: FastifyRequest) {
  return requireUser(req);
}

/** Quay's org_view(org, []) for GET /app/{client_id}: the caller's standing, no team details. */
async function orgView(s: Services, req: FastifyRequest, org: User): Promise<Record<string, unknown>> {
  const access = await orgAccess(s, req.principal, org.id);
  const view: Record<string, unknown> = {
    name: org.username,
    email: access.admin ? org.email ?? '' : '',
    avatar: avatar(s, org.username, org.email, 'org'),
    is_admin: access.admin,
    is_member: access.member,
    teams: {},
    ordered_teams: [],
  };
  if (access.admin) {
    Object.assign(view, {
      invoice_email: org.invoice_email === 1,
      invoice_email_address: org.invoice_email_address,
      tag_expiration_s: org.tag_expiration_s,
      is_free_account: true,
    });
    if (s.config.features.QUOTA_MANAGEMENT) {
      view.quotas = await namespaceQuotas(s, org.id);
      view.quota_report = await quotaReport(s, org.id);
    }
  }
  return view;
}

export const oauthRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/applications', nickname: 'getOrganizationApplications', tag: 'organization', scopes: ['org:admin'],
    description: 'List the applications for the specified organization.',
    params: OrgParams, paramDocs, response: Type.Object({ applications: Type.Array(AppView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { org, isAdmin } = await adminOf(req, s, req.params.orgname, 'read');
      return { applications: (await listApplications(s, org.id)).map((a) => appView(s, a, isAdmin)) };
    },
  }),
  defineRoute({
    method: 'POST', path: '/organization/{orgname}/applications', nickname: 'createOrganizationApplication', tag: 'organization', scopes: ['org:admin'],
    description: 'Creates a new application under this organization.',
    params: OrgParams, paramDocs, body: NewApp, bodyName: 'NewApp', response: AppView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { org, isAdmin } = await adminOf(req, s, req.params.orgname, 'write');
      const app = await createApplication(s, userPrincipal(req), org, req.body, req.ip);
      return appView(s, app, isAdmin);
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/applications/{client_id}', nickname: 'getOrganizationApplication', tag: 'organization', scopes: ['org:admin'],
    description: 'Retrieves the application with the specified client_id under the specified organization.',
    params: AppParams, paramDocs, response: AppView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { org, isAdmin } = await adminOf(req, s, req.params.orgname, 'read');
      const app = await findApplication(s, org.id, req.params.client_id);
      if (!app) throw new ApiError('not_found', 'Not Found');
      return appView(s, app, isAdmin);
    },
  }),
  defineRoute({
    method: 'PUT', path: '/organization/{orgname}/applications/{client_id}', nickname: 'updateOrganizationApplication', tag: 'organization', scopes: ['org:admin'],
    description: 'Updates an application under this organization.',
    params: AppParams, paramDocs, body: UpdateApp, bodyName: 'UpdateApp', response: AppView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { org, isAdmin } = await adminOf(req, s, req.params.orgname, 'write');
      const app = await updateApplication(s, userPrincipal(req), org, req.params.client_id, req.body, req.ip);
      return appView(s, app, isAdmin);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/applications/{client_id}', nickname: 'deleteOrganizationApplication', tag: 'organization', scopes: ['org:admin'],
    description: 'Deletes the application under this organization.',
    params: AppParams, paramDocs, status: 204,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { org } = await adminOf(req, s, req.params.orgname, 'write');
      if (!(await deleteApplication(s, userPrincipal(req), org, req.params.client_id, req.ip))) throw new ApiError('not_found', 'Not Found');
      return undefined;
    },
  }),
  defineRoute({
    method: 'POST', path: '/organization/{orgname}/applications/{client_id}/resetclientsecret', nickname: 'resetOrganizationApplicationClientSecret',
    tag: 'organization', internal: true,
    description: 'Resets the client secret of the application.',
    params: AppParams, paramDocs, response: AppView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { org, isAdmin } = await adminOf(req, s, req.params.orgname, 'write');
      const app = await resetClientSecret(s, userPrincipal(req), org, req.params.client_id, req.ip);
      return appView(s, app, isAdmin);
    },
  }),
  defineRoute({
    method: 'GET', path: '/app/{client_id}', nickname: 'getApplicationInformation', tag: 'organization',
    description: 'Get information on the specified application.',
    params: Type.Object({ client_id: Type.String() }), paramDocs: { client_id: 'The OAuth client ID' },
    response: Type.Object({ name: Type.String(), description: Type.String(), uri: Type.String(), avatar: AvatarSchema, organization: AnyObject }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const app = await applicationByClientId(s, req.params.client_id);
      const org = app ? await s.db.selectFrom('users').selectAll().where('id', '=', app.org_id).executeTakeFirst() : undefined;
      if (!app || !org) throw new ApiError('not_found', 'Not Found');
      return { name: app.name, description: app.description, uri: app.application_uri, avatar: appAvatar(s, app, org), organization: await orgView(s, req, org) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/authorizations', nickname: 'listUserAuthorizations', tag: 'user', scopes: ['user:admin'], internal: true,
    response: Type.Object({ authorizations: Type.Array(AuthorizationView) }),
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const s = env.ctx.services;
      return { authorizations: (await listAuthorizations(s, p.userId)).map((a) => authorizationView(s, a)) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/authorizations/{access_token_uuid}', nickname: 'getUserAuthorization', tag: 'user', scopes: ['user:admin'], internal: true,
    params: Type.Object({ access_token_uuid: Type.String() }), paramDocs: { access_token_uuid: 'The uuid of the access token' },
    response: AuthorizationView,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const s = env.ctx.services;
      const a = await getAuthorization(s, p.userId, req.params.access_token_uuid);
      if (!a) throw new ApiError('not_found', 'Not Found');
      return authorizationView(s, a);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/user/authorizations/{access_token_uuid}', nickname: 'deleteUserAuthorization', tag: 'user', scopes: ['user:admin'], internal: true,
    params: Type.Object({ access_token_uuid: Type.String() }), paramDocs: { access_token_uuid: 'The uuid of the access token' },
    status: 204,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      if (!(await revokeAuthorization(env.ctx.services, p, req.params.access_token_uuid, req.ip))) throw new ApiError('not_found', 'Not Found');
      return undefined;
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/assignedauthorization', nickname: 'listAssignedAuthorizations', tag: 'user', scopes: ['user:admin'],
    features: ['ASSIGN_OAUTH_TOKEN'], internal: true,
    response: Type.Object({ authorizations: Type.Array(AssignedView) }),
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const s = env.ctx.services;
      return { authorizations: (await listAssignments(s, p.userId)).map((a) => assignedView(s, a)) };
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/user/assignedauthorization/{assigned_authorization_uuid}', nickname: 'deleteAssignedAuthorization', tag: 'user',
    scopes: ['user:admin'], features: ['ASSIGN_OAUTH_TOKEN'], internal: true,
    params: Type.Object({ assigned_authorization_uuid: Type.String() }), status: 204,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      if (!(await deleteAssignment(env.ctx.services, p, req.params.assigned_authorization_uuid, req.ip))) throw new ApiError('not_found', 'Not Found');
      return undefined;
    },
  }),
];

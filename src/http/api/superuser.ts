// /api/v1/superuser/*: the superuser panel's users, organizations, ownership, app tokens, change
// log and registry status. This module also gathers the other administration areas (service
// keys, global messages, registry capabilities, shutdown) so the API mounts them in one place.
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import {
  changelog, createInstallUser, deleteInstallUser, deleteOrganization, findHuman, listAllAppTokens, listOrganizations, listUsers,
  registryStatus, renameOrganization, takeOwnership, updateInstallUser,
} from '../../model/superuser.ts';
import { ApiError } from './errors.ts';
import { encodePageToken, startIdFrom } from './page-token.ts';
import { defineRoute, Nullable, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { formatDate } from './shapes.ts';
import { OrgView, orgView, SuperuserUserView, superuserUserView } from './superuser-views.ts';
import { dataModel } from './data-model.ts';
import { requireSuperuser } from './superuser-access.ts';
import { serviceKeyRoutes } from './service-keys.ts';
import { messageRoutes } from './messages.ts';
import { capabilitiesRoutes } from './capabilities.ts';
import { shutdownRoutes } from './superuser-shutdown.ts';

const SU = ['super:user'];
const FEATURES = ['SUPER_USERS'];

const PageQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Limit to the number of results to return per page. Max 100.' })),
  next_page: Type.Optional(Type.String({ description: 'The page token for the next page' })),
};

function checkLimit(limit: number | undefined): number | null {
  if (limit === undefined) return null;
  if (limit > 100) throw new ApiError('invalid_request', 'Page limit cannot be above 100');
  return limit;
}

const UsernameParams = Type.Object({ username: Type.String() });
const OrgParams = Type.Object({ name: Type.String() });

const CreateInstallUser = Type.Object({
  username: Type.String({ description: 'The username of the user being created' }),
  email: Type.Optional(Type.String({ description: 'The email address of the user being created' })),
}, { description: 'Data for creating a user' });

const UpdateUser = Type.Object({
  password: Type.Optional(Type.String({ description: 'The new password for the user' })),
  email: Type.Optional(Type.String({ description: 'The new e-mail address for the user' })),
  enabled: Type.Optional(Type.Boolean({ description: 'Whether the user is enabled' })),
}, { description: 'Description of updates for a user' });

const UpdateOrg = Type.Object({
  name: Type.Optional(Type.String({ description: 'The new name for the organization' })),
}, { description: 'Description of updates for an organization' });

const AppTokenView = Type.Object({
  uuid: Type.String(),
  title: Type.String(),
  last_accessed: Nullable(Type.String()),
  created: Nullable(Type.String()),
  expiration: Nullable(Type.String()),
});

const superuserRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/superuser/users/', nickname: 'listAllUsers', scopes: SU, features: FEATURES,
    description: 'Returns a list of all users in the system.',
    querystring: Type.Object({ disabled: Type.Optional(TruthyBool('If false, only enabled users will be returned.')), ...PageQuery }),
    response: Type.Object({ users: Type.Array(SuperuserUserView), next_page: Type.Optional(Type.String()) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireSuperuser(req, env.ctx, 'read');
      const limit = checkLimit(req.query.limit);
      const page = await listUsers(s, { includeDisabled: truthy(req.query.disabled, true), limit, startId: limit === null ? null : startIdFrom(s, req.query.next_page) });
      const users = [];
      for (const u of page.items) users.push(await superuserUserView(s, u));
      return { users, ...(page.nextStartId !== null ? { next_page: encodePageToken(s, { start_id: page.nextStartId }) } : {}) };
    },
  }),
  defineRoute({
    method: 'POST', path: '/superuser/users/', nickname: 'createInstallUser', scopes: SU, features: FEATURES,
    description: 'Creates a new user.',
    body: CreateInstallUser, bodyName: 'CreateInstallUser',
    response: Type.Object({ username: Type.String(), email: Nullable(Type.String()), password: Type.String(), encrypted_password: Type.String() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      const r = await dataModel(createInstallUser(s, p, { username: req.body.username, email: req.body.email ?? null }, req.ip));
      return { username: r.user.username, email: req.body.email ?? null, password: r.password, encrypted_password: r.encryptedPassword };
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/users/{username}', nickname: 'getInstallUser', scopes: SU, features: FEATURES,
    description: 'Returns information about the specified user.',
    paramDocs: { username: 'The username of the user being managed' },
    params: UsernameParams, response: SuperuserUserView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireSuperuser(req, env.ctx, 'read');
      const user = await findHuman(s, req.params.username);
      if (!user) throw new ApiError('not_found', 'Not Found');
      return superuserUserView(s, user);
    },
  }),
  defineRoute({
    method: 'PUT', path: '/superuser/users/{username}', nickname: 'changeInstallUser', scopes: SU, features: FEATURES,
    description: 'Updates information about the specified user.',
    paramDocs: { username: 'The username of the user being managed' },
    params: UsernameParams, body: UpdateUser, bodyName: 'UpdateUser', response: SuperuserUserView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      const r = await dataModel(updateInstallUser(s, p, req.params.username, req.body, req.ip));
      const view = await superuserUserView(s, r.user);
      if (r.encryptedPassword !== null) view.encrypted_password = r.encryptedPassword;
      return view;
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/superuser/users/{username}', nickname: 'deleteInstallUser', scopes: SU, features: FEATURES, status: 204,
    description: 'Deletes the specified user.',
    paramDocs: { username: 'The username of the user being managed' },
    params: UsernameParams,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      await deleteInstallUser(s, p, req.params.username, req.ip);
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/organizations/', nickname: 'listAllOrganizations', scopes: SU, features: FEATURES, internal: true,
    description: 'Returns a list of all organizations in the system.',
    querystring: Type.Object(PageQuery),
    response: Type.Object({ organizations: Type.Array(OrgView), next_page: Type.Optional(Type.String()) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireSuperuser(req, env.ctx, 'read');
      const limit = checkLimit(req.query.limit);
      const page = await listOrganizations(s, { limit, startId: limit === null ? null : startIdFrom(s, req.query.next_page) });
      const organizations = [];
      for (const o of page.items) organizations.push(await orgView(s, o));
      return { organizations, ...(page.nextStartId !== null ? { next_page: encodePageToken(s, { start_id: page.nextStartId }) } : {}) };
    },
  }),
  defineRoute({
    method: 'PUT', path: '/superuser/organizations/{name}', nickname: 'changeOrganization', scopes: SU, features: FEATURES,
    description: 'Updates information about the specified user.',
    paramDocs: { name: 'The name of the organizaton being managed' },
    params: OrgParams, body: UpdateOrg, bodyName: 'UpdateOrg', response: OrgView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      const org = await dataModel(renameOrganization(s, p, req.params.name, req.body.name, req.ip));
      return orgView(s, org);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/superuser/organizations/{name}', nickname: 'deleteOrganization', scopes: SU, features: FEATURES, status: 204,
    description: 'Deletes the specified organization.',
    paramDocs: { name: 'The name of the organizaton being managed' },
    params: OrgParams,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      await dataModel(deleteOrganization(s, p, req.params.name, req.ip));
    },
  }),
  defineRoute({
    method: 'POST', path: '/superuser/takeownership/{namespace}', nickname: 'takeOwnership', scopes: SU, features: FEATURES, internal: true,
    description: 'Takes ownership of the specified organization or user.',
    paramDocs: { namespace: 'The namespace of the user or organization being managed' },
    params: Type.Object({ namespace: Type.String() }),
    response: Type.Object({ namespace: Type.String() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      await takeOwnership(s, p, req.params.namespace, req.ip);
      return { namespace: req.params.namespace };
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/apptokens', nickname: 'listAllAppTokens', scopes: SU, features: ['APP_SPECIFIC_TOKENS', ...FEATURES],
    description: 'Lists all app specific tokens in the system.',
    querystring: Type.Object({ expiring: Type.Optional(TruthyBool('If true, only returns those tokens expiring soon')) }),
    response: Type.Object({ tokens: Type.Array(AppTokenView), only_expiring: Nullable(Type.Boolean()) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireSuperuser(req, env.ctx, 'read');
      const expiring = req.query.expiring === undefined ? null : truthy(req.query.expiring);
      const tokens = await listAllAppTokens(s, expiring === true);
      return {
        tokens: tokens.map((t) => ({
          uuid: t.uuid, title: t.title, last_accessed: formatDate(t.last_accessed), created: formatDate(t.created_at), expiration: formatDate(t.expires_at),
        })),
        only_expiring: expiring,
      };
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/changelog/', nickname: 'getChangeLog', scopes: SU, features: FEATURES, internal: true,
    description: 'Returns the change log for this installation.',
    response: Type.Object({ log: Type.String() }),
    async handler(req, _reply, env) {
      await requireSuperuser(req, env.ctx, 'read');
      return { log: await changelog() };
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/registrystatus', nickname: 'scRegistryStatus', features: FEATURES, internal: true,
    description: 'Returns the status of the registry.',
    response: Type.Object({ status: Type.String(), provider_id: Type.Optional(Type.String()) }),
    async handler(_req, _reply, env) {
      return registryStatus(env.ctx.services);
    },
  }),
];

/** Superuser panel, shutdown, service keys, global messages and registry capabilities. */
export const adminRoutes: AnyRoute[] = [...superuserRoutes, ...shutdownRoutes, ...serviceKeyRoutes, ...messageRoutes, ...capabilitiesRoutes];

// /api/v1 notifications: a repository's (Quay's endpoints/api/repositorynotification.py), an
// organization's and the calling user's namespace notifications (namespacenotification.py,
// FEATURE_QUOTA_NOTIFICATIONS), and the e-mail addresses authorized for a repository
// (repoemail.py, FEATURE_MAILING).
import { Type, type TSchema } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../model/context.ts';
import {
  createNotification, deleteNotification, getNotification, listNotifications, resetNotificationFailures, testNotification,
  type NotificationOwner,
} from '../../model/notifications.ts';
import { getAuthorizedEmail, requestEmailAuthorization } from '../../model/authorized-emails.ts';
import { baseUrl } from '../context.ts';
import { actorOf } from './data-model.ts';
import { repoOwner } from './autoprune.ts';
import { REPOSITORY_DOC } from './repository.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';

const NotificationView = Type.Object({
  uuid: Type.String(),
  title: Nullable(Type.String()),
  event: Type.String(),
  method: Type.String(),
  config: Type.Object({}, { additionalProperties: true }),
  event_config: Type.Object({}, { additionalProperties: true }),
  number_of_failures: Type.Integer(),
});
const NotificationList = Type.Object({ notifications: Type.Array(NotificationView) });
const Empty = Type.Object({});

function createRequest(description: string) {
  return Type.Object({
    event: Type.String({ description: 'The event on which the notification will respond' }),
    method: Type.String({ description: 'The method of notification (such as email or web callback)' }),
    config: Type.Object({}, { additionalProperties: true, description: 'JSON config information for the specific method of notification' }),
    eventConfig: Type.Object({}, { additionalProperties: true, description: 'JSON config information for the specific event of notification' }),
    title: Type.Optional(Type.String({ description: 'The human-readable title of the notification' })),
  }, { description });
}

interface Area {
  /** Path below /api/v1 of the list; `${list}/{uuid}` (or `${list}{uuid}`) is one notification. */
  list: string;
  one: string;
  tag: string;
  scopes: string[];
  features: string[];
  bodyDescription: string;
  nick: { list: string; create: string; get: string; delete: string; reset: string; test: string };
  params: Record<string, TSchema>;
  docs: Record<string, string>;
  owner(s: Services, req: FastifyRequest): NotificationOwner;
}

const UUID_DOC = 'The UUID of the notification';

const AREAS: Area[] = [
  {
    list: '/repository/{repository}/notification/', one: '/repository/{repository}/notification/{uuid}', tag: 'repositorynotification',
    scopes: ['repo:admin'], features: [], bodyDescription: 'Information for creating a notification on a repository',
    nick: {
      list: 'listRepoNotifications', create: 'createRepoNotification', get: 'getRepoNotification',
      delete: 'deleteRepoNotification', reset: 'resetRepositoryNotificationFailures', test: 'testRepoNotification',
    },
    params: { repository: Type.String() }, docs: { repository: REPOSITORY_DOC },
    owner: (s, req) => repoOwner(s, (req.params as { repository: string }).repository),
  },
  {
    list: '/organization/{orgname}/notifications', one: '/organization/{orgname}/notifications/{uuid}', tag: 'namespacenotification',
    // Quay tags these with no OAuth scope: a token's scopes still cap its organization role.
    scopes: [], features: ['QUOTA_NOTIFICATIONS'], bodyDescription: 'Information for creating a namespace notification',
    nick: {
      list: 'listOrgNotifications', create: 'createOrgNotification', get: 'getOrgNotification',
      delete: 'deleteOrgNotification', reset: 'resetOrgNotificationFailures', test: 'testOrgNotification',
    },
    params: { orgname: Type.String() }, docs: { orgname: 'The name of the organization' },
    owner: (_s, req) => ({ kind: 'org', orgname: (req.params as { orgname: string }).orgname }),
  },
  {
    list: '/user/namespacenotifications', one: '/user/namespacenotifications/{uuid}', tag: 'namespacenotification',
    scopes: ['user:admin'], features: ['QUOTA_NOTIFICATIONS'], bodyDescription: 'Information for creating a namespace notification',
    nick: {
      list: 'listUserNamespaceNotifications', create: 'createUserNamespaceNotification', get: 'getUserNamespaceNotification',
      delete: 'deleteUserNamespaceNotification', reset: 'resetUserNamespaceNotificationFailures', test: 'testUserNamespaceNotification',
    },
    params: {}, docs: {},
    owner: () => ({ kind: 'user' }),
  },
];

const uuidOf = (req: FastifyRequest) => (req.params as { uuid: string }).uuid;

function areaRoutes(a: Area): AnyRoute[] {
  const common = { tag: a.tag, scopes: a.scopes, features: a.features };
  const hasParams = Object.keys(a.params).length > 0;
  const listParams = hasParams ? { params: Type.Object(a.params) } : {};
  const oneParams = Type.Object({ ...a.params, uuid: Type.String() });
  const oneDocs = { ...a.docs, uuid: UUID_DOC };
  return [
    defineRoute({
      ...common, method: 'GET', path: a.list, nickname: a.nick.list, paramDocs: a.docs, ...listParams, response: NotificationList,
      description: 'List the notifications.',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return { notifications: await listNotifications(s, req.principal, a.owner(s, req)) };
      },
    }),
    defineRoute({
      ...common, method: 'POST', path: a.list, nickname: a.nick.create, paramDocs: a.docs, ...listParams, status: 201,
      body: createRequest(a.bodyDescription), bodyName: 'NotificationCreateRequest', response: NotificationView,
      description: 'Create a notification.',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        const b = req.body;
        return createNotification(s, actorOf(req), a.owner(s, req), {
          event: b.event, method: b.method, config: b.config as Record<string, unknown>, eventConfig: b.eventConfig as Record<string, unknown>,
          ...(b.title !== undefined ? { title: b.title } : {}),
        });
      },
    }),
    defineRoute({
      ...common, method: 'GET', path: a.one, nickname: a.nick.get, paramDocs: oneDocs, params: oneParams, response: NotificationView,
      description: 'Get information for the specified notification.',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        return getNotification(s, req.principal, a.owner(s, req), uuidOf(req));
      },
    }),
    defineRoute({
      ...common, method: 'DELETE', path: a.one, nickname: a.nick.delete, paramDocs: oneDocs, params: oneParams, status: 204,
      description: 'Deletes the specified notification.',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        await deleteNotification(s, actorOf(req), a.owner(s, req), uuidOf(req));
      },
    }),
    defineRoute({
      ...common, method: 'POST', path: a.one, nickname: a.nick.reset, paramDocs: oneDocs, params: oneParams, status: 204,
      description: 'Resets the notification to 0 failures.',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        await resetNotificationFailures(s, actorOf(req), a.owner(s, req), uuidOf(req));
      },
    }),
    defineRoute({
      ...common, method: 'POST', path: `${a.one}/test`, nickname: a.nick.test, paramDocs: oneDocs, params: oneParams, response: Empty,
      description: 'Queues a test notification.',
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        await testNotification(s, actorOf(req), a.owner(s, req), uuidOf(req));
        return {};
      },
    }),
  ];
}

const AuthorizedEmailView = Type.Object({
  email: Type.String(), repository: Type.String(), namespace: Type.String(), confirmed: Type.Boolean(),
});
const emailParams = Type.Object({ repository: Type.String(), email: Type.String() });
const emailDocs = { repository: REPOSITORY_DOC, email: 'The e-mail address' };

const authorizedEmailRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository/{repository}/authorizedemail/{email}', nickname: 'checkRepoEmailAuthorized', tag: 'repoemail',
    scopes: ['repo:admin'], features: ['MAILING'], internal: true, paramDocs: emailDocs, params: emailParams, response: AuthorizedEmailView,
    description: 'Checks to see if the given e-mail address is authorized on this repository.',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { namespace, name } = repoOwner(s, req.params.repository);
      return getAuthorizedEmail(s, req.principal, namespace, name, req.params.email);
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository/{repository}/authorizedemail/{email}', nickname: 'sendAuthorizeRepoEmail', tag: 'repoemail',
    scopes: ['repo:admin'], features: ['MAILING'], internal: true, paramDocs: emailDocs, params: emailParams, response: AuthorizedEmailView,
    description: 'Starts the authorization process for an e-mail address on a repository.',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { namespace, name } = repoOwner(s, req.params.repository);
      return requestEmailAuthorization(s, req.principal, namespace, name, req.params.email, baseUrl(env.ctx, req));
    },
  }),
];

export const notificationRoutes: AnyRoute[] = [...AREAS.flatMap(areaRoutes), ...authorizedEmailRoutes];

// The rest of Quay's user area: account changes (PUT/DELETE /user/, /user/convert,
// /user/clientkey), public user info, in-app notifications and starred repositories.
import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { findUser } from '../../model/accounts.ts';
import { DomainError } from '../../model/errors.ts';
import { endSession, createSession } from '../../model/sessions.ts';
import { accessRepo } from '../../model/repository-api.ts';
import { findRepo } from '../../model/repositories.ts';
import { listStarred, starRepository, unstarRepository } from '../../model/stars.ts';
import { changeUserDetails, convertToOrganization, deleteCurrentUser, generateClientKey } from '../../model/user-account.ts';
import { getUserNotification, listUserNotifications, setNotificationDismissed, type UserNotification } from '../../model/user-notifications.ts';
import { issueLoginCookie, readSession } from '../session-cookie.ts';
import { requireFreshLogin, requireScope, requireUser } from './auth.ts';
import { ApiError } from './errors.ts';
import { dataModel } from './data-model.ts';
import { startIdFrom, encodePageToken } from './page-token.ts';
import { splitRepositoryParam } from './repo-path.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { formatDate } from './shapes.ts';
import { userView, UserView } from './user.ts';

const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });

const UpdateUser = Type.Object({
  password: Type.Optional(Type.String({ description: "The user's password" })),
  invoice_email: Type.Optional(Type.Boolean({ description: 'Whether the user desires to receive an invoice email.' })),
  email: Type.Optional(Type.String({ description: "The user's email address" })),
  tag_expiration_s: Type.Optional(Type.Integer({ minimum: 0, description: 'The number of seconds for tag expiration' })),
  username: Type.Optional(Type.String({ description: "The user's username" })),
  invoice_email_address: Type.Optional(Nullable(Type.String({ description: 'Custom email address for receiving invoices' }))),
  given_name: Type.Optional(Nullable(Type.String({ description: 'The optional entered given name for the user' }))),
  family_name: Type.Optional(Nullable(Type.String({ description: 'The optional entered family name for the user' }))),
  company: Type.Optional(Nullable(Type.String({ description: 'The optional entered company for the user' }))),
  location: Type.Optional(Nullable(Type.String({ description: 'The optional entered location for the user' }))),
}, { description: 'Fields which can be updated in a user.' });

const NotificationView = Type.Object({
  id: Type.String(), organization: Nullable(Type.String()), kind: Type.String(), created: Nullable(Type.String()),
  metadata: AnyObject, dismissed: Type.Boolean(),
});

function notificationView(n: UserNotification): Record<string, unknown> {
  let metadata: Record<string, unknown> = {};
  try {
    metadata = JSON.parse(n.metadata) as Record<string, unknown>;
  } catch {
    // unreadable metadata shows as {}
  }
  return {
    id: n.uuid, organization: n.target_kind === 'org' ? n.target_username : null, kind: n.kind,
    created: formatDate(n.created_at), metadata, dismissed: n.dismissed === 1,
  };
}

function rethrowInvalid(e: unknown): never {
  if (e instanceof DomainError && e.code === 'invalid_request') {
    const extra = e.detail && typeof e.detail === 'object' ? (e.detail as Record<string, unknown>) : undefined;
    throw new ApiError('invalid_request', e.message, 400, extra);
  }
  throw e;
}

/** Sign `userId` in on this browser (password change, conversion), replacing its session. */
async function relogin(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply, username: string): Promise<void> {
  const st = await readSession(ctx, req);
  if (st.session) await endSession(ctx.services, st.session.id);
  const user = await findUser(ctx.services, username);
  if (!user) return;
  const { sid, row } = await createSession(ctx.services, user);
  issueLoginCookie(ctx, req, reply, sid, row, user);
}

const NotificationParams = Type.Object({ uuid: Type.String() });

export const userExtraRoutes: AnyRoute[] = [
  defineRoute({
    method: 'PUT', path: '/user/', nickname: 'changeUserDetails', tag: 'user', scopes: ['user:admin'], internal: true,
    description: 'Update a users details such as password or email.',
    body: UpdateUser, bodyName: 'UpdateUser', response: UserView, responseName: 'UserView',
    async handler(req, reply, env) {
      const { ctx } = env;
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      await requireFreshLogin(ctx, req);
      let r;
      try {
        r = await dataModel(changeUserDetails(ctx.services, p, req.body, req.ip));
      } catch (e) {
        rethrowInvalid(e);
      }
      // A new password ends every session; Quay signs the caller's browser in again.
      if (r.passwordChanged && p.via === 'session') await relogin(ctx, req, reply, r.user.username);
      const viewer = { ...p, username: r.user.username };
      return userView(ctx.services, r.user, viewer);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/user/', nickname: 'deleteCurrentUser', tag: 'user', scopes: ['user:admin'], internal: true,
    description: 'Deletes the current user.', status: 204,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      await requireFreshLogin(env.ctx, req);
      await deleteCurrentUser(env.ctx.services, p, req.ip);
      return undefined;
    },
  }),
  defineRoute({
    method: 'GET', path: '/users/{username}', nickname: 'getUserInformation', tag: 'user',
    description: 'Get user information for the specified user.',
    params: Type.Object({ username: Type.String() }), response: UserView, responseName: 'UserView',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const user = await findUser(s, req.params.username);
      if (!user || user.kind !== 'user') throw new ApiError('not_found', 'Not Found');
      const view = await userView(s, user, req.principal);
      // Quay adds super_user (false unless it is the caller themselves) whenever a superuser looks.
      const p = req.principal;
      if (p.kind === 'user' && p.superuser && view.super_user === undefined) view.super_user = false;
      return view;
    },
  }),
  defineRoute({
    method: 'POST', path: '/user/clientkey', nickname: 'generateUserClientKey', tag: 'user', scopes: ['user:admin'], internal: true,
    features: ['APP_SPECIFIC_TOKENS'],
    description: "Return's the user's private client key.",
    body: Type.Object({ password: Type.String({ description: "The user's password" }) }), bodyName: 'GenerateClientKey',
    response: Type.Object({ key: Type.String() }),
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      try {
        return { key: await generateClientKey(env.ctx.services, p, req.body.password, req.ip) };
      } catch (e) {
        rethrowInvalid(e);
      }
    },
  }),
  defineRoute({
    method: 'POST', path: '/user/convert', nickname: 'convertUserToOrganization', tag: 'user', scopes: ['user:admin'], internal: true,
    description: 'Convert the user to an organization.',
    body: Type.Object({
      adminUser: Type.String({ description: "The user who will become an org admin's username" }),
      adminPassword: Type.String({ description: "The user who will become an org admin's password" }),
      plan: Type.Optional(Type.String({ description: 'The plan to which the organization should be subscribed' })),
    }, { description: 'Information required to convert a user to an organization.' }), bodyName: 'ConvertUser',
    async handler(req, reply, env) {
      const { ctx } = env;
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      let r;
      try {
        r = await convertToOrganization(ctx.services, p, req.body.adminUser, req.body.adminPassword, { ip: req.ip, userAgent: req.headers['user-agent'] ?? '' });
      } catch (e) {
        rethrowInvalid(e);
      }
      // Quay finishes by signing the new admin in (conduct_signin), answering like /signin.
      if (!r.ok) {
        return reply.code(403).type('application/json').send({ needsEmailVerification: r.needsEmailVerification, invalidCredentials: r.invalidCredentials, message: r.message });
      }
      issueLoginCookie(ctx, req, reply, r.sid, r.session, r.user);
      return reply.code(200).type('application/json').send({ success: true });
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/notifications', nickname: 'listUserNotifications', tag: 'user', scopes: ['user:admin'], internal: true,
    querystring: Type.Object({
      page: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Offset page number. (int)' })),
      limit: Type.Optional(Type.Integer({ minimum: 0, default: 5, description: 'Limit on the number of results (int)' })),
    }),
    response: Type.Object({ notifications: Type.Array(NotificationView), additional: Type.Boolean() }),
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const r = await listUserNotifications(env.ctx.services, p.userId, req.query.page ?? 0, req.query.limit ?? 5);
      return { notifications: r.items.map(notificationView), additional: r.additional };
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/notifications/{uuid}', nickname: 'getUserNotification', tag: 'user', scopes: ['user:admin'], internal: true,
    params: NotificationParams, paramDocs: { uuid: 'The uuid of the user notification' }, response: NotificationView,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const n = await getUserNotification(env.ctx.services, p.userId, req.params.uuid);
      if (!n) throw new ApiError('not_found', 'Not Found');
      return notificationView(n);
    },
  }),
  defineRoute({
    method: 'PUT', path: '/user/notifications/{uuid}', nickname: 'updateUserNotification', tag: 'user', scopes: ['user:admin'], internal: true,
    params: NotificationParams, paramDocs: { uuid: 'The uuid of the user notification' },
    body: Type.Object({ dismissed: Type.Optional(Type.Boolean({ description: 'Whether the notification is dismissed by the user' })) },
      { description: 'Information for updating a notification' }),
    bodyName: 'UpdateNotification', response: NotificationView,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const n = await setNotificationDismissed(env.ctx.services, p.userId, req.params.uuid, req.body.dismissed ?? false);
      if (!n) throw new ApiError('not_found', 'Not Found');
      return notificationView(n);
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/starred', nickname: 'listStarredRepos', tag: 'user', scopes: ['user:admin'],
    description: 'List all starred repositories.',
    querystring: Type.Object({ next_page: Type.Optional(Type.String({ description: 'The page token for the next page' })) }),
    response: Type.Object({
      repositories: Type.Array(Type.Object({ namespace: Type.String(), name: Type.String(), description: Nullable(Type.String()), is_public: Type.Boolean() })),
      next_page: Type.Optional(Type.String()),
    }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const r = await listStarred(s, p, startIdFrom(s, req.query.next_page));
      return {
        repositories: r.repos.map((x) => ({ namespace: x.namespace, name: x.name, description: x.description, is_public: x.isPublic })),
        ...(r.next !== null ? { next_page: encodePageToken(s, { start_id: r.next }) } : {}),
      };
    },
  }),
  defineRoute({
    method: 'POST', path: '/user/starred', nickname: 'createStar', tag: 'user', scopes: ['user:admin', 'repo:read'], status: 201,
    description: 'Star a repository.',
    body: Type.Object({
      namespace: Type.String({ description: 'Namespace in which the repository belongs' }),
      repository: Type.String({ description: 'Repository name' }),
    }), bodyName: 'NewStarredRepository',
    response: Type.Object({ namespace: Type.String(), repository: Type.String() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const { repo } = await accessRepo(s, p, req.body.namespace, req.body.repository, 'read');
      await starRepository(s, p.userId, repo);
      return { namespace: req.body.namespace, repository: req.body.repository };
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/user/starred/{repository}', nickname: 'deleteStar', tag: 'user', scopes: ['user:admin'], status: 204,
    description: 'Removes a star from a repository.',
    params: Type.Object({ repository: Type.String() }), paramDocs: { repository: 'The full path of the repository. e.g. namespace/name' },
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const { namespace, name } = splitRepositoryParam(req.params.repository, 'library');
      const repo = await findRepo(s, namespace, name);
      if (!repo || !(await unstarRepository(s, p.userId, repo.id))) throw new ApiError('not_found', 'Not Found');
      return undefined;
    },
  }),
];

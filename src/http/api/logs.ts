// Usage logs: list, count per day and export, for the caller, an organization, a repository, and
// (superusers) everything; plus the signed download of an exported file.
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';
import { DomainError } from '../../model/errors.ts';
import {
  aggregateLogs, authorizeLogs, decodeLogCursor, encodeLogCursor, listLogs, logWindow, performerId,
  type AuthorizedLogs, type LogRecord, type LogTarget, type LogWindow,
} from '../../model/log-query.ts';
import { openExportDownload, queueLogExport, type ExportPresenter } from '../../model/log-export.ts';
import { baseUrl } from '../context.ts';
import { PlainError } from './abort.ts';
import { requireUser } from './auth.ts';
import { defineRoute, Nullable, type AnyRoute, type ApiEnv, type ApiRequest } from './route.ts';
import { splitRepositoryParam } from './repo-path.ts';
import { AvatarSchema, avatar, formatDate, userAvatar } from './shapes.ts';

/** werkzeug's BadRequest text: Quay's bare abort(400) for an end date before the start date. */
export const BAD_REQUEST_MESSAGE = 'The browser (or proxy) sent a request that this server could not understand.';

const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });

const LogEntryView = Type.Object({
  kind: Type.String(),
  metadata: AnyObject,
  ip: Nullable(Type.String()),
  datetime: Type.String(),
  performer: Type.Optional(Type.Object({ kind: Type.String(), name: Type.String(), is_robot: Type.Boolean(), avatar: AvatarSchema })),
  namespace: Type.Optional(Type.Object({ kind: Type.String(), name: Type.String(), avatar: AvatarSchema })),
});

const LogsPage = Type.Object({
  start_time: Nullable(Type.String()),
  end_time: Nullable(Type.String()),
  logs: Type.Array(LogEntryView),
  next_page: Type.Optional(Type.String()),
});

const Aggregated = Type.Object({
  aggregated: Type.Array(Type.Object({ kind: Type.String(), count: Type.Integer(), datetime: Type.String() })),
});

const START = Type.Optional(Type.String({ description: 'Earliest time for logs. Format: "%m/%d/%Y" in UTC.' }));
const END = Type.Optional(Type.String({ description: 'Latest time for logs. Format: "%m/%d/%Y" in UTC.' }));
const PERFORMER = Type.Optional(Type.String({ description: 'Username for which to filter logs.' }));
const NEXT_PAGE = Type.Optional(Type.String({ description: 'The page token for the next page' }));

const OrgParams = Type.Object({ orgname: Type.String() });
const RepoParams = Type.Object({ repository: Type.String() });
const ORG_DOC = { orgname: 'The name of the organization' };
const REPO_DOC = { repository: 'The full path of the repository. e.g. namespace/name' };

const ExportLogs = Type.Object({
  callback_url: Type.Optional(Type.String({ description: 'The callback URL to invoke with a link to the exported logs' })),
  callback_email: Type.Optional(Type.String({ description: 'The e-mail address at which to e-mail a link to the exported logs' })),
}, { description: 'Configuration for an export logs operation' });
const ExportResult = Type.Object({ export_id: Type.String() });

/** Quay's Log.to_dict: the entry, its performer and (for cross-namespace listings) its namespace. */
export function logEntryView(s: Services, e: LogRecord, withNamespace: boolean): Record<string, unknown> {
  const view: Record<string, unknown> = { kind: e.kind, metadata: e.metadata, ip: e.ip, datetime: formatDate(e.datetime) };
  if (e.performer) {
    view.performer = { kind: 'user', name: e.performer.username, is_robot: e.performer.kind === 'robot', avatar: userAvatar(s, e.performer) };
  }
  if (withNamespace && e.namespace) {
    const ns = e.namespace;
    view.namespace = ns.kind === 'org'
      ? { kind: 'org', name: ns.username, avatar: avatar(s, ns.username, ns.email, 'org') }
      : { kind: 'user', name: ns.username, avatar: userAvatar(s, ns) };
  }
  return view;
}

/** How export files render entries and dates (the worker passes this to the model). */
export const exportPresenter: ExportPresenter = {
  entry: (s, e) => logEntryView(s, e, false),
  date: (ms) => formatDate(ms),
};

function repoTarget(s: Services, repository: string): LogTarget {
  const lib = typeof s.config.raw.LIBRARY_NAMESPACE === 'string' ? s.config.raw.LIBRARY_NAMESPACE : 'library';
  const { namespace, name } = splitRepositoryParam(repository, lib);
  return { kind: 'repo', namespace, name };
}

function maxPage(s: Services): number | null {
  const v = s.config.raw.ACTION_LOG_MAX_PAGE;
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null;
}

type LogsQuery = { starttime?: string; endtime?: string; performer?: string; next_page?: string };

function windowOf(s: Services, q: { starttime?: string; endtime?: string }, strict: boolean): LogWindow {
  const w = logWindow(s.now(), q.starttime, q.endtime);
  if (strict && w.end < w.start) throw new PlainError(400, BAD_REQUEST_MESSAGE);
  return w;
}

async function withPerformer(s: Services, auth: AuthorizedLogs, performer: string | undefined): Promise<AuthorizedLogs['scope']> {
  return performer ? { ...auth.scope, performerId: await performerId(s, performer) } : auth.scope;
}

async function logsPage(s: Services, auth: AuthorizedLogs, q: LogsQuery, opts: { withNamespace: boolean; strict: boolean }) {
  const w = windowOf(s, q, opts.strict);
  const page = await listLogs(s, await withPerformer(s, auth, q.performer), w, decodeLogCursor(s, q.next_page), {
    maxPage: maxPage(s), withNamespace: opts.withNamespace,
  });
  return {
    start_time: formatDate(w.start),
    end_time: formatDate(w.end),
    logs: page.logs.map((e) => logEntryView(s, e, opts.withNamespace)),
    ...(page.next ? { next_page: encodeLogCursor(s, page.next) } : {}),
  };
}

async function aggregated(s: Services, auth: AuthorizedLogs, q: { starttime?: string; endtime?: string; performer?: string }, strict: boolean) {
  const w = windowOf(s, q, strict);
  try {
    const counts = await aggregateLogs(s, await withPerformer(s, auth, q.performer), w);
    return { aggregated: counts.map((c) => ({ kind: c.kind, count: c.count, datetime: formatDate(c.day) })) };
  } catch (e) {
    if (e instanceof DomainError && e.code === 'invalid_request') throw new PlainError(400, e.message);
    throw e;
  }
}

async function exportLogs(
  s: Services, req: ApiRequest<unknown, unknown, unknown>, env: ApiEnv, auth: AuthorizedLogs,
  q: { starttime?: string; endtime?: string }, body: { callback_url?: string; callback_email?: string },
) {
  try {
    const exportId = await queueLogExport(s, {
      namespace: auth.namespace!, repository: auth.repository, window: logWindow(s.now(), q.starttime, q.endtime),
      callbackUrl: body.callback_url ?? null, callbackEmail: body.callback_email ?? null,
      baseUrl: baseUrl(env.ctx, req), performer: req.principal, ip: req.ip,
    });
    return { export_id: exportId };
  } catch (e) {
    // Quay answers these with abort(400, …): a bare {"message": …} body.
    if (e instanceof DomainError && e.code === 'invalid_request') throw new PlainError(400, e.message);
    throw e;
  }
}

const ListQuery = Type.Object({ starttime: START, endtime: END, performer: PERFORMER, next_page: NEXT_PAGE });
const RepoListQuery = Type.Object({ starttime: START, endtime: END, next_page: NEXT_PAGE });
const AggQuery = Type.Object({ starttime: START, endtime: END, performer: PERFORMER });
const WindowQuery = Type.Object({ starttime: START, endtime: END });

export const logsRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/user/logs', nickname: 'listUserLogs', scopes: ['user:admin'], tag: 'logs',
    description: 'List the logs for the current user.', querystring: ListQuery, response: LogsPage,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      requireUser(req);
      return logsPage(s, await authorizeLogs(s, req.principal, { kind: 'user' }, true), req.query, { withNamespace: false, strict: true });
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/logs', nickname: 'listOrgLogs', scopes: ['org:admin'], tag: 'logs',
    description: 'List the logs for the specified organization.', params: OrgParams, paramDocs: ORG_DOC, querystring: ListQuery, response: LogsPage,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const auth = await authorizeLogs(s, req.principal, { kind: 'org', name: req.params.orgname }, true);
      return logsPage(s, auth, req.query, { withNamespace: false, strict: true });
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/logs', nickname: 'listRepoLogs', scopes: ['repo:admin'], tag: 'logs',
    description: 'List the logs for the specified repository.', params: RepoParams, paramDocs: REPO_DOC, querystring: RepoListQuery, response: LogsPage,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const auth = await authorizeLogs(s, req.principal, repoTarget(s, req.params.repository), true);
      return logsPage(s, auth, req.query, { withNamespace: false, strict: true });
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/aggregatelogs', nickname: 'getAggregateUserLogs', scopes: ['user:admin'], tag: 'logs',
    features: ['AGGREGATED_LOG_COUNT_RETRIEVAL'],
    description: 'Returns the aggregated logs for the current user.', querystring: AggQuery, response: Aggregated,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      requireUser(req);
      return aggregated(s, await authorizeLogs(s, req.principal, { kind: 'user' }, true), req.query, true);
    },
  }),
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/aggregatelogs', nickname: 'getAggregateOrgLogs', scopes: ['org:admin'], tag: 'logs',
    features: ['AGGREGATED_LOG_COUNT_RETRIEVAL'],
    description: 'Gets the aggregated logs for the specified organization.', params: OrgParams, paramDocs: ORG_DOC, querystring: AggQuery, response: Aggregated,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return aggregated(s, await authorizeLogs(s, req.principal, { kind: 'org', name: req.params.orgname }, true), req.query, true);
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/aggregatelogs', nickname: 'getAggregateRepoLogs', scopes: ['repo:admin'], tag: 'logs',
    features: ['AGGREGATED_LOG_COUNT_RETRIEVAL'],
    description: 'Returns the aggregated logs for the specified repository.', params: RepoParams, paramDocs: REPO_DOC, querystring: WindowQuery, response: Aggregated,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return aggregated(s, await authorizeLogs(s, req.principal, repoTarget(s, req.params.repository), true), req.query, true);
    },
  }),
  defineRoute({
    method: 'POST', path: '/user/exportlogs', nickname: 'exportUserLogs', scopes: ['user:admin'], tag: 'logs', features: ['LOG_EXPORT'],
    description: 'Queues an export of the logs for the current user.', querystring: WindowQuery,
    body: ExportLogs, bodyName: 'ExportLogs', response: ExportResult,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      requireUser(req);
      return exportLogs(s, req, env, await authorizeLogs(s, req.principal, { kind: 'user' }, false), req.query, req.body);
    },
  }),
  defineRoute({
    method: 'POST', path: '/organization/{orgname}/exportlogs', nickname: 'exportOrgLogs', scopes: ['org:admin'], tag: 'logs', features: ['LOG_EXPORT'],
    description: 'Exports the logs for the specified organization.', params: OrgParams, paramDocs: ORG_DOC, querystring: WindowQuery,
    body: ExportLogs, bodyName: 'ExportLogs', response: ExportResult,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return exportLogs(s, req, env, await authorizeLogs(s, req.principal, { kind: 'org', name: req.params.orgname }, false), req.query, req.body);
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository/{repository}/exportlogs', nickname: 'exportRepoLogs', scopes: ['repo:admin'], tag: 'logs', features: ['LOG_EXPORT'],
    description: 'Queues an export of the logs for the specified repository.', params: RepoParams, paramDocs: REPO_DOC, querystring: WindowQuery,
    body: ExportLogs, bodyName: 'ExportLogs', response: ExportResult,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return exportLogs(s, req, env, await authorizeLogs(s, req.principal, repoTarget(s, req.params.repository), false), req.query, req.body);
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/logs', nickname: 'listAllLogs', scopes: ['super:user'], features: ['SUPER_USERS'],
    description: 'List the usage logs for the current system.',
    querystring: Type.Object({
      starttime: Type.Optional(Type.String({ description: 'Earliest time from which to get logs (%m/%d/%Y %Z)' })),
      endtime: Type.Optional(Type.String({ description: 'Latest time to which to get logs (%m/%d/%Y %Z)' })),
      page: Type.Optional(Type.Integer({ description: 'The page number for the logs', default: 1 })),
      next_page: NEXT_PAGE,
    }),
    response: LogsPage,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const auth = await authorizeLogs(s, req.principal, { kind: 'all' }, true);
      // Quay does not reject an inverted window here; it simply matches nothing.
      return logsPage(s, auth, req.query, { withNamespace: true, strict: false });
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/aggregatelogs', nickname: 'listAllAggregateLogs', features: ['SUPER_USERS'], internal: true,
    description: 'Returns the aggregated logs for the current system.',
    querystring: Type.Object({
      starttime: Type.Optional(Type.String({ description: 'Earliest time from which to get logs. (%m/%d/%Y %Z)' })),
      endtime: Type.Optional(Type.String({ description: 'Latest time to which to get logs. (%m/%d/%Y %Z)' })),
    }),
    response: Aggregated,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return aggregated(s, await authorizeLogs(s, req.principal, { kind: 'all' }, false), req.query, false);
    },
  }),
  // The download link an export hands out when storage cannot pre-sign one: the signature is the
  // credential (like a pre-signed S3 URL), so no login is needed and none is accepted instead.
  defineRoute({
    method: 'GET', path: '/exportedlogs/{file_id}', nickname: null, anonAllowed: true,
    params: Type.Object({ file_id: Type.String() }),
    querystring: Type.Object({ expires: Type.Optional(Type.String()), signature: Type.Optional(Type.String()) }),
    async handler(req, reply, env) {
      const s = env.ctx.services;
      const r = await openExportDownload(s, req.params.file_id, req.query.expires, req.query.signature);
      if (!r.ok) {
        if (r.reason === 'missing') throw new PlainError(404, 'The exported logs no longer exist');
        throw new PlainError(403, 'The download link is invalid or has expired');
      }
      reply.header('cache-control', 'private, no-store');
      reply.header('content-disposition', `attachment; filename="${req.params.file_id}.json"`);
      return reply.type('application/json').send(r.body);
    },
  }),
];

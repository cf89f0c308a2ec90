// External notifications (Quay's RepositoryNotification): an event of a repository (repo_push, …)
// or of a namespace (quota_warning, quota_error) delivered by a method (webhook, email, slack,
// quay_notification). One table holds both kinds: repository notifications have repository_id
// set, namespace notifications only namespace_id. Firing an event queues one `notify` job per
// matching notification; src/model/notification-delivery.ts performs them.
import { randomUUID } from 'node:crypto';
import type { Selectable, Transaction } from 'kysely';
import type { Database, RepoNotificationsTable } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { enqueue } from './queue.ts';
import { requireOrgAdmin, type Actor } from './organizations.ts';
import { accessRepo } from './repository-api.ts';
import { checkOutboundUrl, OutboundBlockedError, outboundPolicy } from './outbound.ts';
import { isEmailAuthorizedForRepo } from './authorized-emails.ts';

export const NOTIFY_QUEUE = 'notify';
/** Quay stops sending a notification once it has failed this many times (reset puts it back). */
export const FAILURE_LIMIT = 3;
/** Delivery attempts per queued event (each failed one counts against FAILURE_LIMIT). */
export const DELIVERY_ATTEMPTS = 3;

type Db = Transaction<Database> | Services['db'];
type Row = Selectable<RepoNotificationsTable>;

// ---- Events

export type EventLevel = 'info' | 'warning' | 'error' | 'primary' | 'success';

export interface EventSpec {
  scope: 'repo' | 'namespace';
  level: EventLevel;
  summary(data: EventData): string;
  /** Quay's get_sample_data: what `test` sends. */
  sample(s: Services, namespace: string, repo: string | null, eventConfig: Record<string, unknown>): EventData;
}

export type EventData = Record<string, unknown>;

function appHost(s: Services): string {
  return s.config.serverHostname ?? `localhost:${s.config.port}`;
}

/** Quay's build_repository_event_data. */
export function repositoryEventData(s: Services, namespace: string, name: string, extra: EventData = {}, subpage?: string): EventData {
  const repository = `${namespace}/${name}`;
  let homepage = `${s.config.preferredUrlScheme}://${appHost(s)}/repository/${repository}`;
  if (subpage) homepage += subpage.startsWith('/') ? subpage : `/${subpage}`;
  return { repository, namespace, name, docker_url: `${appHost(s)}/${repository}`, homepage, ...extra };
}

/** Quay's build_namespace_event_data. */
export function namespaceEventData(s: Services, namespace: string, extra: EventData = {}): EventData {
  return { namespace, homepage: `${s.config.preferredUrlScheme}://${appHost(s)}/organization/${namespace}`, ...extra };
}

const FAKE_BUILD = 'fake-build-id';
function buildSample(extra: EventData) {
  return (s: Services, ns: string, repo: string | null): EventData => repositoryEventData(s, ns, repo ?? '', {
    build_id: FAKE_BUILD, build_name: 'some-fake-build', docker_tags: ['latest', 'foo', 'bar'], trigger_id: '1245634', trigger_kind: 'GitHub',
    trigger_metadata: { default_branch: 'master', ref: 'refs/heads/somebranch', commit: '42d4a62c53350993ea41069e9f2cfdefb0df097d' },
    ...extra,
  }, `/build/${FAKE_BUILD}`);
}
const buildSummary = (what: string) => (d: EventData) => `${what} for repository ${String(d.repository)} [${String(d.build_id ?? '').slice(0, 7)}]`;
const mirrorSample = (s: Services, ns: string, repo: string | null) => repositoryEventData(s, ns, repo ?? '', { message: 'TEST NOTIFICATION' });
const VULN_PRIORITIES = ['Unknown', 'Negligible', 'Low', 'Medium', 'High', 'Critical', 'Defcon1'];

/**
 * Quay's events. Quayside raises repo_push (after a tag push over /v2) and the namespace quota
 * events. Builds, security scanning and mirroring do not exist here yet: their events are accepted
 * (Quay's UI creates them) and can be tested, but never fire. repo_image_expiry is refused: it is
 * raised by a Quay worker Quayside does not have, and accepting it would promise mail that never comes.
 */
export const EVENTS: Record<string, EventSpec> = {
  repo_push: {
    scope: 'repo', level: 'primary', summary: (d) => `Repository ${String(d.repository)} updated`,
    sample: (s, ns, repo) => repositoryEventData(s, ns, repo ?? '', { updated_tags: ['latest', 'foo'], pruned_image_count: 3 }),
  },
  build_queued: { scope: 'repo', level: 'info', summary: buildSummary('Build queued'), sample: buildSample({ is_manual: false }) },
  build_start: { scope: 'repo', level: 'info', summary: buildSummary('Build started'), sample: buildSample({}) },
  build_success: { scope: 'repo', level: 'success', summary: buildSummary('Build succeeded'), sample: buildSample({ image_id: '1245657346' }) },
  build_failure: { scope: 'repo', level: 'error', summary: buildSummary('Build failure'), sample: buildSample({ error_message: 'This is a fake error message' }) },
  build_cancelled: { scope: 'repo', level: 'info', summary: buildSummary('Build cancelled'), sample: buildSample({ image_id: '1245657346' }) },
  vulnerability_found: {
    scope: 'repo', level: 'error',
    summary: (d) => `${String((d.vulnerability as { priority?: string } | undefined)?.priority ?? 'Unknown')} vulnerability detected in repository ${String(d.repository)} in ${(d.tags as unknown[] | undefined)?.length ?? 0} tags`,
    sample: (s, ns, repo, cfg) => repositoryEventData(s, ns, repo ?? '', {
      tags: ['latest', 'prod', 'foo', 'bar', 'baz'], image: 'some-image-id',
      vulnerability: {
        id: 'CVE-FAKE-CVE', description: 'A futurist vulnerability', link: 'https://security-tracker.debian.org/tracker/CVE-FAKE-CVE',
        priority: VULN_PRIORITIES[VULN_PRIORITIES.length - 1 - Math.min(6, Math.max(0, Number(cfg.level ?? 1) || 1))] ?? 'Critical',
      },
    }),
  },
  repo_mirror_sync_started: { scope: 'repo', level: 'info', summary: (d) => `Repository Mirror started for ${String(d.message)}`, sample: mirrorSample },
  repo_mirror_sync_success: { scope: 'repo', level: 'success', summary: (d) => `Repository Mirror success for ${String(d.message)}`, sample: mirrorSample },
  repo_mirror_sync_failed: { scope: 'repo', level: 'error', summary: (d) => `Repository Mirror failed for ${String(d.message)}`, sample: mirrorSample },
  quota_warning: {
    scope: 'namespace', level: 'warning', summary: (d) => `Quota warning for namespace ${String(d.namespace)}`,
    sample: (s, ns) => namespaceEventData(s, ns, { usage_bytes: 850, quota_bytes: 1000, percent: 85 }),
  },
  quota_error: {
    scope: 'namespace', level: 'error', summary: (d) => `Quota exceeded for namespace ${String(d.namespace)}`,
    sample: (s, ns) => namespaceEventData(s, ns, { usage_bytes: 1100, quota_bytes: 1000, percent: 110 }),
  },
};

export const METHODS = ['webhook', 'email', 'slack', 'quay_notification'] as const;
export type MethodName = typeof METHODS[number];

// ---- Owners

export type NotificationOwner =
  | { kind: 'repo'; namespace: string; name: string }
  | { kind: 'org'; orgname: string }
  /** The calling user's own namespace (/user/namespacenotifications). */
  | { kind: 'user' };

interface Resolved {
  owner: NotificationOwner;
  namespaceId: number;
  namespace: string;
  namespaceKind: string;
  repo: { id: number; name: string } | null;
}

/** Authorizes before revealing existence: repository admins, organization admins, the user themself
 * (superusers with full access; global read-only superusers for reads). */
async function resolveOwner(s: Services, p: Principal, owner: NotificationOwner, mode: 'read' | 'write'): Promise<Resolved> {
  switch (owner.kind) {
    case 'repo': {
      const { repo } = await accessRepo(s, p, owner.namespace, owner.name, 'admin', { readonlySuperuser: mode === 'read' });
      return { owner, namespaceId: repo.namespace_id, namespace: repo.namespace, namespaceKind: repo.namespace_kind, repo: { id: repo.id, name: repo.name } };
    }
    case 'org': {
      const { org } = await requireOrgAdmin(s, p, owner.orgname, mode);
      return { owner, namespaceId: org.id, namespace: org.username, namespaceKind: 'org', repo: null };
    }
    case 'user':
      if (p.kind !== 'user') throw new DomainError('denied', 'Unauthorized');
      return { owner, namespaceId: p.userId, namespace: p.username, namespaceKind: 'user', repo: null };
  }
}

function rowsOf(db: Db, o: Resolved) {
  const q = db.selectFrom('repo_notifications').selectAll();
  return o.repo ? q.where('repository_id', '=', o.repo.id) : q.where('namespace_id', '=', o.namespaceId).where('repository_id', 'is', null);
}

// ---- Views

export interface NotificationView {
  uuid: string;
  title: string | null;
  event: string;
  method: string;
  config: Record<string, unknown>;
  event_config: Record<string, unknown>;
  number_of_failures: number;
}

function parseObject(text: string | null): Record<string, unknown> {
  try {
    const v = JSON.parse(text ?? '{}') as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export function notificationView(r: Row): NotificationView {
  return {
    uuid: r.uuid, title: r.title, event: r.event, method: r.method, config: parseObject(r.config), event_config: parseObject(r.event_config),
    number_of_failures: Number(r.number_of_failures),
  };
}

// ---- Validation (Quay's NotificationMethod.validate messages)

export interface NotificationInput {
  event: string;
  method: string;
  config: Record<string, unknown>;
  eventConfig: Record<string, unknown>;
  title?: string;
}

const bad = (message: string): never => {
  throw new DomainError('invalid_request', message);
};

function checkEvent(o: Resolved, event: string): void {
  const spec = EVENTS[event];
  if (o.repo) {
    if (!spec || spec.scope !== 'repo') bad(`Unable to find event: ${event}`);
  } else if (!spec || spec.scope !== 'namespace') {
    bad(`Invalid event '${event}'. Must be one of: quota_error, quota_warning`);
  }
}

async function checkWebhookUrl(s: Services, url: string): Promise<void> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return bad('Invalid webhook URL');
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname) bad('Invalid webhook URL');
  // Quay refuses localhost and 127.0.0.1 by name. Here every literal address and `localhost` is
  // judged by the outbound guard now (allowlisted ones pass); names are checked at delivery, when
  // they are resolved.
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || /^[\d.]+$/.test(host) || host.includes(':')) {
    try {
      await checkOutboundUrl(outboundPolicy(s.config), u);
    } catch (e) {
      if (e instanceof OutboundBlockedError) bad('Invalid webhook URL');
      throw e;
    }
  }
}

/** The users a quay_notification reaches; a string is Quay's validation message. */
export async function quayNotificationTargets(s: Services, namespace: string, config: Record<string, unknown>): Promise<number[] | string> {
  const target = config.target as { kind?: unknown; name?: unknown } | undefined;
  if (!target || typeof target !== 'object' || !target.kind) return 'Missing target';
  const name = typeof target.name === 'string' ? target.name : '';
  switch (target.kind) {
    case 'user': {
      const u = await s.db.selectFrom('users').select('id').where('username', '=', name).where('kind', '=', 'user').executeTakeFirst();
      return u ? [u.id] : `Unknown user ${name}`;
    }
    case 'org': {
      const org = await s.db.selectFrom('users').select('id').where('username', '=', name).where('kind', '=', 'org').executeTakeFirst();
      if (!org) return `Unknown organization ${name}`;
      if (name !== namespace) return 'Organization name must match repository namespace';
      return [org.id];
    }
    case 'team': {
      const team = await s.db.selectFrom('teams').innerJoin('users', 'users.id', 'teams.org_id').select('teams.id')
        .where('users.username', '=', namespace).where('teams.name', '=', name).executeTakeFirst();
      if (!team) return `Unknown team ${name}`;
      return (await s.db.selectFrom('team_members').innerJoin('users', 'users.id', 'team_members.user_id').select('users.id')
        .where('team_members.team_id', '=', team.id).where('users.kind', '=', 'user').execute()).map((r) => r.id);
    }
    default:
      return 'Missing target';
  }
}

/** An address the caller may send to: authorized for the repository, or the caller's own verified one. */
async function emailAllowed(s: Services, p: Principal, o: Resolved, email: string): Promise<boolean> {
  if (p.kind === 'user') {
    const me = await s.db.selectFrom('users').select(['email', 'verified']).where('id', '=', p.userId).executeTakeFirst();
    if (me?.email && me.verified && me.email.toLowerCase() === email.toLowerCase()) return true;
  }
  return o.repo !== null && (await isEmailAuthorizedForRepo(s, o.repo.id, email));
}

async function validate(s: Services, p: Principal, o: Resolved, input: NotificationInput): Promise<void> {
  checkEvent(o, input.event);
  const config = input.config;
  const str = (k: string) => (typeof config[k] === 'string' ? (config[k] as string) : '');
  switch (input.method) {
    case 'webhook':
      if (!str('url')) bad('Missing webhook URL');
      await checkWebhookUrl(s, str('url'));
      if (config.template !== undefined && config.template !== null && config.template !== '') {
        bad('Webhook body templates are not supported by this registry');
      }
      return;
    case 'email':
      if (!str('email')) bad('Missing e-mail address');
      if (!(await emailAllowed(s, p, o, str('email')))) bad('The specified e-mail address is not authorized to receive notifications for this repository');
      return;
    case 'slack':
      if (!str('url')) bad('Missing Slack Callback URL');
      await checkWebhookUrl(s, str('url'));
      return;
    case 'quay_notification': {
      const targets = await quayNotificationTargets(s, o.namespace, config);
      if (typeof targets === 'string') bad(targets);
      return;
    }
    default:
      bad(`Unknown notification method '${input.method}'`);
  }
}

// ---- Through the API

function logKinds(o: Resolved) {
  return o.repo
    ? { add: 'add_repo_notification', delete: 'delete_repo_notification', reset: 'reset_repo_notification' }
    : { add: 'create_namespace_notification', delete: 'delete_namespace_notification', reset: 'reset_namespace_notification' };
}

function logMeta(o: Resolved, r: { uuid: string; event: string; method: string }) {
  return {
    ...(o.repo ? { repo: o.repo.name } : {}), namespace: o.namespace, notification_id: r.uuid, event: r.event, method: r.method,
  };
}

/** Quay answers a missing repository notification on delete/reset/test with 400, a namespace one with 404. */
function missing(o: Resolved, uuid: string): DomainError {
  if (o.owner.kind === 'repo') return new DomainError('invalid_request', `No repository notification found for: ${o.owner.namespace}, ${o.owner.name}, ${uuid}`);
  return new DomainError('not_found', 'Not Found');
}

export async function listNotifications(s: Services, p: Principal, owner: NotificationOwner): Promise<NotificationView[]> {
  const o = await resolveOwner(s, p, owner, 'read');
  return (await rowsOf(s.db, o).orderBy('id').execute()).map(notificationView);
}

export async function getNotification(s: Services, p: Principal, owner: NotificationOwner, uuid: string): Promise<NotificationView> {
  const o = await resolveOwner(s, p, owner, 'read');
  const row = await rowsOf(s.db, o).where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  return notificationView(row);
}

export async function createNotification(s: Services, actor: Actor, owner: NotificationOwner, input: NotificationInput): Promise<NotificationView> {
  const o = await resolveOwner(s, actor.principal, owner, 'write');
  await validate(s, actor.principal, o, input);
  const uuid = randomUUID();
  return s.db.transaction().execute(async (tx) => {
    const row = await tx.insertInto('repo_notifications').values({
      uuid, repository_id: o.repo?.id ?? null, namespace_id: o.namespaceId, event: input.event, method: input.method,
      title: input.title ?? null, config: JSON.stringify(input.config), event_config: JSON.stringify(input.eventConfig ?? {}),
    }).returningAll().executeTakeFirstOrThrow();
    await logAction(s, logKinds(o).add, {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, row),
    }, tx);
    return notificationView(row);
  });
}

export async function deleteNotification(s: Services, actor: Actor, owner: NotificationOwner, uuid: string): Promise<void> {
  const o = await resolveOwner(s, actor.principal, owner, 'write');
  await s.db.transaction().execute(async (tx) => {
    const row = await rowsOf(tx, o).where('uuid', '=', uuid).executeTakeFirst();
    if (!row) throw missing(o, uuid);
    await tx.deleteFrom('repo_notifications').where('id', '=', row.id).execute();
    await logAction(s, logKinds(o).delete, {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, row),
    }, tx);
  });
}

export async function resetNotificationFailures(s: Services, actor: Actor, owner: NotificationOwner, uuid: string): Promise<void> {
  const o = await resolveOwner(s, actor.principal, owner, 'write');
  await s.db.transaction().execute(async (tx) => {
    const row = await rowsOf(tx, o).where('uuid', '=', uuid).executeTakeFirst();
    if (!row) throw missing(o, uuid);
    await tx.updateTable('repo_notifications').set({ number_of_failures: 0 }).where('id', '=', row.id).execute();
    await logAction(s, logKinds(o).reset, {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, row),
    }, tx);
  });
}

/** Queues a delivery of the event's sample data through this notification. */
export async function testNotification(s: Services, actor: Actor, owner: NotificationOwner, uuid: string): Promise<void> {
  const o = await resolveOwner(s, actor.principal, owner, 'write');
  const row = await rowsOf(s.db, o).where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw missing(o, uuid);
  const spec = EVENTS[row.event];
  if (!spec) throw missing(o, uuid);
  const data = spec.sample(s, o.namespace, o.repo?.name ?? null, parseObject(row.event_config));
  await queueDelivery(s, row, data, performerData(actor.principal), o.repo ? 'repository' : 'namespace');
}

// ---- Firing events

export interface DeliveryPayload {
  notification_uuid: string;
  event_data: EventData;
  performer_data: Record<string, unknown>;
  notification_type: 'repository' | 'namespace';
}

function performerData(p: Principal | null): Record<string, unknown> {
  return p && p.kind !== 'anonymous' ? { entity_id: p.userId, entity_name: p.username } : {};
}

function queueDelivery(
  s: Services, row: Pick<Row, 'uuid'>, data: EventData, performer: Record<string, unknown>, type: DeliveryPayload['notification_type'], dedupeKey?: string,
): Promise<boolean> {
  const payload: DeliveryPayload = { notification_uuid: row.uuid, event_data: data, performer_data: performer, notification_type: type };
  return enqueue(s, NOTIFY_QUEUE, payload, { maxAttempts: DELIVERY_ATTEMPTS, ...(dedupeKey ? { dedupeKey } : {}) });
}

/**
 * After a tag push committed: one delivery per enabled repo_push notification of the repository.
 * One indexed query (repository_id, event) when there are none. Never fails the push.
 */
export async function notifyRepoPush(
  s: Services, repo: { id: number; namespace: string; name: string }, tags: string[], performer: Principal | null,
): Promise<void> {
  try {
    const rows = await s.db.selectFrom('repo_notifications').select(['uuid', 'number_of_failures'])
      .where('repository_id', '=', repo.id).where('event', '=', 'repo_push').execute();
    const live = rows.filter((r) => Number(r.number_of_failures) < FAILURE_LIMIT);
    if (live.length === 0) return;
    const data = repositoryEventData(s, repo.namespace, repo.name, { updated_tags: tags });
    for (const r of live) await queueDelivery(s, r, data, performerData(performer), 'repository');
  } catch (err) {
    s.log.warn({ err, repositoryId: repo.id }, 'could not queue repo_push notifications');
  }
}

/** A namespace event (quota_warning, quota_error): one delivery per enabled namespace notification. */
export async function notifyNamespaceEvent(s: Services, namespaceId: number, event: 'quota_warning' | 'quota_error', extra: EventData = {}): Promise<void> {
  try {
    const rows = await s.db.selectFrom('repo_notifications').innerJoin('users', 'users.id', 'repo_notifications.namespace_id')
      .select(['repo_notifications.uuid', 'repo_notifications.number_of_failures', 'users.username'])
      .where('repo_notifications.namespace_id', '=', namespaceId).where('repo_notifications.repository_id', 'is', null)
      .where('repo_notifications.event', '=', event).execute();
    for (const r of rows) {
      if (Number(r.number_of_failures) >= FAILURE_LIMIT) continue;
      // Quota checks run on every upload chunk: one pending delivery per notification is enough.
      await queueDelivery(s, r, namespaceEventData(s, r.username, extra), {}, 'namespace', `notify:${r.uuid}`);
    }
  } catch (err) {
    s.log.warn({ err, namespaceId }, `could not queue ${event} notifications`);
  }
}

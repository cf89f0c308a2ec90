// /api/v1 notifications over real HTTP (endpoints.json area "notification"): repository
// notifications with Quay's shapes, validation messages and usage-log entries; a tag push that
// delivers a webhook to a local receiver; Slack, e-mail (to a local SMTP server, after the address
// was authorized through the mailed link) and in-app deliveries; the failure limit and its reset;
// namespace (quota) notifications of an organization and of the caller.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { createWorld, type World } from '../../support/world.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-server.ts';
import { json, logsOf, pushImage } from './images.ts';
import { claim, complete, fail, type Job } from '../../../src/model/queue.ts';
import { NOTIFY_QUEUE, notifyNamespaceEvent, type DeliveryPayload } from '../../../src/model/notifications.ts';
import { deliverNotification } from '../../../src/model/notification-delivery.ts';
import { workerHandlers } from '../../../src/workers/index.ts';
import type { Services } from '../../../src/model/context.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const silent = pino({ level: 'silent' });

interface Hit { path: string; body: any; contentType: string | undefined }

let w: World;
let s: Services;
let smtp: SmtpSink;
let receiver: Server;
let port: number;
let receiverStatus = 200;
const hits: Hit[] = [];

before(async () => {
  smtp = await startSmtpSink();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ path: req.url ?? '', body: JSON.parse(Buffer.concat(chunks).toString('utf8')), contentType: req.headers['content-type'] });
      res.writeHead(receiverStatus).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
  w = await createWorld({
    ...smtp.config, FEATURE_MAILING: true, FEATURE_QUOTA_NOTIFICATIONS: true, SERVER_HOSTNAME: 'quay.example.com',
    REGISTRY_TITLE_SHORT: 'Quayside Test', QUAYSIDE_OUTBOUND_ALLOWLIST: ['127.0.0.1'],
  });
  s = w.t.app.services;
});
after(async () => {
  await w?.close();
  await new Promise((r) => receiver?.close(r));
  await smtp?.close();
});
beforeEach(async () => {
  await s.db.deleteFrom('repo_notifications').execute();
  await s.db.deleteFrom('jobs').where('queue', '=', NOTIFY_QUEUE).execute();
  hits.length = 0;
  smtp.mails.length = 0;
  receiverStatus = 200;
});

const hook = (path = '/hook') => `http://127.0.0.1:${port}${path}`;
const REPO = '/repository/acme/repo/notification/';

function apiError(status: number, type: string, detail: string) {
  return { status, error_message: detail, title: type, error_type: type, detail, type: `http://quay.example.com/api/v1/error/${type}` };
}

async function create(base: string, body: unknown): Promise<any> {
  const res = await w.api('POST', base, { body });
  const out = await json(res);
  assert.equal(res.status, 201, JSON.stringify(out));
  return out;
}

/** Claims and runs every due notify job with the registered handler. */
async function runNotify(): Promise<{ job: Job; error: unknown }[]> {
  const handler = workerHandlers(s)[NOTIFY_QUEUE];
  assert.ok(handler, 'the notify handler is registered in workerHandlers()');
  const out: { job: Job; error: unknown }[] = [];
  for (const job of await claim(s, NOTIFY_QUEUE, { leaseMs: 60_000, limit: 50 })) {
    try {
      await handler(job, new AbortController().signal, silent);
      await complete(s, job);
      out.push({ job, error: null });
    } catch (e) {
      await fail(s, job, e);
      out.push({ job, error: e });
    }
  }
  return out;
}

const notifyJobs = () => s.db.selectFrom('jobs').select('payload').where('queue', '=', NOTIFY_QUEUE).execute();

describe('repository notifications', () => {
  test('create, list, get and delete in Quay\'s shape, with usage-log entries', async () => {
    const created = await create(REPO, { event: 'repo_push', method: 'webhook', config: { url: hook() }, eventConfig: {}, title: 'CI hook' });
    assert.match(created.uuid, UUID);
    assert.deepEqual(created, {
      uuid: created.uuid, title: 'CI hook', event: 'repo_push', method: 'webhook', config: { url: hook() }, event_config: {}, number_of_failures: 0,
    });
    const untitled = await create(REPO, { event: 'build_success', method: 'webhook', config: { url: hook() }, eventConfig: { 'ref-regex': 'main' } });
    assert.equal(untitled.title, null);
    assert.deepEqual(untitled.event_config, { 'ref-regex': 'main' });

    const list = await w.api('GET', REPO);
    assert.equal(list.status, 200);
    assert.deepEqual(await json(list), { notifications: [created, untitled] });
    const one = await w.api('GET', `${REPO}${created.uuid}`);
    assert.deepEqual(await json(one), created);

    const [added] = (await logsOf(w, 'add_repo_notification')).slice(-1);
    assert.deepEqual(added!.metadata, { repo: 'repo', namespace: 'acme', notification_id: untitled.uuid, event: 'build_success', method: 'webhook' });
    assert.equal(added!.performer_id, w.users.orgadmin.id);

    const del = await w.api('DELETE', `${REPO}${created.uuid}`);
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    const [deleted] = (await logsOf(w, 'delete_repo_notification')).slice(-1);
    assert.deepEqual(deleted!.metadata, { repo: 'repo', namespace: 'acme', notification_id: created.uuid, event: 'repo_push', method: 'webhook' });
    assert.equal((await w.api('GET', `${REPO}${created.uuid}`)).status, 404);
    // Quay answers a missing repository notification on delete, reset and test with 400.
    const msg = `No repository notification found for: acme, repo, ${created.uuid}`;
    for (const [method, path] of [['DELETE', `${REPO}${created.uuid}`], ['POST', `${REPO}${created.uuid}`], ['POST', `${REPO}${created.uuid}/test`]] as const) {
      const r = await w.api(method, path);
      assert.deepEqual({ status: r.status, ...(await json(r)) }, apiError(400, 'invalid_request', msg));
    }
  });

  test('a notification of another repository is not reachable through this one', async () => {
    const other = await create('/repository/acme/repo/notification/', { event: 'repo_push', method: 'webhook', config: { url: hook() }, eventConfig: {} });
    await w.api('POST', '/repository', { body: { namespace: 'acme', repository: 'second', visibility: 'private', description: '' } });
    assert.equal((await w.api('GET', `/repository/acme/second/notification/${other.uuid}`)).status, 404);
    assert.equal((await w.api('DELETE', `/repository/acme/second/notification/${other.uuid}`)).status, 400);
  });

  test('config is validated per method with Quay\'s messages', async () => {
    const cases: [unknown, string][] = [
      [{ event: 'repo_push', method: 'webhook', config: {}, eventConfig: {} }, 'Missing webhook URL'],
      [{ event: 'repo_push', method: 'webhook', config: { url: 'ftp://example.com/x' }, eventConfig: {} }, 'Invalid webhook URL'],
      [{ event: 'repo_push', method: 'webhook', config: { url: 'http://10.1.2.3/hook' }, eventConfig: {} }, 'Invalid webhook URL'],
      [{ event: 'repo_push', method: 'slack', config: {}, eventConfig: {} }, 'Missing Slack Callback URL'],
      [{ event: 'repo_push', method: 'email', config: {}, eventConfig: {} }, 'Missing e-mail address'],
      [{ event: 'repo_push', method: 'email', config: { email: 'stranger@example.com' }, eventConfig: {} },
        'The specified e-mail address is not authorized to receive notifications for this repository'],
      [{ event: 'repo_push', method: 'quay_notification', config: {}, eventConfig: {} }, 'Missing target'],
      [{ event: 'repo_push', method: 'quay_notification', config: { target: { kind: 'user', name: 'nobody' } }, eventConfig: {} }, 'Unknown user nobody'],
      [{ event: 'repo_push', method: 'quay_notification', config: { target: { kind: 'team', name: 'nosuch' } }, eventConfig: {} }, 'Unknown team nosuch'],
      [{ event: 'repo_push', method: 'quay_notification', config: { target: { kind: 'org', name: 'orgadmin' } }, eventConfig: {} }, 'Unknown organization orgadmin'],
      [{ event: 'repo_push', method: 'carrier_pigeon', config: {}, eventConfig: {} }, 'Unknown notification method \'carrier_pigeon\''],
      [{ event: 'repo_exploded', method: 'webhook', config: { url: hook() }, eventConfig: {} }, 'Unable to find event: repo_exploded'],
      [{ event: 'repo_image_expiry', method: 'webhook', config: { url: hook() }, eventConfig: {} }, 'Unable to find event: repo_image_expiry'],
      [{ event: 'quota_warning', method: 'webhook', config: { url: hook() }, eventConfig: {} }, 'Unable to find event: quota_warning'],
    ];
    for (const [body, message] of cases) {
      const res = await w.api('POST', REPO, { body });
      assert.deepEqual({ status: res.status, ...(await json(res)) }, apiError(400, 'invalid_request', message), JSON.stringify(body));
    }
    const missing = await w.api('POST', REPO, { body: { event: 'repo_push', method: 'webhook', config: {} } });
    assert.equal(missing.status, 400);
    assert.equal((await w.api('GET', '/repository/acme/repo/notification/')).status, 200);
    assert.deepEqual((await json(await w.api('GET', REPO))).notifications, []);
  });

  test('a tag push delivers Quay\'s repo_push data to the webhook; other repositories\' pushes do not', async () => {
    const n = await create(REPO, { event: 'repo_push', method: 'webhook', config: { url: hook('/push') }, eventConfig: {} });
    await create(REPO, { event: 'build_success', method: 'webhook', config: { url: hook('/build') }, eventConfig: {} });
    await pushImage(w, 'acme/other', 'v1');
    assert.deepEqual(await notifyJobs(), []);
    await pushImage(w, 'acme/repo', 'v1');
    await pushImage(w, 'acme/repo', null); // by digest: no tag, no event
    const ran = await runNotify();
    assert.equal(ran.length, 1);
    assert.equal(ran[0]!.error, null);
    assert.equal((ran[0]!.job.payload as DeliveryPayload).notification_uuid, n.uuid);
    assert.deepEqual((ran[0]!.job.payload as DeliveryPayload).performer_data, { entity_id: w.users.orgadmin.id, entity_name: 'orgadmin' });
    assert.equal(hits.length, 1);
    assert.equal(hits[0]!.path, '/push');
    assert.equal(hits[0]!.contentType, 'application/json');
    assert.deepEqual(hits[0]!.body, {
      repository: 'acme/repo', namespace: 'acme', name: 'repo', docker_url: 'quay.example.com/acme/repo',
      homepage: 'http://quay.example.com/repository/acme/repo', updated_tags: ['v1'],
    });
  });

  test('failed deliveries count; after three the notification is skipped until reset', async () => {
    const n = await create(REPO, { event: 'repo_push', method: 'webhook', config: { url: hook() }, eventConfig: {} });
    receiverStatus = 500;
    await pushImage(w, 'acme/repo', 'v2');
    const [first] = await runNotify();
    assert.match(String((first!.error as Error).message), /^500 response for webhook to url: /);
    const payload = first!.job.payload as DeliveryPayload;
    await assert.rejects(deliverNotification(s, payload));
    await assert.rejects(deliverNotification(s, payload));
    assert.equal((await json(await w.api('GET', `${REPO}${n.uuid}`))).number_of_failures, 3);
    receiverStatus = 200;
    assert.equal(await deliverNotification(s, payload), 'disabled');
    assert.equal(hits.length, 3);
    // A disabled notification is not even queued by a push.
    await s.db.deleteFrom('jobs').where('queue', '=', NOTIFY_QUEUE).execute();
    await pushImage(w, 'acme/repo', 'v3');
    assert.deepEqual(await notifyJobs(), []);

    const reset = await w.api('POST', `${REPO}${n.uuid}`);
    assert.equal(reset.status, 204);
    assert.equal((await json(await w.api('GET', `${REPO}${n.uuid}`))).number_of_failures, 0);
    const [logged] = (await logsOf(w, 'reset_repo_notification')).slice(-1);
    assert.deepEqual(logged!.metadata, { repo: 'repo', namespace: 'acme', notification_id: n.uuid, event: 'repo_push', method: 'webhook' });
    assert.equal(await deliverNotification(s, payload), 'sent');
  });

  test('test queues Quay\'s sample data; Slack gets its attachment shape', async () => {
    const n = await create(REPO, { event: 'repo_push', method: 'slack', config: { url: hook('/slack') }, eventConfig: {} });
    const res = await w.api('POST', `${REPO}${n.uuid}/test`);
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), {});
    const [ran] = await runNotify();
    assert.equal(ran!.error, null);
    assert.deepEqual((ran!.job.payload as DeliveryPayload).event_data, {
      repository: 'acme/repo', namespace: 'acme', name: 'repo', docker_url: 'quay.example.com/acme/repo',
      homepage: 'http://quay.example.com/repository/acme/repo', updated_tags: ['latest', 'foo'], pruned_image_count: 3,
    });
    assert.equal(hits.length, 1);
    assert.equal(hits[0]!.path, '/slack');
    const body = hits[0]!.body;
    assert.equal(body.text, 'Repository acme/repo updated');
    assert.equal(body.username, 'quayiobot');
    assert.equal(body.attachments.length, 1);
    assert.deepEqual({ ...body.attachments[0], text: undefined }, { fallback: 'Repository acme/repo updated', color: 'good', mrkdwn_in: ['text'], text: undefined });
    assert.equal(body.attachments[0].text, 'Repository <http://quay.example.com/repository/acme/repo|acme/repo> has been pushed with the following tags updated:\n\n*latest*, *foo*');
  });

  test('events Quayside cannot raise yet are accepted and can be tested', async () => {
    for (const event of ['build_queued', 'build_start', 'build_failure', 'build_cancelled', 'vulnerability_found', 'repo_mirror_sync_started', 'repo_mirror_sync_success', 'repo_mirror_sync_failed']) {
      const n = await create(REPO, { event, method: 'webhook', config: { url: hook(`/${event}`) }, eventConfig: {} });
      assert.equal((await w.api('POST', `${REPO}${n.uuid}/test`)).status, 200);
    }
    const ran = await runNotify();
    assert.equal(ran.filter((r) => r.error !== null).length, 0);
    const build = hits.find((h) => h.path === '/build_failure')!.body;
    assert.equal(build.build_id, 'fake-build-id');
    assert.equal(build.homepage, 'http://quay.example.com/repository/acme/repo/build/fake-build-id');
    assert.equal(hits.find((h) => h.path === '/vulnerability_found')!.body.vulnerability.id, 'CVE-FAKE-CVE');
  });

  test('quay_notification creates in-app notifications for the target', async () => {
    await create(REPO, { event: 'repo_push', method: 'quay_notification', config: { target: { kind: 'team', name: 'builders' } }, eventConfig: {} });
    await create(REPO, { event: 'repo_push', method: 'quay_notification', config: { target: { kind: 'org', name: 'acme' } }, eventConfig: {} });
    await pushImage(w, 'acme/repo', 'inapp');
    assert.ok((await runNotify()).every((r) => r.error === null));
    const res = await w.api('GET', '/user/notifications', { caller: 'creator' });
    const body = await json(res);
    const pushes = body.notifications.filter((n: any) => n.kind === 'repo_push');
    assert.equal(pushes.length, 1);
    assert.deepEqual(pushes[0].metadata.updated_tags, ['inapp']);
    const org = await s.db.selectFrom('user_notifications').select('kind').where('user_id', '=', w.org.id).where('kind', '=', 'repo_push').execute();
    assert.equal(org.length, 1);
  });
});

describe('e-mail notifications and authorized addresses', () => {
  test('an address confirmed through the mailed link may receive a repository\'s notifications', async () => {
    const base = '/repository/acme/repo/authorizedemail/ops@example.com';
    assert.equal((await w.api('GET', base)).status, 404);
    const asked = await w.api('POST', base);
    assert.equal(asked.status, 200);
    assert.deepEqual(await json(asked), { email: 'ops@example.com', repository: 'repo', namespace: 'acme', confirmed: false });
    const [mail] = await smtp.waitFor(1);
    assert.deepEqual(mail!.to, ['ops@example.com']);
    assert.match(mail!.subject, /^\[Quayside Test\] Verify e-mail address for repository acme\/repo$/);
    const link = /https?:\/\/\S+\/authrepoemail\?code=[\w-]+/.exec(mail!.text)?.[0];
    assert.ok(link, mail!.text);
    const row = await s.db.selectFrom('repo_authorized_emails').selectAll().executeTakeFirstOrThrow();
    assert.ok(!link.includes(row.code_hash), 'the code is stored hashed');
    assert.deepEqual(await json(await w.api('GET', base)), { email: 'ops@example.com', repository: 'repo', namespace: 'acme', confirmed: false });

    const page = await fetch(`${w.t.url}${new URL(link).pathname}${new URL(link).search}`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /ops@example\.com has been authorized to receive notifications for repository acme\/repo/);
    const again = await fetch(`${w.t.url}${new URL(link).pathname}${new URL(link).search}`);
    assert.match(await again.text(), /invalid or may have already been used/);
    assert.deepEqual(await json(await w.api('GET', base)), { email: 'ops@example.com', repository: 'repo', namespace: 'acme', confirmed: true });
    // Confirmed: asking again sends nothing.
    assert.equal((await json(await w.api('POST', base))).confirmed, true);
    assert.equal(smtp.mails.length, 1);

    const n = await create(REPO, { event: 'repo_push', method: 'email', config: { email: 'ops@example.com' }, eventConfig: {} });
    await pushImage(w, 'acme/repo', 'mailed');
    assert.ok((await runNotify()).every((r) => r.error === null));
    const [, note] = await smtp.waitFor(2);
    assert.deepEqual(note!.to, ['ops@example.com']);
    assert.equal(note!.subject, '[Quayside Test] Repository acme/repo updated');
    assert.match(note!.html, /<b>mailed<\/b>/);
    assert.ok(n.uuid);
  });

  test('the caller\'s own verified address needs no authorization', async () => {
    const n = await create(REPO, { event: 'repo_push', method: 'email', config: { email: 'orgadmin@example.com' }, eventConfig: {} });
    assert.equal(n.method, 'email');
  });
});

describe('namespace notifications', () => {
  const AREAS = [
    { name: 'organization', base: '/organization/acme/notifications', namespace: 'acme', id: () => w.org.id },
    { name: 'user', base: '/user/namespacenotifications', namespace: 'orgadmin', id: () => w.users.orgadmin.id },
  ];
  for (const area of AREAS) {
    test(`${area.name}: CRUD, events and delivery of quota events`, async () => {
      const bad = await w.api('POST', area.base, { body: { event: 'repo_push', method: 'webhook', config: { url: hook() }, eventConfig: {} } });
      assert.deepEqual({ status: bad.status, ...(await json(bad)) }, apiError(400, 'invalid_request', 'Invalid event \'repo_push\'. Must be one of: quota_error, quota_warning'));
      const n = await create(area.base, { event: 'quota_warning', method: 'webhook', config: { url: hook('/quota') }, eventConfig: {}, title: 'quota' });
      assert.deepEqual(n, { uuid: n.uuid, title: 'quota', event: 'quota_warning', method: 'webhook', config: { url: hook('/quota') }, event_config: {}, number_of_failures: 0 });
      assert.deepEqual(await json(await w.api('GET', area.base)), { notifications: [n] });
      assert.deepEqual(await json(await w.api('GET', `${area.base}/${n.uuid}`)), n);
      const [logged] = (await logsOf(w, 'create_namespace_notification')).slice(-1);
      assert.deepEqual(logged!.metadata, { namespace: area.namespace, notification_id: n.uuid, event: 'quota_warning', method: 'webhook' });

      await notifyNamespaceEvent(s, area.id(), 'quota_warning');
      await notifyNamespaceEvent(s, area.id(), 'quota_error');
      assert.ok((await runNotify()).every((r) => r.error === null));
      assert.equal(hits.length, 1);
      assert.deepEqual(hits[0]!.body, { namespace: area.namespace, homepage: `http://quay.example.com/organization/${area.namespace}` });

      const t = await w.api('POST', `${area.base}/${n.uuid}/test`);
      assert.equal(t.status, 200);
      assert.deepEqual(await json(t), {});
      await runNotify();
      assert.equal(hits.length, 2);
      assert.equal(hits[1]!.body.namespace, area.namespace);

      assert.equal((await w.api('POST', `${area.base}/${n.uuid}`)).status, 204);
      assert.equal((await logsOf(w, 'reset_namespace_notification')).at(-1)!.metadata.notification_id, n.uuid);
      assert.equal((await w.api('DELETE', `${area.base}/${n.uuid}`)).status, 204);
      assert.equal((await logsOf(w, 'delete_namespace_notification')).at(-1)!.metadata.notification_id, n.uuid);
      for (const [method, path] of [['GET', `${area.base}/${n.uuid}`], ['DELETE', `${area.base}/${n.uuid}`], ['POST', `${area.base}/${n.uuid}`], ['POST', `${area.base}/${n.uuid}/test`]] as const) {
        assert.equal((await w.api(method, path)).status, 404, `${method} ${path}`);
      }
    });
  }

  test('repository notifications are not namespace notifications', async () => {
    await create(REPO, { event: 'repo_push', method: 'webhook', config: { url: hook() }, eventConfig: {} });
    assert.deepEqual(await json(await w.api('GET', '/organization/acme/notifications')), { notifications: [] });
  });

  test('repeated quota events keep one pending delivery per notification', async () => {
    await create('/organization/acme/notifications', { event: 'quota_warning', method: 'webhook', config: { url: hook('/warn') }, eventConfig: {} });
    const { notifyNamespaceEvent: fire } = await import('../../../src/model/notifications.ts');
    await fire(s, w.org.id, 'quota_warning');
    await fire(s, w.org.id, 'quota_warning'); // one pending delivery per notification
    assert.equal((await runNotify()).length, 1);
  });
});

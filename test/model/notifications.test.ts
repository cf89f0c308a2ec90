// The notification model below HTTP: a push with no notifications queues nothing; deliveries of
// removed notifications are dropped; the outbound guard refuses webhook targets that are not
// allowlisted at delivery time, and that counts as a failure; Slack text from the HTML message.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { createWorld, type World } from '../support/world.ts';
import type { Services } from '../../src/model/context.ts';
import { principalFor } from '../../src/model/context.ts';
import { createNotification, NOTIFY_QUEUE, notifyRepoPush, type DeliveryPayload } from '../../src/model/notifications.ts';
import { deliverNotification, eventMessage, slackText } from '../../src/model/notification-delivery.ts';
import { OutboundBlockedError } from '../../src/model/outbound.ts';

let w: World;
let s: Services;
let repo: { id: number; namespace: string; name: string };
before(async () => {
  w = await createWorld({});
  s = w.t.app.services;
  const r = await s.db.selectFrom('repositories').select(['id', 'name']).where('name', '=', 'repo').executeTakeFirstOrThrow();
  repo = { id: r.id, namespace: 'acme', name: r.name };
});
after(async () => { await w?.close(); });
beforeEach(async () => {
  await s.db.deleteFrom('repo_notifications').execute();
  await s.db.deleteFrom('jobs').where('queue', '=', NOTIFY_QUEUE).execute();
});

const actor = () => ({ principal: principalFor(w.users.orgadmin, 'password'), ip: null });
const jobs = () => s.db.selectFrom('jobs').select('payload').where('queue', '=', NOTIFY_QUEUE).execute();

test('a push to a repository without repo_push notifications queues nothing', async () => {
  await createNotification(s, actor(), { kind: 'repo', namespace: 'acme', name: 'repo' }, { event: 'build_success', method: 'webhook', config: { url: 'https://hooks.example.com/' }, eventConfig: {} });
  await notifyRepoPush(s, repo, ['v1'], null);
  assert.deepEqual(await jobs(), []);
});

test('a push queues one delivery per repo_push notification with Quay\'s event data', async () => {
  const a = await createNotification(s, actor(), { kind: 'repo', namespace: 'acme', name: 'repo' }, { event: 'repo_push', method: 'webhook', config: { url: 'https://a.example.com/' }, eventConfig: {} });
  const b = await createNotification(s, actor(), { kind: 'repo', namespace: 'acme', name: 'repo' }, { event: 'repo_push', method: 'slack', config: { url: 'https://b.example.com/' }, eventConfig: {} });
  await notifyRepoPush(s, repo, ['v1'], principalFor(w.users.creator, 'password'));
  const payloads = (await jobs()).map((j) => JSON.parse(j.payload) as DeliveryPayload);
  assert.deepEqual(payloads.map((p) => p.notification_uuid).sort(), [a.uuid, b.uuid].sort());
  assert.deepEqual(payloads[0]!.event_data.updated_tags, ['v1']);
  assert.deepEqual(payloads[0]!.performer_data, { entity_id: w.users.creator.id, entity_name: 'creator' });
});

test('a delivery of a deleted notification is dropped', async () => {
  const payload: DeliveryPayload = { notification_uuid: '00000000-0000-4000-8000-000000000000', event_data: {}, performer_data: {}, notification_type: 'repository' };
  assert.equal(await deliverNotification(s, payload), 'gone');
});

test('the outbound guard refuses a webhook to a loopback address at delivery, counting a failure', async () => {
  // Created through a name (not checked until delivery), then pointed at loopback.
  const n = await createNotification(s, actor(), { kind: 'repo', namespace: 'acme', name: 'repo' }, { event: 'repo_push', method: 'webhook', config: { url: 'https://hooks.example.com/' }, eventConfig: {} });
  await s.db.updateTable('repo_notifications').set({ config: JSON.stringify({ url: 'http://127.0.0.1:9/hook' }) }).where('uuid', '=', n.uuid).execute();
  const payload: DeliveryPayload = { notification_uuid: n.uuid, event_data: { repository: 'acme/repo' }, performer_data: {}, notification_type: 'repository' };
  await assert.rejects(deliverNotification(s, payload), OutboundBlockedError);
  const row = await s.db.selectFrom('repo_notifications').select('number_of_failures').where('uuid', '=', n.uuid).executeTakeFirstOrThrow();
  assert.equal(Number(row.number_of_failures), 1);
});

test('Slack text: links, bold and line breaks in Slack\'s markup', () => {
  const html = eventMessage('repo_push', { repository: 'acme/repo', homepage: 'https://q.example.com/repository/acme/repo', updated_tags: ['a', 'b'] });
  assert.equal(slackText(html), 'Repository <https://q.example.com/repository/acme/repo|acme/repo> has been pushed with the following tags updated:\n\n*a*, *b*');
});

// Global messages (/api/v1/messages, /api/v1/message/{uuid}) and registry capabilities
// (/api/v1/registry/capabilities) over real HTTP.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { startTestApp } from '../../support/app.ts';
import { call, isApiError, logKinds } from './client.ts';

const FORBIDDEN = "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

describe('global messages', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });

  const count = async () => (await w.t.app.services.db.selectFrom('messages').select('id').execute()).length;

  test('anyone lists messages; a superuser creates (201, empty) and deletes (204) them', async () => {
    const empty = await w.api('GET', '/messages', { caller: 'anonymous' });
    assert.equal(empty.status, 200);
    assert.deepEqual(await json(empty), { messages: [] });

    const logsBefore = (await logKinds(w.t)).length;
    const r = await w.api('POST', '/messages', { caller: 'superuser', body: { message: { content: 'Maintenance at **noon**', media_type: 'text/markdown', severity: 'warning' } } });
    assert.equal(r.status, 201);
    assert.equal(await r.text(), '');
    await w.api('POST', '/messages', { caller: 'superuser', body: { message: { content: 'second', media_type: 'text/plain', severity: 'info' } } });

    const list = await json(await w.api('GET', '/messages', { caller: 'member' }));
    assert.equal(list.messages.length, 2);
    const m = list.messages[0];
    assert.deepEqual(Object.keys(m).sort(), ['content', 'media_type', 'severity', 'uuid']);
    assert.match(m.uuid, UUID);
    assert.equal(m.content, 'Maintenance at **noon**');
    assert.equal(m.media_type, 'text/markdown');
    assert.equal(m.severity, 'warning');
    assert.equal(list.messages[1].content, 'second');
    // Quay has no audit-log kind for banner messages.
    assert.equal((await logKinds(w.t)).length, logsBefore);

    const del = await w.api('DELETE', `/message/${m.uuid}`, { caller: 'superuser' });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    assert.deepEqual((await json(await w.api('GET', '/messages', { caller: 'anonymous' }))).messages.map((x: any) => x.content), ['second']);
    // Deleting an unknown message is not an error in Quay.
    const again = await w.api('DELETE', `/message/${m.uuid}`, { caller: 'superuser' });
    assert.equal(again.status, 204);
  });

  test('bad input: 400 with jsonschema\'s reason (severity and media_type are enums); nothing stored', async () => {
    const n = await count();
    const ok = { content: 'x', media_type: 'text/plain', severity: 'info' };
    const cases: [unknown, string][] = [
      [{}, "'message' is a required property"],
      [{ message: 'hello' }, "'hello' is not of type 'object' (field 'message')"],
      [{ message: { ...ok, severity: 'fatal' } }, "'fatal' is not one of ['info', 'warning', 'error'] (field 'message.severity')"],
      [{ message: { ...ok, media_type: 'text/html' } }, "'text/html' is not one of ['text/plain', 'text/markdown'] (field 'message.media_type')"],
      [{ message: { media_type: 'text/plain', severity: 'info' } }, "'content' is a required property (field 'message')"],
      [{ message: { ...ok, content: 7 } }, "7 is not of type 'string' (field 'message.content')"],
    ];
    for (const [body, detail] of cases) {
      const r = await w.api('POST', '/messages', { caller: 'superuser', body });
      assert.equal(r.status, 400, JSON.stringify(body));
      const b = await json(r);
      assert.ok(isApiError(b, 400, 'invalid_request', w.t.url), JSON.stringify(b));
      assert.equal(b.detail, detail);
    }
    const noBody = await w.api('POST', '/messages', { caller: 'superuser' });
    assert.equal(noBody.status, 400);
    assert.equal(await count(), n);
  });

  test('non-superusers: anonymous 401 ApiError, signed-in users (and the read-only superuser) Quay\'s bare 403', async () => {
    const created = await w.api('POST', '/messages', { caller: 'superuser', body: { message: { content: 'keep', media_type: 'text/plain', severity: 'error' } } });
    assert.equal(created.status, 201);
    const uuid = (await json(await w.api('GET', '/messages', { caller: 'anonymous' }))).messages.find((x: any) => x.content === 'keep').uuid;
    const n = await count();
    const body = { message: { content: 'nope', media_type: 'text/plain', severity: 'info' } };

    const anon = await w.api('POST', '/messages', { caller: 'anonymous', body });
    assert.equal(anon.status, 401);
    assert.ok(isApiError(await json(anon), 401, 'invalid_token', w.t.url));
    for (const caller of ['member', 'orgadmin', 'readonlySuperuser', 'oauthScoped'] as const) {
      const post = await w.api('POST', '/messages', { caller, body, scopes: ['super:user'] });
      assert.equal(post.status, 403, caller);
      assert.deepEqual(await json(post), { message: FORBIDDEN });
      const del = await w.api('DELETE', `/message/${uuid}`, { caller, scopes: ['super:user'] });
      assert.equal(del.status, 403, caller);
      assert.deepEqual(await json(del), { message: FORBIDDEN });
    }
    // A token without super:user is stopped by the scope check first.
    const noScope = await w.api('POST', '/messages', { caller: 'oauthNoScope', body, scopes: ['super:user'] });
    assert.equal(noScope.status, 403);
    assert.ok(isApiError(await json(noScope), 403, 'insufficient_scope', w.t.url));
    assert.equal(await count(), n);
  });
});

describe('messages with anonymous access off', () => {
  test('GET /messages needs a user; registry capabilities stays public', async () => {
    const t = await startTestApp({ FEATURE_ANONYMOUS_ACCESS: false });
    try {
      const r = await call(t, 'GET', '/api/v1/messages');
      assert.equal(r.status, 401);
      assert.deepEqual(r.body, { message: 'Anonymous access is not allowed' });
      const c = await call(t, 'GET', '/api/v1/registry/capabilities');
      assert.equal(c.status, 200);
    } finally {
      await t.close();
    }
  });
});

describe('GET /api/v1/registry/capabilities', () => {
  test('default: no sparse manifests; the mirroring architectures, sorted', async () => {
    const t = await startTestApp();
    try {
      const r = await call(t, 'GET', '/api/v1/registry/capabilities');
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, {
        sparse_manifests: { supported: false, required_architectures: [], optional_architectures_allowed: false },
        mirror_architectures: ['amd64', 'arm64', 'ppc64le', 's390x'],
      });
    } finally {
      await t.close();
    }
  });

  test('FEATURE_SPARSE_INDEX with required architectures', async () => {
    const t = await startTestApp({ FEATURE_SPARSE_INDEX: true, SPARSE_INDEX_REQUIRED_ARCHS: ['amd64', 'arm64'] });
    try {
      const r = await call(t, 'GET', '/api/v1/registry/capabilities');
      assert.deepEqual(r.body.sparse_manifests, { supported: true, required_architectures: ['amd64', 'arm64'], optional_architectures_allowed: true });
    } finally {
      await t.close();
    }
  });
});

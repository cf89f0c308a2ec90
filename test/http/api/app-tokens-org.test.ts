// Tokens organization admins mint for their OAuth applications:
// /api/v1/organization/{orgname}/applications/{client_id}/tokens[/{token_uuid}].
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { json } from '../../support/api-expect.ts';
import { createOAuthApplication, createOAuthToken } from '../../../src/model/accounts.ts';
import { TOKEN_EXPIRES_IN } from '../../../src/model/oauth.ts';
import { isApiError } from './client.ts';

let w: World;
let clientId: string;
const base = () => `/organization/acme/applications/${clientId}/tokens`;
const ISO_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$/;

before(async () => {
  w = await createWorld();
  clientId = (await w.t.app.services.db.selectFrom('oauth_applications').select('client_id').where('id', '=', w.appId).executeTakeFirstOrThrow()).client_id;
});
after(async () => { await w?.close(); });

async function logsOf(kind: string): Promise<{ account_id: number | null; performer_id: number | null; metadata: any }[]> {
  const rows = await w.t.app.services.db.selectFrom('logs').select(['account_id', 'performer_id', 'metadata']).where('kind', '=', kind).orderBy('id').execute();
  return rows.map((r) => ({ ...r, metadata: JSON.parse(r.metadata) }));
}

describe('POST …/tokens', () => {
  test('mints a named, normalized-scope token; the secret is in this response only and works as a bearer', async () => {
    const t0 = Date.now();
    const r = await json(await w.api('POST', base(), { scopes: ['org:admin'], body: { name: '  ci token ', scope: 'repo:read,repo:write repo:read', expiration: 3600 } }));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['created', 'created_by', 'expires_at', 'last_accessed', 'name', 'scope', 'token', 'uuid']);
    assert.match(r.body.uuid, /^[0-9a-f-]{36}$/);
    assert.equal(r.body.name, 'ci token');
    assert.equal(r.body.scope, 'repo:read repo:write');
    assert.equal(r.body.created_by, 'orgadmin');
    assert.equal(r.body.last_accessed, null);
    assert.match(r.body.token, /^[A-Za-z0-9]{40}$/);
    assert.match(r.body.created, ISO_Z);
    assert.match(r.body.expires_at, ISO_Z);
    const lifetime = Date.parse(r.body.expires_at) - Date.parse(r.body.created);
    assert.ok(Math.abs(lifetime - 3600_000) < 1000, `lifetime ${lifetime}`);
    assert.ok(Date.parse(r.body.created) >= t0 - 1000);

    const s = w.t.app.services;
    const row = await s.db.selectFrom('oauth_access_tokens').selectAll().where('uuid', '=', r.body.uuid).executeTakeFirstOrThrow();
    assert.equal(row.application_id, w.appId);
    assert.equal(row.user_id, w.users.orgadmin.id);
    assert.ok(!JSON.stringify(row).includes(r.body.token.slice(20)), 'only a hash of the secret is stored');

    const use = await fetch(`${w.t.url}/api/v1/repository/acme/repo`, { headers: { authorization: `Bearer ${r.body.token}` } });
    assert.equal(use.status, 200);
    await use.arrayBuffer();
    const listed = await json(await w.api('GET', base(), { scopes: ['org:admin'] }));
    const mine = listed.body.tokens.find((x: any) => x.uuid === r.body.uuid);
    assert.match(mine.last_accessed, ISO_Z, 'using the token records last_accessed');
    assert.equal(mine.token, undefined, 'the secret is never listed');

    const [log] = (await logsOf('create_oauth_api_token')).slice(-1);
    assert.equal(log!.account_id, w.org.id);
    assert.equal(log!.performer_id, w.users.orgadmin.id);
    assert.deepEqual(log!.metadata, {
      oauth_token_uuid: r.body.uuid, scope: 'repo:read repo:write', token_display_name: 'ci token', application_name: 'matrix-app', auth_method: 'OAuth', client_id: clientId,
    });
  });

  test('the default lifetime is ten years, and longer ones are capped there', async () => {
    for (const body of [{ name: 'forever', scope: 'repo:read' }, { name: 'too long', scope: 'repo:read', expiration: 1e12 }]) {
      const r = await json(await w.api('POST', base(), { body }));
      assert.equal(r.status, 200);
      const lifetime = Date.parse(r.body.expires_at) - Date.parse(r.body.created);
      assert.ok(Math.abs(lifetime - TOKEN_EXPIRES_IN * 1000) < 1000, body.name);
    }
  });

  test("Quay's validation answers: blank name, bad scope, bad expiration", async () => {
    const blank = await json(await w.api('POST', base(), { body: { name: '   ', scope: 'repo:read' } }));
    assert.deepEqual(blank, { status: 400, body: { message: "'name' cannot be empty" } });
    const scope = await json(await w.api('POST', base(), { body: { name: 'x', scope: 'repo:read repo:fly' } }));
    assert.deepEqual(scope, { status: 400, body: { message: 'Invalid scope: repo:read repo:fly' } });
    const empty = await json(await w.api('POST', base(), { body: { name: 'x', scope: ' , ' } }));
    assert.deepEqual(empty, { status: 400, body: { message: 'Invalid scope:  , ' } });
    for (const body of [{ name: 'x', scope: 'repo:read', expiration: 0 }, { name: 'x' }, { name: '', scope: 'repo:read' }, { name: 'n'.repeat(256), scope: 'repo:read' }]) {
      const r = await json(await w.api('POST', base(), { body }));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(isApiError(r.body, 400, 'invalid_request', w.t.url));
    }
  });

  test('nobody mints more than they hold: a narrower OAuth token, super:user without being a superuser', async () => {
    const narrow = await json(await w.api('POST', base(), { caller: 'oauthScoped', scopes: ['org:admin'], body: { name: 'x', scope: 'repo:read' } }));
    assert.equal(narrow.status, 403);
    assert.ok(isApiError(narrow.body, 403, 'insufficient_scope', w.t.url));
    const ok = await json(await w.api('POST', base(), { caller: 'oauthScoped', scopes: ['org:admin'], body: { name: 'x', scope: 'org:admin' } }));
    assert.equal(ok.status, 200);
    const su = await json(await w.api('POST', base(), { body: { name: 'x', scope: 'super:user' } }));
    assert.equal(su.status, 403);
  });

  test('an unknown application is 404; another organization\'s application is unknown here', async () => {
    const r = await json(await w.api('POST', '/organization/acme/applications/nosuchclient/tokens', { body: { name: 'x', scope: 'repo:read' } }));
    assert.equal(r.status, 404);
    assert.ok(isApiError(r.body, 404, 'not_found', w.t.url));
    const s = w.t.app.services;
    const foreignOrg = await s.db.selectFrom('users').selectAll().where('username', '=', 'outsider').executeTakeFirstOrThrow();
    const foreignApp = await createOAuthApplication(s, foreignOrg, 'foreign');
    const foreignClient = (await s.db.selectFrom('oauth_applications').select('client_id').where('id', '=', foreignApp).executeTakeFirstOrThrow()).client_id;
    assert.equal((await w.api('GET', `/organization/acme/applications/${foreignClient}/tokens`)).status, 404);
  });

  test('at most 1000 non-expired tokens per application', async () => {
    const s = w.t.app.services;
    const appId = await createOAuthApplication(s, w.org, 'busy-app');
    const app = await s.db.selectFrom('oauth_applications').selectAll().where('id', '=', appId).executeTakeFirstOrThrow();
    const now = Date.now();
    const rows = Array.from({ length: 1000 }, (_, i) => ({
      uuid: randomUUID(), application_id: appId, user_id: w.users.orgadmin.id, token_prefix: `busy${String(i).padStart(16, '0')}`, token_hash: 'x',
      scope: 'repo:read', created_at: now, expires_at: i === 0 ? now - 1 : now + 3600_000,
    }));
    await s.db.insertInto('oauth_access_tokens').values(rows).execute();
    const path = `/organization/acme/applications/${app.client_id}/tokens`;
    assert.equal((await w.api('POST', path, { body: { name: 'one more', scope: 'repo:read' } })).status, 200, 'an expired token does not count');
    const full = await json(await w.api('POST', path, { body: { name: 'too many', scope: 'repo:read' } }));
    assert.deepEqual(full, { status: 400, body: { message: 'Token limit reached: maximum 1000 non-expired tokens per application' } });
  });
});

describe('GET …/tokens', () => {
  test('lists newest first, 50 per page, with an opaque next_page token', async () => {
    const s = w.t.app.services;
    const appId = await createOAuthApplication(s, w.org, 'paged-app');
    const app = await s.db.selectFrom('oauth_applications').selectAll().where('id', '=', appId).executeTakeFirstOrThrow();
    const made: string[] = [];
    for (let i = 0; i < 53; i++) made.push((await createOAuthToken(s, appId, w.users.creator, 'repo:read', 60, { name: `t${i}` })).uuid);
    const path = `/organization/acme/applications/${app.client_id}/tokens`;
    const first = await json(await w.api('GET', path));
    assert.equal(first.status, 200);
    assert.equal(first.body.tokens.length, 50);
    assert.deepEqual(first.body.tokens.map((x: any) => x.uuid), made.slice(3).reverse());
    assert.equal(first.body.tokens[0].created_by, 'creator');
    assert.equal(first.body.tokens[0].name, 't52');
    assert.equal(typeof first.body.next_page, 'string');
    const second = await json(await w.api('GET', `${path}?next_page=${encodeURIComponent(first.body.next_page)}`));
    assert.deepEqual(second.body.tokens.map((x: any) => x.uuid), made.slice(0, 3).reverse());
    assert.equal(second.body.next_page, undefined);
  });
});

describe('DELETE …/tokens/{token_uuid}', () => {
  test('revokes the token (logged); a second delete and tokens of other applications are 404', async () => {
    const created = await json(await w.api('POST', base(), { body: { name: 'short-lived', scope: 'repo:read' } }));
    const del = await w.api('DELETE', `${base()}/${created.body.uuid}`, { scopes: ['org:admin'] });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    const dead = await fetch(`${w.t.url}/api/v1/repository/acme/repo`, { headers: { authorization: `Bearer ${created.body.token}` } });
    assert.equal(dead.status, 401);
    await dead.arrayBuffer();
    const [log] = (await logsOf('revoke_oauth_api_token')).slice(-1);
    assert.deepEqual(log!.metadata, { oauth_token_uuid: created.body.uuid, application_name: 'matrix-app', client_id: clientId });
    assert.equal(log!.account_id, w.org.id);
    assert.equal((await w.api('DELETE', `${base()}/${created.body.uuid}`)).status, 404);
    // A token of another application is not reachable through this one.
    const s = w.t.app.services;
    const other = await createOAuthToken(s, await createOAuthApplication(s, w.org, 'other-app'), w.users.orgadmin, 'repo:read');
    assert.equal((await w.api('DELETE', `${base()}/${other.uuid}`)).status, 404);
  });
});

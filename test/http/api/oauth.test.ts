// OAuth applications of organizations, /app/{client_id}, and the caller's authorizations and
// token assignments, over real HTTP, field by field (endpoints.json areas oauth-application, user).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { createOAuthToken, findUser, verifyOAuthToken } from '../../../src/model/accounts.ts';
import { assignToken } from '../../../src/model/oauth.ts';
import { isApiError, logKinds } from './client.ts';

const APP_KEYS = ['application_uri', 'avatar_email', 'client_id', 'client_secret', 'description', 'name', 'redirect_uri'];

describe('organization applications', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });
  const json = async (r: Response) => ({ status: r.status, body: r.status === 204 ? undefined : await r.json() as any });
  const appCount = async () => (await w.t.app.services.db.selectFrom('oauth_applications').select('id').execute()).length;

  test('create answers with the whole application for an admin and logs create_application', async () => {
    const body = { name: 'deployer', redirect_uri: 'https://ci.example.com/cb', application_uri: 'https://ci.example.com', description: 'CI', avatar_email: 'ci@example.com' };
    const r = await json(await w.api('POST', '/organization/acme/applications', { scopes: ['org:admin'], body }));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), APP_KEYS);
    assert.match(r.body.client_id, /^[A-Z0-9]{20}$/);
    assert.match(r.body.client_secret, /^[A-Z0-9]{40}$/);
    assert.equal(r.body.redirect_uri, body.redirect_uri);
    assert.equal(r.body.avatar_email, body.avatar_email);
    assert.equal(r.body.description, 'CI');
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'create_application').at(-1)!;
    assert.equal(log.account_id, w.org.id);
    assert.deepEqual(log.metadata, { ...body, application_name: 'deployer', client_id: r.body.client_id });
    const row = await w.t.app.services.db.selectFrom('oauth_applications').selectAll().where('client_id', '=', r.body.client_id).executeTakeFirstOrThrow();
    assert.ok(!row.client_secret_enc.includes(r.body.client_secret), 'the secret is stored encrypted');
  });

  test('minimal create, list and get; other organizations\' client ids are not found', async () => {
    const made = await json(await w.api('POST', '/organization/acme/applications', { scopes: ['org:admin'], body: { name: 'minimal' } }));
    assert.equal(made.body.redirect_uri, '');
    assert.equal(made.body.application_uri, '');
    assert.equal(made.body.description, '');
    assert.equal(made.body.avatar_email, null);
    const list = await json(await w.api('GET', '/organization/acme/applications', { scopes: ['org:admin'] }));
    assert.equal(list.status, 200);
    assert.deepEqual(Object.keys(list.body), ['applications']);
    assert.ok(list.body.applications.some((a: any) => a.name === 'matrix-app'));
    for (const a of list.body.applications) assert.deepEqual(Object.keys(a).sort(), APP_KEYS);
    const one = await json(await w.api('GET', `/organization/acme/applications/${made.body.client_id}`, { scopes: ['org:admin'] }));
    assert.deepEqual(one.body, made.body);
    const missing = await json(await w.api('GET', '/organization/acme/applications/NOPE', { scopes: ['org:admin'] }));
    assert.equal(missing.status, 404);
    assert.ok(isApiError(missing.body, 404, 'not_found', w.t.url));
    const noOrg = await json(await w.api('GET', '/organization/nosuchorg/applications', { caller: 'superuser', scopes: ['org:admin'] }));
    assert.equal(noOrg.status, 403, 'an unknown organization is not revealed to non-admins');
  });

  test('update replaces the fields, reset issues a new secret, delete removes the app and its tokens', async () => {
    const made = (await json(await w.api('POST', '/organization/acme/applications', { scopes: ['org:admin'], body: { name: 'lifecycle', avatar_email: 'a@example.com' } }))).body;
    const upd = await json(await w.api('PUT', `/organization/acme/applications/${made.client_id}`, {
      scopes: ['org:admin'], body: { name: 'renamed', redirect_uri: 'http://localhost:9999/cb', application_uri: 'http://localhost:9999' },
    }));
    assert.equal(upd.status, 200);
    assert.equal(upd.body.name, 'renamed');
    assert.equal(upd.body.redirect_uri, 'http://localhost:9999/cb');
    assert.equal(upd.body.description, '', 'absent optional fields are reset like Quay');
    assert.equal(upd.body.avatar_email, null);
    assert.equal(upd.body.client_secret, made.client_secret);
    const partial = await json(await w.api('PUT', `/organization/acme/applications/${made.client_id}`, { scopes: ['org:admin'], body: { name: 'x' } }));
    assert.equal(partial.status, 400);
    assert.equal(partial.body.detail, "'redirect_uri' is a required property");

    const reset = await json(await w.api('POST', `/organization/acme/applications/${made.client_id}/resetclientsecret`, { scopes: ['org:admin'] }));
    assert.equal(reset.status, 200);
    assert.match(reset.body.client_secret, /^[A-Z0-9]{40}$/);
    assert.notEqual(reset.body.client_secret, made.client_secret);

    const s = w.t.app.services;
    const appRow = await s.db.selectFrom('oauth_applications').selectAll().where('client_id', '=', made.client_id).executeTakeFirstOrThrow();
    const { token } = await createOAuthToken(s, appRow.id, w.users.member, 'repo:read');
    const del = await w.api('DELETE', `/organization/acme/applications/${made.client_id}`, { scopes: ['org:admin'] });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    assert.equal(await verifyOAuthToken(s, token), null, 'tokens of a deleted application stop working');
    assert.equal((await w.api('DELETE', `/organization/acme/applications/${made.client_id}`, { scopes: ['org:admin'] })).status, 404);
    const kinds = (await logKinds(w.t)).map((l) => l.kind);
    for (const k of ['update_application', 'reset_application_client_secret', 'delete_application']) assert.ok(kinds.includes(k), k);
    const delLog = (await logKinds(w.t)).filter((l) => l.kind === 'delete_application').at(-1)!;
    assert.deepEqual(delLog.metadata, { application_name: 'renamed', client_id: made.client_id });
  });

  test('reserved and invalid names or URIs are refused and change nothing', async () => {
    const n = await appCount();
    const reserved = await json(await w.api('POST', '/organization/acme/applications', { scopes: ['org:admin'], body: { name: '__quay_bootstrap_app' } }));
    assert.equal(reserved.status, 400);
    assert.ok(isApiError(reserved.body, 400, 'invalid_request', w.t.url));
    assert.equal(reserved.body.detail, "The application name '__quay_bootstrap_app' is reserved");
    for (const body of [{ name: '' }, { name: 'x', redirect_uri: 'not a uri' }, { name: 'x', redirect_uri: 'https://a.example/cb#frag' },
      { name: 'x', redirect_uri: 'javascript:alert(1)' }, { name: 'x', avatar_email: 'nope' }, { name: 5 }, {}]) {
      const r = await json(await w.api('POST', '/organization/acme/applications', { scopes: ['org:admin'], body }));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(r.body.detail.length > 0);
    }
    assert.equal(await appCount(), n);
    const existing = (await w.t.app.services.db.selectFrom('oauth_applications').selectAll().where('name', '=', 'matrix-app').executeTakeFirstOrThrow());
    const rename = await json(await w.api('PUT', `/organization/acme/applications/${existing.client_id}`, {
      scopes: ['org:admin'], body: { name: '__quay_bootstrap_app', redirect_uri: '', application_uri: '' },
    }));
    assert.equal(rename.status, 400);
    assert.match(rename.body.detail, /reserved/);
    const after = await w.t.app.services.db.selectFrom('oauth_applications').selectAll().where('id', '=', existing.id).executeTakeFirstOrThrow();
    assert.equal(after.name, 'matrix-app');
  });

  test('GET /app/{client_id} shows public information and the caller\'s standing in the organization', async () => {
    const made = (await json(await w.api('POST', '/organization/acme/applications', {
      scopes: ['org:admin'], body: { name: 'public-info', application_uri: 'https://info.example.com', description: 'd' },
    }))).body;
    const anon = await json(await w.api('GET', `/app/${made.client_id}`, { caller: 'anonymous' }));
    assert.equal(anon.status, 200);
    assert.deepEqual(Object.keys(anon.body).sort(), ['avatar', 'description', 'name', 'organization', 'uri']);
    assert.equal(anon.body.uri, 'https://info.example.com');
    assert.equal(anon.body.avatar.kind, 'app');
    assert.equal(anon.body.avatar.name, 'public-info');
    assert.deepEqual(anon.body.organization, {
      name: 'acme', email: '', avatar: anon.body.organization.avatar, is_admin: false, is_member: false, teams: {}, ordered_teams: [],
    });
    assert.equal(anon.body.organization.avatar.kind, 'org');
    const admin = await json(await w.api('GET', `/app/${made.client_id}`, { scopes: ['org:admin'] }));
    assert.equal(admin.body.organization.is_admin, true);
    assert.equal(admin.body.organization.email, 'acme@example.com');
    assert.equal(admin.body.organization.tag_expiration_s, 1209600);
    assert.equal((await w.api('GET', '/app/UNKNOWN', { caller: 'anonymous' })).status, 404);
  });
});

describe('user authorizations and assignments', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });

  test('list and get show the applications the caller authorized with their scopes; delete revokes', async () => {
    const s = w.t.app.services;
    const granted = await createOAuthToken(s, w.appId, w.users.member, 'repo:read user:admin');
    const r = await w.api('GET', '/user/authorizations', { caller: 'member', scopes: ['user:admin'] });
    assert.equal(r.status, 200);
    const body = await r.json() as any;
    const mine = body.authorizations.find((a: any) => a.uuid === granted.uuid);
    assert.ok(mine, 'the new grant is listed');
    assert.deepEqual(Object.keys(mine).sort(), ['application', 'scopes', 'uuid']);
    assert.deepEqual(Object.keys(mine.application).sort(), ['avatar', 'description', 'name', 'organization', 'url']);
    assert.equal(mine.application.name, 'matrix-app');
    assert.equal(mine.application.avatar.kind, 'app');
    assert.deepEqual(Object.keys(mine.application.organization).sort(), ['avatar', 'name']);
    assert.deepEqual(mine.scopes.map((x: any) => x.scope), ['repo:read', 'user:admin']);
    assert.deepEqual(mine.scopes[1], {
      scope: 'user:admin', icon: 'fa-gear', dangerous: true, title: 'Administer User',
      description: 'This application will be able to administer your account including creating robots and granting them permissions to your repositories. You should have absolute trust in the requesting application before granting this permission.',
    });

    const one = await w.api('GET', `/user/authorizations/${granted.uuid}`, { caller: 'member', scopes: ['user:admin'] });
    assert.deepEqual(await one.json(), mine);
    const notMine = await w.api('GET', `/user/authorizations/${granted.uuid}`, { caller: 'outsider', scopes: ['user:admin'] });
    assert.equal(notMine.status, 404);
    assert.equal((await w.api('DELETE', `/user/authorizations/${granted.uuid}`, { caller: 'outsider', scopes: ['user:admin'] })).status, 404);

    const del = await w.api('DELETE', `/user/authorizations/${granted.uuid}`, { caller: 'member', scopes: ['user:admin'] });
    assert.equal(del.status, 204);
    assert.equal(await verifyOAuthToken(s, granted.token), null);
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'oauth_token_revoked').at(-1)!;
    assert.equal(log.metadata.oauth_token_uuid, granted.uuid);
    assert.equal((await w.api('GET', `/user/authorizations/${granted.uuid}`, { caller: 'member', scopes: ['user:admin'] })).status, 404);
  });

  test('assigned authorizations are listed for the assignee (clearing their notification) and can be declined', async () => {
    const s = w.t.app.services;
    const app = await s.db.selectFrom('oauth_applications').selectAll().where('id', '=', w.appId).executeTakeFirstOrThrow();
    const a = await assignToken(s, w.users.orgadmin, app, { username: 'member', redirectUri: `${w.t.url}/oauth/localapp`, scope: 'repo:read', responseType: 'token' });
    const member = (await findUser(s, 'member'))!;
    const notes = await s.db.selectFrom('user_notifications').selectAll().where('user_id', '=', member.id).where('kind', '=', 'assigned_authorization').execute();
    assert.equal(notes.length, 1);

    const r = await w.api('GET', '/user/assignedauthorization', { caller: 'member', scopes: ['user:admin'] });
    assert.equal(r.status, 200);
    const body = await r.json() as any;
    assert.equal(body.authorizations.length, 1);
    const x = body.authorizations[0];
    assert.deepEqual(Object.keys(x).sort(), ['application', 'redirectUri', 'responseType', 'scopes', 'uuid']);
    assert.equal(x.uuid, a.uuid);
    assert.equal(x.application.clientId, app.client_id);
    assert.equal(x.redirectUri, `${w.t.url}/oauth/localapp`);
    assert.equal(x.responseType, 'token');
    assert.deepEqual(x.scopes.map((y: any) => y.scope), ['repo:read']);
    const after = await s.db.selectFrom('user_notifications').selectAll().where('user_id', '=', member.id).where('kind', '=', 'assigned_authorization').execute();
    assert.equal(after.length, 0, 'seeing the list clears the notification');
    assert.deepEqual(((await (await w.api('GET', '/user/assignedauthorization', { caller: 'outsider', scopes: ['user:admin'] })).json()) as any).authorizations, []);

    assert.equal((await w.api('DELETE', `/user/assignedauthorization/${a.uuid}`, { caller: 'outsider', scopes: ['user:admin'] })).status, 404);
    assert.equal((await w.api('DELETE', `/user/assignedauthorization/${a.uuid}`, { caller: 'member', scopes: ['user:admin'] })).status, 204);
    assert.equal((await w.api('DELETE', `/user/assignedauthorization/${a.uuid}`, { caller: 'member', scopes: ['user:admin'] })).status, 404);
  });
});

// /api/v1/organization over real HTTP, checked field by field against Quay's shapes
// (shared/quay-api/endpoints.json), with the usage-log entries each change writes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { isApiError, logKinds } from './client.ts';
import { Browser } from './browser.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';
import { createOrganization, createRobot, createUser, findUser } from '../../../src/model/accounts.ts';
import { createRepository, findRepo } from '../../../src/model/repositories.ts';
import { principalFor } from '../../../src/model/context.ts';
import { setRepoPermission } from '../../../src/model/permissions.ts';
import { findTeam } from '../../../src/model/teams.ts';
import { avatarOf, json } from '../../support/api-expect.ts';

const RFC_KEYS = ['name', 'email', 'avatar', 'is_admin', 'is_member'];
const sha256 = (x: string) => createHash('sha256').update(x).digest('hex');


let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

const base = () => w.t.url;
const newLogs = async (since: number) => (await logKinds(w.t)).slice(since);

describe('GET /api/v1/organization/{orgname}', () => {
  test('an admin sees email, every team with counts, invoicing and tag expiration', async () => {
    const r = await json(await w.api('GET', '/organization/acme'));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), [...RFC_KEYS, 'teams', 'ordered_teams', 'invoice_email', 'invoice_email_address', 'tag_expiration_s', 'is_free_account']);
    assert.equal(r.body.name, 'acme');
    assert.equal(r.body.email, 'acme@example.com');
    // Quay builds the organization's own avatar like a user's: kind "user", hash of the email.
    assert.deepEqual(r.body.avatar, avatarOf('acme', 'acme@example.com', 'user'));
    assert.equal(r.body.is_admin, true);
    assert.equal(r.body.is_member, true);
    assert.deepEqual(r.body.ordered_teams, ['owners', 'builders', 'readers']);
    assert.deepEqual(r.body.teams.owners, {
      name: 'owners', description: '', role: 'admin', avatar: avatarOf('owners', 'owners', 'team'),
      can_view: true, repo_count: 0, member_count: 1, is_synced: false,
    });
    // The documented hash of the owners team avatar (Quay API guide example).
    assert.equal(r.body.teams.owners.avatar.hash, '6f0e3a8c0eb46e8834b43b03374ece43a030621d92a7437beb48f871e90f8d90');
    assert.equal(r.body.teams.owners.avatar.color, '#c7c7c7');
    assert.equal(r.body.teams.builders.role, 'creator');
    assert.equal(r.body.teams.builders.description, 'Build people');
    assert.equal(r.body.teams.readers.repo_count, 1);
    assert.equal(r.body.teams.readers.member_count, 2, 'member and the robot');
    assert.equal(r.body.invoice_email, false);
    assert.equal(r.body.invoice_email_address, null);
    assert.equal(r.body.tag_expiration_s, 1209600);
    assert.equal(r.body.is_free_account, true);
  });

  test('a member sees teams (viewable only their own) but not the email or billing fields', async () => {
    const r = await json(await w.api('GET', '/organization/acme', { caller: 'member' }));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), [...RFC_KEYS, 'teams', 'ordered_teams']);
    assert.equal(r.body.email, '');
    assert.equal(r.body.is_admin, false);
    assert.equal(r.body.is_member, true);
    assert.deepEqual(Object.fromEntries(Object.entries(r.body.teams).map(([k, v]: [string, any]) => [k, v.can_view])), { owners: false, builders: false, readers: true });
  });

  test('outsiders and anonymous callers get the reduced view; a read-only superuser sees teams and email', async () => {
    for (const caller of ['outsider', 'anonymous'] as const) {
      const r = await json(await w.api('GET', '/organization/acme', { caller }));
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { name: 'acme', email: '', avatar: avatarOf('acme', 'acme@example.com', 'user'), is_admin: false, is_member: false });
    }
    const ro = await json(await w.api('GET', '/organization/acme', { caller: 'readonlySuperuser' }));
    assert.equal(ro.body.email, 'acme@example.com');
    assert.equal(ro.body.is_admin, false);
    assert.equal(ro.body.teams.owners.can_view, true);
    assert.equal(ro.body.invoice_email, undefined);
  });

  test('a token without org:admin does not carry the admin role', async () => {
    const tok = await w.tokenWith(['repo:read']);
    const r = await json(await w.api('GET', '/organization/acme', { headers: { authorization: `Bearer ${tok}` }, caller: 'anonymous' }));
    assert.equal(r.body.is_admin, false);
    assert.equal(r.body.is_member, false);
  });

  test('unknown organization (or a user name) is a 404 ApiError', async () => {
    for (const name of ['nosuch', 'member']) {
      const r = await json(await w.api('GET', `/organization/${name}`));
      assert.equal(r.status, 404);
      assert.ok(isApiError(r.body, 404, 'not_found', base()));
    }
  });
});

describe('POST /api/v1/organization/', () => {
  test('creates the org with the caller alone in owners, answers "Created" and logs org_create', async () => {
    const since = (await logKinds(w.t)).length;
    const r = await w.api('POST', '/organization/', { caller: 'outsider', body: { name: 'neworg', email: 'neworg@example.com' } });
    assert.equal(r.status, 201);
    assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await r.text(), '"Created"');
    const s = w.t.app.services;
    const org = await findUser(s, 'neworg');
    assert.equal(org?.kind, 'org');
    assert.equal(org?.email, 'neworg@example.com');
    const owners = (await findTeam(s, org!.id, 'owners'))!;
    assert.equal(owners.role, 'admin');
    const members = await s.db.selectFrom('team_members').select('user_id').where('team_id', '=', owners.id).execute();
    assert.deepEqual(members.map((m) => m.user_id), [w.users.outsider.id]);
    const logs = await newLogs(since);
    assert.deepEqual(logs.map((l) => l.kind), ['org_create']);
    assert.equal(logs[0]!.account_id, org!.id);
    assert.equal(logs[0]!.performer_id, w.users.outsider.id);
    assert.deepEqual(logs[0]!.metadata, { email: 'neworg@example.com', namespace: 'neworg' });
    const view = await json(await w.api('GET', '/organization/neworg', { caller: 'outsider' }));
    assert.equal(view.body.is_admin, true);
  });

  test('bad input answers 400 with what is wrong and creates nothing', async () => {
    const s = w.t.app.services;
    const before = (await s.db.selectFrom('users').select('id').execute()).length;
    const cases: [unknown, string][] = [
      [{ name: 'acme' }, 'A user or organization with this name already exists'],
      [{ name: 'member' }, 'A user or organization with this name already exists'],
      [{ name: 'Bad_Name!' }, 'Invalid namespace Bad_Name!: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$'],
      [{ name: 'a' }, 'Invalid namespace a: Namespace must be between 2 and 255 characters in length'],
      [{}, "'name' is a required property"],
      [{ name: 42 }, "42 is not of type 'string' (field 'name')"],
      [{ name: 'okname', email: 7 }, "7 is not of type 'string' (field 'email')"],
    ];
    for (const [body, detail] of cases) {
      const r = await json(await w.api('POST', '/organization/', { caller: 'outsider', body }));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(isApiError(r.body, 400, 'invalid_request', base()), JSON.stringify(r.body));
      assert.equal(r.body.detail, detail);
    }
    const missing = await json(await w.api('POST', '/organization/', { caller: 'outsider' }));
    assert.equal(missing.body.detail, 'Missing JSON body');
    assert.equal((await s.db.selectFrom('users').select('id').execute()).length, before);
  });
});

describe('PUT /api/v1/organization/{orgname}', () => {
  test('changes email, invoicing and tag expiration, logging each with Quay\'s kinds', async () => {
    const s = w.t.app.services;
    await createOrganization(s, 'putorg', w.users.orgadmin, 'old@example.com');
    const since = (await logKinds(w.t)).length;
    const r = await json(await w.api('PUT', '/organization/putorg', {
      body: { email: 'new@example.com', invoice_email: true, invoice_email_address: 'bills@example.com', tag_expiration_s: 86400 },
    }));
    assert.equal(r.status, 200);
    assert.equal(r.body.email, 'new@example.com');
    assert.equal(r.body.invoice_email, true);
    assert.equal(r.body.invoice_email_address, 'bills@example.com');
    assert.equal(r.body.tag_expiration_s, 86400);
    assert.deepEqual(r.body.ordered_teams, ['owners']);
    const logs = await newLogs(since);
    assert.deepEqual(logs.map((l) => [l.kind, l.metadata]), [
      ['org_change_invoicing', { invoice_email: true, namespace: 'putorg' }],
      ['org_change_invoicing', { invoice_email_address: 'bills@example.com', namespace: 'putorg' }],
      ['org_change_email', { email: 'new@example.com', old_email: 'old@example.com', namespace: 'putorg' }],
      ['org_change_tag_expiration', { tag_expiration: 86400, namespace: 'putorg' }],
    ]);
    // Unchanged values are not logged again.
    const again = (await logKinds(w.t)).length;
    await w.api('PUT', '/organization/putorg', { body: { email: 'new@example.com', invoice_email_address: 'bills@example.com' } });
    assert.deepEqual(await newLogs(again), []);
  });

  test('an expiration outside TAG_EXPIRATION_OPTIONS is Quay\'s bare 400 and nothing changes', async () => {
    const r = await json(await w.api('PUT', '/organization/putorg', { body: { email: 'other@example.com', tag_expiration_s: 123 } }));
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, { message: 'Invalid tag expiration option' });
    const org = await findUser(w.t.app.services, 'putorg');
    assert.equal(org?.email, 'new@example.com');
    assert.equal(org?.tag_expiration_s, 86400);
  });

  test('an email already in use, wrong types and negative expirations are 400s', async () => {
    const used = await json(await w.api('PUT', '/organization/putorg', { body: { email: 'member@example.com' } }));
    assert.equal(used.status, 400);
    assert.equal(used.body.detail, 'E-mail address already used');
    const neg = await json(await w.api('PUT', '/organization/putorg', { body: { tag_expiration_s: -1 } }));
    assert.equal(neg.body.detail, "-1 is less than the minimum of 0 (field 'tag_expiration_s')");
    const type = await json(await w.api('PUT', '/organization/putorg', { body: { invoice_email: 'yes' } }));
    assert.equal(type.body.detail, "'yes' is not of type 'boolean' (field 'invoice_email')");
    assert.equal((await findUser(w.t.app.services, 'putorg'))?.email, 'new@example.com');
  });
});

describe('members and collaborators', () => {
  test('members: the humans of every team with their teams and direct repository permissions', async () => {
    const s = w.t.app.services;
    const repo = (await findRepo(s, 'acme', 'repo'))!;
    await setRepoPermission(s, repo.id, { userId: w.users.member.id }, 'write');
    const r = await json(await w.api('GET', '/organization/acme/members'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.members.map((m: any) => m.name), ['orgadmin', 'creator', 'member']);
    const member = r.body.members.find((m: any) => m.name === 'member');
    assert.deepEqual(member, {
      name: 'member', kind: 'user', avatar: avatarOf('member', 'member@example.com', 'user'),
      teams: [{ name: 'readers', avatar: avatarOf('readers', 'readers', 'team') }], repositories: ['repo'],
    });
  });

  test('one member: users of a team, or the org\'s own robots; others 404', async () => {
    const bot = await json(await w.api('GET', '/organization/acme/members/acme+bot'));
    assert.equal(bot.status, 200);
    assert.deepEqual(Object.keys(bot.body), ['name', 'kind', 'avatar', 'teams', 'repositories']);
    assert.equal(bot.body.kind, 'robot');
    assert.equal(bot.body.avatar.kind, 'robot');
    assert.deepEqual(bot.body.teams.map((t: any) => t.name), ['readers']);
    const s = w.t.app.services;
    await createRobot(s, w.users.outsider, 'loose');
    for (const name of ['outsider', 'nosuch', 'outsider+loose', 'acme']) {
      const r = await json(await w.api('GET', `/organization/acme/members/${name}`));
      assert.equal(r.status, 404, name);
      assert.ok(isApiError(r.body, 404, 'not_found', base()));
    }
  });

  test('collaborators: users with direct permissions who are in no team', async () => {
    const s = w.t.app.services;
    const repo = (await findRepo(s, 'acme', 'repo'))!;
    await setRepoPermission(s, repo.id, { userId: w.users.outsider.id }, 'read');
    const r = await json(await w.api('GET', '/organization/acme/collaborators'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { collaborators: [{ kind: 'user', name: 'outsider', avatar: avatarOf('outsider', 'outsider@example.com', 'user'), repositories: ['repo'] }] });
  });

  test('removing a member takes them out of every team and repository of the org, not elsewhere', async () => {
    const s = w.t.app.services;
    const leaver = await createUser(s, { username: 'leaver', email: 'leaver@example.com' });
    const other = await createOrganization(s, 'otherorg', w.users.orgadmin);
    const otherRepo = (await createRepository(s, { namespace: other, name: 'keep', visibility: 'private', creator: principalFor(w.users.orgadmin, 'password') })).repo;
    await setRepoPermission(s, otherRepo.id, { userId: leaver.id }, 'read');
    const readers = (await findTeam(s, w.org.id, 'readers'))!;
    const builders = (await findTeam(s, w.org.id, 'builders'))!;
    await s.db.insertInto('team_members').values([{ team_id: readers.id, user_id: leaver.id }, { team_id: builders.id, user_id: leaver.id }]).execute();
    await setRepoPermission(s, (await findRepo(s, 'acme', 'repo'))!.id, { userId: leaver.id }, 'admin');

    const r = await w.api('DELETE', '/organization/acme/members/leaver');
    assert.equal(r.status, 204);
    assert.equal(await r.text(), '');
    const teams = await s.db.selectFrom('team_members').select('team_id').where('user_id', '=', leaver.id).execute();
    assert.deepEqual(teams, []);
    const perms = await s.db.selectFrom('repo_permissions').select('repository_id').where('user_id', '=', leaver.id).execute();
    assert.deepEqual(perms.map((p) => p.repository_id), [otherRepo.id]);

    const robot = await json(await w.api('DELETE', '/organization/acme/members/acme+bot'));
    assert.equal(robot.status, 404, 'robots are not removed this way');
    const last = await json(await w.api('DELETE', '/organization/acme/members/orgadmin'));
    assert.equal(last.status, 400);
    assert.deepEqual(last.body, { message: 'Cannot remove user as they are the only organization admin' });
  });
});

describe('DELETE /api/v1/organization/{orgname}', () => {
  test('removes the org with its teams, robots and repositories (pushed content included); logs org_delete first', async () => {
    const s = w.t.app.services;
    const org = await createOrganization(s, 'gone', w.users.orgadmin, 'gone@example.com');
    await createRobot(s, org, 'bot');
    await createRepository(s, { namespace: org, name: 'app', visibility: 'public', creator: principalFor(w.users.orgadmin, 'password') });
    // Pushed content too: manifests, tags and blob links go with the repositories.
    await new RegistryClient(base(), 'orgadmin', PASSWORD).pushImage('gone/pushed', 'v1');
    const since = (await logKinds(w.t)).length;

    const denied = await json(await w.api('DELETE', '/organization/gone', { caller: 'member' }));
    assert.equal(denied.status, 403);
    assert.ok(await findUser(s, 'gone'));

    const r = await w.api('DELETE', '/organization/gone');
    assert.equal(r.status, 204);
    assert.equal(await findUser(s, 'gone'), undefined);
    assert.equal(await findUser(s, 'gone+bot'), undefined);
    assert.deepEqual(await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', org.id).execute(), []);
    assert.deepEqual(await s.db.selectFrom('teams').select('id').where('org_id', '=', org.id).execute(), []);
    assert.deepEqual(await s.db.selectFrom('manifests').innerJoin('repositories', 'repositories.id', 'manifests.repository_id')
      .select('manifests.id').where('repositories.namespace_id', '=', org.id).execute(), []);
    const logs = await newLogs(since);
    assert.deepEqual(logs.map((l) => [l.kind, l.account_id, l.metadata]), [['org_delete', org.id, { namespace: 'gone' }]]);
    assert.equal((await json(await w.api('GET', '/organization/gone'))).status, 404);
    // The name is free again.
    assert.equal((await w.api('POST', '/organization/', { body: { name: 'gone' } })).status, 201);
  });

  test('a cookie session must be fresh (401 fresh_login_required); OAuth tokens always are', async () => {
    const s = w.t.app.services;
    await createOrganization(s, 'sessionorg', w.users.orgadmin);
    const b = new Browser(base());
    assert.equal((await b.signIn('orgadmin', PASSWORD)).status, 200);
    await s.db.updateTable('sessions').set({ login_time: Date.now() - 11 * 60 * 1000 }).where('user_id', '=', w.users.orgadmin.id).execute();
    const stale = await b.request('DELETE', '/api/v1/organization/sessionorg', { csrf: true });
    assert.equal(stale.status, 401);
    assert.ok(isApiError(stale.body, 401, 'fresh_login_required', base()));
    assert.ok(await findUser(s, 'sessionorg'));
    await s.db.updateTable('sessions').set({ login_time: Date.now() }).where('user_id', '=', w.users.orgadmin.id).execute();
    const fresh = await b.request('DELETE', '/api/v1/organization/sessionorg', { csrf: true });
    assert.equal(fresh.status, 204, fresh.text);
    assert.equal(await findUser(s, 'sessionorg'), undefined);
  });
});

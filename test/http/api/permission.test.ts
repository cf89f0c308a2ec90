// Repository permissions over real HTTP: users, robots and teams; shapes, log entries, Quay's
// errors (ApiError vs bare message) and the rule that only this namespace's robots and teams apply.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError, logKinds } from './client.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';
import { createOrganization, createRobot } from '../../../src/model/accounts.ts';
import { createRepository, findRepo } from '../../../src/model/repositories.ts';
import { principalFor } from '../../../src/model/context.ts';
import { avatarOf, json } from '../../support/api-expect.ts';

const sha256 = (x: string) => createHash('sha256').update(x).digest('hex');


let w: World;
let repoId: number;
before(async () => {
  w = await createWorld();
  const s = w.t.app.services;
  repoId = (await findRepo(s, 'acme', 'repo'))!.id;
  const foreign = await createOrganization(s, 'foreign', w.users.outsider);
  await createRobot(s, foreign, 'spy');
  await s.db.insertInto('teams').values({ org_id: foreign.id, name: 'spies', role: 'member', description: '' }).execute();
  await createRepository(s, { namespace: w.users.member, name: 'own', visibility: 'private', creator: principalFor(w.users.member, 'password') });
});
after(async () => { await w?.close(); });

const logsSince = async (n: number) => (await logKinds(w.t)).slice(n).map((l) => [l.kind, l.metadata]);
const logCount = async () => (await logKinds(w.t)).length;
const P = '/repository/acme/repo/permissions';

describe('user and robot permissions', () => {
  test('PUT grants and changes a role (change_repo_permission either way), and it takes effect', async () => {
    assert.equal((await w.api('GET', '/repository/acme/repo', { caller: 'outsider' })).status, 403);
    const n = await logCount();
    const r = await json(await w.api('PUT', `${P}/user/outsider`, { body: { role: 'read' } }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { role: 'read', name: 'outsider', is_robot: false, avatar: avatarOf('outsider', 'outsider@example.com', 'user'), is_org_member: false });
    assert.equal((await w.api('GET', '/repository/acme/repo', { caller: 'outsider' })).status, 200);
    const up = await json(await w.api('PUT', `${P}/user/outsider`, { body: { role: 'write' } }));
    assert.equal(up.body.role, 'write');
    assert.deepEqual(await logsSince(n), [
      ['change_repo_permission', { username: 'outsider', repo: 'repo', namespace: 'acme', role: 'read' }],
      ['change_repo_permission', { username: 'outsider', repo: 'repo', namespace: 'acme', role: 'write' }],
    ]);
    const logs = (await logKinds(w.t)).slice(n);
    assert.ok(logs.every((l) => l.account_id === w.org.id));
    const rows = await w.t.app.services.db.selectFrom('logs').select('repository_id').where('kind', '=', 'change_repo_permission').execute();
    assert.ok(rows.every((x) => x.repository_id === repoId));
  });

  test('robots of the namespace can be granted; members are marked as org members', async () => {
    const bot = await json(await w.api('PUT', `${P}/user/acme+bot`, { body: { role: 'write' } }));
    assert.equal(bot.status, 200);
    assert.deepEqual(bot.body, { role: 'write', name: 'acme+bot', is_robot: true, avatar: avatarOf('acme+bot', 'acme+bot', 'robot'), is_org_member: true });
    const mem = await json(await w.api('PUT', `${P}/user/member`, { body: { role: 'admin' } }));
    assert.equal(mem.body.is_org_member, true);
    const list = await json(await w.api('GET', `${P}/user/`));
    assert.equal(list.status, 200);
    // orgadmin created acme/repo: Quay makes the creator an explicit admin of the repository.
    assert.deepEqual(Object.keys(list.body.permissions), ['orgadmin', 'outsider', 'acme+bot', 'member']);
    assert.deepEqual(list.body.permissions['acme+bot'], bot.body);
    const one = await json(await w.api('GET', `${P}/user/member`));
    assert.deepEqual(one.body, mem.body);
  });

  test('in a user namespace is_org_member is left out', async () => {
    const r = await json(await w.api('PUT', '/repository/member/own/permissions/user/outsider', { caller: 'member', body: { role: 'read' } }));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['role', 'name', 'is_robot', 'avatar']);
  });

  test('refused grants: 400 with Quay\'s message, nothing changes', async () => {
    const s = w.t.app.services;
    const before = await s.db.selectFrom('repo_permissions').selectAll().where('repository_id', '=', repoId).orderBy('id').execute();
    const cases: [string, unknown, string][] = [
      [`${P}/user/nosuch`, { role: 'read' }, 'Invalid username: nosuch'],
      [`${P}/user/foreign`, { role: 'read' }, 'Invalid username: foreign'],
      [`${P}/user/foreign+spy`, { role: 'read' }, 'Cannot add robot foreign+spy under namespace acme'],
      [`${P}/user/acme`, { role: 'read' }, 'Namespace owner must always be admin.'],
      [`${P}/user/outsider`, { role: 'owner' }, "'owner' is not one of ['read', 'write', 'admin'] (field 'role')"],
      [`${P}/user/outsider`, {}, "'role' is a required property"],
    ];
    for (const [path, body, detail] of cases) {
      const r = await json(await w.api('PUT', path, { body }));
      assert.equal(r.status, 400, path);
      assert.ok(isApiError(r.body, 400, 'invalid_request', w.t.url), JSON.stringify(r.body));
      assert.equal(r.body.detail, detail);
    }
    const owner = await json(await w.api('PUT', '/repository/member/own/permissions/user/member', { caller: 'member', body: { role: 'read' } }));
    assert.equal(owner.body.detail, 'Namespace owner must always be admin.');
    assert.deepEqual(await s.db.selectFrom('repo_permissions').selectAll().where('repository_id', '=', repoId).orderBy('id').execute(), before);
  });

  test('GET of a missing permission is the bare 400; DELETE of one is an ApiError 400', async () => {
    const get = await json(await w.api('GET', `${P}/user/creator`));
    assert.equal(get.status, 400);
    assert.deepEqual(get.body, { message: 'User does not have permission for repo.' });
    const del = await json(await w.api('DELETE', `${P}/user/creator`));
    assert.equal(del.status, 400);
    assert.equal(del.body.detail, 'User does not have permission for repo.');
  });

  test('DELETE removes the permission and logs delete_repo_permission', async () => {
    const n = await logCount();
    const r = await w.api('DELETE', `${P}/user/outsider`);
    assert.equal(r.status, 204);
    assert.deepEqual(await logsSince(n), [['delete_repo_permission', { username: 'outsider', repo: 'repo', namespace: 'acme' }]]);
    assert.equal((await w.api('GET', '/repository/acme/repo', { caller: 'outsider' })).status, 403);
  });

  test('transitive: the user\'s own role and those of their teams; 404 when none or unknown', async () => {
    const r = await json(await w.api('GET', `${P}/user/member/transitive`));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.permissions.map((p: any) => p.role).sort(), ['admin', 'read']);
    const viaTeam = await json(await w.api('GET', `${P}/user/acme+bot/transitive`));
    assert.deepEqual(viaTeam.body.permissions.map((p: any) => p.role).sort(), ['read', 'write']);
    for (const name of ['outsider', 'nosuch']) {
      const x = await json(await w.api('GET', `${P}/user/${name}/transitive`));
      assert.equal(x.status, 404);
      assert.ok(isApiError(x.body, 404, 'not_found', w.t.url));
    }
  });
});

describe('team permissions', () => {
  test('list, get, set (logged), delete (logged)', async () => {
    const list = await json(await w.api('GET', `${P}/team/`));
    assert.equal(list.status, 200);
    assert.deepEqual(list.body, { permissions: { readers: { role: 'read', name: 'readers', avatar: avatarOf('readers', 'readers', 'team') } } });
    assert.deepEqual((await json(await w.api('GET', `${P}/team/readers`))).body, { role: 'read' });
    const n = await logCount();
    const set = await json(await w.api('PUT', `${P}/team/builders`, { body: { role: 'write' } }));
    assert.equal(set.status, 200);
    assert.deepEqual(set.body, { role: 'write', name: 'builders', avatar: avatarOf('builders', 'builders', 'team') });
    assert.equal((await w.api('DELETE', `${P}/team/builders`)).status, 204);
    assert.deepEqual(await logsSince(n), [
      ['change_repo_permission', { team: 'builders', repo: 'repo', role: 'write' }],
      ['delete_repo_permission', { team: 'builders', repo: 'repo' }],
    ]);
  });

  test('only teams of the repository\'s own organization; missing ones per Quay', async () => {
    for (const team of ['nosuch', 'spies']) {
      const r = await json(await w.api('PUT', `${P}/team/${team}`, { body: { role: 'read' } }));
      assert.equal(r.status, 400);
      assert.equal(r.body.detail, `No team ${team} in organization acme`);
    }
    const userNs = await json(await w.api('PUT', '/repository/member/own/permissions/team/readers', { caller: 'member', body: { role: 'read' } }));
    assert.equal(userNs.body.detail, 'No team readers in organization member');
    const get = await json(await w.api('GET', `${P}/team/builders`));
    assert.deepEqual(get.body, { message: 'Team does not have permission for repo.' });
    const del = await json(await w.api('DELETE', `${P}/team/builders`));
    assert.equal(del.status, 400);
    assert.equal(del.body.detail, 'Team does not have permission for repo.');
  });

  test('a missing repository: 404 for the namespace admin, 403 for others', async () => {
    assert.equal((await w.api('GET', '/repository/acme/nosuch/permissions/team/')).status, 404);
    assert.equal((await w.api('GET', '/repository/acme/nosuch/permissions/team/', { caller: 'member' })).status, 403);
    assert.equal((await w.api('GET', '/repository/nosuchns/repo/permissions/team/')).status, 403);
  });
});

// Default permissions (prototypes) over real HTTP: CRUD with Quay's shapes and log entries, and
// proof that they apply to repositories created both through the API and by a docker push.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { isApiError, logKinds } from './client.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';
import { createOrganization, createRobot } from '../../../src/model/accounts.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { avatarOf, json } from '../../support/api-expect.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const sha256 = (x: string) => createHash('sha256').update(x).digest('hex');


let w: World;
before(async () => {
  w = await createWorld();
  const foreign = await createOrganization(w.t.app.services, 'foreign', w.users.outsider);
  await createRobot(w.t.app.services, foreign, 'spy');
});
after(async () => { await w?.close(); });

const logsSince = async (n: number) => (await logKinds(w.t)).slice(n).map((l) => [l.kind, l.account_id, l.metadata]);
const logCount = async () => (await logKinds(w.t)).length;
const PROTOS = '/organization/acme/prototypes';

/** Roles on a repository by delegate name (users and teams). */
async function grants(name: string): Promise<Record<string, string>> {
  const s = w.t.app.services;
  const repo = (await findRepo(s, 'acme', name))!;
  const users = await s.db.selectFrom('repo_permissions').innerJoin('users', 'users.id', 'repo_permissions.user_id')
    .select(['users.username as name', 'repo_permissions.role']).where('repository_id', '=', repo.id).execute();
  const teams = await s.db.selectFrom('repo_permissions').innerJoin('teams', 'teams.id', 'repo_permissions.team_id')
    .select(['teams.name as name', 'repo_permissions.role']).where('repository_id', '=', repo.id).execute();
  return Object.fromEntries([...users, ...teams].map((r) => [r.name, r.role]));
}

describe('prototype CRUD', () => {
  let teamProto: string;

  test('create for a team: Quay\'s prototype view, logged with create_prototype_permission', async () => {
    const n = await logCount();
    const r = await json(await w.api('POST', PROTOS, { body: { role: 'write', delegate: { kind: 'team', name: 'builders' } } }));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['activating_user', 'delegate', 'role', 'id']);
    assert.equal(r.body.activating_user, null);
    assert.deepEqual(r.body.delegate, { name: 'builders', kind: 'team', avatar: avatarOf('builders', 'builders', 'team') });
    assert.equal(r.body.role, 'write');
    assert.match(r.body.id, UUID);
    teamProto = r.body.id;
    assert.deepEqual(await logsSince(n), [['create_prototype_permission', w.org.id, {
      prototypeid: teamProto, username: 'orgadmin', activating_username: null, role: 'write', delegate_team: 'builders',
    }]]);
  });

  test('create for a user with an activating user: user views with is_org_member', async () => {
    const r = await json(await w.api('POST', PROTOS, { body: { role: 'read', activating_user: { name: 'creator' }, delegate: { kind: 'user', name: 'outsider' } } }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.activating_user, { name: 'creator', is_robot: false, kind: 'user', is_org_member: true, avatar: avatarOf('creator', 'creator@example.com', 'user') });
    assert.deepEqual(r.body.delegate, { name: 'outsider', is_robot: false, kind: 'user', is_org_member: false, avatar: avatarOf('outsider', 'outsider@example.com', 'user') });
    const robot = await json(await w.api('POST', PROTOS, { body: { role: 'read', delegate: { kind: 'user', name: 'acme+bot' } } }));
    assert.equal(robot.body.delegate.is_robot, true);
    assert.equal(robot.body.delegate.is_org_member, true);
    assert.equal(robot.body.delegate.avatar.kind, 'robot');
    const list = await json(await w.api('GET', PROTOS));
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.prototypes.map((p: any) => [p.delegate.name, p.role]), [['builders', 'write'], ['outsider', 'read'], ['acme+bot', 'read']]);
    assert.deepEqual(list.body.prototypes[1], r.body);
  });

  test('bad input: 400 saying what is wrong; nothing is created', async () => {
    const s = w.t.app.services;
    const count = async () => (await s.db.selectFrom('permission_prototypes').select('id').execute()).length;
    const before = await count();
    const api: [unknown, string][] = [
      [{ role: 'read', activating_user: { name: 'nosuch' }, delegate: { kind: 'team', name: 'builders' } }, 'Unknown activating user'],
      [{ role: 'read', delegate: { kind: 'user', name: 'nosuch' } }, 'Missing delegate user or team'],
      [{ role: 'read', delegate: { kind: 'user', name: 'foreign' } }, 'Missing delegate user or team'],
      [{ role: 'read', delegate: { kind: 'user', name: 'foreign+spy' } }, 'Cannot add robot foreign+spy under namespace acme'],
      [{ role: 'owner', delegate: { kind: 'team', name: 'builders' } }, "'owner' is not one of ['read', 'write', 'admin'] (field 'role')"],
      [{ role: 'read', delegate: { kind: 'org', name: 'acme' } }, "'org' is not one of ['user', 'team'] (field 'delegate.kind')"],
      [{ role: 'read' }, "'delegate' is a required property"],
      [{ role: 'read', delegate: { kind: 'team' } }, "'name' is a required property (field 'delegate')"],
    ];
    for (const [body, detail] of api) {
      const r = await json(await w.api('POST', PROTOS, { body }));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(isApiError(r.body, 400, 'invalid_request', w.t.url), JSON.stringify(r.body));
      assert.equal(r.body.detail, detail);
    }
    const team = await json(await w.api('POST', PROTOS, { body: { role: 'read', delegate: { kind: 'team', name: 'nosuch' } } }));
    assert.equal(team.status, 400);
    assert.deepEqual(team.body, { message: 'Team does not exist: acme/nosuch' });
    assert.equal(await count(), before);
  });

  test('update and delete, logged; unknown ids and another org\'s prototypes are 404', async () => {
    const s = w.t.app.services;
    const foreignProto = (await json(await w.api('POST', '/organization/foreign/prototypes', { caller: 'outsider', body: { role: 'read', delegate: { kind: 'team', name: 'owners' } } }))).body.id;
    const n = await logCount();
    const up = await json(await w.api('PUT', `${PROTOS}/${teamProto}`, { body: { role: 'admin' } }));
    assert.equal(up.status, 200);
    assert.equal(up.body.role, 'admin');
    assert.equal(up.body.id, teamProto);
    // Found by id alone it would be another organization's: looked up within acme only.
    for (const [m, body] of [['PUT', { role: 'admin' }], ['DELETE', undefined]] as const) {
      const r = await json(await w.api(m, `${PROTOS}/${foreignProto}`, { body }));
      assert.equal(r.status, 404);
      assert.ok(isApiError(r.body, 404, 'not_found', w.t.url));
    }
    const bad = await json(await w.api('PUT', `${PROTOS}/${teamProto}`, { body: { role: 'root' } }));
    assert.equal(bad.status, 400);
    assert.equal((await w.api('DELETE', `${PROTOS}/${teamProto}`)).status, 204);
    assert.equal((await w.api('DELETE', `${PROTOS}/${teamProto}`)).status, 404);
    assert.deepEqual(await logsSince(n), [
      ['modify_prototype_permission', w.org.id, { prototypeid: teamProto, username: 'orgadmin', activating_username: null, role: 'admin', original_role: 'write', delegate_team: 'builders' }],
      ['delete_prototype_permission', w.org.id, { prototypeid: teamProto, username: 'orgadmin', activating_username: null, role: 'admin', delegate_team: 'builders' }],
    ]);
    assert.ok(await s.db.selectFrom('permission_prototypes').select('id').where('uuid', '=', foreignProto).executeTakeFirst());
  });
});

describe('prototypes apply at repository creation, through the API and by push', () => {
  before(async () => {
    const s = w.t.app.services;
    await s.db.deleteFrom('permission_prototypes').where('org_id', '=', w.org.id).execute();
    const add = async (body: unknown) => assert.equal((await w.api('POST', PROTOS, { body })).status, 200);
    await add({ role: 'write', delegate: { kind: 'team', name: 'builders' } });
    // For anyone: outsider gets admin; for repositories `creator` makes, the specific rule wins.
    await add({ role: 'admin', delegate: { kind: 'user', name: 'outsider' } });
    await add({ role: 'read', activating_user: { name: 'creator' }, delegate: { kind: 'user', name: 'outsider' } });
  });

  test('a repository created with POST /api/v1/repository gets the default permissions', async () => {
    const r = await w.api('POST', '/repository', { caller: 'creator', body: { repository: 'viaapi', namespace: 'acme', visibility: 'private', description: '' } });
    assert.equal(r.status, 201, await r.clone().text());
    // The creator itself is an explicit admin, as in Quay's create_repository.
    assert.deepEqual(await grants('viaapi'), { creator: 'admin', builders: 'write', outsider: 'read' });
  });

  test('a repository created by a docker push gets the same default permissions', async () => {
    const client = new RegistryClient(w.t.url, 'creator', PASSWORD);
    await client.pushImage('acme/viapush', 'v1');
    assert.deepEqual(await grants('viapush'), { creator: 'admin', builders: 'write', outsider: 'read' });
    // The rule for the activating user only applies to them: orgadmin's push gets the general one.
    await new RegistryClient(w.t.url, 'orgadmin', PASSWORD).pushImage('acme/byadmin', 'v1');
    assert.deepEqual(await grants('byadmin'), { orgadmin: 'admin', builders: 'write', outsider: 'admin' });
    // The delegate's permission is real: outsider can now pull what creator pushed.
    const pull = await new RegistryClient(w.t.url, 'outsider', PASSWORD).req('GET', '/v2/acme/viapush/manifests/v1', {
      scope: 'repository:acme/viapush:pull', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(pull.status, 200);
  });
});

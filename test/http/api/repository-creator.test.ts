// Quay's create_repository: whoever creates a repository (user or robot, by API or by push) is an
// explicit admin of it, and an organization's default permissions never demote that creator.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { json } from '../../support/api-expect.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { findTeam } from '../../../src/model/teams.ts';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

async function userGrants(namespace: string, name: string): Promise<Record<string, string>> {
  const s = w.t.app.services;
  const repo = (await findRepo(s, namespace, name))!;
  const rows = await s.db.selectFrom('repo_permissions').innerJoin('users', 'users.id', 'repo_permissions.user_id')
    .select(['users.username', 'repo_permissions.role']).where('repository_id', '=', repo.id).execute();
  return Object.fromEntries(rows.map((r) => [r.username, r.role]));
}

test('a user pushing to their own namespace is listed as the admin of the new repository', async () => {
  await new RegistryClient(w.t.url, 'member', PASSWORD).pushImage('member/mine', 'v1');
  assert.deepEqual(await userGrants('member', 'mine'), { member: 'admin' });
  const list = await json(await w.api('GET', '/repository/member/mine/permissions/user/', { caller: 'member', scopes: ['repo:admin'] }));
  assert.equal(list.status, 200);
  assert.deepEqual(Object.keys(list.body.permissions), ['member']);
  assert.equal(list.body.permissions.member.role, 'admin');
});

test('a robot that creates a repository by push becomes its admin; default permissions apply beside it', async () => {
  const s = w.t.app.services;
  const builders = (await findTeam(s, w.org.id, 'builders'))!;
  const bot = await s.db.selectFrom('users').select('id').where('username', '=', w.robot.name).executeTakeFirstOrThrow();
  await s.db.insertInto('team_members').values({ team_id: builders.id, user_id: bot.id }).execute();
  assert.equal((await w.api('POST', '/organization/acme/prototypes', { body: { role: 'read', delegate: { kind: 'user', name: 'outsider' } } })).status, 200);
  await new RegistryClient(w.t.url, w.robot.name, w.robot.token).pushImage('acme/bybot', 'v1');
  assert.deepEqual(await userGrants('acme', 'bybot'), { [w.robot.name]: 'admin', outsider: 'read' });
});

test('a default permission naming the creator does not demote them', async () => {
  assert.equal((await w.api('POST', '/organization/acme/prototypes', { body: { role: 'read', delegate: { kind: 'user', name: 'creator' } } })).status, 200);
  const r = await w.api('POST', '/repository', { caller: 'creator', scopes: ['repo:create'], body: { repository: 'mine', namespace: 'acme', visibility: 'private', description: '' } });
  assert.equal(r.status, 201);
  assert.deepEqual(await userGrants('acme', 'mine'), { creator: 'admin', outsider: 'read' });
  // The creator administers it: they may list its permissions.
  assert.equal((await w.api('GET', '/repository/acme/mine/permissions/user/', { caller: 'creator', scopes: ['repo:admin'] })).status, 200);
});

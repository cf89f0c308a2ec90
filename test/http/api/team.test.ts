// Teams over real HTTP: create/update/delete, members (users and robots), invites when mailing is
// on, and the repository permissions a team holds — checked against Quay's shapes and log entries.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError, logKinds, userWithToken } from './client.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';
import { createOrganization, createRobot, createUser, findUser } from '../../../src/model/accounts.ts';
import { findTeam } from '../../../src/model/teams.ts';
import { avatarOf, json } from '../../support/api-expect.ts';

const sha256 = (x: string) => createHash('sha256').update(x).digest('hex');


let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

const logsSince = async (n: number) => (await logKinds(w.t)).slice(n).map((l) => [l.kind, l.metadata]);
const logCount = async () => (await logKinds(w.t)).length;

describe('PUT/DELETE /api/v1/organization/{orgname}/team/{teamname}', () => {
  test('creates a team (new_team true) and logs org_create_team', async () => {
    const n = await logCount();
    const r = await json(await w.api('PUT', '/organization/acme/team/devs', { body: { role: 'member' } }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { name: 'devs', description: '', can_view: true, role: 'member', avatar: avatarOf('devs', 'devs', 'team'), new_team: true });
    assert.deepEqual(await logsSince(n), [['org_create_team', { team: 'devs' }]]);
    const team = await findTeam(w.t.app.services, w.org.id, 'devs');
    assert.equal(team?.role, 'member');
  });

  test('updates description and role, logging each change once', async () => {
    const n = await logCount();
    const r = await json(await w.api('PUT', '/organization/acme/team/devs', { body: { role: 'creator', description: 'Developers' } }));
    assert.equal(r.status, 200);
    assert.equal(r.body.new_team, false);
    assert.equal(r.body.role, 'creator');
    assert.equal(r.body.description, 'Developers');
    assert.deepEqual(await logsSince(n), [
      ['org_set_team_description', { team: 'devs', description: 'Developers' }],
      ['org_set_team_role', { team: 'devs', role: 'creator' }],
    ]);
    const m = await logCount();
    await w.api('PUT', '/organization/acme/team/devs', { body: { role: 'creator', description: 'Developers' } });
    assert.deepEqual(await logsSince(m), [], 'no change, no log');
  });

  test('bad input: 400 saying what is wrong, and no team is created', async () => {
    const s = w.t.app.services;
    const cases: [string, unknown, string][] = [
      ['newteam', { role: 'owner' }, "'owner' is not one of ['member', 'creator', 'admin'] (field 'role')"],
      ['newteam', {}, "'role' is a required property"],
      ['newteam', { role: 'member', description: 5 }, "5 is not of type 'string' (field 'description')"],
      ['newteam', { role: 7 }, "7 is not of type 'string' (field 'role')"],
    ];
    for (const [name, body, detail] of cases) {
      const r = await json(await w.api('PUT', `/organization/acme/team/${name}`, { body }));
      assert.equal(r.status, 400);
      assert.ok(isApiError(r.body, 400, 'invalid_request', w.t.url));
      assert.equal(r.body.detail, detail);
    }
    // Names are checked by Quay's data layer: its bare {"message"} 400.
    const bad = await json(await w.api('PUT', '/organization/acme/team/Bad-Name', { body: { role: 'member' } }));
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body, { message: 'Invalid team name Bad-Name: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$' });
    const short = await json(await w.api('PUT', '/organization/acme/team/x', { body: { role: 'member' } }));
    assert.deepEqual(short.body, { message: 'Invalid team name x: Team must be between 2 and 255 characters in length' });
    for (const n of ['newteam', 'Bad-Name', 'x']) assert.equal(await findTeam(s, w.org.id, n), undefined);
  });

  test('the caller cannot demote or delete their only admin team; with another, they can', async () => {
    const s = w.t.app.services;
    const org = await createOrganization(s, 'adminorg', w.users.orgadmin);
    const demote = await json(await w.api('PUT', '/organization/adminorg/team/owners', { body: { role: 'member' } }));
    assert.equal(demote.status, 400);
    assert.deepEqual(demote.body, { message: "Cannot remove admin from team 'owners' because calling user would no longer have admin on org 'adminorg'" });
    const del = await json(await w.api('DELETE', '/organization/adminorg/team/owners'));
    assert.equal(del.status, 400);
    assert.deepEqual(del.body, { message: "Deleting team 'owners' would remove admin ability for user 'orgadmin' in organization 'adminorg'" });
    assert.equal((await findTeam(s, org.id, 'owners'))?.role, 'admin');

    assert.equal((await w.api('PUT', '/organization/adminorg/team/admins', { body: { role: 'admin' } })).status, 200);
    assert.equal((await w.api('PUT', '/organization/adminorg/team/admins/members/orgadmin')).status, 200);
    const n = await logCount();
    const ok = await w.api('DELETE', '/organization/adminorg/team/owners');
    assert.equal(ok.status, 204);
    assert.deepEqual(await logsSince(n), [['org_delete_team', { team: 'owners' }]]);
    assert.equal(await findTeam(s, org.id, 'owners'), undefined);
  });

  test('deleting a team drops its repository permissions; an unknown team is Quay\'s bare 400', async () => {
    const s = w.t.app.services;
    assert.equal((await w.api('PUT', '/organization/acme/team/temp', { body: { role: 'member' } })).status, 200);
    assert.equal((await w.api('PUT', '/repository/acme/repo/permissions/team/temp', { body: { role: 'write' } })).status, 200);
    const team = (await findTeam(s, w.org.id, 'temp'))!;
    assert.equal((await w.api('DELETE', '/organization/acme/team/temp')).status, 204);
    assert.deepEqual(await s.db.selectFrom('repo_permissions').select('id').where('team_id', '=', team.id).execute(), []);
    const missing = await json(await w.api('DELETE', '/organization/acme/team/temp'));
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body, { message: "Team 'temp' is not a team in org 'acme'" });
  });
});

describe('team members', () => {
  test('lists members with Quay\'s member view; can_edit only for admins', async () => {
    const r = await json(await w.api('GET', '/organization/acme/team/readers/members'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      name: 'readers',
      members: [
        { name: 'member', kind: 'user', is_robot: false, avatar: avatarOf('member', 'member@example.com', 'user'), invited: false },
        { name: 'acme+bot', kind: 'user', is_robot: true, avatar: avatarOf('acme+bot', 'acme+bot', 'robot'), invited: false },
      ],
      can_edit: true,
    });
    const asMember = await json(await w.api('GET', '/organization/acme/team/readers/members', { caller: 'member' }));
    assert.equal(asMember.body.can_edit, false);
    const other = await json(await w.api('GET', '/organization/acme/team/builders/members', { caller: 'member' }));
    assert.equal(other.status, 403);
  });

  test('adds users directly (mailing off) and the org\'s robots; logs org_add_team_member', async () => {
    const n = await logCount();
    const user = await json(await w.api('PUT', '/organization/acme/team/devs/members/outsider'));
    assert.equal(user.status, 200);
    assert.deepEqual(user.body, { name: 'outsider', kind: 'user', is_robot: false, avatar: avatarOf('outsider', 'outsider@example.com', 'user'), invited: false });
    const robot = await json(await w.api('PUT', '/organization/acme/team/devs/members/acme+bot'));
    assert.equal(robot.body.is_robot, true);
    assert.equal(robot.body.avatar.kind, 'robot');
    assert.deepEqual(await logsSince(n), [
      ['org_add_team_member', { member: 'outsider', team: 'devs' }],
      ['org_add_team_member', { member: 'acme+bot', team: 'devs' }],
    ]);
  });

  test('refuses duplicates, unknown users and robots of any other namespace', async () => {
    const s = w.t.app.services;
    const foreignOrg = await createOrganization(s, 'foreign', w.users.outsider);
    await createRobot(s, foreignOrg, 'spy');
    await createRobot(s, w.users.orgadmin, 'personal');
    const devs = (await findTeam(s, w.org.id, 'devs'))!;
    const before = (await s.db.selectFrom('team_members').select('id').where('team_id', '=', devs.id).execute()).length;

    const dup = await json(await w.api('PUT', '/organization/acme/team/devs/members/outsider'));
    assert.equal(dup.status, 400);
    assert.deepEqual(dup.body, { message: 'User outsider is already a member of team devs' });
    for (const name of ['nosuch', 'foreign']) {
      const r = await json(await w.api('PUT', `/organization/acme/team/devs/members/${name}`));
      assert.equal(r.status, 400, name);
      assert.ok(isApiError(r.body, 400, 'invalid_request', w.t.url));
      assert.equal(r.body.detail, 'Unknown user');
    }
    for (const name of ['foreign+spy', 'orgadmin+personal']) {
      const r = await json(await w.api('PUT', `/organization/acme/team/devs/members/${name}`));
      assert.equal(r.status, 400, name);
      assert.deepEqual(r.body, { message: 'Cannot add the specified robot to this team, as it is not a member of the organization' });
    }
    const noTeam = await json(await w.api('PUT', '/organization/acme/team/nosuch/members/outsider'));
    assert.equal(noTeam.status, 404);
    assert.equal((await s.db.selectFrom('team_members').select('id').where('team_id', '=', devs.id).execute()).length, before);
  });

  test('removes members (logged); not a member and the last-admin self-removal are bare 400s', async () => {
    const n = await logCount();
    const r = await w.api('DELETE', '/organization/acme/team/devs/members/acme+bot');
    assert.equal(r.status, 204);
    assert.deepEqual(await logsSince(n), [['org_remove_team_member', { member: 'acme+bot', team: 'devs' }]]);
    const again = await json(await w.api('DELETE', '/organization/acme/team/devs/members/acme+bot'));
    assert.equal(again.status, 400);
    assert.deepEqual(again.body, { message: 'User acme+bot does not belong to team devs' });
    const self = await json(await w.api('DELETE', '/organization/acme/team/owners/members/orgadmin'));
    assert.deepEqual(self.body, { message: 'User cannot remove themselves from their only admin team.' });
    assert.equal((await json(await w.api('DELETE', '/organization/acme/team/devs/members/nosuch'))).status, 404);
  });

  test('team repository permissions', async () => {
    const r = await json(await w.api('GET', '/organization/acme/team/readers/permissions'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { permissions: [{ repository: { name: 'repo', is_public: false }, role: 'read' }] });
    assert.equal((await json(await w.api('GET', '/organization/acme/team/nosuch/permissions'))).status, 404);
  });
});

describe('with FEATURE_MAILING (and REQUIRE_TEAM_INVITE, Quay\'s default)', () => {
  let m: World;
  before(async () => { m = await createWorld({ FEATURE_MAILING: true }); });
  after(async () => { await m?.close(); });

  test('a user outside the org is invited, sees a notification with the code, and accepts it', async () => {
    const s = m.t.app.services;
    const n = (await logKinds(m.t)).length;
    const r = await json(await m.api('PUT', '/organization/acme/team/readers/members/outsider'));
    assert.equal(r.status, 200);
    assert.equal(r.body.invited, true);
    const readers = (await findTeam(s, m.org.id, 'readers'))!;
    assert.equal((await s.db.selectFrom('team_members').select('id').where('team_id', '=', readers.id).where('user_id', '=', m.users.outsider.id).execute()).length, 0);
    const pending = await json(await m.api('GET', '/organization/acme/team/readers/members?includePending=true'));
    assert.deepEqual(pending.body.members.map((x: any) => [x.name, x.invited]), [['member', false], ['acme+bot', false], ['outsider', true]]);
    const plain = await json(await m.api('GET', '/organization/acme/team/readers/members'));
    assert.equal(plain.body.members.length, 2);

    const note = await s.db.selectFrom('user_notifications').selectAll().where('user_id', '=', m.users.outsider.id).executeTakeFirstOrThrow();
    assert.equal(note.kind, 'org_team_invite');
    const meta = JSON.parse(note.metadata);
    assert.deepEqual({ ...meta, code: typeof meta.code }, { code: 'string', inviter: 'orgadmin', org: 'acme', team: 'readers' });

    const wrongUser = await json(await m.api('PUT', `/teaminvite/${meta.code}`, { caller: 'member' }));
    assert.equal(wrongUser.status, 400);
    assert.match(wrongUser.body.message, /^This invite is intended for user "outsider"/);
    const ok = await json(await m.api('PUT', `/teaminvite/${meta.code}`, { caller: 'outsider' }));
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { org: 'acme', team: 'readers' });
    assert.equal((await s.db.selectFrom('team_members').select('id').where('team_id', '=', readers.id).where('user_id', '=', m.users.outsider.id).execute()).length, 1);
    assert.deepEqual((await logKinds(m.t)).slice(n).map((l) => [l.kind, l.metadata]), [
      ['org_invite_team_member', { user: 'outsider', member: 'outsider', team: 'readers' }],
      ['org_team_member_invite_accepted', { member: 'outsider', team: 'readers', inviter: 'orgadmin' }],
    ]);
    const reuse = await json(await m.api('PUT', `/teaminvite/${meta.code}`, { caller: 'outsider' }));
    assert.deepEqual(reuse.body, { message: 'Invalid confirmation code.' });
  });

  test('org members and robots are still added directly', async () => {
    const r = await json(await m.api('PUT', '/organization/acme/team/builders/members/member'));
    assert.equal(r.body.invited, false);
    const bot = await json(await m.api('PUT', '/organization/acme/team/builders/members/acme+bot'));
    assert.equal(bot.body.invited, false);
  });

  test('e-mail invites: created, listed as pending, removed; a missing one is 404', async () => {
    const n = (await logKinds(m.t)).length;
    const r = await json(await m.api('PUT', '/organization/acme/team/readers/invite/friend@example.com'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { email: 'friend@example.com', kind: 'invite', avatar: avatarOf('friend@example.com', 'friend@example.com', 'user'), invited: true });
    const pending = await json(await m.api('GET', '/organization/acme/team/readers/members?includePending=1'));
    assert.deepEqual(pending.body.members.at(-1), r.body);
    assert.equal((await m.api('DELETE', '/organization/acme/team/readers/invite/friend@example.com')).status, 204);
    assert.equal((await json(await m.api('DELETE', '/organization/acme/team/readers/invite/friend@example.com'))).status, 404);
    assert.deepEqual((await logKinds(m.t)).slice(n).map((l) => [l.kind, l.metadata]), [
      ['org_invite_team_member', { email: 'friend@example.com', team: 'readers', member: 'friend@example.com' }],
      ['org_delete_team_member_invite', { email: 'friend@example.com', team: 'readers', member: 'friend@example.com' }],
    ]);
  });

  test('removing an invited user cancels the invite; the invitee may decline', async () => {
    const s = m.t.app.services;
    await createUser(s, { username: 'guest', password: 'password123', email: 'guest@example.com' });
    await createUser(s, { username: 'guest2', password: 'password123', email: 'guest2@example.com' });
    assert.equal((await json(await m.api('PUT', '/organization/acme/team/readers/members/guest'))).body.invited, true);
    const n = (await logKinds(m.t)).length;
    assert.equal((await m.api('DELETE', '/organization/acme/team/readers/members/guest')).status, 204);
    assert.deepEqual((await logKinds(m.t)).slice(n).map((l) => l.kind), ['org_delete_team_member_invite']);

    assert.equal((await json(await m.api('PUT', '/organization/acme/team/readers/members/guest2'))).body.invited, true);
    const guest2 = (await findUser(s, 'guest2'))!;
    const note = await s.db.selectFrom('user_notifications').selectAll().where('user_id', '=', guest2.id).executeTakeFirstOrThrow();
    const code = JSON.parse(note.metadata).code;
    const { token } = await userWithToken(m.t, 'guest2', ['user:admin']);
    const declined = await fetch(`${m.t.url}/api/v1/teaminvite/${code}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    assert.equal(declined.status, 204);
    assert.deepEqual(await s.db.selectFrom('team_invites').select('id').where('user_id', '=', guest2.id).execute(), []);
    assert.equal((await logKinds(m.t)).at(-1)?.kind, 'org_team_member_invite_declined');
  });
});

test('a user namespace is not an organization: its "teams" are refused', async () => {
  const r = await json(await w.api('PUT', '/organization/member/team/devs', { body: { role: 'member' } }));
  assert.equal(r.status, 403);
  assert.equal(await findUser(w.t.app.services, 'member').then((u) => u?.kind), 'user');
});

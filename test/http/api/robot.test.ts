// Robot accounts over real HTTP (user and organization robots): shapes, tokens (who may see them,
// regeneration), permissions, federation, deletion, and that a robot is only ever reached through
// the namespace that owns it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError, logKinds } from './client.ts';
import { createOrganization, createRobot, findUser, verifyRobotToken } from '../../../src/model/accounts.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { setRepoPermission } from '../../../src/model/permissions.ts';
import { json } from '../../support/api-expect.ts';

const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} -0000$/;
const TOKEN = /^[A-Z0-9]{64}$/;


let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

const logsSince = async (n: number) => (await logKinds(w.t)).slice(n).map((l) => [l.kind, l.account_id, l.metadata]);
const logCount = async () => (await logKinds(w.t)).length;

describe('creating robots', () => {
  test('PUT /user/robots/{name} creates a robot with a 64-character token and logs create_robot', async () => {
    const n = await logCount();
    const r = await json(await w.api('PUT', '/user/robots/ci', { body: { description: 'CI pusher', unstructured_metadata: { team: 'qa' } } }));
    assert.equal(r.status, 201);
    assert.deepEqual(Object.keys(r.body), ['name', 'created', 'last_accessed', 'description', 'token', 'unstructured_metadata']);
    assert.equal(r.body.name, 'orgadmin+ci');
    assert.match(r.body.created, RFC2822);
    assert.equal(r.body.last_accessed, null);
    assert.equal(r.body.description, 'CI pusher');
    assert.match(r.body.token, TOKEN);
    assert.deepEqual(r.body.unstructured_metadata, { team: 'qa' });
    assert.ok(await verifyRobotToken(w.t.app.services, 'orgadmin+ci', r.body.token), 'the token logs the robot in');
    assert.deepEqual(await logsSince(n), [['create_robot', w.users.orgadmin.id, { robot: 'ci', description: 'CI pusher', unstructured_metadata: { team: 'qa' } }]]);
  });

  test('the body is optional; creation echoes null metadata, reads show {}', async () => {
    const r = await json(await w.api('PUT', '/organization/acme/robots/deployer'));
    assert.equal(r.status, 201);
    assert.equal(r.body.name, 'acme+deployer');
    assert.equal(r.body.description, '');
    assert.equal(r.body.unstructured_metadata, null);
    const got = await json(await w.api('GET', '/organization/acme/robots/deployer'));
    assert.deepEqual(got.body.unstructured_metadata, {});
    assert.equal(got.body.token, r.body.token);
    const robot = await findUser(w.t.app.services, 'acme+deployer');
    assert.equal(robot?.robot_owner_id, w.org.id);
  });

  test('bad input is a 400 that says why, and nothing is created', async () => {
    const s = w.t.app.services;
    const count = async () => (await s.db.selectFrom('users').select('id').where('kind', '=', 'robot').execute()).length;
    const before = await count();
    const cases: [string, unknown, string][] = [
      ['/user/robots/ci', undefined, 'Existing robot with name: orgadmin+ci'],
      ['/organization/acme/robots/bot', undefined, 'Existing robot with name: acme+bot'],
      ['/user/robots/Bad', undefined, "The name for the robot 'Bad' is invalid: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$"],
      ['/user/robots/x', undefined, "The name for the robot 'x' is invalid: Namespace must be between 2 and 255 characters in length"],
      ['/user/robots/longdesc', { description: 'd'.repeat(256) }, `'${'d'.repeat(256)}' is too long (field 'description')`],
      ['/user/robots/meta', { unstructured_metadata: [1] }, "[1] is not of type 'object' (field 'unstructured_metadata')"],
      ['/user/robots/num', { description: 3 }, "3 is not of type 'string' (field 'description')"],
    ];
    for (const [path, body, detail] of cases) {
      const r = await json(await w.api('PUT', path, { body }));
      assert.equal(r.status, 400, path);
      assert.ok(isApiError(r.body, 400, 'invalid_request', w.t.url), JSON.stringify(r.body));
      assert.equal(r.body.detail, detail);
    }
    assert.equal(await count(), before);
  });
});

describe('reading robots', () => {
  test('lists carry tokens by default, not with token=false; permissions=true adds teams and repositories', async () => {
    const s = w.t.app.services;
    await setRepoPermission(s, (await findRepo(s, 'acme', 'repo'))!.id, { userId: (await findUser(s, 'acme+bot'))!.id }, 'write');
    const all = await json(await w.api('GET', '/organization/acme/robots'));
    assert.equal(all.status, 200);
    const bot = all.body.robots.find((r: any) => r.name === 'acme+bot');
    assert.deepEqual(Object.keys(bot), ['name', 'created', 'last_accessed', 'description', 'token']);
    assert.equal(bot.token, w.robot.token);
    assert.equal(bot.description, 'matrix robot');

    const noTok = await json(await w.api('GET', '/organization/acme/robots?token=false'));
    assert.ok(noTok.body.robots.every((r: any) => !('token' in r)));

    const perms = await json(await w.api('GET', '/organization/acme/robots?permissions=true&token=false'));
    const pb = perms.body.robots.find((r: any) => r.name === 'acme+bot');
    assert.deepEqual(Object.keys(pb), ['name', 'created', 'last_accessed', 'teams', 'repositories', 'description']);
    assert.deepEqual(pb.teams.map((t: any) => [t.name, t.avatar.kind]), [['readers', 'team']]);
    assert.deepEqual(pb.repositories, ['repo']);

    const limited = await json(await w.api('GET', '/organization/acme/robots?limit=1'));
    assert.equal(limited.body.robots.length, 1);
    const badLimit = await json(await w.api('GET', '/organization/acme/robots?limit=abc'));
    assert.equal(badLimit.status, 400);
    assert.ok(isApiError(badLimit.body, 400, 'invalid_request', w.t.url));
  });

  test('members list the org\'s robots without tokens or permissions; read-only superusers without tokens', async () => {
    const m = await json(await w.api('GET', '/organization/acme/robots?token=true&permissions=true', { caller: 'member' }));
    assert.equal(m.status, 200);
    assert.ok(m.body.robots.length >= 2);
    for (const r of m.body.robots) assert.deepEqual(Object.keys(r), ['name', 'created', 'last_accessed', 'description']);
    const ro = await json(await w.api('GET', '/organization/acme/robots/bot', { caller: 'readonlySuperuser' }));
    assert.equal(ro.status, 200);
    assert.equal('token' in ro.body, false);
    const roList = await json(await w.api('GET', '/organization/acme/robots?permissions=true', { caller: 'readonlySuperuser' }));
    assert.ok(roList.body.robots.every((r: any) => !('token' in r) && Array.isArray(r.teams)));
  });

  test('unknown robots are Quay\'s bare 400; robots of other namespaces are unreachable', async () => {
    const s = w.t.app.services;
    const foreign = await createOrganization(s, 'foreign', w.users.outsider);
    await createRobot(s, foreign, 'spy');
    const unknown = await json(await w.api('GET', '/organization/acme/robots/nosuch'));
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body, { message: 'Could not find robot with specified username' });
    // /user/robots/{name} is always the caller's own namespace: acme's bot is not orgadmin's.
    assert.deepEqual((await json(await w.api('GET', '/user/robots/bot'))).body, { message: 'Could not find robot with specified username' });
    // Another organization's robots: refused before anything is looked up.
    for (const [m, path] of [['GET', '/organization/foreign/robots/spy'], ['POST', '/organization/foreign/robots/spy/regenerate'], ['DELETE', '/organization/foreign/robots/spy'], ['GET', '/organization/foreign/robots/spy/federation']] as const) {
      const r = await json(await w.api(m, path));
      assert.equal(r.status, 403, `${m} ${path}`);
    }
    assert.ok(await findUser(s, 'foreign+spy'));
    const missing = await json(await w.api('DELETE', '/organization/acme/robots/nosuch'));
    assert.deepEqual(missing.body, { message: 'Could not find robot with username: acme+nosuch' });
  });

  test('robot permissions list its direct repository roles', async () => {
    const r = await json(await w.api('GET', '/organization/acme/robots/bot/permissions'));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { permissions: [{ repository: { name: 'repo', is_public: false }, role: 'write' }] });
    const mine = await json(await w.api('GET', '/user/robots/ci/permissions'));
    assert.deepEqual(mine.body, { permissions: [] });
  });
});

describe('changing robots', () => {
  test('regenerate: a new token replaces the old one at once; logged', async () => {
    const s = w.t.app.services;
    const before = (await json(await w.api('GET', '/organization/acme/robots/deployer'))).body.token;
    const n = await logCount();
    const r = await json(await w.api('POST', '/organization/acme/robots/deployer/regenerate'));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body), ['name', 'created', 'last_accessed', 'description', 'token']);
    assert.match(r.body.token, TOKEN);
    assert.notEqual(r.body.token, before);
    assert.equal(await verifyRobotToken(s, 'acme+deployer', before), null);
    assert.ok(await verifyRobotToken(s, 'acme+deployer', r.body.token));
    assert.deepEqual(await logsSince(n), [['regenerate_robot_token', w.org.id, { robot: 'deployer' }]]);
  });

  test('federation: replace, read back, reject bad configs unchanged, delete; each logged', async () => {
    const n = await logCount();
    const cfg = [{ issuer: 'https://issuer.example.com', subject: 'ci' }, { issuer: 'http://other.example.com', subject: 'ci' }];
    const set = await json(await w.api('POST', '/organization/acme/robots/deployer/federation', { body: cfg }));
    assert.equal(set.status, 200);
    assert.deepEqual(set.body, cfg);
    assert.deepEqual((await json(await w.api('GET', '/organization/acme/robots/deployer/federation'))).body, cfg);
    const bad: [unknown, string][] = [
      [[{ issuer: 'not-a-url', subject: 'x' }], 'Issuer must be a URL (http:// or https://)'],
      [[cfg[0], cfg[0]], 'Duplicate federation config entry'],
      [[{ issuer: 'https://i.example.com', subject: '' }], 'Missing one or more required fields (issuer, subject)'],
      [[{ issuer: 'https://i.example.com' }], "'subject' is a required property (field '[0]')"],
      [{ issuer: 'https://i.example.com', subject: 's' }, "{'issuer': 'https://i.example.com', 'subject': 's'} is not of type 'array'"],
    ];
    for (const [body, detail] of bad) {
      const r = await json(await w.api('POST', '/organization/acme/robots/deployer/federation', { body }));
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.detail, detail);
    }
    assert.deepEqual((await json(await w.api('GET', '/organization/acme/robots/deployer/federation'))).body, cfg);
    assert.equal((await w.api('DELETE', '/organization/acme/robots/deployer/federation')).status, 204);
    assert.deepEqual((await json(await w.api('GET', '/organization/acme/robots/deployer/federation'))).body, []);
    assert.deepEqual(await logsSince(n), [
      ['create_robot_federation', w.org.id, { config: cfg, robot: 'deployer' }],
      ['delete_robot_federation', w.org.id, { robot: 'deployer' }],
    ]);
  });

  test('delete: the robot, its token, memberships and permissions go; a mirror\'s robot stays', async () => {
    const s = w.t.app.services;
    const { robot, token } = await createRobot(s, w.org, 'doomed');
    await s.db.insertInto('team_members').values({ team_id: (await s.db.selectFrom('teams').select('id').where('org_id', '=', w.org.id).where('name', '=', 'readers').executeTakeFirstOrThrow()).id, user_id: robot.id }).execute();
    await setRepoPermission(s, (await findRepo(s, 'acme', 'repo'))!.id, { userId: robot.id }, 'read');
    const n = await logCount();
    assert.equal((await w.api('DELETE', '/organization/acme/robots/doomed')).status, 204);
    assert.equal(await findUser(s, 'acme+doomed'), undefined);
    assert.equal(await verifyRobotToken(s, 'acme+doomed', token), null);
    assert.deepEqual(await s.db.selectFrom('team_members').select('id').where('user_id', '=', robot.id).execute(), []);
    assert.deepEqual(await s.db.selectFrom('repo_permissions').select('id').where('user_id', '=', robot.id).execute(), []);
    assert.deepEqual(await logsSince(n), [['delete_robot', w.org.id, { robot: 'doomed' }]]);

    await createRobot(s, w.org, 'mirrorbot');
    await s.db.insertInto('mirror_configs').values({
      repository_id: (await findRepo(s, 'acme', 'repo'))!.id, config: JSON.stringify({ robot_username: 'acme+mirrorbot' }), is_enabled: 1,
      sync_start_date: null, sync_expiration_date: null, external_password_enc: null,
    }).execute();
    const used = await json(await w.api('DELETE', '/organization/acme/robots/mirrorbot'));
    assert.equal(used.status, 400);
    assert.equal(used.body.detail, 'Robot is being used by a mirror');
    assert.ok(await findUser(s, 'acme+mirrorbot'));
  });
});

describe('last_accessed', () => {
  test('a robot login on /v2/auth sets last_accessed, shown as an RFC 2822 date', async () => {
    const made = await json(await w.api('PUT', '/user/robots/seen', { body: {} }));
    assert.equal(made.status, 201);
    const before = await json(await w.api('GET', '/user/robots/seen'));
    assert.equal(before.body.last_accessed, null);
    const basic = Buffer.from(`orgadmin+seen:${made.body.token}`).toString('base64');
    const auth = await fetch(`${w.t.url}/v2/auth?service=localhost`, { headers: { authorization: `Basic ${basic}` } });
    assert.equal(auth.status, 200, await auth.text());
    const after = await json(await w.api('GET', '/user/robots/seen'));
    assert.match(after.body.last_accessed, RFC2822);
    const wrong = Buffer.from('orgadmin+seen:WRONG').toString('base64');
    const denied = await fetch(`${w.t.url}/v2/auth?service=localhost`, { headers: { authorization: `Basic ${wrong}` } });
    assert.equal(denied.status, 401);
  });
});

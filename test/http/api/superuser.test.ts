// /api/v1/superuser/* (users, organizations, take ownership, app tokens, change log, registry
// status, shutdown) over real HTTP, field by field against Quay's shapes (endpoints.json).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { isApiError, logKinds } from './client.ts';
import {
  createAppToken, createOAuthToken, createOrganization, createRobot, createUser, findUser, verifyAppToken, verifyOAuthToken,
  verifyPassword, verifyRobotToken,
} from '../../../src/model/accounts.ts';
import { authenticateBasic } from '../../../src/model/registry-auth.ts';
import { createSession } from '../../../src/model/sessions.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const colorOf = (hash: string) => AVATAR_COLORS[parseInt(hash.slice(0, 2), 16) % 32];
const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} -0000$/;
const FORBIDDEN = "You don't have the permission to access the requested resource. It is either read-protected or not readable by the server.";

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

function basicAuth(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

describe('superuser users', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });

  test('GET /superuser/users/ lists humans only with Quay\'s superuser user view', async () => {
    const r = await w.api('GET', '/superuser/users/', { caller: 'superuser' });
    assert.equal(r.status, 200);
    const body = await json(r);
    assert.deepEqual(Object.keys(body), ['users']);
    const names = body.users.map((u: any) => u.username);
    assert.deepEqual(names, ['root', 'auditor', 'orgadmin', 'creator', 'member', 'outsider']);
    const member = body.users.find((u: any) => u.username === 'member');
    const hash = sha256('member@example.com');
    assert.deepEqual(member, {
      kind: 'user', name: 'member', username: 'member', email: 'member@example.com', verified: true,
      avatar: { name: 'member', hash, color: colorOf(hash), kind: 'user' },
      super_user: false, global_readonly_super_user: false, enabled: true,
    });
    const root = body.users.find((u: any) => u.username === 'root');
    assert.equal(root.super_user, true);
    assert.equal(root.global_readonly_super_user, false);
    const auditor = body.users.find((u: any) => u.username === 'auditor');
    assert.equal(auditor.super_user, false);
    assert.equal(auditor.global_readonly_super_user, true);
  });

  test('the read-only superuser may list; pagination with limit and next_page; limit above 100 refused', async () => {
    const ro = await w.api('GET', '/superuser/users/', { caller: 'readonlySuperuser' });
    assert.equal(ro.status, 200);
    assert.equal((await json(ro)).users.length, 6);

    const seen: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const r = await w.api('GET', `/superuser/users/?limit=4${next ? `&next_page=${encodeURIComponent(next)}` : ''}`, { caller: 'superuser' });
      assert.equal(r.status, 200);
      const b = await json(r);
      seen.push(...b.users.map((u: any) => u.username));
      next = b.next_page;
      if (next !== undefined) assert.equal(typeof next, 'string');
      pages++;
    } while (next && pages < 5);
    assert.equal(pages, 2);
    assert.deepEqual(seen, ['root', 'auditor', 'orgadmin', 'creator', 'member', 'outsider']);

    // A token that does not decrypt is ignored: Quay serves the first page.
    const junk = await json(await w.api('GET', '/superuser/users/?limit=2&next_page=garbage', { caller: 'superuser' }));
    assert.deepEqual(junk.users.map((u: any) => u.username), ['root', 'auditor']);

    const big = await w.api('GET', '/superuser/users/?limit=101', { caller: 'superuser' });
    assert.equal(big.status, 400);
    const bb = await json(big);
    assert.ok(isApiError(bb, 400, 'invalid_request', w.t.url));
    assert.equal(bb.detail, 'Page limit cannot be above 100');
    const zero = await w.api('GET', '/superuser/users/?limit=0', { caller: 'superuser' });
    assert.equal(zero.status, 400);
    const word = await w.api('GET', '/superuser/users/?limit=many', { caller: 'superuser' });
    assert.equal(word.status, 400);
  });

  test('POST /superuser/users/ creates a user with a generated password and logs user_create', async () => {
    const r = await w.api('POST', '/superuser/users/', { caller: 'superuser', body: { username: 'newbie', email: 'newbie@example.com' } });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.deepEqual(Object.keys(b).sort(), ['email', 'encrypted_password', 'password', 'username']);
    assert.equal(b.username, 'newbie');
    assert.equal(b.email, 'newbie@example.com');
    assert.match(b.password, /^[A-Z0-9]{32}$/);
    assert.equal(b.encrypted_password.length, 120);
    const s = w.t.app.services;
    assert.ok(await verifyPassword(s, 'newbie', b.password));
    // The encrypted password works as the docker login password.
    const p = await authenticateBasic(s, 'newbie', b.encrypted_password);
    assert.equal(p?.kind === 'user' && p.username, 'newbie');
    const user = (await findUser(s, 'newbie'))!;
    assert.equal(user.verified, 1);
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'user_create' && l.account_id === user.id);
    assert.equal(log.length, 1);
    assert.equal(log[0]!.performer_id, w.users.root.id);
    assert.deepEqual(log[0]!.metadata, { email: 'newbie@example.com', username: 'newbie', superuser: 'root' });

    const noEmail = await json(await w.api('POST', '/superuser/users/', { caller: 'superuser', body: { username: 'quiet' } }));
    assert.equal(noEmail.email, null);
    assert.equal((await findUser(s, 'quiet'))?.email, null);
  });

  test('POST /superuser/users/ bad input: 400 with the reason, nothing created', async () => {
    const s = w.t.app.services;
    const count = async () => (await s.db.selectFrom('users').select('id').execute()).length;
    const n = await count();
    const schema: [unknown, string][] = [
      [{}, "'username' is a required property"],
      [{ username: 7 }, "7 is not of type 'string' (field 'username')"],
      [{ username: 'x1', email: 5 }, "5 is not of type 'string' (field 'email')"],
    ];
    for (const [body, detail] of schema) {
      const r = await w.api('POST', '/superuser/users/', { caller: 'superuser', body });
      assert.equal(r.status, 400);
      const b = await json(r);
      assert.ok(isApiError(b, 400, 'invalid_request', w.t.url), JSON.stringify(b));
      assert.equal(b.detail, detail);
    }
    // Quay's DataModelException failures are bare {"message"} bodies.
    const plain: [unknown, string | RegExp][] = [
      [{ username: 'member' }, 'Username has already been taken by user cannot be reused: member'],
      [{ username: 'acme' }, 'Username has already been taken by an organization and cannot be reused: acme'],
      [{ username: 'Bad Name' }, /^Invalid namespace Bad Name/],
      [{ username: 'fresh1', email: 'member@example.com' }, 'Email has already been used'],
      [{ username: 'fresh2', email: 'nope' }, 'Invalid email address'],
    ];
    for (const [body, message] of plain) {
      const r = await w.api('POST', '/superuser/users/', { caller: 'superuser', body });
      assert.equal(r.status, 400, JSON.stringify(body));
      const b = await json(r);
      assert.deepEqual(Object.keys(b), ['message']);
      if (typeof message === 'string') assert.equal(b.message, message);
      else assert.match(b.message, message);
    }
    const noBody = await w.api('POST', '/superuser/users/', { caller: 'superuser' });
    assert.equal(noBody.status, 400);
    assert.equal((await json(noBody)).detail, 'Missing JSON body');
    assert.equal(await count(), n);
  });

  test('GET /superuser/users/{username}: humans only; readonly superuser may read', async () => {
    const r = await w.api('GET', '/superuser/users/creator', { caller: 'readonlySuperuser' });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.equal(b.username, 'creator');
    assert.equal(b.kind, 'user');
    for (const name of ['acme', 'acme+bot', 'ghost']) {
      const nf = await w.api('GET', `/superuser/users/${encodeURIComponent(name)}`, { caller: 'superuser' });
      assert.equal(nf.status, 404, name);
      assert.ok(isApiError(await json(nf), 404, 'not_found', w.t.url));
    }
  });

  test('PUT /superuser/users/{username}: email and password change, each logged; password returns encrypted_password', async () => {
    const s = w.t.app.services;
    const target = await createUser(s, { username: 'target', password: PASSWORD, email: 'target@example.com', verified: false });
    await createSession(s, target);
    const r = await w.api('PUT', '/superuser/users/target', { caller: 'superuser', body: { email: 'target2@example.com', password: 'n3w-password' } });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.equal(b.username, 'target');
    assert.equal(b.email, 'target2@example.com');
    assert.equal(b.verified, true);
    assert.equal(b.enabled, true);
    assert.equal(b.encrypted_password.length, 120);
    assert.equal(await verifyPassword(s, 'target', PASSWORD), null);
    assert.ok(await verifyPassword(s, 'target', 'n3w-password'));
    // Like Quay's change_password, every session of the user ends.
    assert.equal((await s.db.selectFrom('sessions').select('id').where('user_id', '=', target.id).execute()).length, 0);
    const logs = (await logKinds(w.t)).filter((l) => l.account_id === target.id && l.kind.startsWith('user_change'));
    assert.deepEqual(logs.map((l) => l.kind), ['user_change_password', 'user_change_email']);
    assert.deepEqual(logs[0]!.metadata, { username: 'target', superuser: 'root' });
    assert.deepEqual(logs[1]!.metadata, { old_email: 'target@example.com', email: 'target2@example.com', superuser: 'root' });
    assert.ok(logs.every((l) => l.performer_id === w.users.root.id));

    // Without a password there is no encrypted_password.
    const plain = await json(await w.api('PUT', '/superuser/users/target', { caller: 'superuser', body: {} }));
    assert.equal(plain.encrypted_password, undefined);
  });

  test('PUT bad input answers 400 and changes nothing; superusers cannot be updated', async () => {
    const s = w.t.app.services;
    await createUser(s, { username: 'steady', password: PASSWORD, email: 'steady@example.com' });
    const before = await findUser(s, 'steady');
    const cases: [unknown, (b: any) => void][] = [
      [{ enabled: 'no' }, (b) => assert.equal(b.detail, "'no' is not of type 'boolean' (field 'enabled')")],
      [{ password: 12345678 }, (b) => assert.equal(b.detail, "12345678 is not of type 'string' (field 'password')")],
      [{ password: 'short' }, (b) => assert.deepEqual(b, { message: 'Password must be at least 8 characters and contain no whitespace.' })],
      [{ email: 'broken' }, (b) => assert.deepEqual(b, { message: 'Invalid email address: broken' })],
      [{ email: 'member@example.com' }, (b) => assert.deepEqual(b, { message: 'E-mail address already used' })],
      // Validated before anything changes: the good password is not applied either.
      [{ password: 'fine-password', email: 'broken' }, (b) => assert.deepEqual(b, { message: 'Invalid email address: broken' })],
    ];
    for (const [body, check] of cases) {
      const r = await w.api('PUT', '/superuser/users/steady', { caller: 'superuser', body });
      assert.equal(r.status, 400, JSON.stringify(body));
      check(await json(r));
    }
    assert.deepEqual(await findUser(s, 'steady'), before);
    assert.ok(await verifyPassword(s, 'steady', PASSWORD));

    const su = await w.api('PUT', '/superuser/users/root', { caller: 'superuser', body: { enabled: false } });
    assert.equal(su.status, 400);
    const sb = await json(su);
    assert.ok(isApiError(sb, 400, 'invalid_request', w.t.url));
    assert.equal(sb.detail, 'Cannot update a superuser');
    assert.equal((await findUser(s, 'root'))?.enabled, 1);

    const missing = await w.api('PUT', '/superuser/users/ghost', { caller: 'superuser', body: { enabled: false } });
    assert.equal(missing.status, 404);
  });

  test('disabling a user stops password, app-token and OAuth credentials; enabling restores them', async () => {
    const s = w.t.app.services;
    const u = await createUser(s, { username: 'sleepy', password: PASSWORD, email: 'sleepy@example.com' });
    const app = await createAppToken(s, u, 'cli');
    const oauth = await createOAuthToken(s, w.appId, u, 'repo:read user:read');

    const off = await w.api('PUT', '/superuser/users/sleepy', { caller: 'superuser', body: { enabled: false } });
    assert.equal(off.status, 200);
    assert.equal((await json(off)).enabled, false);
    assert.equal(await verifyPassword(s, 'sleepy', PASSWORD), null);
    assert.equal(await verifyAppToken(s, app.token), null);
    assert.equal(await verifyOAuthToken(s, oauth.token), null);
    assert.equal(await authenticateBasic(s, 'sleepy', PASSWORD), null);
    // The API treats the token as no credential at all.
    const me = await fetch(`${w.t.url}/api/v1/user/`, { headers: { authorization: `Bearer ${oauth.token}` } });
    assert.equal(me.status, 401);
    await me.arrayBuffer();
    // /v2/auth refuses the password.
    const v2 = await fetch(`${w.t.url}/v2/auth?service=x&scope=repository:sleepy/app:pull`, { headers: { authorization: basicAuth('sleepy', PASSWORD) } });
    assert.equal(v2.status, 401);
    await v2.arrayBuffer();
    const listEnabled = await json(await w.api('GET', '/superuser/users/?disabled=false', { caller: 'superuser' }));
    assert.ok(!listEnabled.users.some((x: any) => x.username === 'sleepy'));
    const listAll = await json(await w.api('GET', '/superuser/users/', { caller: 'superuser' }));
    assert.equal(listAll.users.find((x: any) => x.username === 'sleepy').enabled, false);

    const on = await w.api('PUT', '/superuser/users/sleepy', { caller: 'superuser', body: { enabled: true } });
    assert.equal((await json(on)).enabled, true);
    assert.ok(await verifyPassword(s, 'sleepy', PASSWORD));
    assert.ok(await verifyAppToken(s, app.token));
    const kinds = (await logKinds(w.t)).filter((l) => l.account_id === u.id).map((l) => l.kind);
    assert.deepEqual(kinds, ['user_disable', 'user_enable']);
  });

  test('DELETE /superuser/users/{username}: removes the user and their namespace; superusers cannot be deleted', async () => {
    const s = w.t.app.services;
    const gone = await createUser(s, { username: 'leaver', password: PASSWORD, email: 'leaver@example.com' });
    const { robot, token } = await createRobot(s, gone, 'bot');
    const client = new RegistryClient(w.t.url, 'leaver', PASSWORD);
    await client.pushImage('leaver/app', 'v1');
    await s.db.insertInto('team_members').values({ team_id: (await s.db.selectFrom('teams').select('id').where('name', '=', 'readers').executeTakeFirstOrThrow()).id, user_id: gone.id }).execute();

    const r = await w.api('DELETE', '/superuser/users/leaver', { caller: 'superuser' });
    assert.equal(r.status, 204);
    assert.equal(await r.text(), '');
    assert.equal(await findUser(s, 'leaver'), undefined);
    assert.equal(await findUser(s, robot.username), undefined);
    assert.equal(await verifyRobotToken(s, robot.username, token), null);
    assert.equal((await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', gone.id).execute()).length, 0);
    assert.equal((await s.db.selectFrom('team_members').select('id').where('user_id', '=', gone.id).execute()).length, 0);
    assert.equal((await s.db.selectFrom('manifests').select('id').execute()).length, 0);
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'user_delete');
    assert.equal(log.length, 1);
    assert.equal(log[0]!.account_id, gone.id);
    assert.deepEqual(log[0]!.metadata, { username: 'leaver', superuser: 'root' });
    // The name is free again at once.
    const again = await w.api('POST', '/superuser/users/', { caller: 'superuser', body: { username: 'leaver' } });
    assert.equal(again.status, 200);

    const su = await w.api('DELETE', '/superuser/users/root', { caller: 'superuser' });
    assert.equal(su.status, 400);
    assert.equal((await json(su)).detail, 'Cannot delete a superuser');
    const dbFlag = await createUser(s, { username: 'flagged', password: PASSWORD, superuser: true });
    const su2 = await w.api('DELETE', '/superuser/users/flagged', { caller: 'superuser' });
    assert.equal(su2.status, 400);
    assert.ok(await findUser(s, dbFlag.username));
    const missing = await w.api('DELETE', '/superuser/users/acme', { caller: 'superuser' });
    assert.equal(missing.status, 404);
    assert.ok(await findUser(s, 'acme'));
  });
});

describe('superuser organizations and ownership', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });

  test('GET /superuser/organizations/ lists organizations with name, email and avatar; paginates', async () => {
    const s = w.t.app.services;
    await createOrganization(s, 'beta', w.users.outsider, null);
    const r = await w.api('GET', '/superuser/organizations/', { caller: 'readonlySuperuser' });
    assert.equal(r.status, 200);
    const b = await json(r);
    const acmeHash = sha256('acme@example.com');
    assert.deepEqual(b, {
      organizations: [
        { name: 'acme', email: 'acme@example.com', avatar: { name: 'acme', hash: acmeHash, color: colorOf(acmeHash), kind: 'org' } },
        { name: 'beta', email: '', avatar: { name: 'beta', hash: sha256('beta'), color: colorOf(sha256('beta')), kind: 'org' } },
      ],
    });
    const p1 = await json(await w.api('GET', '/superuser/organizations/?limit=1', { caller: 'superuser' }));
    assert.deepEqual(p1.organizations.map((o: any) => o.name), ['acme']);
    const p2 = await json(await w.api('GET', `/superuser/organizations/?limit=1&next_page=${encodeURIComponent(p1.next_page)}`, { caller: 'superuser' }));
    assert.deepEqual(p2.organizations.map((o: any) => o.name), ['beta']);
    assert.equal(p2.next_page, undefined);
  });

  test('PUT /superuser/organizations/{name} renames the org and its robots, and logs org_change_name', async () => {
    const s = w.t.app.services;
    const org = await createOrganization(s, 'oldname', w.users.outsider, 'old@example.com');
    const { token } = await createRobot(s, org, 'builder');
    const r = await w.api('PUT', '/superuser/organizations/oldname', { caller: 'superuser', body: { name: 'newname' } });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.equal(b.name, 'newname');
    assert.equal(b.email, 'old@example.com');
    assert.equal(b.avatar.kind, 'org');
    assert.equal(await findUser(s, 'oldname'), undefined);
    assert.ok(await verifyRobotToken(s, 'newname+builder', token));
    assert.equal(await findUser(s, 'oldname+builder'), undefined);
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'org_change_name');
    assert.equal(log.length, 1);
    assert.equal(log[0]!.account_id, org.id);
    assert.deepEqual(log[0]!.metadata, { old_name: 'oldname', new_name: 'newname', superuser: 'root' });

    // Bad names, taken names and unknown organizations: Quay's bare 400 messages; nothing changes.
    const cases: [string, unknown, string | RegExp][] = [
      ['newname', { name: 'Bad Name' }, /^Invalid namespace Bad Name/],
      ['newname', { name: 'acme' }, 'A user or organization with this name already exists: acme'],
      ['ghost', { name: 'whatever' }, 'Organization does not exist: ghost'],
      ['member', { name: 'whatever' }, 'Organization does not exist: member'],
    ];
    for (const [name, body, message] of cases) {
      const bad = await w.api('PUT', `/superuser/organizations/${name}`, { caller: 'superuser', body });
      assert.equal(bad.status, 400);
      const bb = await json(bad);
      if (typeof message === 'string') assert.deepEqual(bb, { message });
      else assert.match(bb.message, message);
    }
    const wrongType = await w.api('PUT', '/superuser/organizations/newname', { caller: 'superuser', body: { name: 3 } });
    assert.equal(wrongType.status, 400);
    assert.equal((await json(wrongType)).detail, "3 is not of type 'string' (field 'name')");
    assert.ok(await findUser(s, 'newname'));
    assert.equal((await logKinds(w.t)).filter((l) => l.kind === 'org_change_name').length, 1);
  });

  test('DELETE /superuser/organizations/{name} removes the org with its repositories, teams and robots', async () => {
    const s = w.t.app.services;
    const owner = await createUser(s, { username: 'boss', password: PASSWORD, email: 'boss@example.com' });
    const org = await createOrganization(s, 'doomed', owner, null);
    const { robot } = await createRobot(s, org, 'ci');
    await new RegistryClient(w.t.url, 'boss', PASSWORD).pushImage('doomed/app', 'latest');
    const r = await w.api('DELETE', '/superuser/organizations/doomed', { caller: 'superuser' });
    assert.equal(r.status, 204);
    assert.equal(await findUser(s, 'doomed'), undefined);
    assert.equal(await findUser(s, robot.username), undefined);
    assert.equal((await s.db.selectFrom('teams').select('id').where('org_id', '=', org.id).execute()).length, 0);
    assert.equal((await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', org.id).execute()).length, 0);
    assert.ok(await findUser(s, 'boss'));
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'org_delete');
    assert.equal(log.length, 1);
    assert.equal(log[0]!.account_id, org.id);
    assert.deepEqual(log[0]!.metadata, { namespace: 'doomed', superuser: 'root' });

    const missing = await w.api('DELETE', '/superuser/organizations/doomed', { caller: 'superuser' });
    assert.equal(missing.status, 400);
    assert.deepEqual(await json(missing), { message: 'Organization does not exist: doomed' });
    const notOrg = await w.api('DELETE', '/superuser/organizations/boss', { caller: 'superuser' });
    assert.equal(notOrg.status, 400);
    assert.ok(await findUser(s, 'boss'));
  });

  test('POST /superuser/takeownership/{namespace}: joins an org\'s owners team', async () => {
    const s = w.t.app.services;
    const r = await w.api('POST', '/superuser/takeownership/acme', { caller: 'superuser' });
    assert.equal(r.status, 200);
    assert.deepEqual(await json(r), { namespace: 'acme' });
    const owners = await s.db.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
      .select('team_members.user_id').where('teams.org_id', '=', w.org.id).where('teams.name', '=', 'owners').execute();
    assert.deepEqual(owners.map((o) => o.user_id).sort(), [w.users.orgadmin.id, w.users.root.id].sort());
    // Idempotent.
    assert.equal((await w.api('POST', '/superuser/takeownership/acme', { caller: 'superuser' })).status, 200);
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'take_ownership');
    assert.equal(log.length, 2);
    assert.equal(log[0]!.account_id, w.users.root.id);
    assert.equal(log[0]!.performer_id, w.users.root.id);
    assert.deepEqual(log[0]!.metadata, { entity_id: w.org.id, namespace: 'acme', was_user: false, superuser: 'root' });
  });

  test('take ownership of a user converts it into an organization whose old credentials stop working', async () => {
    const s = w.t.app.services;
    const u = await createUser(s, { username: 'convertee', password: PASSWORD, email: 'convertee@example.com' });
    const app = await createAppToken(s, u, 'cli');
    const oauth = await createOAuthToken(s, w.appId, u, 'user:read');
    const r = await w.api('POST', '/superuser/takeownership/convertee', { caller: 'superuser' });
    assert.equal(r.status, 200);
    const after = (await findUser(s, 'convertee'))!;
    assert.equal(after.kind, 'org');
    assert.equal(after.password_hash, null);
    assert.equal(await verifyPassword(s, 'convertee', PASSWORD), null);
    assert.equal(await verifyAppToken(s, app.token), null);
    assert.equal(await verifyOAuthToken(s, oauth.token), null);
    const owners = await s.db.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
      .select(['teams.name', 'teams.role', 'team_members.user_id']).where('teams.org_id', '=', u.id).execute();
    assert.deepEqual(owners, [{ name: 'owners', role: 'admin', user_id: w.users.root.id }]);
    const log = (await logKinds(w.t)).filter((l) => l.kind === 'take_ownership').at(-1)!;
    assert.deepEqual(log.metadata, { entity_id: u.id, namespace: 'convertee', was_user: true, superuser: 'root' });
    // It now lists among organizations, not users.
    const users = await json(await w.api('GET', '/superuser/users/', { caller: 'superuser' }));
    assert.ok(!users.users.some((x: any) => x.username === 'convertee'));
  });

  test('take ownership refuses superusers (400), robots and unknown names (404)', async () => {
    const su = await w.api('POST', '/superuser/takeownership/root', { caller: 'superuser' });
    assert.equal(su.status, 400);
    assert.equal((await json(su)).detail, 'Cannot take ownership of a superuser');
    for (const name of ['acme+bot', 'nobody']) {
      const r = await w.api('POST', `/superuser/takeownership/${encodeURIComponent(name)}`, { caller: 'superuser' });
      assert.equal(r.status, 404, name);
    }
    assert.equal((await findUser(w.t.app.services, 'root'))?.kind, 'user');
  });
});

describe('superuser app tokens, change log, registry status, shutdown', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });

  test('GET /superuser/apptokens lists every user\'s tokens without secrets; expiring filters', async () => {
    const s = w.t.app.services;
    const now = Date.now();
    await createAppToken(s, w.users.member, 'soon', now + 3600_000);
    await createAppToken(s, w.users.creator, 'later', now + 60 * 86400_000);
    await createAppToken(s, w.users.creator, 'past', now - 1000);
    const r = await w.api('GET', '/superuser/apptokens', { caller: 'readonlySuperuser' });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.equal(b.only_expiring, null);
    assert.deepEqual(b.tokens.map((t: any) => t.title), ['matrix', 'soon', 'later', 'past']);
    for (const t of b.tokens) {
      assert.deepEqual(Object.keys(t).sort(), ['created', 'expiration', 'last_accessed', 'title', 'uuid']);
      assert.match(t.created, RFC2822);
    }
    assert.equal(b.tokens[0].expiration, null);
    assert.match(b.tokens[1].expiration, RFC2822);
    const exp = await json(await w.api('GET', '/superuser/apptokens?expiring=true', { caller: 'superuser' }));
    assert.equal(exp.only_expiring, true);
    assert.deepEqual(exp.tokens.map((t: any) => t.title), ['soon']);
    const no = await json(await w.api('GET', '/superuser/apptokens?expiring=false', { caller: 'superuser' }));
    assert.equal(no.only_expiring, false);
    assert.equal(no.tokens.length, 4);
  });

  test('GET /superuser/changelog/ returns {log} with Quayside\'s change log', async () => {
    const r = await w.api('GET', '/superuser/changelog/', { caller: 'superuser' });
    assert.equal(r.status, 200);
    const b = await json(r);
    assert.deepEqual(Object.keys(b), ['log']);
    assert.match(b.log, /^# Quayside change log/);
  });

  test('GET /superuser/registrystatus is ready for anyone; POST /superuser/shutdown refuses everyone else with a bare 403', async () => {
    const r = await w.api('GET', '/superuser/registrystatus', { caller: 'anonymous' });
    assert.equal(r.status, 200);
    assert.deepEqual(await json(r), { provider_id: 'file', status: 'ready' });
    // A superuser's call stops the server: superuser-shutdown.test.ts runs that in its own process.
    for (const caller of ['readonlySuperuser', 'orgadmin', 'anonymous'] as const) {
      const no = await w.api('POST', '/superuser/shutdown', { caller });
      assert.equal(no.status, 403, caller);
      assert.deepEqual(await json(no), { message: FORBIDDEN });
    }
  });

  test('read-only superuser: reads allowed, every mutation 403 and nothing changes', async () => {
    const s = w.t.app.services;
    const get = await w.api('GET', '/superuser/users/member', { caller: 'readonlySuperuser' });
    assert.equal(get.status, 200);
    const muts: [string, string, unknown][] = [
      ['POST', '/superuser/users/', { username: 'sneaky' }],
      ['PUT', '/superuser/users/member', { enabled: false }],
      ['DELETE', '/superuser/users/member', undefined],
      ['PUT', '/superuser/organizations/acme', { name: 'renamed' }],
      ['DELETE', '/superuser/organizations/acme', undefined],
      ['POST', '/superuser/takeownership/acme', undefined],
    ];
    for (const [method, path, body] of muts) {
      const r = await w.api(method, path, { caller: 'readonlySuperuser', body });
      assert.equal(r.status, 403, `${method} ${path}`);
      const b = await json(r);
      assert.ok(isApiError(b, 403, 'insufficient_scope', w.t.url));
      assert.equal(b.detail, 'Unauthorized');
    }
    assert.equal(await findUser(s, 'sneaky'), undefined);
    assert.equal((await findUser(s, 'member'))?.enabled, 1);
    assert.ok(await findUser(s, 'acme'));
  });

  test('a superuser\'s OAuth token without super:user acts as a normal user (403)', async () => {
    const s = w.t.app.services;
    const tok = (await createOAuthToken(s, w.appId, w.users.root, 'user:admin org:admin')).token;
    const r = await fetch(`${w.t.url}/api/v1/superuser/users/`, { headers: { authorization: `Bearer ${tok}` } });
    assert.equal(r.status, 403);
    assert.ok(isApiError(await json(r), 403, 'insufficient_scope', w.t.url));
  });
});

describe('superuser feature gate', () => {
  test('FEATURE_SUPER_USERS off: superuser endpoints do not exist and config superusers have no powers', async () => {
    const w = await createWorld({ FEATURE_SUPER_USERS: false });
    try {
      for (const path of ['/superuser/users/', '/superuser/keys', '/superuser/registrystatus']) {
        const r = await w.api('GET', path, { caller: 'superuser' });
        assert.equal(r.status, 404, path);
        await r.arrayBuffer();
      }
      const shutdown = await w.api('POST', '/superuser/shutdown', { caller: 'superuser' });
      assert.equal(shutdown.status, 404);
      await shutdown.arrayBuffer();
      const msg = await w.api('POST', '/messages', { caller: 'superuser', body: { message: { content: 'x', media_type: 'text/plain', severity: 'info' } } });
      assert.equal(msg.status, 404);
      assert.equal(typeof (await json(msg)).message, 'string');
    } finally {
      await w.close();
    }
  });
});

describe('superuser endpoints and fresh login (cookie sessions)', () => {
  test('a stale session gets 401 fresh_login_required; the key list (not fresh-login in Quay) still answers', async () => {
    const w = await createWorld();
    const s = w.t.app.services;
    const real = s.now;
    let offset = 0;
    s.now = () => real() + offset;
    try {
      const signin = await fetch(`${w.t.url}/api/v1/signin`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'root', password: PASSWORD }),
      });
      assert.equal(signin.status, 200, await signin.text());
      const cookie = signin.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const get = (path: string) => fetch(`${w.t.url}/api/v1${path}`, { headers: { cookie } });

      const fresh = await get('/superuser/users/');
      assert.equal(fresh.status, 200);
      await fresh.arrayBuffer();

      offset = 11 * 60_000; // past FRESH_LOGIN_TIMEOUT (10m)
      const stale = await get('/superuser/users/');
      assert.equal(stale.status, 401);
      const body = await json(stale);
      assert.ok(isApiError(body, 401, 'fresh_login_required', w.t.url), JSON.stringify(body));
      const keys = await get('/superuser/keys');
      assert.equal(keys.status, 200);
      await keys.arrayBuffer();
    } finally {
      s.now = real;
      await w.close();
    }
  });
});

// GET /api/v1/entities/{prefix} over real HTTP: what each caller sees (users always; a namespace's
// robots, teams and the org itself only for its members), ordering, limits and prefix handling.
// POST /api/v1/entities/link/{username}: absent in effect (404) without a federated backend.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, type Caller, type World } from '../../support/world.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';
import { createRobot, createUser, findUser } from '../../../src/model/accounts.ts';
import { NOT_FOUND_MESSAGE } from '../../../src/http/api/abort.ts';
import { avatarOf } from '../../support/api-expect.ts';

const sha256 = (x: string) => createHash('sha256').update(x).digest('hex');

async function results(w: World, path: string, caller: Caller = 'orgadmin'): Promise<any[]> {
  const r = await w.api('GET', path, { caller });
  assert.equal(r.status, 200, path);
  const body = await r.json() as { results: any[] };
  assert.deepEqual(Object.keys(body), ['results']);
  return body.results;
}

let w: World;
before(async () => {
  w = await createWorld();
  const s = w.t.app.services;
  await createRobot(s, w.users.orgadmin, 'mine');
  await createRobot(s, w.org, 'builder');
  for (let i = 0; i < 12; i++) await createUser(s, { username: `zz${String(i).padStart(2, '0')}`, email: `zz${i}@example.com` });
  await createUser(s, { username: 'zz', email: 'zz@example.com' });
});
after(async () => { await w?.close(); });

describe('GET /api/v1/entities/{prefix}', () => {
  test('users by prefix, without org fields when no organization is given', async () => {
    const r = await results(w, '/entities/mem', 'anonymous');
    assert.deepEqual(r, [{ name: 'member', kind: 'user', is_robot: false, avatar: avatarOf('member', 'member@example.com', 'user') }]);
    // Quay's normalisation: spaces dropped, lower-cased, accents folded to ASCII.
    assert.deepEqual((await results(w, `/entities/${encodeURIComponent('M é m')}`, 'anonymous')).map((x) => x.name), ['member']);
    // The prefix is literal, never a LIKE pattern.
    assert.deepEqual(await results(w, '/entities/me%25', 'anonymous'), []);
    assert.deepEqual(await results(w, '/entities/m_mber', 'anonymous'), []);
  });

  test('members of the namespace also get its robots, teams and the org, in Quay\'s order', async () => {
    const r = await results(w, '/entities/b?namespace=acme&includeTeams=true&includeOrgs=true', 'member');
    assert.deepEqual(r, [
      { name: 'builders', kind: 'team', is_org_member: true, avatar: avatarOf('builders', 'builders', 'team') },
      { name: 'acme+bot', kind: 'user', is_robot: true, avatar: avatarOf('acme+bot', 'acme+bot', 'robot'), is_org_member: true },
      { name: 'acme+builder', kind: 'user', is_robot: true, avatar: avatarOf('acme+builder', 'acme+builder', 'robot'), is_org_member: true },
    ]);
    const org = await results(w, '/entities/ac?namespace=acme&includeOrgs=true', 'member');
    assert.deepEqual(org, [{ name: 'acme', kind: 'org', is_org_member: true, avatar: avatarOf('acme', 'acme@example.com', 'org') }]);
    const users = await results(w, '/entities/o?namespace=acme', 'member');
    assert.deepEqual(users.map((u) => [u.name, u.is_org_member]), [['orgadmin', true], ['outsider', false]]);
  });

  test('outsiders get none of a namespace\'s robots, teams or the org', async () => {
    const r = await results(w, '/entities/b?namespace=acme&includeTeams=true&includeOrgs=true', 'outsider');
    assert.deepEqual(r, []);
    assert.deepEqual(await results(w, '/entities/ac?namespace=acme&includeOrgs=true', 'outsider'), []);
  });

  test('a user\'s own robots with namespace=<self>; nobody else\'s', async () => {
    assert.deepEqual((await results(w, '/entities/mi?namespace=orgadmin')).map((x) => x.name), ['orgadmin+mine']);
    assert.deepEqual(await results(w, '/entities/mi?namespace=orgadmin', 'member'), []);
    // A token without user:admin does not reach the caller's robots either.
    const tok = await w.tokenWith(['repo:read']);
    const r = await w.api('GET', '/entities/mi?namespace=orgadmin', { caller: 'anonymous', headers: { authorization: `Bearer ${tok}` } });
    assert.deepEqual(await r.json(), { results: [] });
  });

  test('at most 10 results, the exact match always first', async () => {
    const r = await results(w, '/entities/zz');
    assert.equal(r.length, 10);
    assert.equal(r[0].name, 'zz');
    assert.deepEqual(r.slice(1).map((x) => x.name), ['zz00', 'zz01', 'zz02', 'zz03', 'zz04', 'zz05', 'zz06', 'zz07', 'zz08']);
  });
});

test('with PARTIAL_USER_AUTOCOMPLETE off only exact usernames match', async () => {
  const exact = await createWorld({ FEATURE_PARTIAL_USER_AUTOCOMPLETE: false });
  try {
    assert.deepEqual(await results(exact, '/entities/mem'), []);
    assert.deepEqual((await results(exact, '/entities/member')).map((x) => x.name), ['member']);
  } finally {
    await exact.close();
  }
});

describe('POST /api/v1/entities/link/{username}', () => {
  test('Database authentication has no external users: Quay\'s bare abort(404) for every caller, nothing created', async () => {
    for (const caller of ['orgadmin', 'superuser', 'anonymous'] as const) {
      const r = await w.api('POST', '/entities/link/ldapperson', { caller });
      assert.equal(r.status, 404, caller);
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await r.json(), { message: NOT_FOUND_MESSAGE });
    }
    assert.equal(await findUser(w.t.app.services, 'ldapperson'), undefined);
  });

  test('listed in discovery only with ?internal=true, under Quay\'s nickname', async () => {
    const doc = async (q: string) => (await (await w.api('GET', `/discovery${q}`)).json()) as { paths: Record<string, any> };
    const op = (await doc('?internal=true')).paths['/api/v1/entities/link/{username}']?.post;
    assert.equal(op?.operationId, 'linkExternalUser');
    assert.deepEqual(op?.tags, ['search']);
    assert.equal(op?.['x-internal'], true);
    assert.deepEqual(op?.parameters.map((p: { name: string; in: string }) => [p.name, p.in]), [['username', 'path']]);
    assert.equal((await doc('')).paths['/api/v1/entities/link/{username}']?.post, undefined);
  });
});

// Usage-log listing and aggregation over real HTTP, checked field by field against Quay's shapes
// (endpoints.json area "logs" and the superuser log endpoints). Entries are written through the
// model's logAction at chosen instants.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { logAction } from '../../../src/model/logs.ts';
import { principalFor, type Principal, type Services } from '../../../src/model/context.ts';
import { createRepository } from '../../../src/model/repositories.ts';
import { findUser } from '../../../src/model/accounts.ts';
import { DAY_MS, listLogs } from '../../../src/model/log-query.ts';
import { AVATAR_COLORS } from '../../../src/http/api/shapes.ts';
import { BAD_REQUEST_MESSAGE } from '../../../src/http/api/logs.ts';

const RFC2822 = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} -0000$/;
const sha256 = (v: string) => createHash('sha256').update(v).digest('hex');

let w: World;
let s: Services;
let orgadmin: Principal;
let creator: Principal;
let robot: Principal;
let otherRepoId: number;

/** Runs fn with the model's clock fixed at `ms` (log entries take their datetime from it). */
async function at<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const real = s.now;
  s.now = () => ms;
  try {
    return await fn();
  } finally {
    s.now = real;
  }
}

const utc = (y: number, m: number, d: number, h = 12, min = 0, sec = 0) => Date.UTC(y, m - 1, d, h, min, sec);

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

before(async () => {
  w = await createWorld({ FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL: true, FEATURE_LOG_EXPORT: true });
  s = w.t.app.services;
  orgadmin = principalFor(w.users.orgadmin, 'password');
  creator = principalFor(w.users.creator, 'password');
  robot = principalFor((await findUser(s, 'acme+bot'))!, 'robot');
  const other = await createRepository(s, { namespace: w.org, name: 'other', visibility: 'private', creator: orgadmin });
  otherRepoId = other.repo.id;
  const repo = (await s.db.selectFrom('repositories').select('id').where('name', '=', 'repo').executeTakeFirstOrThrow()).id;
  const org = w.org.id;
  // March 2024 in acme: one entry on the 1st, two on the 2nd (by the creator and by the robot),
  // one on the 5th, and one of another repository on the 2nd.
  await at(utc(2024, 3, 1, 9, 30, 15), () => logAction(s, 'push_repo', { namespaceId: org, repositoryId: repo, performer: orgadmin, ip: '10.0.0.1', metadata: { repo: 'repo', tag: 'v1' } }));
  await at(utc(2024, 3, 2, 23, 59, 59), () => logAction(s, 'create_tag', { namespaceId: org, repositoryId: repo, performer: creator, ip: '10.0.0.2', metadata: { tag: 'v2' } }));
  await at(utc(2024, 3, 2, 8), () => logAction(s, 'pull_repo', { namespaceId: org, repositoryId: repo, performer: robot, ip: null, metadata: {} }));
  await at(utc(2024, 3, 5), () => logAction(s, 'delete_tag', { namespaceId: org, repositoryId: repo, performer: orgadmin, metadata: { tag: 'v1' } }));
  await at(utc(2024, 3, 2, 10), () => logAction(s, 'push_repo', { namespaceId: org, repositoryId: otherRepoId, performer: orgadmin, metadata: { repo: 'other' } }));
});
after(async () => { await w?.close(); });

describe('GET /api/v1/organization/{orgname}/logs', () => {
  test('lists the window newest first, end date inclusive, in Quay\'s entry shape', async () => {
    const res = await w.api('GET', '/organization/acme/logs?starttime=03/01/2024&endtime=03/02/2024', { scopes: ['org:admin'] });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.deepEqual(Object.keys(body).sort(), ['end_time', 'logs', 'start_time']);
    assert.equal(body.start_time, 'Fri, 01 Mar 2024 00:00:00 -0000');
    assert.equal(body.end_time, 'Sun, 03 Mar 2024 00:00:00 -0000');
    assert.deepEqual(body.logs.map((l: any) => l.kind), ['create_tag', 'push_repo', 'pull_repo', 'push_repo']);

    const [tag, , pull, push] = body.logs;
    assert.deepEqual(Object.keys(tag).sort(), ['datetime', 'ip', 'kind', 'metadata', 'performer']);
    assert.equal(tag.datetime, 'Sat, 02 Mar 2024 23:59:59 -0000');
    assert.match(tag.datetime, RFC2822);
    assert.equal(tag.ip, '10.0.0.2');
    assert.deepEqual(tag.metadata, { tag: 'v2' });
    const hash = sha256('creator@example.com');
    assert.deepEqual(tag.performer, {
      kind: 'user', name: 'creator', is_robot: false,
      avatar: { name: 'creator', hash, color: AVATAR_COLORS[parseInt(hash.slice(0, 2), 16) % 32], kind: 'user' },
    });
    assert.equal(pull.ip, null);
    assert.equal(pull.performer.name, 'acme+bot');
    assert.equal(pull.performer.is_robot, true);
    assert.equal(pull.performer.avatar.kind, 'robot');
    assert.equal(push.datetime, 'Fri, 01 Mar 2024 09:30:15 -0000');
    assert.equal(push.namespace, undefined, 'namespace only appears in cross-namespace listings');
  });

  test('filters by performer; an unknown performer matches nothing', async () => {
    const q = '/organization/acme/logs?starttime=03/01/2024&endtime=03/31/2024';
    const byCreator = await json(await w.api('GET', `${q}&performer=creator`, { scopes: ['org:admin'] }));
    assert.deepEqual(byCreator.logs.map((l: any) => [l.kind, l.performer.name]), [['create_tag', 'creator']]);
    const byRobot = await json(await w.api('GET', `${q}&performer=acme%2Bbot`, { scopes: ['org:admin'] }));
    assert.deepEqual(byRobot.logs.map((l: any) => l.kind), ['pull_repo']);
    const nobody = await w.api('GET', `${q}&performer=nobody`, { scopes: ['org:admin'] });
    assert.equal(nobody.status, 200);
    assert.deepEqual((await json(nobody)).logs, []);
  });

  test('an end date before the start date is refused with Quay\'s bare 400; unparsable dates fall back to the default', async () => {
    const bad = await w.api('GET', '/organization/acme/logs?starttime=03/05/2024&endtime=03/01/2024', { scopes: ['org:admin'] });
    assert.equal(bad.status, 400);
    assert.deepEqual(await json(bad), { message: BAD_REQUEST_MESSAGE });
    // Quay's strptime failure yields the default window (the last day), not an error.
    const junk = await w.api('GET', '/organization/acme/logs?starttime=2024-03-01&endtime=13/45/2024', { scopes: ['org:admin'] });
    assert.equal(junk.status, 200);
    const body = await json(junk);
    assert.ok(body.logs.every((l: any) => !l.datetime.includes('2024')), 'March 2024 is outside the default window');
    const start = Date.parse(body.start_time.replace(' -0000', ' GMT'));
    const end = Date.parse(body.end_time.replace(' -0000', ' GMT'));
    assert.ok(Math.abs(start - (Date.now() - DAY_MS)) < 60_000, body.start_time);
    assert.ok(Math.abs(end - (Date.now() + DAY_MS)) < 60_000, body.end_time);
  });

  test('the default window is the last day (plus the inclusive day ahead)', async () => {
    const now = Date.now();
    await at(now - 60 * 60 * 1000, () => logAction(s, 'org_change_email', { namespaceId: w.org.id, performer: orgadmin, metadata: { email: 'x@example.com' } }));
    await at(now - 2 * DAY_MS, () => logAction(s, 'org_change_name', { namespaceId: w.org.id, performer: orgadmin }));
    const body = await json(await w.api('GET', '/organization/acme/logs', { scopes: ['org:admin'] }));
    const kinds = body.logs.map((l: any) => l.kind);
    assert.ok(kinds.includes('org_change_email'), kinds.join());
    assert.ok(!kinds.includes('org_change_name'), kinds.join());
    assert.ok(!kinds.includes('delete_tag'), 'March 2024 is outside the default window');
  });

  test('an unknown organization is 404 for a superuser who could read it, 403 for a user who could not', async () => {
    const auditor = await w.api('GET', '/organization/nosuch/logs', { caller: 'readonlySuperuser', scopes: ['org:admin'] });
    assert.equal(auditor.status, 404);
    const outsider = await w.api('GET', '/organization/nosuch/logs', { caller: 'outsider', scopes: ['org:admin'] });
    assert.equal(outsider.status, 403);
    assert.equal((await json(outsider)).error_type, 'insufficient_scope');
    // A user namespace is not an organization.
    assert.equal((await w.api('GET', '/organization/orgadmin/logs', { caller: 'orgadmin', scopes: ['org:admin'] })).status, 403);
  });
});

describe('next_page paging', () => {
  test('pages of 20 by (datetime, id), ties included, no duplicates, opaque tokens', async () => {
    // 45 entries on one day of a fresh namespace, 15 of them sharing one instant.
    const ns = await findUser(s, 'member');
    const base = utc(2023, 6, 10, 6);
    for (let i = 0; i < 45; i++) {
      const t = i < 15 ? base : base + i * 1000;
      await at(t, () => logAction(s, 'user_change_email', { namespaceId: ns!.id, performer: principalFor(ns!, 'password'), metadata: { i } }));
    }
    const seen: number[] = [];
    let token: string | undefined;
    const sizes: number[] = [];
    for (let page = 0; page < 5; page++) {
      const q = `/user/logs?starttime=06/10/2023&endtime=06/10/2023${token ? `&next_page=${encodeURIComponent(token)}` : ''}`;
      const res = await w.api('GET', q, { caller: 'member', scopes: ['user:admin'] });
      assert.equal(res.status, 200);
      const body = await json(res);
      sizes.push(body.logs.length);
      seen.push(...body.logs.map((l: any) => l.metadata.i));
      token = body.next_page;
      if (!token) break;
      assert.equal(typeof token, 'string');
      assert.ok(!token.includes(String(base)) && !/^\{/.test(token), 'the token is sealed');
    }
    assert.deepEqual(sizes, [20, 20, 5]);
    assert.equal(new Set(seen).size, 45);
    // Newest first; within the shared instant, newest id first.
    assert.deepEqual(seen.slice(0, 30), Array.from({ length: 30 }, (_, k) => 44 - k));
    assert.deepEqual(seen.slice(30), Array.from({ length: 15 }, (_, k) => 14 - k));
  });

  test('a forged or foreign token serves the first page, as Quay does', async () => {
    const res = await w.api('GET', '/user/logs?starttime=06/10/2023&endtime=06/10/2023&next_page=garbage', { caller: 'member', scopes: ['user:admin'] });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.logs.length, 20);
    assert.equal(body.logs[0].metadata.i, 44);
  });

  test('ACTION_LOG_MAX_PAGE stops handing out tokens', async () => {
    const ns = await findUser(s, 'member');
    const window = { start: utc(2023, 6, 10, 0), end: utc(2023, 6, 11, 0) };
    const p1 = await listLogs(s, { namespaceId: ns!.id }, window, null, { maxPage: 2 });
    assert.ok(p1.next);
    const p2 = await listLogs(s, { namespaceId: ns!.id }, window, p1.next, { maxPage: 2 });
    assert.equal(p2.logs.length, 20);
    assert.equal(p2.next, null);
  });
});

describe('GET /api/v1/user/logs', () => {
  test('lists the caller\'s own namespace and hides service-key kinds', async () => {
    const me = w.users.outsider;
    const p = principalFor(me, 'password');
    await at(utc(2024, 1, 15), () => logAction(s, 'service_key_create', { namespaceId: me.id, performer: p, metadata: { kid: 'k' } }));
    await at(utc(2024, 1, 15, 13), () => logAction(s, 'user_change_password', { namespaceId: me.id, performer: p }));
    const body = await json(await w.api('GET', '/user/logs?starttime=01/15/2024&endtime=01/15/2024', { caller: 'outsider', scopes: ['user:admin'] }));
    assert.deepEqual(body.logs.map((l: any) => l.kind), ['user_change_password']);
    assert.equal(body.logs[0].metadata && typeof body.logs[0].metadata, 'object');
    const agg = await json(await w.api('GET', '/user/aggregatelogs?starttime=01/15/2024&endtime=01/15/2024', { caller: 'outsider', scopes: ['user:admin'] }));
    assert.deepEqual(agg, { aggregated: [{ kind: 'user_change_password', count: 1, datetime: 'Mon, 15 Jan 2024 00:00:00 -0000' }] });
  });

  test('anonymous callers get 401 invalid_token', async () => {
    const res = await w.api('GET', '/user/logs', { caller: 'anonymous' });
    assert.equal(res.status, 401);
    assert.equal((await json(res)).error_type, 'invalid_token');
  });
});

describe('GET /api/v1/repository/{repository}/logs', () => {
  test('lists only that repository', async () => {
    const body = await json(await w.api('GET', '/repository/acme/repo/logs?starttime=03/01/2024&endtime=03/31/2024', { scopes: ['repo:admin'] }));
    assert.deepEqual(body.logs.map((l: any) => l.kind), ['delete_tag', 'create_tag', 'pull_repo', 'push_repo']);
    const other = await json(await w.api('GET', '/repository/acme/other/logs?starttime=03/01/2024&endtime=03/31/2024', { scopes: ['repo:admin'] }));
    assert.deepEqual(other.logs.map((l: any) => l.metadata), [{ repo: 'other' }]);
  });

  test('a missing repository is 404 for the namespace admin and 403 for others', async () => {
    assert.equal((await w.api('GET', '/repository/acme/nope/logs', { scopes: ['repo:admin'] })).status, 404);
    assert.equal((await w.api('GET', '/repository/acme/nope/logs', { caller: 'member', scopes: ['repo:admin'] })).status, 403);
    assert.equal((await w.api('GET', '/repository/acme/nope/logs', { caller: 'anonymous' })).status, 401);
  });
});

describe('aggregated logs', () => {
  test('counts per kind per UTC day, in Quay\'s shape', async () => {
    const res = await w.api('GET', '/organization/acme/aggregatelogs?starttime=03/01/2024&endtime=03/31/2024', { scopes: ['org:admin'] });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.deepEqual(body, {
      aggregated: [
        { kind: 'push_repo', count: 1, datetime: 'Fri, 01 Mar 2024 00:00:00 -0000' },
        { kind: 'create_tag', count: 1, datetime: 'Sat, 02 Mar 2024 00:00:00 -0000' },
        { kind: 'pull_repo', count: 1, datetime: 'Sat, 02 Mar 2024 00:00:00 -0000' },
        { kind: 'push_repo', count: 1, datetime: 'Sat, 02 Mar 2024 00:00:00 -0000' },
        { kind: 'delete_tag', count: 1, datetime: 'Tue, 05 Mar 2024 00:00:00 -0000' },
      ],
    });
    const repo = await json(await w.api('GET', '/repository/acme/other/aggregatelogs?starttime=03/01/2024&endtime=03/31/2024', { scopes: ['repo:admin'] }));
    assert.deepEqual(repo.aggregated, [{ kind: 'push_repo', count: 1, datetime: 'Sat, 02 Mar 2024 00:00:00 -0000' }]);
    const perf = await json(await w.api('GET', '/organization/acme/aggregatelogs?starttime=03/01/2024&endtime=03/31/2024&performer=orgadmin', { scopes: ['org:admin'] }));
    assert.deepEqual(perf.aggregated.map((a: any) => a.kind), ['push_repo', 'push_repo', 'delete_tag']);
  });

  test('more than a month, or an inverted window, is a 400 with Quay\'s message', async () => {
    const long = await w.api('GET', '/organization/acme/aggregatelogs?starttime=01/01/2024&endtime=03/01/2024', { scopes: ['org:admin'] });
    assert.equal(long.status, 400);
    assert.deepEqual(await json(long), { message: 'Invalid date range for logs' });
    const inverted = await w.api('GET', '/repository/acme/repo/aggregatelogs?starttime=03/05/2024&endtime=03/01/2024', { scopes: ['repo:admin'] });
    assert.equal(inverted.status, 400);
    assert.deepEqual(await json(inverted), { message: BAD_REQUEST_MESSAGE });
  });

  test('the features gate the routes: off means plain 404', async () => {
    const off = await createWorld({ FEATURE_LOG_EXPORT: false, FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL: false });
    try {
      assert.equal((await off.api('GET', '/user/aggregatelogs', { scopes: ['user:admin'] })).status, 404);
      assert.equal((await off.api('POST', '/user/exportlogs', { scopes: ['user:admin'], body: {} })).status, 404);
      assert.equal((await off.api('GET', '/user/logs', { scopes: ['user:admin'] })).status, 200);
    } finally {
      await off.close();
    }
  });
});

describe('superuser logs', () => {
  test('/superuser/logs lists every namespace with a namespace object per entry', async () => {
    const res = await w.api('GET', '/superuser/logs?starttime=03/01/2024&endtime=03/02/2024', { caller: 'superuser', scopes: ['super:user'] });
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.logs.length, 4);
    const hash = sha256('acme@example.com');
    assert.deepEqual(body.logs[0].namespace, {
      kind: 'org', name: 'acme', avatar: { name: 'acme', hash, color: AVATAR_COLORS[parseInt(hash.slice(0, 2), 16) % 32], kind: 'org' },
    });
    const all = await json(await w.api('GET', '/superuser/logs?starttime=01/15/2024&endtime=01/15/2024', { caller: 'readonlySuperuser', scopes: ['super:user'] }));
    const user = all.logs.find((l: any) => l.kind === 'service_key_create');
    assert.deepEqual(user.namespace.kind, 'user');
    assert.equal(user.namespace.name, 'outsider');
    assert.equal(user.namespace.avatar.kind, 'user');
  });

  test('/superuser/aggregatelogs counts everything, for superusers only', async () => {
    const body = await json(await w.api('GET', '/superuser/aggregatelogs?starttime=03/02/2024&endtime=03/02/2024', { caller: 'superuser' }));
    assert.deepEqual(body.aggregated, [
      { kind: 'create_tag', count: 1, datetime: 'Sat, 02 Mar 2024 00:00:00 -0000' },
      { kind: 'pull_repo', count: 1, datetime: 'Sat, 02 Mar 2024 00:00:00 -0000' },
      { kind: 'push_repo', count: 1, datetime: 'Sat, 02 Mar 2024 00:00:00 -0000' },
    ]);
    assert.equal((await w.api('GET', '/superuser/aggregatelogs', { caller: 'readonlySuperuser' })).status, 403);
  });
});

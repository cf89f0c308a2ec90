// /api/v1/find/repositories and /api/v1/find/all over real HTTP: visibility per caller, ranking
// (name match, then last week's activity, then stars), Quay's paging and result shapes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, type Caller, type World } from '../../support/world.ts';
import { createRepository } from '../../../src/model/repositories.ts';
import { principalFor, type Services } from '../../../src/model/context.ts';
import { logAction } from '../../../src/model/logs.ts';
import { createUser } from '../../../src/model/accounts.ts';
import { liquidMetal } from '../../../src/model/search.ts';

let w: World;
let s: Services;

async function json(res: Response): Promise<any> {
  assert.equal(res.status, 200, `HTTP ${res.status}`);
  return res.json();
}

const DAY = 24 * 60 * 60 * 1000;

before(async () => {
  w = await createWorld({ SEARCH_RESULTS_PER_PAGE: 3, SEARCH_MAX_RESULT_PAGE_COUNT: 2 });
  s = w.t.app.services;
  const admin = principalFor(w.users.orgadmin, 'password');
  const mk = async (name: string, visibility: 'public' | 'private', description: string | null = null, ns = w.org) =>
    (await createRepository(s, { namespace: ns, name, visibility, description, creator: principalFor(ns.kind === 'org' ? w.users.orgadmin : ns, 'password') })).repo;
  await mk('web', 'public');
  const webapp = await mk('webapp', 'public', 'The web front end');
  const webby = await mk('webby', 'public');
  await mk('webx', 'public');
  const weby = await mk('weby', 'public');
  await mk('mywebsite', 'public');
  await mk('tools', 'public', 'Web tooling');
  await mk('unrelated', 'public', 'nothing to see');
  await mk('webhook-secret', 'private', null, w.users.outsider);
  // Activity of the last week ranks webby above webapp; webapp's older pulls do not count.
  const now = Date.now();
  const pull = async (repoId: number, when: number) => {
    const real = s.now;
    s.now = () => when;
    try {
      await logAction(s, 'pull_repo', { namespaceId: w.org.id, repositoryId: repoId, performer: admin });
    } finally {
      s.now = real;
    }
  };
  for (let i = 0; i < 5; i++) await pull(webby.id, now - i * 3600_000);
  for (let i = 0; i < 2; i++) await pull(webapp.id, now - DAY);
  for (let i = 0; i < 50; i++) await pull(webapp.id, now - 9 * DAY);
  // Stars break the tie between webx and weby.
  const fan1 = await createUser(s, { username: 'fan1', password: 'password123' });
  const fan2 = await createUser(s, { username: 'fan2', password: 'password123' });
  await s.db.insertInto('stars').values([{ user_id: fan1.id, repository_id: weby.id, created_at: now }, { user_id: fan2.id, repository_id: weby.id, created_at: now }]).execute();
});
after(async () => { await w?.close(); });

describe('GET /api/v1/find/repositories', () => {
  test('ranks exact, prefix, substring, then description matches; popularity and stars within a rank', async () => {
    const p1 = await json(await w.api('GET', '/find/repositories?query=web', { caller: 'anonymous' }));
    assert.deepEqual(Object.keys(p1).sort(), ['has_additional', 'page', 'page_size', 'results', 'start_index']);
    assert.deepEqual(p1.results.map((r: any) => r.name), ['web', 'webby', 'webapp']);
    assert.equal(p1.has_additional, true);
    assert.equal(p1.page, 1);
    assert.equal(p1.page_size, 3);
    assert.equal(p1.start_index, 0);
    const p2 = await json(await w.api('GET', '/find/repositories?query=web&page=2', { caller: 'anonymous' }));
    assert.deepEqual(p2.results.map((r: any) => r.name), ['weby', 'webx', 'mywebsite']);
    assert.equal(p2.start_index, 3);
    assert.equal(p2.has_additional, true, '"tools" (description match) is still ahead');
    // Pages are capped at SEARCH_MAX_RESULT_PAGE_COUNT, and below 1 means 1.
    const capped = await json(await w.api('GET', '/find/repositories?query=web&page=9', { caller: 'anonymous' }));
    assert.equal(capped.page, 2);
    assert.deepEqual(capped.results.map((r: any) => r.name), ['weby', 'webx', 'mywebsite']);
    assert.equal((await json(await w.api('GET', '/find/repositories?query=web&page=-3', { caller: 'anonymous' }))).page, 1);
  });

  test('each result in Quay\'s shape; usage fields only with includeUsage', async () => {
    const body = await json(await w.api('GET', '/find/repositories?query=webapp', { caller: 'anonymous' }));
    assert.equal(body.results.length, 1);
    const r = body.results[0];
    assert.deepEqual(Object.keys(r).sort(), ['description', 'href', 'is_public', 'kind', 'name', 'namespace', 'score', 'title']);
    assert.equal(r.kind, 'repository');
    assert.equal(r.title, 'repo');
    assert.equal(r.name, 'webapp');
    assert.equal(r.description, 'The web front end');
    assert.equal(r.is_public, true);
    assert.equal(r.score, 4);
    assert.equal(r.href, '/repository/acme/webapp');
    assert.deepEqual(Object.keys(r.namespace).sort(), ['avatar', 'href', 'kind', 'name', 'score', 'title']);
    assert.equal(r.namespace.kind, 'organization');
    assert.equal(r.namespace.title, 'org');
    assert.equal(r.namespace.href, '/organization/acme');
    assert.equal(r.namespace.avatar.kind, 'org');
    const usage = await json(await w.api('GET', '/find/repositories?query=web&includeUsage=true', { caller: 'anonymous' }));
    const webby = usage.results.find((x: any) => x.name === 'webby');
    assert.equal(webby.popularity, 6, 'five pulls and the create_repo entry of the last week');
    assert.equal(webby.stars, 0);
    assert.equal(usage.results.find((x: any) => x.name === 'webapp').popularity, 3);
    assert.equal(webby.last_modified, undefined, 'no tags, no last_modified');
    const stars = await json(await w.api('GET', '/find/repositories?query=weby&includeUsage=1', { caller: 'anonymous' }));
    assert.equal(stars.results[0].stars, 2);
  });

  test('private repositories appear only to callers who may read them', async () => {
    const names = async (caller: Caller, q: string, scopes?: string[]) =>
      (await json(await w.api('GET', `/find/repositories?query=${q}`, { caller, scopes }))).results.map((r: any) => `${r.namespace.name}/${r.name}`);
    assert.deepEqual(await names('anonymous', 'webhook'), []);
    assert.deepEqual(await names('orgadmin', 'webhook'), []);
    assert.deepEqual(await names('outsider', 'webhook'), ['outsider/webhook-secret']);
    assert.deepEqual(await names('member', 'repo'), ['acme/repo'], 'readers team grants read');
    assert.deepEqual(await names('outsider', 'repo'), []);
    assert.deepEqual(await names('orgadmin', 'repo'), ['acme/repo']);
    // An OAuth token without a repository scope sees public repositories only.
    const token = await w.tokenWith(['user:read']);
    const res = await fetch(`${w.t.url}/api/v1/find/repositories?query=repo`, { headers: { authorization: `Bearer ${token}` } });
    assert.deepEqual((await json(res)).results, []);
  });

  test('an empty query lists every visible repository; bad page values are 400', async () => {
    const body = await json(await w.api('GET', '/find/repositories', { caller: 'anonymous' }));
    assert.equal(body.results.length, 3);
    assert.equal(body.results[0].name, 'webby', 'the most active first');
    const bad = await w.api('GET', '/find/repositories?page=abc', { caller: 'anonymous' });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json() as any).error_type, 'invalid_request');
  });

  test('LIKE wildcards in the query are taken literally', async () => {
    assert.deepEqual((await json(await w.api('GET', '/find/repositories?query=%25', { caller: 'anonymous' }))).results, []);
    assert.deepEqual((await json(await w.api('GET', '/find/repositories?query=w_b', { caller: 'anonymous' }))).results, []);
  });
});

describe('GET /api/v1/find/all', () => {
  test('an empty query finds nothing', async () => {
    assert.deepEqual(await json(await w.api('GET', '/find/all', { caller: 'member', scopes: ['repo:read'] })), { results: [] });
  });

  test('teams of the caller, in Quay\'s shape and scored by name match', async () => {
    const body = await json(await w.api('GET', '/find/all?query=read', { caller: 'member', scopes: ['repo:read'] }));
    const team = body.results.find((r: any) => r.kind === 'team');
    assert.deepEqual(Object.keys(team).sort(), ['avatar', 'href', 'kind', 'name', 'organization', 'score']);
    assert.equal(team.name, 'readers');
    assert.equal(team.href, '/organization/acme/teams/readers');
    assert.equal(team.avatar.kind, 'team');
    assert.equal(team.organization.name, 'acme');
    assert.equal(team.organization.kind, 'organization');
    assert.equal(team.score, 2 * liquidMetal('readers', 'read'));
    const outsider = await json(await w.api('GET', '/find/all?query=read', { caller: 'outsider', scopes: ['repo:read'] }));
    assert.equal(outsider.results.filter((r: any) => r.kind === 'team').length, 0);
  });

  test('org admins find the org\'s teams and robots', async () => {
    const body = await json(await w.api('GET', '/find/all?query=b', { caller: 'orgadmin', scopes: ['repo:read'] }));
    const kinds = body.results.map((r: any) => `${r.kind}:${r.name}`);
    assert.ok(kinds.includes('team:builders'), kinds.join());
    const robot = body.results.find((r: any) => r.kind === 'robot');
    assert.deepEqual(robot, {
      title: 'robot', kind: 'robot', avatar: null, name: 'acme+bot', short_name: 'bot',
      href: '/organization/acme?tab=robots&showRobot=acme+bot', score: liquidMetal('bot', 'b'),
    });
    for (let i = 1; i < body.results.length; i++) assert.ok(body.results[i - 1].score >= body.results[i].score, 'sorted by score');
    const member = await json(await w.api('GET', '/find/all?query=b', { caller: 'member', scopes: ['repo:read'] }));
    assert.equal(member.results.filter((r: any) => r.kind === 'robot' || r.name === 'builders').length, 0);
  });

  test('namespaces appear only when they hold a repository the caller can see; repositories score 4 × match', async () => {
    const anon = await json(await w.api('GET', '/find/all?query=outsider', { caller: 'anonymous' }));
    assert.deepEqual(anon.results, []);
    const self = await json(await w.api('GET', '/find/all?query=outsider', { caller: 'outsider', scopes: ['repo:read'] }));
    assert.deepEqual(self.results.map((r: any) => [r.kind, r.title, r.name, r.href]), [['user', 'user', 'outsider', '/user/outsider']]);
    assert.equal(self.results[0].avatar.kind, 'user');
    const org = await json(await w.api('GET', '/find/all?query=acme', { caller: 'anonymous' }));
    assert.deepEqual(org.results.map((r: any) => [r.kind, r.name]), [['organization', 'acme']]);
    const repos = await json(await w.api('GET', '/find/all?query=webby', { caller: 'anonymous' }));
    assert.deepEqual(repos.results.map((r: any) => [r.kind, r.name, r.score]), [['repository', 'webby', 4]]);
  });
});

// Auto-prune: the value grammar, the selection rules, and the queued worker on a real registry —
// pushes queue a namespace job, the job ends tag lifetimes (time machine, not row deletion),
// skips immutable tags and logs every prune. The clock is the services clock, moved by an offset.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../support/app.ts';
import { RegistryClient } from '../support/registry-client.ts';
import { createUser, type User } from '../../src/model/accounts.ts';
import { principalFor, type Services } from '../../src/model/context.ts';
import {
  AUTOPRUNE_QUEUE, AUTOPRUNE_SWEEP_QUEUE, createAutoprunePolicy, deleteAutoprunePolicy, parseDelta, pruneNamespace, queueAutopruneSweep, tagsToPrune,
  type PolicyConfig,
} from '../../src/model/autoprune.ts';
import { createImmutabilityPolicy } from '../../src/model/immutability.ts';
import { claim, complete } from '../../src/model/queue.ts';
import { findRepo } from '../../src/model/repositories.ts';
import { periodic, workerHandlers } from '../../src/workers/index.ts';

const MIN = 60_000;
const DAY = 86_400_000;

describe('creation_date values (Quay convert_to_timedelta)', () => {
  test('accepts <int><s|m|h|d|w> as Python int() reads the number', () => {
    assert.equal(parseDelta('7d'), 7 * DAY);
    assert.equal(parseDelta('2w'), 14 * DAY);
    assert.equal(parseDelta('30s'), 30_000);
    assert.equal(parseDelta('15m'), 15 * MIN);
    assert.equal(parseDelta('24h'), DAY);
    assert.equal(parseDelta(' 3 d'), 3 * DAY);
    assert.equal(parseDelta('1_0d'), 10 * DAY);
    assert.equal(parseDelta('+2h'), 2 * 3_600_000);
    assert.equal(parseDelta('-1d'), -DAY);
    assert.equal(parseDelta('0d'), 0);
  });
  test('refuses anything else', () => {
    for (const v of ['', 'd', '7', '7y', '7D', '1.5d', '7dd', 'seven d', '1__0d', '_1d', '1_d', '9999999999d', '7 days']) {
      assert.equal(parseDelta(v), null, v);
    }
  });
});

describe('tagsToPrune', () => {
  const tags = [
    { id: 1, name: 'v1', lifetime_start: 1000, immutable: 0 },
    { id: 2, name: 'dev-a', lifetime_start: 2000, immutable: 0 },
    { id: 3, name: 'v2', lifetime_start: 3000, immutable: 0 },
    { id: 4, name: 'dev-b', lifetime_start: 4000, immutable: 0 },
    { id: 5, name: 'v3', lifetime_start: 5000, immutable: 0 },
  ];
  const p = (method: PolicyConfig['method'], value: number | string, tag_pattern: string | null = null, tag_pattern_matches = true): PolicyConfig =>
    ({ method, value, tag_pattern, tag_pattern_matches });
  const names = (ps: PolicyConfig[], now = 5000 + DAY, prot: (t: { name: string }) => boolean = () => false) =>
    tagsToPrune(tags, ps, now, prot).map((t) => t.name);

  test('number_of_tags keeps the newest N', () => {
    assert.deepEqual(names([p('number_of_tags', 2)]), ['v2', 'dev-a', 'v1']);
    assert.deepEqual(names([p('number_of_tags', 10)]), []);
  });
  test('a pattern selects what is counted: matching, or with tagPatternMatches=false the others', () => {
    assert.deepEqual(names([p('number_of_tags', 1, '^dev-')]), ['dev-a']);
    assert.deepEqual(names([p('number_of_tags', 1, '^dev-', false)]), ['v2', 'v1']);
    // Quay's database regex search is unanchored.
    assert.deepEqual(names([p('number_of_tags', 1, 'ev')]), ['dev-a']);
  });
  test('creation_date removes tags older than the age', () => {
    assert.deepEqual(names([p('creation_date', '3s')], 6500), ['v2', 'dev-a', 'v1']);
    assert.deepEqual(names([p('creation_date', '3s', 'v')], 6500), ['v2', 'dev-a', 'v1']);
    assert.deepEqual(names([p('creation_date', '3s', '^v')], 6500), ['v2', 'v1']);
  });
  test('creation_date runs before number_of_tags whatever the policy order', () => {
    const a = names([p('number_of_tags', 3), p('creation_date', '3s')], 6500);
    const b = names([p('creation_date', '3s'), p('number_of_tags', 3)], 6500);
    assert.deepEqual(a, ['v2', 'dev-a', 'v1']);
    assert.deepEqual(b, a);
  });
  test('protected tags are never removed but still count as kept', () => {
    assert.deepEqual(names([p('number_of_tags', 2)], 0, (t) => t.name === 'v3'), ['v2', 'dev-a', 'v1']);
    assert.deepEqual(names([p('number_of_tags', 2)], 0, (t) => t.name === 'v1'), ['v2', 'dev-a']);
    assert.deepEqual(names([p('creation_date', '1s')], 10_000, (t) => t.name.startsWith('v')), ['dev-b', 'dev-a']);
  });
});

describe('the auto-prune worker', () => {
  let t: TestApp;
  let s: Services;
  let alice: User;
  let offset = 0;
  const actor = () => ({ principal: principalFor(alice, 'password'), ip: null });
  const client = () => new RegistryClient(t.url, 'alice', 'password1');

  before(async () => {
    t = await startTestApp({ FEATURE_AUTO_PRUNE: true, FEATURE_IMMUTABLE_TAGS: true });
    s = t.app.services;
    const real = s.now;
    s.now = () => real() + offset;
    alice = await createUser(s, { username: 'alice', password: 'password1' });
  });
  after(() => t?.close());
  beforeEach(async () => {
    await s.db.deleteFrom('autoprune_policies').execute();
    await s.db.deleteFrom('immutability_policies').execute();
    await s.db.deleteFrom('jobs').execute();
  });

  /** Pushes the tags one minute apart (so their creation order is certain). */
  async function pushTags(repo: string, names: string[]): Promise<void> {
    for (const name of names) {
      offset += MIN;
      await client().pushImage(repo, name, name);
    }
  }

  async function rows(path: string) {
    const [ns, name] = path.split('/') as [string, string];
    const r = (await findRepo(s, ns, name))!;
    return s.db.selectFrom('tags').select(['name', 'lifetime_end']).where('repository_id', '=', r.id).where('hidden', '=', 0).orderBy('id').execute();
  }
  async function alive(repo: string): Promise<string[]> {
    const now = s.now();
    return (await rows(repo)).filter((r) => r.lifetime_end === null || Number(r.lifetime_end) > now).map((r) => r.name).sort();
  }

  /** Claims every due prune job and runs it with the handler registered in workerHandlers(). */
  async function runJobs(): Promise<number> {
    const handler = workerHandlers(s)[AUTOPRUNE_QUEUE];
    assert.ok(handler, 'the auto-prune handler is registered');
    const jobs = await claim(s, AUTOPRUNE_QUEUE, { leaseMs: 60_000, limit: 50 });
    for (const job of jobs) {
      await handler(job, new AbortController().signal, s.log);
      assert.ok(await complete(s, job));
    }
    return jobs.length;
  }

  async function pruneLogs() {
    const r = await s.db.selectFrom('logs').select(['metadata', 'repository_id', 'account_id', 'performer_id']).where('kind', '=', 'autoprune_tag_delete').orderBy('id').execute();
    return r.map((l) => ({ ...l, metadata: JSON.parse(l.metadata) as Record<string, unknown> }));
  }

  test('number_of_tags: a queued job ends the oldest lifetimes, keeps the rows and logs each prune', async () => {
    await pushTags('alice/keep', ['t1', 't2', 't3', 't4', 't5']);
    assert.equal(await runJobs(), 0, 'no policy yet: pushes queue nothing');
    const logsBefore = (await pruneLogs()).length;
    await createAutoprunePolicy(s, actor(), { kind: 'user' }, { method: 'number_of_tags', value: 2 });
    assert.equal(await runJobs(), 1, 'creating the policy queues a run');
    assert.deepEqual(await alive('alice/keep'), ['t4', 't5']);
    const all = await rows('alice/keep');
    assert.equal(all.length, 5, 'pruned tags stay in the history (time machine)');
    assert.ok(all.filter((r) => ['t1', 't2', 't3'].includes(r.name)).every((r) => r.lifetime_end !== null && Number(r.lifetime_end) <= s.now()));
    const repo = (await findRepo(s, 'alice', 'keep'))!;
    const logs = (await pruneLogs()).slice(logsBefore);
    assert.deepEqual(logs.map((l) => l.metadata.tag).sort(), ['t1', 't2', 't3']);
    for (const l of logs) {
      assert.deepEqual(l.metadata, { performer: 'autoprune worker', namespace: 'alice', repo: 'keep', tag: l.metadata.tag });
      assert.equal(l.repository_id, repo.id);
      assert.equal(l.account_id, alice.id);
      assert.equal(l.performer_id, null);
    }
  });

  test('a push that creates or moves a tag queues one deduplicated run; the run prunes again', async () => {
    await createAutoprunePolicy(s, actor(), { kind: 'user' }, { method: 'number_of_tags', value: 2 });
    await runJobs();
    await pushTags('alice/keep', ['t6', 't7']);
    const jobs = await s.db.selectFrom('jobs').select(['queue', 'dedupe_key', 'payload']).where('queue', '=', AUTOPRUNE_QUEUE).execute();
    assert.deepEqual(jobs, [{ queue: AUTOPRUNE_QUEUE, dedupe_key: `autoprune:${alice.id}`, payload: JSON.stringify({ namespace_id: alice.id }) }]);
    assert.equal(await runJobs(), 1);
    assert.deepEqual(await alive('alice/keep'), ['t6', 't7']);
  });

  test('creation_date with a pattern prunes only old matching tags; tagPatternMatches=false the others', async () => {
    await pushTags('alice/age', ['dev-1', 'rel-1', 'dev-2']);
    offset += 8 * DAY;
    await pushTags('alice/age', ['dev-3']);
    await createAutoprunePolicy(s, actor(), { kind: 'repo', namespace: 'alice', name: 'age' }, { method: 'creation_date', value: '7d', tagPattern: '^dev-' });
    await runJobs();
    assert.deepEqual(await alive('alice/age'), ['dev-3', 'rel-1']);
    await s.db.deleteFrom('autoprune_policies').execute();
    await pushTags('alice/age', ['rel-2']);
    await createAutoprunePolicy(s, actor(), { kind: 'repo', namespace: 'alice', name: 'age' }, {
      method: 'creation_date', value: '7d', tagPattern: '^dev-', tagPatternMatches: false,
    });
    await runJobs();
    assert.deepEqual(await alive('alice/age'), ['dev-3', 'rel-2']);
  });

  test('a repository policy touches only its repository', async () => {
    await pushTags('alice/one', ['a', 'b', 'c']);
    await pushTags('alice/two', ['a', 'b', 'c']);
    await createAutoprunePolicy(s, actor(), { kind: 'repo', namespace: 'alice', name: 'one' }, { method: 'number_of_tags', value: 1 });
    await runJobs();
    assert.deepEqual(await alive('alice/one'), ['c']);
    assert.deepEqual(await alive('alice/two'), ['a', 'b', 'c']);
  });

  test('immutable tags (flagged or by policy) are never pruned', async () => {
    await pushTags('alice/imm', ['old-pinned', 'old-policy', 'x1', 'x2', 'x3']);
    const repo = (await findRepo(s, 'alice', 'imm'))!;
    await s.db.updateTable('tags').set({ immutable: 1 }).where('repository_id', '=', repo.id).where('name', '=', 'old-pinned').execute();
    await s.db.insertInto('immutability_policies').values({
      uuid: '00000000-0000-4000-8000-000000000001', namespace_id: alice.id, repository_id: repo.id, tag_pattern: 'old-policy', tag_pattern_matches: 1,
    }).execute();
    await createAutoprunePolicy(s, actor(), { kind: 'repo', namespace: 'alice', name: 'imm' }, { method: 'number_of_tags', value: 1 });
    await runJobs();
    assert.deepEqual(await alive('alice/imm'), ['old-pinned', 'old-policy', 'x3']);
  });

  test('nothing happens with FEATURE_AUTO_PRUNE off, in a disabled namespace, or in a non-normal repository', async () => {
    await pushTags('alice/off', ['a', 'b', 'c']);
    await createAutoprunePolicy(s, actor(), { kind: 'repo', namespace: 'alice', name: 'off' }, { method: 'number_of_tags', value: 1 });
    await s.db.deleteFrom('jobs').execute();
    s.config.features.AUTO_PRUNE = false;
    try {
      assert.deepEqual(await pruneNamespace(s, alice.id), { pruned: 0 });
      assert.equal(await queueAutopruneSweep(s), 0);
      assert.equal(periodic(s)[AUTOPRUNE_SWEEP_QUEUE], undefined);
    } finally {
      s.config.features.AUTO_PRUNE = true;
    }
    await s.db.updateTable('users').set({ enabled: 0 }).where('id', '=', alice.id).execute();
    assert.deepEqual(await pruneNamespace(s, alice.id), { pruned: 0 });
    await s.db.updateTable('users').set({ enabled: 1 }).where('id', '=', alice.id).execute();
    const repo = (await findRepo(s, 'alice', 'off'))!;
    await s.db.updateTable('repositories').set({ state: 'READ_ONLY' }).where('id', '=', repo.id).execute();
    assert.deepEqual(await pruneNamespace(s, alice.id), { pruned: 0 });
    await s.db.updateTable('repositories').set({ state: 'NORMAL' }).where('id', '=', repo.id).execute();
    assert.deepEqual(await alive('alice/off'), ['a', 'b', 'c']);
    assert.deepEqual(await pruneNamespace(s, alice.id), { pruned: 2 });
  });

  test('the periodic sweep queues one run per namespace with policies', async () => {
    const bob = await createUser(s, { username: 'bob', password: 'password1' });
    const uuid = await createAutoprunePolicy(s, actor(), { kind: 'user' }, { method: 'number_of_tags', value: 5 });
    await createAutoprunePolicy(s, { principal: principalFor(bob, 'password'), ip: null }, { kind: 'user' }, { method: 'number_of_tags', value: 5 });
    await s.db.deleteFrom('jobs').execute();
    assert.equal(periodic(s)[AUTOPRUNE_SWEEP_QUEUE], 60 * MIN);
    const sweep = workerHandlers(s)[AUTOPRUNE_SWEEP_QUEUE]!;
    await sweep({ id: 0, queue: AUTOPRUNE_SWEEP_QUEUE, payload: {}, dedupeKey: null, attempts: 1, maxAttempts: 1, leaseExpiresAt: 0, availableAt: 0, lastError: null, createdAt: 0 },
      new AbortController().signal, s.log);
    const keys = (await s.db.selectFrom('jobs').select('dedupe_key').where('queue', '=', AUTOPRUNE_QUEUE).execute()).map((j) => j.dedupe_key).sort();
    assert.deepEqual(keys, [`autoprune:${alice.id}`, `autoprune:${bob.id}`].sort());
    assert.equal(await queueAutopruneSweep(s), 0, 'already queued: deduplicated');
    await deleteAutoprunePolicy(s, actor(), { kind: 'user' }, uuid);
  });

  test('an immutability policy created through the model protects existing tags from the next run', async () => {
    await pushTags('alice/late', ['keep-1', 'keep-2', 'z']);
    await createImmutabilityPolicy(s, actor(), { kind: 'repo', namespace: 'alice', name: 'late' }, { tagPattern: 'keep' });
    await createAutoprunePolicy(s, actor(), { kind: 'repo', namespace: 'alice', name: 'late' }, { method: 'creation_date', value: '1s' });
    offset += 10_000;
    await runJobs();
    assert.deepEqual(await alive('alice/late'), ['keep-1', 'keep-2']);
  });
});

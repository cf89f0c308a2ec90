import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  BACKOFF_BASE_MS, DEAD_AT, claim, complete, deadJobs, enqueue, extend, fail, periodicKey, release, retryDead, schedule, type Job,
} from '../../src/model/queue.ts';
import type { Services } from '../../src/model/context.ts';
import { createTestServices, TEST_DB, type TestServices } from '../support/services.ts';

describe(`job queue (${TEST_DB})`, () => {
  let t: TestServices;
  let s: Services;
  let clock: number;

  before(async () => {
    t = await createTestServices();
    s = t.s;
  });
  after(() => t.close());
  beforeEach(async () => {
    clock = 1_700_000_000_000;
    s.now = () => clock;
    await s.db.deleteFrom('jobs').execute();
  });

  const count = async (queue?: string) => {
    let q = s.db.selectFrom('jobs').select((eb) => eb.fn.countAll<number>().as('n'));
    if (queue) q = q.where('queue', '=', queue);
    return Number((await q.executeTakeFirstOrThrow()).n);
  };
  const row = (id: number) => s.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();

  it('enqueues jobs and hands them out with their payload, oldest first, up to the limit', async () => {
    assert.equal(await enqueue(s, 'q', { n: 1 }), true);
    clock += 1;
    assert.equal(await enqueue(s, 'q', { n: 2 }), true);
    assert.equal(await enqueue(s, 'other', { n: 3 }), true);
    clock += 1;
    const jobs = await claim(s, 'q', { leaseMs: 1000, limit: 10 });
    assert.deepEqual(jobs.map((j) => j.payload), [{ n: 1 }, { n: 2 }]);
    for (const j of jobs) {
      assert.equal(j.queue, 'q');
      assert.equal(j.attempts, 1);
      assert.equal(j.maxAttempts, 5);
      assert.equal(j.leaseExpiresAt, clock + 1000);
    }
    // Leased jobs are not handed out again; the other queue is untouched.
    assert.deepEqual(await claim(s, 'q', { leaseMs: 1000, limit: 10 }), []);
    const [o] = await claim(s, ['q', 'other'], { leaseMs: 1000, limit: 10 });
    assert.deepEqual(o?.payload, { n: 3 });

    for (let i = 0; i < 5; i++) await enqueue(s, 'lim', i);
    assert.equal((await claim(s, 'lim', { leaseMs: 1000, limit: 2 })).length, 2);
    assert.equal((await claim(s, 'lim', { leaseMs: 1000, limit: 2 })).length, 2);
    assert.equal((await claim(s, 'lim', { leaseMs: 1000, limit: 2 })).length, 1);
  });

  it('respects delayMs', async () => {
    await enqueue(s, 'q', null, { delayMs: 5000 });
    assert.deepEqual(await claim(s, 'q', { leaseMs: 1000, limit: 1 }), []);
    clock += 4999;
    assert.deepEqual(await claim(s, 'q', { leaseMs: 1000, limit: 1 }), []);
    clock += 1;
    assert.equal((await claim(s, 'q', { leaseMs: 1000, limit: 1 })).length, 1);
  });

  it('dedupes on the key while a job with it is pending or running, and not after it is done', async () => {
    assert.equal(await enqueue(s, 'gc', { repo: 1 }, { dedupeKey: 'gc:1' }), true);
    assert.equal(await enqueue(s, 'gc', { repo: 1 }, { dedupeKey: 'gc:1' }), false);
    assert.equal(await enqueue(s, 'gc', { repo: 2 }, { dedupeKey: 'gc:2' }), true);
    assert.equal(await enqueue(s, 'gc', { repo: 1 }), true); // no key: never deduped
    assert.equal(await count('gc'), 3);

    const jobs = await claim(s, 'gc', { leaseMs: 1000, limit: 10 });
    const one = jobs.find((j) => j.dedupeKey === 'gc:1')!;
    assert.equal(await enqueue(s, 'gc', { repo: 1 }, { dedupeKey: 'gc:1' }), false);
    assert.equal(await complete(s, one), true);
    assert.equal(await enqueue(s, 'gc', { repo: 1 }, { dedupeKey: 'gc:1' }), true);
  });

  it('enqueues inside a caller transaction, and not at all when it rolls back', async () => {
    await s.db.transaction().execute(async (tx) => {
      assert.equal(await enqueue(s, 'tx', 'a', { dedupeKey: 'k' }, tx), true);
      assert.equal(await enqueue(s, 'tx', 'b', { dedupeKey: 'k' }, tx), false);
    });
    assert.equal(await count('tx'), 1);
    await assert.rejects(s.db.transaction().execute(async (tx) => {
      assert.equal(await enqueue(s, 'tx', 'c', { dedupeKey: 'k2' }, tx), true);
      throw new Error('rollback');
    }), /rollback/);
    assert.equal(await count('tx'), 1);
    assert.equal(await enqueue(s, 'tx', 'c', { dedupeKey: 'k2' }), true);
  });

  it('hands each job to exactly one of several concurrent claimers on separate connections', async () => {
    const N = 200;
    for (let i = 0; i < N; i++) await enqueue(s, 'race', { i });
    const claimers = Array.from({ length: 4 }, () => t.connect({ poolSize: 3 }));
    for (const c of claimers) c.now = s.now;
    const got: number[][] = claimers.map(() => []);
    await Promise.all(claimers.map(async (c, k) => {
      // Several claims in flight per claimer too, so they really overlap on PostgreSQL.
      await Promise.all([0, 1, 2].map(async () => {
        for (;;) {
          const jobs = await claim(c, 'race', { leaseMs: 60_000, limit: 7 });
          if (jobs.length === 0) {
            // SKIP LOCKED may pass over rows another claimer is taking: stop only when none are left.
            const left = await c.db.selectFrom('jobs').select('id').where('queue', '=', 'race').where('lease_expires_at', 'is', null).limit(1).execute();
            if (left.length === 0) return;
          }
          got[k]!.push(...jobs.map((j) => j.id));
        }
      }));
    }));
    const all = got.flat();
    assert.equal(all.length, N, 'every job claimed exactly once');
    assert.equal(new Set(all).size, N, 'no job handed to two claimers');
    assert.ok(got.filter((g) => g.length > 0).length >= 2, 'the work was actually shared');
  });

  it('makes a job claimable again once its lease expires, and the first holder can no longer touch it', async () => {
    await enqueue(s, 'q', 'x');
    const [first] = await claim(s, 'q', { leaseMs: 1000, limit: 1 });
    clock += 1000; // lease_expires_at == now: still held
    assert.deepEqual(await claim(s, 'q', { leaseMs: 1000, limit: 1 }), []);
    clock += 1;
    const [second] = await claim(s, 'q', { leaseMs: 5000, limit: 1 });
    assert.equal(second!.id, first!.id);
    assert.equal(second!.attempts, 2);

    // The slow first worker finishes late: nothing it does affects the new owner's claim.
    assert.equal(await extend(s, first!, 1000), false);
    assert.equal(await complete(s, first!), false);
    assert.equal((await fail(s, first!, new Error('late'))).recorded, false);
    assert.equal(await release(s, first!), false);
    const r = await row(first!.id);
    assert.equal(Number(r!.lease_expires_at), second!.leaseExpiresAt);
    assert.equal(r!.last_error, null);

    assert.equal(await complete(s, second!), true);
    assert.equal(await row(first!.id), undefined);
  });

  it('a job whose lease expired but was not re-claimed can still be completed by its worker', async () => {
    await enqueue(s, 'q', 'x');
    const [job] = await claim(s, 'q', { leaseMs: 1000, limit: 1 });
    clock += 10_000;
    assert.equal(await complete(s, job!), true);
    assert.equal(await count(), 0);
  });

  it('retries failures with exponential backoff, then keeps the job as dead', async () => {
    await enqueue(s, 'q', 'x', { maxAttempts: 3, dedupeKey: 'only-one' });
    const delays: number[] = [];
    let job: Job | undefined;
    for (let attempt = 1; attempt <= 3; attempt++) {
      [job] = await claim(s, 'q', { leaseMs: 1000, limit: 1 });
      assert.ok(job, `attempt ${attempt} claimable`);
      assert.equal(job.attempts, attempt);
      const r = await fail(s, job, new Error(`boom ${attempt}`));
      assert.equal(r.recorded, true);
      assert.equal(r.dead, attempt === 3);
      if (r.dead) break;
      const delay = r.availableAt - clock;
      delays.push(delay);
      clock += delay - 1;
      assert.deepEqual(await claim(s, 'q', { leaseMs: 1000, limit: 1 }), [], 'not before the backoff');
      clock += 1;
    }
    assert.deepEqual(delays, [BACKOFF_BASE_MS * 2, BACKOFF_BASE_MS * 4]);

    const r = await row(job!.id);
    assert.equal(Number(r!.available_at), DEAD_AT);
    assert.equal(r!.lease_expires_at, null);
    assert.match(r!.last_error!, /boom 3/);
    clock += 365 * 24 * 3600 * 1000;
    assert.deepEqual(await claim(s, 'q', { leaseMs: 1000, limit: 1 }), [], 'dead jobs are never claimed');
    const dead = await deadJobs(s, 'q');
    assert.deepEqual(dead.map((d) => d.id), [job!.id]);
    // The dead job no longer blocks its dedupe key.
    assert.equal(await enqueue(s, 'q', 'y', { dedupeKey: 'only-one' }), true);

    assert.equal(await retryDead(s, job!.id), true);
    const again = await claim(s, 'q', { leaseMs: 1000, limit: 10 });
    assert.deepEqual(again.map((j) => j.payload).sort(), ['x', 'y']);
    assert.equal(again.find((j) => j.id === job!.id)!.attempts, 1);
  });

  it('caps the backoff', async () => {
    await enqueue(s, 'q', 'x', { maxAttempts: 100 });
    let [job] = await claim(s, 'q', { leaseMs: 1000, limit: 1 });
    await s.db.updateTable('jobs').set({ attempts: 40 }).where('id', '=', job!.id).execute();
    job = { ...job!, attempts: 40 };
    const r = await fail(s, job, 'x', { backoffCapMs: 30_000 });
    assert.equal(r.availableAt, clock + 30_000);
  });

  it('extend keeps a long job leased', async () => {
    await enqueue(s, 'q', 'x');
    const [job] = await claim(s, 'q', { leaseMs: 1000, limit: 1 });
    for (let i = 0; i < 5; i++) {
      clock += 900;
      assert.equal(await extend(s, job!, 1000), true);
      assert.equal(job!.leaseExpiresAt, clock + 1000);
      clock += 100;
      assert.deepEqual(await claim(s, 'q', { leaseMs: 1000, limit: 1 }), []);
    }
    assert.equal(await complete(s, job!), true);
  });

  it('release gives a job back at once without spending an attempt', async () => {
    await enqueue(s, 'q', 'x', { maxAttempts: 1 });
    const [job] = await claim(s, 'q', { leaseMs: 60_000, limit: 1 });
    assert.equal(await release(s, job!), true);
    const [again] = await claim(s, 'q', { leaseMs: 60_000, limit: 1 });
    assert.equal(again!.attempts, 1);
    assert.equal((await fail(s, again!, 'x')).dead, true);
  });

  it('schedule keeps a single pending run per queue however often (and by whomever) it is called', async () => {
    const other = t.connect();
    other.now = s.now;
    assert.equal(await schedule(s, 'expiry', 60_000), true);
    assert.equal(await schedule(other, 'expiry', 60_000), false);
    clock += 30_000;
    assert.equal(await schedule(other, 'expiry', 60_000), false);
    assert.equal(await count('expiry'), 1);
    assert.deepEqual(await claim(s, 'expiry', { leaseMs: 1000, limit: 1 }), []);
    clock += 30_000;
    const [job] = await claim(s, 'expiry', { leaseMs: 1000, limit: 1 });
    assert.equal(job!.dedupeKey, periodicKey('expiry'));
    assert.equal(await schedule(s, 'expiry', 60_000), false, 'a running job still holds the slot');
    await complete(s, job!);
    assert.equal(await schedule(other, 'expiry', 60_000), true);
    const r = await s.db.selectFrom('jobs').selectAll().executeTakeFirstOrThrow();
    assert.equal(Number(r.available_at), clock + 60_000);
  });

  it('keeps a payload that is not JSON as its raw text', async () => {
    await s.db.insertInto('jobs').values({ queue: 'raw', payload: 'not json', available_at: 0, lease_expires_at: null, created_at: 0, dedupe_key: null, last_error: null }).execute();
    const [job] = await claim(s, 'raw', { leaseMs: 1000, limit: 1 });
    assert.equal(job!.payload, 'not json');
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { claim, enqueue, periodicKey, DEAD_AT, type Job } from '../../src/model/queue.ts';
import { LeaseLostError, startRunner, type Runner } from '../../src/workers/runner.ts';
import type { Services } from '../../src/model/context.ts';
import { createTestServices, TEST_DB, type TestServices } from '../support/services.ts';

async function until(cond: () => Promise<boolean> | boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe(`worker runner (${TEST_DB})`, () => {
  let t: TestServices;
  let s: Services;
  const runners: Runner[] = [];
  const run = (...args: Parameters<typeof startRunner>) => {
    const r = startRunner(...args);
    runners.push(r);
    return r;
  };

  before(async () => {
    t = await createTestServices();
    s = t.s;
  });
  after(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
    await t.close();
  });
  beforeEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.stop()));
    await s.db.deleteFrom('jobs').execute();
  });

  const jobRows = (queue: string) => s.db.selectFrom('jobs').selectAll().where('queue', '=', queue).execute();

  it('runs 200 jobs through 4 runners on separate connections, each exactly once', async () => {
    const N = 200;
    for (let i = 0; i < N; i++) await enqueue(s, 'work', { i });
    const seen = new Map<number, number>();
    const byRunner = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) {
      const c = t.connect({ poolSize: 4 });
      run(c, {
        async work(job) {
          const i = (job.payload as { i: number }).i;
          seen.set(i, (seen.get(i) ?? 0) + 1);
          byRunner[k]!++;
          await sleep(Math.random() * 4);
        },
      }, { pollMs: 5, leaseMs: 30_000, concurrency: 3 });
    }
    await until(async () => (await jobRows('work')).length === 0, 30_000, 'queue to drain');
    await Promise.all(runners.splice(0).map((r) => r.stop()));
    assert.equal(seen.size, N);
    assert.deepEqual([...seen.values()].filter((n) => n !== 1), [], 'no job handled twice');
    assert.ok(byRunner.filter((n) => n > 0).length >= 2, `work shared between runners: ${byRunner}`);
  });

  it('runs 200 jobs through 3 runner processes, each exactly once', async () => {
    const N = 200;
    for (let i = 0; i < N; i++) await enqueue(s, 'work', { i });
    const child = new URL('./runner-process.ts', import.meta.url).pathname;
    const outputs = await Promise.all([0, 1, 2].map(() => new Promise<number[]>((resolve, reject) => {
      const p = spawn(process.execPath, [child, s.config.dbUri, t.dir, '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => { out += d; });
      p.on('error', reject);
      p.on('exit', (code) => code === 0 ? resolve(out.split('\n').filter(Boolean).map(Number)) : reject(new Error(`worker exited ${code}`)));
    })));
    const all = outputs.flat();
    assert.equal(all.length, N, `handled ${all.length} times for ${N} jobs`);
    assert.equal(new Set(all).size, N);
    assert.ok(outputs.filter((o) => o.length > 0).length >= 2, `work shared: ${outputs.map((o) => o.length)}`);
    assert.deepEqual(await jobRows('work'), []);
  });

  it('retries a failing handler with backoff and marks the job dead after max_attempts', async () => {
    await enqueue(s, 'flaky', {}, { maxAttempts: 3 });
    const calls: number[] = [];
    run(s, {
      async flaky(job) {
        calls.push(Date.now());
        throw new Error(`nope #${job.attempts}`);
      },
    }, { pollMs: 5, leaseMs: 5000, backoffBaseMs: 20 });
    await until(async () => Number((await jobRows('flaky'))[0]?.available_at) === DEAD_AT, 10_000, 'job to die');
    assert.equal(calls.length, 3);
    // 20 * 2^1 then 20 * 2^2 ms apart, at least.
    assert.ok(calls[1]! - calls[0]! >= 40, `first retry after ${calls[1]! - calls[0]!}ms`);
    assert.ok(calls[2]! - calls[1]! >= 80, `second retry after ${calls[2]! - calls[1]!}ms`);
    const [r] = await jobRows('flaky');
    assert.match(r!.last_error!, /nope #3/);
    assert.equal(r!.lease_expires_at, null);
  });

  it('recovers: a job that failed once succeeds on retry and is deleted', async () => {
    await enqueue(s, 'once', {});
    let n = 0;
    run(s, { async once() { if (++n === 1) throw new Error('first time'); } }, { pollMs: 5, backoffBaseMs: 5 });
    await until(async () => (await jobRows('once')).length === 0);
    assert.equal(n, 2);
  });

  it('heartbeats keep a long job leased so no other worker takes it', async () => {
    await enqueue(s, 'long', {});
    const other = t.connect();
    let started = false;
    let finished = false;
    run(s, {
      async long() {
        started = true;
        await sleep(900);
        finished = true;
      },
    }, { pollMs: 5, leaseMs: 200, heartbeatMs: 50 });
    await until(() => started);
    const stolen: Job[] = [];
    while (!finished) {
      stolen.push(...await claim(other, 'long', { leaseMs: 200, limit: 1 }));
      await sleep(20);
    }
    assert.deepEqual(stolen, [], 'the lease outlived 4 lease periods');
    await until(async () => (await jobRows('long')).length === 0, 5000, 'job completed');
  });

  it('aborts a handler whose lease was taken, and does not complete or fail the job', async () => {
    await enqueue(s, 'stolen', {});
    const other = t.connect();
    let reason: unknown = null;
    // The heartbeat is too slow for the lease, as when a worker stalls (GC pause, event loop block).
    run(s, {
      async stolen(_job, signal) {
        await new Promise((_, reject) => signal.addEventListener('abort', () => { reason = signal.reason; reject(signal.reason); }));
      },
    }, { pollMs: 5, leaseMs: 100, heartbeatMs: 400, concurrency: 1 }).wake();
    await until(async () => (await jobRows('stolen'))[0]?.lease_expires_at != null);
    await sleep(150);
    const [mine] = await claim(other, 'stolen', { leaseMs: 60_000, limit: 1 });
    assert.ok(mine, 'expired lease re-claimed');
    await until(() => reason !== null, 5000, 'handler aborted');
    assert.ok(reason instanceof LeaseLostError);
    await sleep(50);
    const [r] = await jobRows('stolen');
    assert.equal(Number(r!.lease_expires_at), mine.leaseExpiresAt, 'new owner still holds it');
    assert.equal(r!.attempts, 2);
    assert.equal(r!.last_error, null);
  });

  it('a slow handler that finishes after its lease was taken leaves the job to the new owner', async () => {
    await enqueue(s, 'slow', {});
    const other = t.connect();
    let done = false;
    run(s, { async slow() { await sleep(400); done = true; } }, { pollMs: 5, leaseMs: 100, heartbeatMs: 60_000, concurrency: 1 });
    await until(async () => (await jobRows('slow'))[0]?.lease_expires_at != null);
    await sleep(150);
    const [mine] = await claim(other, 'slow', { leaseMs: 60_000, limit: 1 });
    assert.ok(mine);
    await until(() => done);
    await sleep(100);
    const rows = await jobRows('slow');
    assert.equal(rows.length, 1, 'not deleted by the first worker');
    assert.equal(Number(rows[0]!.lease_expires_at), mine.leaseExpiresAt);
  });

  it('stop() waits for running handlers and completes their jobs', async () => {
    await enqueue(s, 'graceful', {});
    let started = false;
    let finished = false;
    const r = run(s, { async graceful() { started = true; await sleep(300); finished = true; } }, { pollMs: 5 });
    await until(() => started);
    await r.stop();
    assert.equal(finished, true);
    assert.deepEqual(await jobRows('graceful'), []);
    // Stopped: new jobs stay queued.
    await enqueue(s, 'graceful', {});
    await sleep(100);
    assert.equal((await jobRows('graceful')).length, 1);
  });

  it('stop() aborts handlers that outlast the timeout and releases their jobs without spending an attempt', async () => {
    await enqueue(s, 'stuck', {});
    let started = false;
    const r = run(s, {
      async stuck(_job, signal) {
        started = true;
        await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
    }, { pollMs: 5, stopTimeoutMs: 100 });
    await until(() => started);
    const t0 = Date.now();
    await r.stop();
    assert.ok(Date.now() - t0 < 2000);
    const [row] = await jobRows('stuck');
    assert.equal(row!.attempts, 0);
    assert.equal(row!.lease_expires_at, null);
    assert.equal(row!.last_error, null);
  });

  it('respects concurrency', async () => {
    for (let i = 0; i < 6; i++) await enqueue(s, 'par', {});
    let now = 0;
    let peak = 0;
    run(s, { async par() { now++; peak = Math.max(peak, now); await sleep(50); now--; } }, { pollMs: 5, concurrency: 2 });
    await until(async () => (await jobRows('par')).length === 0);
    assert.equal(peak, 2);
  });

  it('periodic queues get one scheduled row however many runners start', async () => {
    for (let k = 0; k < 3; k++) run(t.connect(), { tick: async () => {} }, { pollMs: 5, periodic: { tick: 60_000 } });
    await until(async () => (await jobRows('tick')).length > 0);
    await sleep(100);
    const rows = await jobRows('tick');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.dedupe_key, periodicKey('tick'));
    assert.ok(Number(rows[0]!.available_at) > Date.now() + 50_000);
  });
});

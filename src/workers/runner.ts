// The worker loop: claims jobs for the queues it has handlers for, runs them with a heartbeat on
// the lease, and completes or fails them. Several runners (threads of one process or replicas)
// can share one database: the queue's leases keep each job with one runner at a time.
import type { Logger } from 'pino';
import type { Services } from '../model/context.ts';
import { claim, complete, extend, fail, release, schedule, type Job } from '../model/queue.ts';

export type Handler = (job: Job, signal: AbortSignal, log: Logger) => Promise<void>;
export type Handlers = Record<string, Handler>;

export interface RunnerOptions {
  /** Idle wait between polls when nothing was claimable. */
  pollMs?: number;
  /** Lease length; a crashed runner's jobs become claimable again this long after its last heartbeat. */
  leaseMs?: number;
  /** Heartbeat interval (default leaseMs / 3, so two missed beats still keep the lease). */
  heartbeatMs?: number;
  /** Jobs run at once by this runner. */
  concurrency?: number;
  /** How long stop() waits for running handlers before aborting their signals. */
  stopTimeoutMs?: number;
  /** Queues to keep scheduled: queue → period in ms (see schedule()). */
  periodic?: Record<string, number>;
  /** Passed to fail() (tests shorten it). */
  backoffBaseMs?: number;
}

export interface Runner {
  /** Stops claiming, waits for running handlers (up to stopTimeoutMs), then resolves. */
  stop(): Promise<void>;
  /** Polls now instead of waiting out pollMs (e.g. right after enqueueing). */
  wake(): void;
  readonly active: number;
}

/** Why a handler's signal was aborted. */
export class LeaseLostError extends Error {
  constructor(job: Job) {
    super(`lease on job ${job.id} (${job.queue}) was lost`);
    this.name = 'LeaseLostError';
  }
}
export class ShutdownError extends Error {
  constructor() {
    super('worker is shutting down');
    this.name = 'ShutdownError';
  }
}

export function startRunner(s: Services, handlers: Handlers, opts: RunnerOptions = {}): Runner {
  const pollMs = opts.pollMs ?? 1000;
  const leaseMs = opts.leaseMs ?? 60_000;
  const heartbeatMs = opts.heartbeatMs ?? Math.max(10, Math.floor(leaseMs / 3));
  const concurrency = Math.max(1, opts.concurrency ?? 2);
  const stopTimeoutMs = opts.stopTimeoutMs ?? 30_000;
  const queues = Object.keys(handlers);
  const log = s.log.child({ component: 'worker' });

  const running = new Map<number, { promise: Promise<void>; controller: AbortController }>();
  let stopping = false;
  let wakeUp: (() => void) | null = null;
  let sleepTimer: NodeJS.Timeout | null = null;
  // A wake() while the loop is busy claiming must not be lost: the next sleep returns at once.
  let woken = false;

  function wake(): void {
    if (!wakeUp) {
      woken = true;
      return;
    }
    if (sleepTimer) clearTimeout(sleepTimer);
    sleepTimer = null;
    const w = wakeUp;
    wakeUp = null;
    w();
  }

  function sleep(ms: number): Promise<void> {
    if (woken) {
      woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      wakeUp = resolve;
      sleepTimer = setTimeout(wake, ms);
    });
  }

  async function runJob(job: Job, controller: AbortController): Promise<void> {
    const jlog = log.child({ jobId: job.id, queue: job.queue, attempt: job.attempts });
    const started = Date.now();
    // Heartbeats run one at a time, and never concurrently with complete/fail: both match on the
    // lease value, which a heartbeat changes.
    let beat: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      beat = beat.then(async () => {
        if (controller.signal.aborted) return;
        try {
          if (!(await extend(s, job, leaseMs))) {
            jlog.warn('job lease lost to another worker; aborting handler');
            controller.abort(new LeaseLostError(job));
          }
        } catch (e) {
          // A transient database error: the lease may still be valid, try again next beat.
          jlog.warn({ err: e }, 'job heartbeat failed');
        }
      });
    }, heartbeatMs);

    let error: unknown = null;
    let ok = false;
    try {
      jlog.debug('job started');
      await handlers[job.queue]!(job, controller.signal, jlog);
      ok = true;
    } catch (e) {
      error = e;
    } finally {
      clearInterval(timer);
      await beat;
    }

    const ms = Date.now() - started;
    try {
      if (ok) {
        if (await complete(s, job)) jlog.info({ ms }, 'job done');
        else jlog.warn({ ms }, 'job finished after its lease was lost; left to its new owner');
      } else if (controller.signal.reason instanceof LeaseLostError) {
        jlog.warn({ ms, err: error }, 'job abandoned after losing its lease');
      } else if (controller.signal.reason instanceof ShutdownError) {
        await release(s, job);
        jlog.info({ ms }, 'job interrupted by shutdown; released');
      } else {
        const r = await fail(s, job, error, opts.backoffBaseMs !== undefined ? { backoffBaseMs: opts.backoffBaseMs } : {});
        if (!r.recorded) jlog.warn({ ms, err: error }, 'job failed after its lease was lost');
        else if (r.dead) jlog.error({ ms, err: error }, 'job failed for the last time; marked dead');
        else jlog.warn({ ms, err: error, retryAt: new Date(r.availableAt).toISOString() }, 'job failed; will retry');
      }
    } catch (e) {
      // The lease simply runs out and the job is retried elsewhere.
      jlog.error({ err: e, ms }, 'cannot record job outcome');
    }
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      const free = concurrency - running.size;
      if (free <= 0) {
        await sleep(pollMs); // woken as soon as a slot frees
        continue;
      }
      let jobs: Job[] = [];
      try {
        jobs = await claim(s, queues, { leaseMs, limit: free });
      } catch (e) {
        log.error({ err: e }, 'cannot claim jobs');
      }
      if (stopping) {
        // Claimed while stop() was called: hand them straight back.
        await Promise.all(jobs.map((j) => release(s, j).catch(() => false)));
        break;
      }
      for (const job of jobs) {
        const controller = new AbortController();
        const promise = runJob(job, controller).finally(() => {
          running.delete(job.id);
          if (!stopping) wake();
        });
        running.set(job.id, { promise, controller });
      }
      // A full batch means more may be waiting: poll again at once.
      if (jobs.length === 0 || running.size >= concurrency) await sleep(pollMs);
    }
  }

  const timers: NodeJS.Timeout[] = [];
  const scheduling = new Set<Promise<unknown>>();
  function ensureScheduled(queue: string, everyMs: number): void {
    const p = schedule(s, queue, everyMs)
      .catch((e) => log.error({ err: e, queue }, 'cannot schedule periodic job'))
      .finally(() => scheduling.delete(p));
    scheduling.add(p);
  }
  for (const [queue, everyMs] of Object.entries(opts.periodic ?? {})) {
    ensureScheduled(queue, everyMs);
    timers.push(setInterval(() => ensureScheduled(queue, everyMs), everyMs));
  }

  const looping = loop();
  log.info({ queues, concurrency }, 'workers started');
  let stopped: Promise<void> | null = null;

  async function shutdown(): Promise<void> {
    stopping = true;
    for (const t of timers) clearInterval(t);
    wake();
    await looping;
    await Promise.allSettled([...scheduling]);
    const all = Promise.allSettled([...running.values()].map((r) => r.promise));
    if (await settlesWithin(all, stopTimeoutMs)) {
      log.info('workers stopped');
      return;
    }
    log.warn({ running: running.size }, 'handlers still running at shutdown; aborting them');
    for (const r of running.values()) r.controller.abort(new ShutdownError());
    // Give them a moment to reach a checkpoint and release their jobs; whatever is left keeps
    // its lease until it expires and is then retried by another worker.
    await settlesWithin(all, Math.min(5000, stopTimeoutMs));
    log.info({ running: running.size }, 'workers stopped');
  }

  return {
    get active() {
      return running.size;
    },
    wake,
    stop() {
      stopped ??= shutdown();
      return stopped;
    },
  };
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms); });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

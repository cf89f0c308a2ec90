// Background workers: queue consumers started by the server process. Each queue has one handler
// here; features add theirs to workerHandlers() (and to periodic() when the work is recurring).
import type { Services } from '../model/context.ts';
import { expireAbandonedUploads } from '../model/upload-expiry.ts';
import { collectGarbage, sweepOrphanObjects } from '../model/gc.ts';
import { startRunner, type Handlers, type RunnerOptions } from './runner.ts';
import { exportLogsHandlers } from './export-logs.ts';

export interface Workers {
  stop(): Promise<void>;
}

export const QUEUES = {
  uploadExpiry: 'upload_expiry',
  gc: 'gc',
  gcSweep: 'gc_sweep',
} as const;

/** Recurring queues and their periods in ms. */
export function periodic(s: Services): Record<string, number> {
  return {
    [QUEUES.uploadExpiry]: 10 * 60 * 1000,
    [QUEUES.gc]: s.config.gcIntervalSeconds * 1000,
    [QUEUES.gcSweep]: s.config.gcSweepIntervalSeconds * 1000,
  };
}

export function workerHandlers(s: Services): Handlers {
  return {
    async [QUEUES.uploadExpiry](_job, signal, log) {
      const r = await expireAbandonedUploads(s, s.config.uploadExpirySeconds * 1000, { signal });
      if (r.expired || r.orphans || r.errors) log.info(r, 'abandoned uploads expired');
    },
    async [QUEUES.gc](_job, signal, log) {
      const stats = await collectGarbage(s, { signal });
      if (Object.values(stats).some((n) => n > 0)) log.info(stats, 'garbage collected');
    },
    async [QUEUES.gcSweep](_job, signal, log) {
      const swept = await sweepOrphanObjects(s, signal);
      if (swept) log.info({ swept }, 'orphan storage objects removed');
    },
    ...exportLogsHandlers(s),
  };
}

export function startWorkers(s: Services, opts: RunnerOptions = {}): Workers {
  const runner = startRunner(s, workerHandlers(s), { periodic: periodic(s), ...opts });
  return { stop: () => runner.stop() };
}

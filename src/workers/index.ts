// Background workers: queue consumers started by the server process. Each queue has one handler
// here; features add theirs to workerHandlers() (and to PERIODIC when the work is recurring).
import type { Services } from '../model/context.ts';
import { expireAbandonedUploads } from '../model/upload-expiry.ts';
import { startRunner, type Handlers, type RunnerOptions } from './runner.ts';

export interface Workers {
  stop(): Promise<void>;
}

export const QUEUES = {
  uploadExpiry: 'upload_expiry',
} as const;

/** Recurring queues and their periods in ms. */
export const PERIODIC: Record<string, number> = {
  [QUEUES.uploadExpiry]: 10 * 60 * 1000,
};

export function workerHandlers(s: Services): Handlers {
  return {
    async [QUEUES.uploadExpiry](_job, signal, log) {
      const r = await expireAbandonedUploads(s, s.config.uploadExpirySeconds * 1000, { signal });
      if (r.expired || r.orphans || r.errors) log.info(r, 'abandoned uploads expired');
    },
  };
}

export function startWorkers(s: Services, opts: RunnerOptions = {}): Workers {
  const runner = startRunner(s, workerHandlers(s), { periodic: PERIODIC, ...opts });
  return { stop: () => runner.stop() };
}

// Background workers: queue consumers started by the server process. Each queue has one handler
// here; features add theirs to workerHandlers() (and to periodic() when the work is recurring).
import type { Services } from '../model/context.ts';
import { expireAbandonedUploads } from '../model/upload-expiry.ts';
import { collectGarbage, sweepOrphanObjects } from '../model/gc.ts';
import { startRunner, type Handlers, type RunnerOptions } from './runner.ts';
import { exportLogsHandlers } from './export-logs.ts';
import { QUOTA_RECOUNT_QUEUE, runQuotaRecount } from '../model/quota-usage.ts';
import { computeRegistrySize, REGISTRY_SIZE_QUEUE } from '../model/registry-size.ts';
import { NOTIFY_QUEUE, type DeliveryPayload } from '../model/notifications.ts';
import { deliverNotification } from '../model/notification-delivery.ts';
import { AUTOPRUNE_QUEUE, AUTOPRUNE_SWEEP_QUEUE, autopruneIntervalMs, pruneNamespace, queueAutopruneSweep } from '../model/autoprune.ts';

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
    ...(s.config.features.AUTO_PRUNE ? { [AUTOPRUNE_SWEEP_QUEUE]: autopruneIntervalMs(s) } : {}),
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
    async [REGISTRY_SIZE_QUEUE](_job, _signal, log) {
      log.info({ sizeBytes: await computeRegistrySize(s) }, 'registry size computed');
    },
    async [AUTOPRUNE_SWEEP_QUEUE](_job, _signal, log) {
      const queued = await queueAutopruneSweep(s);
      if (queued) log.info({ queued }, 'auto-prune runs queued');
    },
    async [AUTOPRUNE_QUEUE](job, signal, log) {
      const namespaceId = Number((job.payload as { namespace_id?: unknown } | null)?.namespace_id);
      if (!Number.isSafeInteger(namespaceId)) return log.warn({ payload: job.payload }, 'auto-prune job without a namespace; dropped');
      const { pruned } = await pruneNamespace(s, namespaceId, signal);
      if (pruned) log.info({ namespaceId, pruned }, 'tags auto-pruned');
    },
    async [QUOTA_RECOUNT_QUEUE](job, signal, log) {
      const r = await runQuotaRecount(s, job, signal);
      log.info(r, 'quota usage recounted');
    },
    async [NOTIFY_QUEUE](job, signal, log) {
      const outcome = await deliverNotification(s, job.payload as DeliveryPayload, signal);
      if (outcome !== 'sent') log.info({ outcome, notification: (job.payload as DeliveryPayload | null)?.notification_uuid }, 'notification not sent');
    },
    ...exportLogsHandlers(s),
  };
}

export function startWorkers(s: Services, opts: RunnerOptions = {}): Workers {
  const runner = startRunner(s, workerHandlers(s), { periodic: periodic(s), ...opts });
  return { stop: () => runner.stop() };
}

// The export_action_logs queue: runs queued log exports and removes their files once the
// download link has expired.
import type { Services } from '../model/context.ts';
import { EXPORT_QUEUE, expireExport, runLogExport, type ExportQueuePayload } from '../model/log-export.ts';
import { exportPresenter } from '../http/api/logs.ts';
import type { Handlers } from './runner.ts';

export function exportLogsHandlers(s: Services): Handlers {
  return {
    async [EXPORT_QUEUE](job, signal, log) {
      const payload = job.payload as ExportQueuePayload;
      if (payload?.op === 'expire') {
        await expireExport(s, payload);
        return;
      }
      if (payload?.op !== 'export') {
        log.warn({ payload }, 'unknown export job; dropped');
        return;
      }
      await runLogExport(s, payload, exportPresenter, signal);
      log.info({ exportId: payload.export_id }, 'logs exported');
    },
  };
}

// Exporting usage logs: the API queues a job; a worker streams the matching entries to storage as
// one JSON document (Quay's layout), then tells the requester where to fetch it — a POST to their
// callback URL (through the outbound guard) and/or an e-mail. The file is served from a
// pre-signed storage URL when the driver has them, else from a signed, expiring URL on this server.
import { createHmac, hkdfSync, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Principal, Services } from './context.ts';
import { safeEqual } from './crypto.ts';
import { DomainError } from './errors.ts';
import { enqueue } from './queue.ts';
import { logAction } from './logs.ts';
import { formatLogDate, iterateLogs, type LogRecord, type LogWindow } from './log-query.ts';
import { OutboundBlockedError, outboundPolicy, outboundRequest } from './outbound.ts';
import { escapeHtml, mailTitle, sendMail } from './mailer.ts';
import { PathNotFoundError } from '../storage/driver.ts';

export const EXPORT_QUEUE = 'export_action_logs';
const EXPORT_PREFIX = 'exports';
/** Quay's retries_remaining=3 for export jobs. */
const EXPORT_ATTEMPTS = 3;
const FILE_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Quay's ExportResult values, as sent in callbacks and e-mails. */
export type ExportStatus = 'success' | 'failed' | 'timedout' | 'invalidrequest';

export interface ExportJob {
  op: 'export';
  export_id: string;
  namespace_id: number;
  namespace_name: string;
  repository_id: number | null;
  repository_name: string | null;
  /** The window in epoch ms, [start, end). */
  start: number;
  end: number;
  /** The same window as Quay writes it into the job (and echoes in the callback). */
  start_time: string;
  end_time: string;
  callback_url: string | null;
  callback_email: string | null;
  /** This server's external URL as the requester reached it, for download links. */
  base_url: string;
}

/** Removes an export file once its link has expired. */
export interface ExpireJob { op: 'expire'; path: string }

export type ExportQueuePayload = ExportJob | ExpireJob;

/** EXPORT_ACTION_LOGS_SECONDS: how long a download link (and the file) lives. */
export function exportLifetimeSeconds(s: Services): number {
  const v = s.config.raw.EXPORT_ACTION_LOGS_SECONDS;
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 60 * 60;
}

export interface QueueExportInput {
  namespace: { id: number; username: string };
  repository: { id: number; name: string } | null;
  window: LogWindow;
  callbackUrl?: string | null;
  callbackEmail?: string | null;
  baseUrl: string;
  performer: Principal;
  ip: string | null;
}

/** Validates and queues an export; returns its export_id. Logs export_logs_success/failure like Quay. */
export async function queueLogExport(s: Services, input: QueueExportInput): Promise<string> {
  const url = input.callbackUrl || null;
  const email = input.callbackEmail || null;
  const meta = { ...(input.repository ? { repo: input.repository.name } : {}), url, email };
  const refuse = async (message: string): Promise<never> => {
    await logAction(s, 'export_logs_failure', {
      namespaceId: input.namespace.id, repositoryId: input.repository?.id ?? null, performer: input.performer, ip: input.ip,
      metadata: { ...meta, error: message },
    });
    throw new DomainError('invalid_request', message);
  };
  if (url && !url.startsWith('https://') && !url.startsWith('http://')) await refuse('Invalid callback URL');
  if (email && !email.includes('@')) await refuse('Invalid callback e-mail');
  if (input.window.end < input.window.start) await refuse('Invalid time span selected');

  const exportId = randomUUID();
  const job: ExportJob = {
    op: 'export',
    export_id: exportId,
    namespace_id: input.namespace.id,
    namespace_name: input.namespace.username,
    repository_id: input.repository?.id ?? null,
    repository_name: input.repository?.name ?? null,
    start: input.window.start,
    end: input.window.end,
    start_time: formatLogDate(input.window.start),
    end_time: formatLogDate(input.window.end),
    callback_url: url,
    callback_email: email,
    base_url: input.baseUrl.replace(/\/+$/, ''),
  };
  await s.db.transaction().execute(async (tx) => {
    await enqueue(s, EXPORT_QUEUE, job, { maxAttempts: EXPORT_ATTEMPTS }, tx);
    await logAction(s, 'export_logs_success', {
      namespaceId: input.namespace.id, repositoryId: input.repository?.id ?? null, performer: input.performer, ip: input.ip,
      metadata: { ...meta, export_id: exportId },
    }, tx);
  });
  return exportId;
}

/** How entries and dates look in the file: the API's own views (entries without namespace). */
export interface ExportPresenter {
  entry(s: Services, entry: LogRecord): Record<string, unknown>;
  date(ms: number): string | null;
}

export function exportPath(fileId: string): string {
  return `${EXPORT_PREFIX}/${fileId}.json`;
}

/** Quay's document: {"export_id", "details", "logs": [entries…, {"terminator": true}]}, streamed. */
async function* exportDocument(s: Services, job: ExportJob, view: ExportPresenter, signal: AbortSignal): AsyncGenerator<string> {
  const details = {
    start_time: view.date(job.start),
    end_time: view.date(job.end),
    namespace: job.namespace_name,
    repository: job.repository_name,
  };
  yield `{\n  "export_id": ${JSON.stringify(job.export_id)},\n  "details": ${JSON.stringify(details)},\n  "logs": [\n`;
  const scope = job.repository_id !== null ? { repositoryId: job.repository_id } : { namespaceId: job.namespace_id };
  for await (const batch of iterateLogs(s, scope, { start: job.start, end: job.end }, { signal })) {
    yield batch.map((e) => JSON.stringify(view.entry(s, e))).join(',') + ',';
  }
  yield '\n{"terminator": true}]\n}';
}

/** Runs one queued export. Throws (after reporting "failed") so the queue retries it. */
export async function runLogExport(s: Services, job: ExportJob, view: ExportPresenter, signal: AbortSignal): Promise<void> {
  if (!Number.isSafeInteger(job.start) || !Number.isSafeInteger(job.end)) {
    await reportExport(s, job, 'invalidrequest', null);
    return;
  }
  // A second random part, so a download link cannot be guessed from the export id alone.
  const fileId = `${job.export_id}-${randomUUID()}`;
  const path = exportPath(fileId);
  const lifetime = exportLifetimeSeconds(s);
  // Scheduled before the file exists, so no crash can leave a file nobody will remove.
  await enqueue(s, EXPORT_QUEUE, { op: 'expire', path } satisfies ExpireJob, { delayMs: lifetime * 1000 });
  try {
    await s.storage.write(path, Readable.from(exportDocument(s, job, view, signal), { objectMode: false }), { signal });
  } catch (e) {
    // An interrupted run (shutdown, lost lease) is not a failure to report: it simply runs again.
    if (!signal.aborted) {
      await reportExport(s, job, 'failed', null).catch((err: unknown) => s.log.warn({ err, exportId: job.export_id }, 'cannot report failed export'));
    }
    throw e;
  }
  const url = (await s.storage.redirectURL(path, lifetime)) ?? signedDownloadUrl(s, job.base_url, fileId, Math.floor(s.now() / 1000) + lifetime);
  await reportExport(s, job, 'success', url);
}

export async function expireExport(s: Services, job: ExpireJob): Promise<void> {
  if (!job.path.startsWith(`${EXPORT_PREFIX}/`)) return;
  await s.storage.delete(job.path);
}

/** Tells the requester: POST to callback_url (Quay's body), and/or an e-mail to callback_email. */
export async function reportExport(s: Services, job: ExportJob, status: ExportStatus, url: string | null): Promise<void> {
  if (job.callback_url) {
    const body = {
      export_id: job.export_id,
      start_time: job.start_time,
      end_time: job.end_time,
      namespace: job.namespace_name,
      repository: job.repository_name,
      exported_data_url: url,
      status,
    };
    try {
      // Quay posts without following redirects and retries on anything but 200.
      const res = await outboundRequest(outboundPolicy(s.config), job.callback_url, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), maxRedirects: 0, timeoutMs: 30_000,
      });
      res.body.resume();
      if (res.status !== 200) throw new Error(`export callback answered ${res.status}; retrying later`);
    } catch (e) {
      // A refused destination will not become acceptable on retry: skip it, as Quay does.
      if (!(e instanceof OutboundBlockedError)) throw e;
      s.log.warn({ exportId: job.export_id, reason: e.message }, 'export callback URL refused by the outbound guard');
    }
  }
  if (job.callback_email) await sendMail(s, exportEmail(s, job, status, url));
}

const STATUS_TEXT: Record<ExportStatus, string> = {
  success: '',
  failed: 'The attempt to export the logs in the specified range has failed. This operation will be retried up to 3 times. Please contact support if this problem persists.',
  timedout: 'The attempt to export the logs in the specified range has timed out. Please contact support if this problem persists.',
  invalidrequest: 'The attempt to export the logs failed due to an invalid request. Please contact support if this problem persists.',
};

/** Quay's logsexported e-mail. */
function exportEmail(s: Services, job: ExportJob, status: ExportStatus, url: string | null) {
  const title = mailTitle(s);
  const lifetime = exportLifetimeSeconds(s);
  const body = status === 'success' && url
    ? `The exported logs information can be found at ${url} and will remain accessible for ${lifetime} seconds before being deleted.`
    : STATUS_TEXT[status];
  const bodyHtml = status === 'success' && url
    ? `The exported logs information can be found at <a href="${escapeHtml(url)}">${escapeHtml(url)}</a> and will remain accessible for <b>${lifetime} seconds</b> before being deleted.`
    : escapeHtml(STATUS_TEXT[status]);
  const text = [
    'Usage Logs Export has completed', `Export ID: ${job.export_id}`, '', body, '',
    'If you did not initiate this operation, please delete this e-mail.', '', 'Best Wishes,', `The ${title} Team`,
  ].join('\n');
  const html = `<h3 style="font-weight: 400">Usage Logs Export has completed</h3>\n<h4>Export ID: ${escapeHtml(job.export_id)}</h4>\n`
    + `<hr style="border:none; border-top: 1px solid #D9D9D9; margin: 25px 0">\n<p style="font-size: 13px;">${bodyHtml}</p>\n`
    + `<p style="font-size: 13px;">If you did not initiate this operation, please delete this e-mail.</p>\n`
    + `<span style="font-size: 13px;">Best Wishes,</span><br>\n<span style="font-size: 13px;">The ${escapeHtml(title)} Team</span><br>\n`;
  return { to: job.callback_email!, subject: `[${title}] Export Action Logs Complete`, html, text };
}

// ---- Download links served by this server (storage drivers without pre-signed URLs).

function downloadKey(s: Services): Buffer {
  return Buffer.from(hkdfSync('sha256', s.config.secretKey, 'quayside', 'exported-logs-download', 32));
}

function signature(s: Services, fileId: string, expires: number): string {
  return createHmac('sha256', downloadKey(s)).update(`${fileId}\n${expires}`).digest('base64url');
}

/** `<base>/api/v1/exportedlogs/<file id>?expires=<unix s>&signature=<hmac>`. */
export function signedDownloadUrl(s: Services, baseUrl: string, fileId: string, expires: number): string {
  return `${baseUrl}/api/v1/exportedlogs/${fileId}?expires=${expires}&signature=${signature(s, fileId, expires)}`;
}

export type ExportDownload = { ok: true; body: Readable } | { ok: false; reason: 'invalid' | 'expired' | 'missing' };

/** The export file behind a signed link, if the link is genuine, unexpired and the file still exists. */
export async function openExportDownload(s: Services, fileId: string, expires: string | undefined, sig: string | undefined): Promise<ExportDownload> {
  if (!FILE_ID_RE.test(fileId) || !expires || !/^\d{1,12}$/.test(expires) || !sig) return { ok: false, reason: 'invalid' };
  if (!safeEqual(signature(s, fileId, Number(expires)), sig)) return { ok: false, reason: 'invalid' };
  if (Number(expires) * 1000 < s.now()) return { ok: false, reason: 'expired' };
  try {
    return { ok: true, body: await s.storage.read(exportPath(fileId)) };
  } catch (e) {
    if (e instanceof PathNotFoundError) return { ok: false, reason: 'missing' };
    throw e;
  }
}

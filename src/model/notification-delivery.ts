// Performs one queued notification (the `notify` queue): a webhook or Slack POST through the
// outbound guard, an e-mail, or in-app notifications. A failed delivery counts against the
// notification (number_of_failures) and is retried by the queue; once a notification has failed
// FAILURE_LIMIT times it is no longer sent until its failures are reset.
import { sql } from 'kysely';
import type { Services } from './context.ts';
import { escapeHtml, mailTitle, sendMail } from './mailer.ts';
import { outboundPolicy, outboundRequest } from './outbound.ts';
import { createUserNotification } from './user-notifications.ts';
import { EVENTS, FAILURE_LIMIT, quayNotificationTargets, type DeliveryPayload, type EventData, type EventLevel } from './notifications.ts';

/** Quay's NOTIFICATION_SEND_TIMEOUT (seconds). */
function sendTimeoutMs(s: Services): number {
  const v = Number(s.config.raw.NOTIFICATION_SEND_TIMEOUT ?? 10);
  return (Number.isFinite(v) && v > 0 ? v : 10) * 1000;
}

export class DeliveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeliveryError';
  }
}

export type DeliveryOutcome = 'sent' | 'gone' | 'disabled';

/** Runs one delivery; throws (after counting the failure) when the method could not deliver. */
export async function deliverNotification(s: Services, payload: DeliveryPayload, signal?: AbortSignal): Promise<DeliveryOutcome> {
  const row = await s.db.selectFrom('repo_notifications').selectAll().where('uuid', '=', payload.notification_uuid).executeTakeFirst();
  if (!row) return 'gone';
  if (Number(row.number_of_failures) >= FAILURE_LIMIT) return 'disabled';
  const spec = EVENTS[row.event];
  if (!spec) return 'gone';
  const data = payload.event_data;
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(row.config) as Record<string, unknown>;
  } catch {
    config = {};
  }
  try {
    const summary = spec.summary(data);
    const message = eventMessage(row.event, data);
    switch (row.method) {
      case 'webhook':
        await post(s, String(config.url ?? ''), data, 'webhook', signal);
        break;
      case 'slack':
        await post(s, String(config.url ?? ''), slackPayload(summary, message, spec.level), 'Slack', signal);
        break;
      case 'email':
        await sendMail(s, {
          to: String(config.email ?? ''), subject: `[${mailTitle(s)}] ${summary}`, html: message,
          text: `${summary}\n\n${String(data.homepage ?? '')}\n`,
        });
        break;
      case 'quay_notification': {
        const targets = await quayNotificationTargets(s, String(data.namespace ?? ''), config);
        if (typeof targets === 'string') throw new DeliveryError(targets);
        for (const userId of new Set(targets)) await createUserNotification(s, userId, row.event, data);
        break;
      }
      default:
        throw new DeliveryError(`Unknown notification method '${row.method}'`);
    }
  } catch (err) {
    await s.db.updateTable('repo_notifications').set({ number_of_failures: sql`number_of_failures + 1` }).where('id', '=', row.id).execute();
    throw err;
  }
  return 'sent';
}

async function post(s: Services, url: string, body: unknown, what: string, signal?: AbortSignal): Promise<void> {
  if (!url) throw new DeliveryError(`Missing ${what} URL`);
  const res = await outboundRequest(outboundPolicy(s.config), url, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), timeoutMs: sendTimeoutMs(s), maxRedirects: 0,
    ...(signal ? { signal } : {}),
  });
  res.body.resume();
  if (Math.floor(res.status / 100) !== 2) throw new DeliveryError(`${res.status} response for ${what} to url: ${url}`);
}

/** The HTML body of e-mails (and, reformatted, Slack attachments). */
export function eventMessage(event: string, d: EventData): string {
  const repo = `<a href="${escapeHtml(String(d.homepage ?? ''))}">${escapeHtml(String(d.repository ?? d.namespace ?? ''))}</a>`;
  const list = (v: unknown) => (Array.isArray(v) ? v.map((x) => `<b>${escapeHtml(String(x))}</b>`).join(', ') : '');
  switch (event) {
    case 'repo_push':
      return `Repository ${repo} has been pushed with the following tags updated:<br><br>${list(d.updated_tags)}`;
    case 'quota_warning':
    case 'quota_error':
      return `Namespace ${repo}: ${escapeHtml(EVENTS[event]!.summary(d))}`;
    case 'vulnerability_found':
      return `A vulnerability was found in repository ${repo}, tags ${list(d.tags)}`;
    default:
      return `${escapeHtml(EVENTS[event]?.summary(d) ?? event)}: ${repo}`;
  }
}

const SLACK_COLORS: Record<EventLevel, string> = { info: '#ffffff', warning: 'warning', error: 'danger', success: 'good', primary: 'good' };

/** Slack's mrkdwn from our HTML: links become <url|text>, bold *x*, italics _x_, <br> newlines. */
export function slackText(html: string): string {
  return html.replace(/\n/g, '').replace(/\s+/g, ' ').replace(/<br\s*\/?>/g, '\n')
    .replace(/<a\s+href="([^"]*)"[^>]*>/g, '<$1|').replace(/<\/a>/g, '>')
    .replace(/<\/?(b|strong)>/g, '*').replace(/<\/?i>/g, '_').replace(/<img[^>]*>/g, '')
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

function slackPayload(summary: string, message: string, level: EventLevel) {
  return {
    text: summary,
    username: 'quayiobot',
    attachments: [{ fallback: summary, text: slackText(message), color: SLACK_COLORS[level], mrkdwn_in: ['text'] }],
  };
}

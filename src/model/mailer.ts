// Outgoing e-mail through the SMTP server Quay's MAIL_* keys name (Flask-Mail's settings and
// defaults: localhost:25, STARTTLS when MAIL_USE_TLS, implicit TLS when MAIL_USE_SSL).
import type { Services } from './context.ts';

export interface MailMessage {
  to: string;
  subject: string;
  html: string;
  text: string;
}

function mailSettings(s: Services) {
  const raw = s.config.raw;
  const str = (k: string) => (typeof raw[k] === 'string' && raw[k] !== '' ? (raw[k] as string) : undefined);
  const port = Number(raw.MAIL_PORT ?? 25);
  return {
    host: str('MAIL_SERVER') ?? 'localhost',
    port: Number.isInteger(port) && port > 0 ? port : 25,
    secure: raw.MAIL_USE_SSL === true,
    requireTLS: raw.MAIL_USE_TLS === true,
    auth: str('MAIL_USERNAME') !== undefined && raw.MAIL_USE_AUTH !== false ? { user: str('MAIL_USERNAME')!, pass: str('MAIL_PASSWORD') ?? '' } : undefined,
    from: str('MAIL_DEFAULT_SENDER') ?? 'support@quay.io',
  };
}

/** Sends one message; throws when the server refuses it (callers retry through the queue). */
export async function sendMail(s: Services, msg: MailMessage): Promise<void> {
  const m = mailSettings(s);
  // Loaded on first use: most installations never send mail from this process.
  const { createTransport } = await import('nodemailer');
  const transport = createTransport({
    host: m.host, port: m.port, secure: m.secure, requireTLS: m.requireTLS, auth: m.auth,
    connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000,
  });
  try {
    await transport.sendMail({ from: m.from, to: msg.to, subject: msg.subject, html: msg.html, text: msg.text });
  } finally {
    transport.close();
  }
}

/** Quay's REGISTRY_TITLE_SHORT, prefixed to every subject as "[title] subject". */
export function mailTitle(s: Services): string {
  const t = s.config.raw.REGISTRY_TITLE_SHORT;
  return typeof t === 'string' && t ? t : s.config.registryTitle;
}

export function escapeHtml(v: string): string {
  return v.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

// A real SMTP server on 127.0.0.1:<ephemeral> (the smtp-server package) that keeps every message it
// receives, for tests of features that send e-mail: point MAIL_SERVER/MAIL_PORT at it.
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  /** Decoded header values (last one wins). */
  headers: Record<string, string>;
  subject: string;
  /** The text/plain and text/html parts, transfer-decoded. */
  text: string;
  html: string;
  raw: string;
}

export interface SmtpSink {
  port: number;
  mails: ReceivedMail[];
  /** The mail settings to merge into a test config. */
  config: Record<string, unknown>;
  /** Resolves once `count` mails have arrived in total (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

function decodeBody(body: string, encoding: string | undefined): string {
  const enc = (encoding ?? '').toLowerCase();
  if (enc === 'quoted-printable') {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

function parseHeaders(head: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

/** RFC 2047 encoded words (=?UTF-8?Q?…?= / =?UTF-8?B?…?=) in a header value. */
function decodeWords(v: string): string {
  return v.replace(/=\?([^?]+)\?([QB])\?([^?]*)\?=\s*/gi, (_m, _cs: string, kind: string, text: string) => (kind.toUpperCase() === 'B'
    ? Buffer.from(text, 'base64').toString('utf8')
    : decodeBody(text.replace(/_/g, ' '), 'quoted-printable')));
}

/** Splits a MIME message into its text/plain and text/html parts (one level of multipart nesting is enough for nodemailer). */
function parseMessage(raw: string): { headers: Record<string, string>; text: string; html: string } {
  const split = (msg: string) => {
    const at = msg.search(/\r?\n\r?\n/);
    return at < 0 ? { head: msg, body: '' } : { head: msg.slice(0, at), body: msg.slice(at).replace(/^\r?\n\r?\n/, '') };
  };
  const top = split(raw);
  const headers = parseHeaders(top.head);
  let text = '';
  let html = '';
  const visit = (h: Record<string, string>, body: string) => {
    const type = h['content-type'] ?? 'text/plain';
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (/^multipart\//i.test(type) && boundary) {
      for (const part of body.split(`--${boundary}`).slice(1)) {
        if (part.startsWith('--')) break;
        const p = split(part.replace(/^\r?\n/, ''));
        visit(parseHeaders(p.head), p.body);
      }
    } else if (/^text\/html/i.test(type)) html += decodeBody(body, h['content-transfer-encoding']);
    else if (/^text\/plain/i.test(type)) text += decodeBody(body, h['content-transfer-encoding']);
  };
  visit(headers, top.body);
  return { headers, text, html };
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const parsed = parseMessage(raw);
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          headers: parsed.headers,
          subject: decodeWords(parsed.headers.subject ?? ''),
          text: parsed.text,
          html: parsed.html,
          raw,
        });
        for (const w of waiters.splice(0)) w();
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    mails,
    config: { MAIL_SERVER: '127.0.0.1', MAIL_PORT: port, MAIL_USE_TLS: false, MAIL_DEFAULT_SENDER: 'registry@example.com' },
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (mails.length < count) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${count} mails, got ${mails.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => { clearTimeout(timer); resolve(); });
        });
      }
      return mails.slice(0, count);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

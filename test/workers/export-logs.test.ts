// Log export end to end: POST …/exportlogs queues a job; the export_action_logs handler (taken
// from workerHandlers(), so its registration is tested too) streams the file to storage, POSTs
// Quay's callback body to a local receiver and mails a local SMTP server; the link it hands out
// downloads the file until it expires.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import pino from 'pino';
import { SMTPServer } from 'smtp-server';
import { createWorld, type World } from '../support/world.ts';
import { logAction } from '../../src/model/logs.ts';
import { principalFor, type Principal, type Services } from '../../src/model/context.ts';
import { claim, complete, enqueue, type Job } from '../../src/model/queue.ts';
import { EXPORT_QUEUE, type ExportJob } from '../../src/model/log-export.ts';
import { workerHandlers } from '../../src/workers/index.ts';

interface Mail { to: string[]; from: string; raw: string }
interface Callback { body: any; contentType: string | undefined }

let w: World;
let s: Services;
let orgadmin: Principal;
let smtp: SMTPServer;
let smtpPort: number;
let receiver: Server;
let receiverPort: number;
let receiverStatus = 200;
const mails: Mail[] = [];
const callbacks: Callback[] = [];
const silent = pino({ level: 'silent' });

const utc = (y: number, m: number, d: number, h = 12, min = 0, sec = 0) => Date.UTC(y, m - 1, d, h, min, sec);

async function at<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const real = s.now;
  s.now = () => ms;
  try {
    return await fn();
  } finally {
    s.now = real;
  }
}

async function json(res: Response): Promise<any> {
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

/** Claims and runs every due export job with the registered handler; returns what each did. */
async function runExports(now?: number): Promise<{ job: Job; error: unknown }[]> {
  const handler = workerHandlers(s)[EXPORT_QUEUE];
  assert.ok(handler, 'the export handler is registered in workerHandlers()');
  const jobs = await (now ? at(now, () => claim(s, EXPORT_QUEUE, { leaseMs: 60_000, limit: 20 })) : claim(s, EXPORT_QUEUE, { leaseMs: 60_000, limit: 20 }));
  const out: { job: Job; error: unknown }[] = [];
  for (const job of jobs) {
    try {
      await handler(job, new AbortController().signal, silent);
      await complete(s, job);
      out.push({ job, error: null });
    } catch (e) {
      out.push({ job, error: e });
    }
  }
  return out;
}

/** The text/plain part of a raw message, transfer-decoded. */
function plainText(raw: string): string {
  const parts = raw.split(/\r?\n--[^\r\n]+\r?\n/);
  const part = parts.find((p) => /content-type:\s*text\/plain/i.test(p)) ?? raw;
  const [head, ...rest] = part.split(/\r?\n\r?\n/);
  const body = rest.join('\n\n');
  if (/content-transfer-encoding:\s*base64/i.test(head!)) return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (/content-transfer-encoding:\s*quoted-printable/i.test(head!)) {
    return body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
  return body;
}

before(async () => {
  smtp = new SMTPServer({
    authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  smtpPort = (smtp.server.address() as AddressInfo).port;

  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      callbacks.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')), contentType: req.headers['content-type'] });
      res.writeHead(receiverStatus).end('ok');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverPort = (receiver.address() as AddressInfo).port;

  w = await createWorld({
    FEATURE_LOG_EXPORT: true,
    MAIL_SERVER: '127.0.0.1', MAIL_PORT: smtpPort, MAIL_USE_TLS: false, MAIL_DEFAULT_SENDER: 'registry@example.com',
    REGISTRY_TITLE_SHORT: 'Quayside Test',
    QUAYSIDE_OUTBOUND_ALLOWLIST: ['127.0.0.1'],
  });
  s = w.t.app.services;
  orgadmin = principalFor(w.users.orgadmin, 'password');
  const repo = (await s.db.selectFrom('repositories').select('id').where('name', '=', 'repo').executeTakeFirstOrThrow()).id;
  await at(utc(2024, 3, 1, 9, 30, 15), () => logAction(s, 'push_repo', { namespaceId: w.org.id, repositoryId: repo, performer: orgadmin, ip: '10.0.0.1', metadata: { tag: 'v1' } }));
  await at(utc(2024, 3, 2, 8), () => logAction(s, 'org_change_email', { namespaceId: w.org.id, performer: orgadmin, metadata: { email: 'new@example.com' } }));
  await at(utc(2024, 3, 9, 8), () => logAction(s, 'delete_tag', { namespaceId: w.org.id, repositoryId: repo, performer: orgadmin }));
});

after(async () => {
  await w?.close();
  await new Promise((r) => receiver?.close(r));
  await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
});

beforeEach(() => {
  mails.length = 0;
  callbacks.length = 0;
  receiverStatus = 200;
});

const callbackUrl = () => `http://127.0.0.1:${receiverPort}/hook`;

describe('POST /api/v1/organization/{orgname}/exportlogs', () => {
  test('queues an export; the worker writes the file, calls back with Quay\'s body and e-mails the link', async () => {
    const res = await w.api('POST', '/organization/acme/exportlogs?starttime=03/01/2024&endtime=03/02/2024', {
      scopes: ['org:admin'], body: { callback_url: callbackUrl(), callback_email: 'ops@example.com' },
    });
    assert.equal(res.status, 200);
    const { export_id: exportId, ...rest } = await json(res);
    assert.deepEqual(rest, {});
    assert.match(exportId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const logged = await s.db.selectFrom('logs').select(['kind', 'metadata', 'account_id', 'performer_id']).where('kind', '=', 'export_logs_success').execute();
    assert.equal(logged.length, 1);
    assert.deepEqual(JSON.parse(logged[0]!.metadata), { url: callbackUrl(), email: 'ops@example.com', export_id: exportId });
    assert.equal(logged[0]!.account_id, w.org.id);
    assert.equal(logged[0]!.performer_id, w.users.orgadmin.id);

    const ran = await runExports();
    assert.equal(ran.length, 1);
    assert.equal(ran[0]!.error, null);
    const payload = ran[0]!.job.payload as ExportJob;
    assert.equal(payload.export_id, exportId);

    assert.equal(callbacks.length, 1);
    assert.equal(callbacks[0]!.contentType, 'application/json');
    const cb = callbacks[0]!.body;
    assert.deepEqual(Object.keys(cb).sort(), ['end_time', 'export_id', 'exported_data_url', 'namespace', 'repository', 'start_time', 'status']);
    assert.deepEqual({ ...cb, exported_data_url: undefined }, {
      export_id: exportId, start_time: '03/01/2024', end_time: '03/03/2024', namespace: 'acme', repository: null, status: 'success', exported_data_url: undefined,
    });
    const url = new URL(cb.exported_data_url);
    assert.equal(url.origin, w.t.url);
    assert.match(url.pathname, new RegExp(`^/api/v1/exportedlogs/${exportId}-[0-9a-f-]{36}$`));

    assert.equal(mails.length, 1);
    assert.deepEqual(mails[0]!.to, ['ops@example.com']);
    assert.equal(mails[0]!.from, 'registry@example.com');
    assert.match(mails[0]!.raw, /^Subject: \[Quayside Test\] Export Action Logs Complete\r?$/m);
    const text = plainText(mails[0]!.raw);
    assert.ok(text.includes(`Export ID: ${exportId}`), text);
    assert.ok(text.includes(cb.exported_data_url), text);
    assert.ok(text.includes('will remain accessible for 3600 seconds'), text);

    // The link downloads the document: Quay's layout, oldest first, ending with the terminator.
    const dl = await fetch(cb.exported_data_url);
    assert.equal(dl.status, 200);
    assert.match(dl.headers.get('content-type') ?? '', /^application\/json/);
    const doc = await dl.json() as any;
    assert.equal(doc.export_id, exportId);
    assert.deepEqual(doc.details, {
      start_time: 'Fri, 01 Mar 2024 00:00:00 -0000', end_time: 'Sun, 03 Mar 2024 00:00:00 -0000', namespace: 'acme', repository: null,
    });
    assert.deepEqual(doc.logs.map((l: any) => l.kind), ['push_repo', 'org_change_email', undefined]);
    assert.deepEqual(doc.logs.at(-1), { terminator: true });
    assert.deepEqual(Object.keys(doc.logs[0]).sort(), ['datetime', 'ip', 'kind', 'metadata', 'performer']);
    assert.equal(doc.logs[0].datetime, 'Fri, 01 Mar 2024 09:30:15 -0000');
    assert.equal(doc.logs[0].performer.name, 'orgadmin');

    // Tampered or expired links are refused; once the expiry job runs the file is gone.
    const forged = new URL(cb.exported_data_url);
    forged.searchParams.set('expires', String(Number(forged.searchParams.get('expires')) + 3600));
    assert.equal((await fetch(forged)).status, 403);
    const other = new URL(cb.exported_data_url);
    other.pathname = other.pathname.replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    assert.equal((await fetch(other)).status, 403);
    const later = Date.now() + 3601 * 1000;
    assert.equal(await at(later, async () => (await fetch(cb.exported_data_url)).status), 403);
    const expired = await runExports(later);
    assert.deepEqual(expired.map((r) => [(r.job.payload as { op: string }).op, r.error]), [['expire', null]]);
    assert.equal((await fetch(cb.exported_data_url)).status, 404);
  });

  test('bad callback targets and windows are 400 {"message"} with a failure log, and nothing is queued', async () => {
    const cases: [string, unknown, string][] = [
      ['', { callback_url: 'ftp://example.com/x' }, 'Invalid callback URL'],
      ['', { callback_email: 'not-an-address' }, 'Invalid callback e-mail'],
      ['?starttime=03/09/2024&endtime=03/01/2024', { callback_email: 'ops@example.com' }, 'Invalid time span selected'],
    ];
    for (const [query, body, message] of cases) {
      const res = await w.api('POST', `/organization/acme/exportlogs${query}`, { scopes: ['org:admin'], body });
      assert.equal(res.status, 400, message);
      assert.deepEqual(await json(res), { message });
      const failure = await s.db.selectFrom('logs').select('metadata').where('kind', '=', 'export_logs_failure').orderBy('id', 'desc').executeTakeFirstOrThrow();
      assert.equal(JSON.parse(failure.metadata).error, message);
    }
    const wrongType = await w.api('POST', '/organization/acme/exportlogs', { scopes: ['org:admin'], body: { callback_url: 42 } });
    assert.equal(wrongType.status, 400);
    assert.equal((await json(wrongType)).detail, "42 is not of type 'string' (field 'callback_url')");
    const missing = await w.api('POST', '/organization/acme/exportlogs', { scopes: ['org:admin'] });
    assert.equal(missing.status, 400);
    assert.equal((await json(missing)).detail, 'Missing JSON body');
    const queued = await s.db.selectFrom('jobs').select('id').where('queue', '=', EXPORT_QUEUE).where('available_at', '<=', Date.now()).execute();
    assert.deepEqual(queued, []);
  });
});

describe('callbacks through the outbound guard', () => {
  test('a callback to a blocked address is skipped (not retried), the e-mail still goes out', async () => {
    for (const target of ['http://169.254.169.254/latest/meta-data/', 'http://10.0.0.7/hook', 'http://localhost:9/hook']) {
      const res = await w.api('POST', '/organization/acme/exportlogs?starttime=03/01/2024&endtime=03/01/2024', {
        scopes: ['org:admin'], body: { callback_url: target, callback_email: 'ops@example.com' },
      });
      assert.equal(res.status, 200, target);
    }
    const ran = await runExports();
    assert.equal(ran.length, 3);
    assert.deepEqual(ran.map((r) => r.error), [null, null, null]);
    assert.equal(callbacks.length, 0);
    assert.equal(mails.length, 3);
  });

  test('a callback answering non-200 fails the job so the queue retries it', async () => {
    receiverStatus = 500;
    const res = await w.api('POST', '/organization/acme/exportlogs', { scopes: ['org:admin'], body: { callback_url: callbackUrl() } });
    assert.equal(res.status, 200);
    const ran = await runExports();
    assert.equal(ran.length, 1);
    assert.match(String(ran[0]!.error), /answered 500/);
    assert.equal(callbacks.length, 1);
    assert.equal(callbacks[0]!.body.status, 'success');
    // Out of the way of the next tests (its retry would otherwise come due during them).
    await s.db.deleteFrom('jobs').where('id', '=', ran[0]!.job.id).execute();
  });
});

describe('reporting failures', () => {
  test('a job that cannot be read reports "invalidrequest" to the callback and by mail, without a link', async () => {
    await enqueue(s, EXPORT_QUEUE, {
      op: 'export', export_id: 'broken-1', namespace_id: w.org.id, namespace_name: 'acme', repository_id: null, repository_name: null,
      start: null, end: null, start_time: '', end_time: '', callback_url: callbackUrl(), callback_email: 'ops@example.com', base_url: w.t.url,
    });
    const ran = await runExports();
    assert.deepEqual(ran.map((r) => r.error), [null]);
    assert.equal(callbacks.length, 1);
    assert.equal(callbacks[0]!.body.status, 'invalidrequest');
    assert.equal(callbacks[0]!.body.exported_data_url, null);
    assert.ok(plainText(mails[0]!.raw).includes('failed due to an invalid request'));
  });
});

describe('repository and user exports', () => {
  test('a repository export holds only that repository, streamed in batches', async () => {
    const other = await s.db.selectFrom('repositories').select('id').where('name', '=', 'repo').executeTakeFirstOrThrow();
    // 2,500 entries: more than two of the exporter's 1,000-row batches.
    const base = utc(2024, 4, 10, 0);
    for (let i = 0; i < 2500; i += 250) {
      const rows = Array.from({ length: 250 }, (_, k) => ({
        kind: 'pull_repo', account_id: w.org.id, performer_id: null, repository_id: other.id, ip: null,
        metadata: JSON.stringify({ n: i + k }), datetime: base + Math.floor((i + k) / 3) * 1000,
      }));
      await s.db.insertInto('logs').values(rows).execute();
    }
    await at(base + 5000, () => logAction(s, 'org_change_email', { namespaceId: w.org.id, performer: orgadmin }));
    const res = await w.api('POST', '/repository/acme/repo/exportlogs?starttime=04/10/2024&endtime=04/10/2024', {
      scopes: ['repo:admin'], body: { callback_url: callbackUrl() },
    });
    assert.equal(res.status, 200);
    const ran = await runExports();
    assert.equal(ran[0]!.error, null);
    const cb = callbacks[0]!.body;
    assert.equal(cb.repository, 'repo');
    const doc = await (await fetch(cb.exported_data_url)).json() as any;
    assert.equal(doc.details.repository, 'repo');
    const entries = doc.logs.slice(0, -1);
    assert.equal(entries.length, 2500);
    assert.deepEqual(entries.map((e: any) => e.metadata.n), Array.from({ length: 2500 }, (_, i) => i));
    assert.ok(entries.every((e: any) => e.kind === 'pull_repo'));
  });

  test('a user export covers the caller\'s own namespace', async () => {
    const me = w.users.member;
    await at(utc(2024, 2, 2), () => logAction(s, 'user_change_email', { namespaceId: me.id, performer: principalFor(me, 'password') }));
    const res = await w.api('POST', '/user/exportlogs?starttime=02/02/2024&endtime=02/02/2024', { caller: 'member', scopes: ['user:admin'], body: { callback_url: callbackUrl() } });
    assert.equal(res.status, 200);
    assert.equal((await runExports())[0]!.error, null);
    assert.equal(callbacks[0]!.body.namespace, 'member');
    const doc = await (await fetch(callbacks[0]!.body.exported_data_url)).json() as any;
    assert.deepEqual(doc.logs.map((l: any) => l.kind), ['user_change_email', undefined]);
  });
});

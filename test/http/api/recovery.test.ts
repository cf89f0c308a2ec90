// Password recovery by e-mail over real HTTP and a real SMTP server: POST /api/v1/recovery (same
// answer whether or not the address is known), the organization case, the superuser's
// sendrecovery, and the /recovery?code= link that signs the user in to set a new password.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '../../support/smtp-server.ts';
import { startTestApp } from '../../support/app.ts';
import { sha256Hex } from '../../../src/model/crypto.ts';
import { redactName } from '../../../src/model/recovery.ts';
import { INVALID_RECOVERY_CODE } from '../../../src/http/web/recovery.ts';
import { Browser } from './browser.ts';
import { isApiError } from './client.ts';
import { json } from '../../support/api-expect.ts';

let w: World;
let smtp: SmtpSink;
before(async () => {
  smtp = await startSmtpSink();
  w = await createWorld({ FEATURE_MAILING: true, REGISTRY_TITLE_SHORT: 'Quayside Test', ...smtp.config });
});
after(async () => {
  await w?.close();
  await smtp?.close();
});

const recover = (email: string) => w.api('POST', '/recovery', { caller: 'anonymous', body: { email } });

function codeIn(mail: ReceivedMail): string {
  const m = /\/recovery\?code=([A-Za-z0-9]+)/.exec(mail.text);
  assert.ok(m, `no recovery link in ${mail.text}`);
  assert.ok(mail.html.includes(`/recovery?code=${m[1]}`), 'the HTML part carries the same link');
  return m[1]!;
}

describe('POST /api/v1/recovery', () => {
  test('an unknown address and a known one get the same answer; only the known one gets mail', async () => {
    const before = smtp.mails.length;
    const unknown = await json(await recover('nobody@example.com'));
    assert.equal(unknown.status, 200);
    assert.deepEqual(unknown.body, { status: 'sent' });
    const known = await json(await recover('member@example.com'));
    assert.deepEqual(known, { status: 200, body: { status: 'sent' } });
    const [mail] = (await smtp.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail!.to, ['member@example.com']);
    assert.equal(mail!.from, 'registry@example.com');
    assert.equal(mail!.subject, '[Quayside Test] Account recovery');
    assert.ok(mail!.text.startsWith('A user at Quayside Test has attempted to recover their access'));
    const code = codeIn(mail!);
    assert.ok(mail!.text.includes(`${w.t.url}/recovery?code=${code}`), 'the link points at this registry');
    // Stored hashed: the row holds a lookup prefix and the SHA-256 of the rest, never the code.
    const rows = await w.t.app.services.db.selectFrom('recovery_codes').selectAll().where('user_id', '=', w.users.member.id).execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.code_prefix, code.slice(0, 20));
    assert.equal(rows[0]!.code_hash, sha256Hex(code.slice(20)));
    assert.ok(!JSON.stringify(rows).includes(code.slice(20)));
    assert.ok(rows[0]!.expires_at - rows[0]!.created_at === 30 * 60 * 1000, 'USER_RECOVERY_TOKEN_LIFETIME defaults to 30m');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(smtp.mails.length, before + 1, 'nothing was sent for the unknown address');
  });

  test("an organization's address names the organization (redacted) and mails its admins' usernames", async () => {
    const before = smtp.mails.length;
    const r = await json(await recover('acme@example.com'));
    assert.deepEqual(r, { status: 200, body: { status: 'org', orgemail: 'acme@example.com', orgname: 'a\u2022\u2022e' } });
    const [mail] = (await smtp.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail!.to, ['acme@example.com']);
    assert.equal(mail!.subject, '[Quayside Test] Organization acme recovery');
    assert.ok(mail!.text.includes('  - orgadmin'));
    assert.ok(!/recovery\?code=/.test(mail!.text), 'organizations have no password to recover');
  });

  test("Quay's redaction keeps the first and last third", () => {
    assert.equal(redactName('ab'), 'ab');
    assert.equal(redactName('acme'), 'a\u2022\u2022e');
    assert.equal(redactName('buynlarge'), 'bu\u2022\u2022\u2022\u2022\u2022ge');
  });

  test('the body is validated like Quay (email required)', async () => {
    const r = await json(await w.api('POST', '/recovery', { caller: 'anonymous', body: {} }));
    assert.equal(r.status, 400);
    assert.ok(isApiError(r.body, 400, 'invalid_request', w.t.url));
  });
});

describe('GET /recovery?code=', () => {
  async function mailedCode(email: string): Promise<string> {
    const before = smtp.mails.length;
    assert.equal((await recover(email)).status, 200);
    return codeIn((await smtp.waitFor(before + 1))[before]!);
  }

  test('signs the user in (fresh) so a new password can be set; the code works once', async () => {
    const code = await mailedCode('creator@example.com');
    const b = new Browser(w.t.url);
    const landed = await b.request('GET', `/recovery?code=${code}`);
    assert.equal(landed.status, 302);
    assert.equal(landed.headers.get('location'), '/user/creator?tab=settings&action=password');
    assert.ok(b.csrf, 'the login hands out a CSRF token');
    const me = await b.request('GET', '/api/v1/user/');
    assert.equal(me.body.username, 'creator');
    // Fresh login: the password change goes through without /signin/verify.
    const changed = await b.request('PUT', '/api/v1/user/', { json: { password: 'recovered-pass1' }, csrf: true });
    assert.equal(changed.status, 200, changed.text);
    assert.equal((await new Browser(w.t.url).signIn('creator', 'recovered-pass1')).status, 200);
    assert.equal((await new Browser(w.t.url).signIn('creator', PASSWORD)).status, 403);

    const again = new Browser(w.t.url);
    const reused = await again.request('GET', `/recovery?code=${code}`);
    assert.equal(reused.status, 200);
    assert.ok(reused.text.includes(INVALID_RECOVERY_CODE));
    assert.equal(again.cookies.size, 0, 'no session for a spent code');
  });

  test('an expired code, a tampered code and a made-up code sign nobody in', async () => {
    const s = w.t.app.services;
    const code = await mailedCode('outsider@example.com');
    const tampered = code.slice(0, 20) + 'x'.repeat(code.length - 20);
    const r1 = await new Browser(w.t.url).request('GET', `/recovery?code=${tampered}`);
    assert.ok(r1.text.includes(INVALID_RECOVERY_CODE));
    const r2 = await new Browser(w.t.url).request('GET', '/recovery?code=nope');
    assert.ok(r2.text.includes(INVALID_RECOVERY_CODE));
    // The tampered attempt did not spend the real code; expiry does.
    await s.db.updateTable('recovery_codes').set({ expires_at: Date.now() - 1 }).where('code_prefix', '=', code.slice(0, 20)).execute();
    const b = new Browser(w.t.url);
    const expired = await b.request('GET', `/recovery?code=${code}`);
    assert.equal(expired.status, 200);
    assert.ok(expired.text.includes(INVALID_RECOVERY_CODE));
    assert.equal(b.cookies.size, 0);
    assert.equal((await s.db.selectFrom('recovery_codes').select('id').where('code_prefix', '=', code.slice(0, 20)).execute()).length, 0);
  });

  test('a code also marks the e-mail address verified', async () => {
    const s = w.t.app.services;
    await s.db.updateTable('users').set({ verified: 0 }).where('id', '=', w.users.outsider.id).execute();
    const code = await mailedCode('outsider@example.com');
    assert.equal((await new Browser(w.t.url).request('GET', `/recovery?code=${code}`)).status, 302);
    const row = await s.db.selectFrom('users').select('verified').where('id', '=', w.users.outsider.id).executeTakeFirstOrThrow();
    assert.equal(row.verified, 1);
  });
});

describe('POST /api/v1/superusers/users/{username}/sendrecovery', () => {
  const path = (u: string) => `/superusers/users/${u}/sendrecovery`;

  test('mails the user a working code and answers with the address', async () => {
    const before = smtp.mails.length;
    const r = await json(await w.api('POST', path('member'), { caller: 'superuser', scopes: ['super:user'] }));
    assert.deepEqual(r, { status: 200, body: { email: 'member@example.com' } });
    assert.equal(smtp.mails.length, before + 1, 'sent before answering');
    const code = codeIn(smtp.mails[before]!);
    assert.equal((await new Browser(w.t.url).request('GET', `/recovery?code=${code}`)).status, 302);
  });

  test('unknown users and organizations are 404; superusers cannot be recovered this way', async () => {
    for (const u of ['nosuchuser', 'acme', 'acme+bot']) {
      const r = await json(await w.api('POST', path(u), { caller: 'superuser' }));
      assert.equal(r.status, 404, u);
      assert.ok(isApiError(r.body, 404, 'not_found', w.t.url));
    }
    const su = await json(await w.api('POST', path('root'), { caller: 'superuser' }));
    assert.equal(su.status, 400);
    assert.equal(su.body.detail, 'Cannot send a recovery email for a superuser');
  });

  test('a superuser cookie session must be fresh', async () => {
    const b = new Browser(w.t.url);
    assert.equal((await b.signIn('root', PASSWORD)).status, 200);
    await w.t.app.services.db.updateTable('sessions').set({ login_time: Date.now() - 11 * 60 * 1000 }).where('user_id', '=', w.users.root.id).execute();
    const stale = await b.request('POST', `/api/v1${path('member')}`, { csrf: true });
    assert.equal(stale.status, 401);
    assert.ok(isApiError(stale.body, 401, 'fresh_login_required', w.t.url));
  });
});

test('without FEATURE_MAILING neither the endpoints nor the page exist', async () => {
  const t = await startTestApp({ SUPER_USERS: ['root'] });
  try {
    const r = await fetch(`${t.url}/api/v1/recovery`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":"a@b.c"}' });
    assert.equal(r.status, 404);
    await r.arrayBuffer();
    const page = await fetch(`${t.url}/recovery?code=x`);
    assert.equal(page.status, 404);
    await page.arrayBuffer();
  } finally {
    await t.close();
  }
});

// Credentials a signed-in web user hands out, used by skopeo against /v2/: a robot account and an
// app-specific token, each created through the API with the browser's session cookie and CSRF
// token (as the web UI does), then pushed and pulled with, then revoked. Runs on the database
// QUAYSIDE_TEST_DB selects.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copy, createClientContext, inspect, login } from '../support/clients.ts';
import type { ClientContext, RunResult } from '../support/clients.ts';
import { buildBusyboxImage } from '../support/images.ts';
import type { BuiltImage } from '../support/images.ts';
import { startTestApp } from '../support/app.ts';
import type { TestApp } from '../support/app.ts';
import { createUser } from '../../src/model/accounts.ts';
import { Browser } from '../http/api/browser.ts';
import { failure, reportTimings, timed } from './e2e.ts';

const PASS = 'alice-secret-1';

let t: TestApp;
let web: Browser;
let image: BuiltImage;
const contexts: ClientContext[] = [];

reportTimings('tokens e2e');

async function context(): Promise<ClientContext> {
  const c = await createClientContext('e2e-tokens-');
  contexts.push(c);
  return c;
}

/** A call from the signed-in browser that must succeed. */
async function ui(method: string, path: string, json?: unknown): Promise<any> {
  const r = await web.request(method, `/api/v1${path}`, { json, csrf: true });
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.text}`);
  return r.body;
}

function assertRefused(r: RunResult, pattern: RegExp): void {
  assert.notEqual(r.code, 0, `expected a refusal: ${r.argv.join(' ')}\n${r.stdout}`);
  assert.match(r.stderr, pattern, failure(r));
  assert.doesNotMatch(r.stderr, /\b50\d\b|internal server error/i, failure(r));
}

before(async () => {
  t = await timed('start quayside', () => startTestApp());
  await createUser(t.app.services, { username: 'alice', password: PASS, email: 'alice@example.com' });
  web = new Browser(t.url);
  assert.equal((await web.signIn('alice', PASS)).status, 200);
  const c = await context();
  image = await timed('build layout', () => buildBusyboxImage(join(c.dir, 'layout')));
});

after(async () => {
  for (const c of contexts) await c.cleanup();
  await t?.close();
});

const at = (path: string) => `docker://${t.host}/${path}`;

test('a robot created in the web session pushes and pulls with skopeo where it was granted write, nowhere else', async () => {
  await ui('POST', '/organization/', { name: 'acme', email: 'acme@example.com' });
  const robot = await ui('PUT', '/organization/acme/robots/ci', { description: 'CI pushes' });
  assert.equal(robot.name, 'acme+ci');
  assert.match(robot.token, /^[A-Z0-9]{64}$/);
  await ui('POST', '/repository', { namespace: 'acme', repository: 'app', visibility: 'private', description: '' });
  await ui('POST', '/repository', { namespace: 'acme', repository: 'other', visibility: 'private', description: '' });
  await ui('PUT', `/repository/acme/app/permissions/user/${encodeURIComponent('acme+ci')}`, { role: 'write' });

  const c = await context();
  const ok = await timed('skopeo login (robot)', () => login('skopeo', t.host, 'acme+ci', robot.token, c));
  assert.match(ok.stdout, /Login Succeeded/);
  await timed('skopeo copy (robot push)', () => copy(image.ref, at('acme/app:1'), c));
  const { json } = await timed('skopeo inspect (robot)', () => inspect<{ Digest: string }>(at('acme/app:1'), c));
  assert.equal(json.Digest, image.manifestDigest);
  const denied = await timed('skopeo copy (robot, no permission)', () => copy(image.ref, at('acme/other:1'), { ...c, allowFailure: true }));
  assertRefused(denied, /denied|unauthorized|403/i);
  assert.equal((await web.request('GET', '/api/v1/repository/acme/app/tag/')).body.tags[0].name, '1');
});

test('an app token created in the web session works as $app with skopeo until it is revoked', async () => {
  const made = (await ui('POST', '/user/apptoken', { title: 'skopeo on my laptop' })).token;
  assert.match(made.token_code, /^[A-Z0-9]{120}$/);

  const c = await context();
  const ok = await timed('skopeo login ($app)', () => login('skopeo', t.host, '$app', made.token_code, c));
  assert.match(ok.stdout, /Login Succeeded/);
  await timed('skopeo copy ($app push)', () => copy(image.ref, at('alice/tools:1'), c));
  const { json } = await timed('skopeo inspect ($app)', () => inspect<{ Digest: string }>(at('alice/tools:1'), c));
  assert.equal(json.Digest, image.manifestDigest);
  const listed = await ui('GET', '/user/apptoken');
  assert.ok(listed.tokens.find((x: any) => x.uuid === made.uuid).last_accessed, 'use shows as last_accessed');

  await ui('DELETE', `/user/apptoken/${made.uuid}`);
  const after = await context();
  assertRefused(await login('skopeo', t.host, '$app', made.token_code, { ...after, allowFailure: true }), /invalid username\/password/i);
  const stale = await inspect(at('alice/tools:1'), { ...c, allowFailure: true });
  assert.notEqual(stale.result.code, 0, 'stored credentials stop working too');
});

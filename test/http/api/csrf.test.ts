// Every mutating /api/v1 route registered in the app refuses a cookie-authenticated call that lacks
// the session's CSRF token: the list comes from the API plugin itself, so routes added later by any
// area are covered without touching this test.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { createOrganization, createUser } from '../../../src/model/accounts.ts';
import { apiRoutesOf } from '../../../src/http/api/csrf.ts';
import { Browser } from './browser.ts';

const CSRF_FAIL = 'CSRF token was invalid or missing.';
// /bootstrap/renew is exempt only for a bearer call without a signed-in session (bootstrap.test.ts).
const EXEMPT = new Set(['/api/v1/user/initialize']);

let t: TestApp;
before(async () => {
  // Every optional area on, so feature-gated routes are registered and checked too.
  const features: Record<string, boolean> = {};
  for (const f of ['MAILING', 'QUOTA_MANAGEMENT', 'AUTO_PRUNE', 'IMMUTABLE_TAGS', 'REPO_MIRROR', 'PROXY_CACHE', 'BUILD_SUPPORT',
    'SECURITY_SCANNER', 'TEAM_SYNCING', 'SIGNING', 'ORG_MIRROR', 'PROGRAMMATIC_BOOTSTRAP', 'USER_RENAME', 'USER_METADATA']) {
    features[`FEATURE_${f}`] = true;
  }
  t = await startTestApp(features);
  const user = await createUser(t.app.services, { username: 'alice', password: 'password123', email: 'alice@example.com' });
  await createOrganization(t.app.services, 'acme', user);
});
after(async () => { await t?.close(); });

function concrete(url: string): string {
  return url.replace(/:repository__\d+/g, (m) => (m.endsWith('__0') ? 'acme' : 'repo')).replace(/:(\w+)/g, (_m, name: string) => {
    if (name === 'orgname') return 'acme';
    if (name === 'username') return 'alice';
    return `x-${name}`;
  });
}

test('every mutating API route refuses a cookie session without its CSRF token', async () => {
  const routes = apiRoutesOf(t.app.ctx).filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method));
  assert.ok(routes.length > 40, `expected the whole API, found ${routes.length} mutating routes`);
  const signedIn = new Browser(t.url);
  assert.equal((await signedIn.signIn('alice', 'password123')).status, 200);
  const anonymous = new Browser(t.url);
  await anonymous.fetchCsrf();

  const wrong: string[] = [];
  let checked = 0;
  for (const r of routes) {
    if (EXEMPT.has(r.url)) continue;
    const path = concrete(r.url);
    for (const [who, b] of [['alice', signedIn], ['anonymous', anonymous]] as const) {
      const res = await b.request(r.method, path, { json: {} });
      const want = who === 'alice' ? `${CSRF_FAIL} (authorized: user alice)` : CSRF_FAIL;
      if (res.status !== 403 || res.body?.error !== want) wrong.push(`${r.method} ${path} as ${who}: ${res.status} ${res.text.slice(0, 120)}`);
      checked++;
    }
  }
  assert.deepEqual(wrong, [], `routes that did not refuse:\n${wrong.join('\n')}`);
  assert.ok(checked > 80);
  // And the session is intact: the refusals changed nothing.
  assert.equal((await signedIn.request('GET', '/api/v1/user/')).body.username, 'alice');
});

test('the exempt routes are the ones Quay serves outside the CSRF-protected API', async () => {
  const b = new Browser(t.url);
  await b.fetchCsrf();
  // /user/initialize answers on its own terms (the database is not empty), not with a CSRF error.
  const init = await b.request('POST', '/api/v1/user/initialize', { json: { username: 'admin', password: 'password123' } });
  assert.notEqual(init.body?.error, CSRF_FAIL);
  assert.equal(init.status, 400);
});

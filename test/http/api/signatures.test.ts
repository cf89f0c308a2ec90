// GET /api/v1/repository/{repository}/signatures (FEATURE_SIGNING). Quayside has no TUF metadata
// service, so a trust-enabled repository answers what Quay answers when the service holds nothing
// for it; trust disabled is 404, and without the feature the route does not exist.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix } from '../../support/matrix.ts';
import { startTestApp } from '../../support/app.ts';
import { isApiError, userWithToken } from './client.ts';
import { json } from './images.ts';
import { createRepository, setVisibility } from '../../../src/model/repositories.ts';
import { ANONYMOUS, principalFor } from '../../../src/model/context.ts';

let w: World;
before(async () => { w = await createWorld({ FEATURE_SIGNING: true }); });
after(async () => { await w?.close(); });

const trust = async (repo: string, on: boolean) => {
  const res = await w.api('POST', `/repository/${repo}/changetrust`, { body: { trust_enabled: on } });
  assert.equal(res.status, 200);
};

test('trust disabled: not found; trust enabled: no TUF delegations', async () => {
  const off = await w.api('GET', '/repository/acme/repo/signatures', { caller: 'member' });
  assert.equal(off.status, 404);
  assert.ok(isApiError(await json(off), 404, 'not_found', w.t.url));
  await trust('acme/repo', true);
  try {
    const on = await w.api('GET', '/repository/acme/repo/signatures', { caller: 'member' });
    assert.equal(on.status, 200);
    assert.deepEqual(await json(on), { delegations: { targets: null } });
    assert.equal((await json(await w.api('GET', '/repository/acme/repo'))).trust_enabled, true);
  } finally {
    await trust('acme/repo', false);
  }
});

test('a public trust-enabled repository is readable by anyone; unknown repositories are not found', async () => {
  const { repo } = await createRepository(w.t.app.services, { namespace: w.org, name: 'signed', visibility: 'private', creator: principalFor(w.users.orgadmin, 'password') });
  await setVisibility(w.t.app.services, repo, 'public', ANONYMOUS);
  await trust('acme/signed', true);
  assert.equal((await w.api('GET', '/repository/acme/signed/signatures', { caller: 'anonymous' })).status, 200);
  assert.equal((await w.api('GET', '/repository/acme/signed/signatures', { caller: 'outsider' })).status, 200);
  assert.equal((await w.api('GET', '/repository/acme/nosuch/signatures')).status, 404);
  assert.equal((await w.api('GET', '/repository/acme/nosuch/signatures', { caller: 'outsider' })).status, 403);
});

test('signatures × callers', async () => {
  await trust('acme/repo', true);
  try {
    await runMatrix(w, [
      { method: 'GET', path: '/repository/acme/repo/signatures', scopes: ['repo:read'], expect: expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 200) },
    ]);
  } finally {
    await trust('acme/repo', false);
  }
});

test('without FEATURE_SIGNING the endpoint does not exist', async () => {
  const t = await startTestApp();
  try {
    const { token } = await userWithToken(t, 'alice', ['repo:read']);
    const { repo } = await createRepository(t.app.services, { namespace: { id: (await findUserId(t, 'alice')), username: 'alice', kind: 'user' }, name: 'app', visibility: 'private', creator: ANONYMOUS });
    // Trust on in the row, so only the missing route can explain a 404.
    await t.app.services.db.updateTable('repositories').set({ trust_enabled: 1 }).where('id', '=', repo.id).execute();
    const res = await fetch(`${t.url}/api/v1/repository/alice/app/signatures`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 404);
    assert.ok(isApiError(await res.json(), 404, 'not_found', t.url));
    const d = (await (await fetch(`${t.url}/api/v1/discovery`)).json()) as { paths: Record<string, unknown> };
    assert.equal(d.paths['/api/v1/repository/{repository}/signatures'], undefined);
  } finally {
    await t.close();
  }
  const d = (await json(await w.api('GET', '/discovery'))) as { paths: Record<string, any> };
  assert.equal(d.paths['/api/v1/repository/{repository}/signatures'].get.operationId, 'getRepoSignatures');
});

async function findUserId(t: { app: { services: import('../../../src/model/context.ts').Services } }, name: string): Promise<number> {
  return (await t.app.services.db.selectFrom('users').select('id').where('username', '=', name).executeTakeFirstOrThrow()).id;
}

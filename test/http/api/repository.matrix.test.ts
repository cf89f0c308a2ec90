// Permission matrix for /api/v1/repository: every endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { createRepository, findRepo } from '../../../src/model/repositories.ts';
import { principalFor } from '../../../src/model/context.ts';

let w: World;
before(async () => { w = await createWorld({ FEATURE_REPO_MIRROR: true, FEATURE_SIGNING: true }); });
after(async () => { await w?.close(); });

/** Moves a repository out of the way (as a deletion does) so the next caller starts clean. */
async function clear(w: World, name: string): Promise<void> {
  await w.t.app.services.db.updateTable('repositories').set({ name: `gone-${Math.random().toString(36).slice(2)}` })
    .where('namespace_id', '=', w.org.id).where('name', '=', name).execute();
}

async function ensure(w: World, name: string): Promise<void> {
  const s = w.t.app.services;
  if (!(await findRepo(s, 'acme', name))) await createRepository(s, { namespace: w.org, name, visibility: 'private', creator: principalFor(w.users.orgadmin, 'password') });
}

const readers = expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 200);
const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const adminsAndAuditor = (status: number) => expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], status);
const everyone = (status: number) => expectAll(['anonymous', 'outsider', 'member', 'creator', 'orgadmin', 'robot', 'oauthScoped', 'appToken', 'superuser', 'readonlySuperuser'], status);

export const repositoryRows: MatrixRow[] = [
  { method: 'GET', path: '/repository?namespace=acme', scopes: ['repo:read'], expect: everyone(200) },
  { method: 'GET', path: '/repository', scopes: ['repo:read'], expect: everyone(400) },
  {
    method: 'POST', path: '/repository', scopes: ['repo:create'], body: { repository: 'mx', visibility: 'private', description: '', namespace: 'acme' },
    setup: (w) => clear(w, 'mx'),
    // Quay answers a caller it cannot identify with 400 "Must provide a namespace or must be logged in."
    expect: expectAll(['orgadmin', 'creator', 'oauthScoped'], 201, { anonymous: 400, robot: 400, appToken: 400 }),
  },
  { method: 'GET', path: '/repository/acme/repo', scopes: ['repo:read'], expect: readers },
  { method: 'PUT', path: '/repository/acme/repo', scopes: ['repo:write'], body: { description: 'matrix' }, expect: admins(200) },
  { method: 'DELETE', path: '/repository/acme/victim', scopes: ['repo:admin'], setup: (w) => ensure(w, 'victim'), expect: admins(204) },
  { method: 'POST', path: '/repository/acme/repo/changevisibility', scopes: ['repo:admin'], body: { visibility: 'private' }, expect: admins(200) },
  { method: 'PUT', path: '/repository/acme/repo/changestate', scopes: ['repo:admin'], body: { state: 'NORMAL' }, expect: admins(200) },
  { method: 'POST', path: '/repository/acme/repo/changetrust', scopes: ['repo:admin'], body: { trust_enabled: false }, expect: admins(200) },
  { method: 'GET', path: '/repository/acme/repo/tokens/', scopes: ['repo:admin'], expect: adminsAndAuditor(410) },
  { method: 'POST', path: '/repository/acme/repo/tokens/', scopes: ['repo:admin'], body: { friendlyName: 'x' }, expect: admins(410) },
  { method: 'GET', path: '/repository/acme/repo/tokens/abc', scopes: ['repo:admin'], expect: adminsAndAuditor(410) },
  { method: 'PUT', path: '/repository/acme/repo/tokens/abc', scopes: ['repo:admin'], body: { role: 'read' }, expect: admins(410) },
  { method: 'DELETE', path: '/repository/acme/repo/tokens/abc', scopes: ['repo:admin'], expect: admins(410) },
];

test('repository endpoints × callers', async () => {
  await runMatrix(w, repositoryRows);
});

test('with FEATURE_SUPERUSERS_FULL_ACCESS a superuser token (super:user) acts as repository admin', async () => {
  const full = await createWorld({ FEATURE_SUPERUSERS_FULL_ACCESS: true, FEATURE_REPO_MIRROR: true });
  try {
    await runMatrix(full, [
      { method: 'GET', path: '/repository/acme/repo', scopes: ['repo:read'], expect: { superuser: 200, outsider: 403 } },
      { method: 'PUT', path: '/repository/acme/repo', scopes: ['repo:write'], body: { description: 'su' }, expect: { superuser: 200 } },
      { method: 'PUT', path: '/repository/acme/repo/changestate', scopes: ['repo:admin'], body: { state: 'NORMAL' }, expect: { superuser: 200 } },
      { method: 'GET', path: '/repository/acme/nope', scopes: ['repo:read'], expect: { superuser: 404, outsider: 403 } },
      {
        method: 'POST', path: '/repository', scopes: ['repo:create'], body: { repository: 'su', visibility: 'private', description: '', namespace: 'acme' },
        setup: (w) => clear(w, 'su'), expect: { superuser: 201, outsider: 403 },
      },
    ]);
  } finally {
    await full.close();
  }
});

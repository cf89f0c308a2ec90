// Permission matrix for the user-area endpoints of src/http/api/{session,user-extra,oauth}.ts that
// act on the caller's own account: every human may call them (unknown ids are 404), OAuth tokens
// need the tagged scopes, and robots, app tokens and anonymous callers are not API credentials.
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { CALLERS } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

const humans = ['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'] as const;
const MISSING = '00000000-0000-4000-8000-000000000000';
const all = (status: number) => Object.fromEntries(CALLERS.map((c) => [c, status]));

const rows: MatrixRow[] = [
  // Sessions: signin and signout are open to anyone; verify needs a user (a wrong password is 403).
  { method: 'POST', path: '/signin', scopes: [], body: { username: 'outsider', password: PASSWORD }, expect: all(200) },
  { method: 'POST', path: '/signout', scopes: [], expect: all(200) },
  { method: 'POST', path: '/signin/verify', scopes: ['user:admin'], body: { password: PASSWORD }, expect: expectAll([...humans], 200) },
  { method: 'POST', path: '/signin/verify', scopes: ['user:admin'], body: { password: 'wrong-password' }, expect: expectAll([...humans], 403) },
  { method: 'POST', path: '/detachexternal/github', scopes: ['user:admin'], expect: expectAll([...humans], 200) },
  // The account itself.
  { method: 'PUT', path: '/user/', scopes: ['user:admin'], body: { invoice_email: false }, expect: expectAll([...humans], 200) },
  // Deleting accounts would dismantle the world: only the refusals are exercised.
  { method: 'DELETE', path: '/user/', scopes: ['user:admin'], expect: { anonymous: 401, robot: 401, appToken: 401, oauthNoScope: 403 } },
  { method: 'GET', path: '/users/member', scopes: [], expect: all(200) },
  { method: 'GET', path: '/users/nobody', scopes: [], expect: all(404) },
  { method: 'POST', path: '/user/clientkey', scopes: ['user:admin'], body: { password: 'wrong-password' }, expect: expectAll([...humans], 400) },
  { method: 'POST', path: '/user/convert', scopes: ['user:admin'], body: { adminUser: 'nobody', adminPassword: 'x' }, expect: expectAll([...humans], 400) },
  // Notifications.
  { method: 'GET', path: '/user/notifications', scopes: ['user:admin'], expect: expectAll([...humans], 200) },
  { method: 'GET', path: `/user/notifications/${MISSING}`, scopes: ['user:admin'], expect: expectAll([...humans], 404) },
  { method: 'PUT', path: `/user/notifications/${MISSING}`, scopes: ['user:admin'], body: { dismissed: true }, expect: expectAll([...humans], 404) },
  // Stars: starring needs read access to the repository (readers team, org admins, read-only superusers).
  { method: 'GET', path: '/user/starred', scopes: ['user:admin'], expect: expectAll([...humans], 200) },
  {
    method: 'POST', path: '/user/starred', scopes: ['user:admin', 'repo:read'], body: { namespace: 'acme', repository: 'repo' },
    expect: expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 201),
  },
  { method: 'DELETE', path: '/user/starred/acme/nothing', scopes: ['user:admin'], expect: expectAll([...humans], 404) },
  // OAuth authorizations and assignments of the caller.
  { method: 'GET', path: '/user/authorizations', scopes: ['user:admin'], expect: expectAll([...humans], 200) },
  { method: 'GET', path: `/user/authorizations/${MISSING}`, scopes: ['user:admin'], expect: expectAll([...humans], 404) },
  { method: 'DELETE', path: `/user/authorizations/${MISSING}`, scopes: ['user:admin'], expect: expectAll([...humans], 404) },
  { method: 'GET', path: '/user/assignedauthorization', scopes: ['user:admin'], expect: expectAll([...humans], 200) },
  { method: 'DELETE', path: `/user/assignedauthorization/${MISSING}`, scopes: ['user:admin'], expect: expectAll([...humans], 404) },
];

describe('user area permission matrix', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });
  test('every endpoint × caller', async () => { await runMatrix(w, rows); });
});

// Permission matrix for /api/v1/repository/{repository}/permissions: every endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { setRepoPermission } from '../../../src/model/permissions.ts';
import { findTeam } from '../../../src/model/teams.ts';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

async function grantOutsider(w: World): Promise<void> {
  const s = w.t.app.services;
  await setRepoPermission(s, (await findRepo(s, 'acme', 'repo'))!.id, { userId: w.users.outsider.id }, 'read');
}

async function grantBuilders(w: World): Promise<void> {
  const s = w.t.app.services;
  await setRepoPermission(s, (await findRepo(s, 'acme', 'repo'))!.id, { teamId: (await findTeam(s, w.org.id, 'builders'))!.id }, 'write');
}

const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const adminsAndAuditor = (status: number) => expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], status);

export const permissionRows: MatrixRow[] = [
  { method: 'GET', path: '/repository/acme/repo/permissions/user/', scopes: ['repo:admin'], expect: adminsAndAuditor(200) },
  { method: 'GET', path: '/repository/acme/repo/permissions/user/outsider', scopes: ['repo:admin'], setup: grantOutsider, expect: adminsAndAuditor(200) },
  { method: 'PUT', path: '/repository/acme/repo/permissions/user/outsider', scopes: ['repo:admin'], body: { role: 'write' }, expect: admins(200) },
  { method: 'DELETE', path: '/repository/acme/repo/permissions/user/outsider', scopes: ['repo:admin'], setup: grantOutsider, expect: admins(204) },
  { method: 'GET', path: '/repository/acme/repo/permissions/user/member/transitive', scopes: ['repo:admin'], expect: adminsAndAuditor(200) },
  { method: 'GET', path: '/repository/acme/repo/permissions/team/', scopes: ['repo:admin'], expect: adminsAndAuditor(200) },
  { method: 'GET', path: '/repository/acme/repo/permissions/team/readers', scopes: ['repo:admin'], expect: adminsAndAuditor(200) },
  { method: 'PUT', path: '/repository/acme/repo/permissions/team/readers', scopes: ['repo:admin'], body: { role: 'read' }, expect: admins(200) },
  { method: 'DELETE', path: '/repository/acme/repo/permissions/team/builders', scopes: ['repo:admin'], setup: grantBuilders, expect: admins(204) },
  // A missing repository: 404 for whoever may read the namespace's permissions, a plain denial for others.
  { method: 'GET', path: '/repository/acme/nosuch/permissions/user/', scopes: ['repo:admin'], expect: adminsAndAuditor(404) },
  { method: 'PUT', path: '/repository/acme/nosuch/permissions/user/outsider', scopes: ['repo:admin'], body: { role: 'read' }, expect: admins(404) },
];

test('repository permission endpoints × callers', async () => {
  await runMatrix(w, permissionRows);
});

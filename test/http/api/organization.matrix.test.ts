// Permission matrix for /api/v1/organization: every endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { createOrganization, createUser, findUser } from '../../../src/model/accounts.ts';
import { findTeam } from '../../../src/model/teams.ts';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

async function dropOrg(w: World, name: string): Promise<void> {
  await w.t.app.services.db.deleteFrom('users').where('username', '=', name).where('kind', '=', 'org').execute();
}

async function ensureOrg(w: World, name: string): Promise<void> {
  const s = w.t.app.services;
  if (!(await findUser(s, name))) await createOrganization(s, name, w.users.orgadmin);
}

/** A user `temp` in the readers team, for the member-removal row. */
async function ensureTempMember(w: World): Promise<void> {
  const s = w.t.app.services;
  const temp = (await findUser(s, 'temp')) ?? await createUser(s, { username: 'temp', email: 'temp@example.com' });
  const readers = (await findTeam(s, w.org.id, 'readers'))!;
  const has = await s.db.selectFrom('team_members').select('id').where('team_id', '=', readers.id).where('user_id', '=', temp.id).executeTakeFirst();
  if (!has) await s.db.insertInto('team_members').values({ team_id: readers.id, user_id: temp.id }).execute();
}

const everyone = (status: number) => expectAll(['anonymous', 'outsider', 'member', 'creator', 'orgadmin', 'robot', 'oauthScoped', 'oauthNoScope', 'appToken', 'superuser', 'readonlySuperuser'], status);
const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const adminsAndAuditor = (status: number) => expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], status);

export const organizationRows: MatrixRow[] = [
  {
    method: 'POST', path: '/organization/', scopes: ['user:admin'], body: { name: 'mxorg' }, setup: (w) => dropOrg(w, 'mxorg'),
    expect: expectAll(['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'], 201),
  },
  // Anyone may look an organization up (FEATURE_ANONYMOUS_ACCESS is on in the world).
  { method: 'GET', path: '/organization/acme', scopes: [], expect: everyone(200) },
  { method: 'GET', path: '/organization/nosuchorg', scopes: [], expect: everyone(404) },
  { method: 'PUT', path: '/organization/acme', scopes: ['org:admin'], body: {}, expect: admins(200) },
  { method: 'DELETE', path: '/organization/doomed', scopes: ['org:admin'], setup: (w) => ensureOrg(w, 'doomed'), expect: admins(204) },
  // A stranger learns nothing about whether an organization exists.
  { method: 'DELETE', path: '/organization/nosuchorg', scopes: ['org:admin'], expect: admins(403) },
  { method: 'GET', path: '/organization/acme/collaborators', scopes: ['org:admin'], expect: adminsAndAuditor(200) },
  { method: 'GET', path: '/organization/acme/members', scopes: ['org:admin'], expect: adminsAndAuditor(200) },
  { method: 'GET', path: '/organization/acme/members/member', scopes: ['org:admin'], expect: adminsAndAuditor(200) },
  { method: 'GET', path: '/organization/acme/members/acme+bot', scopes: ['org:admin'], expect: adminsAndAuditor(200) },
  { method: 'GET', path: '/organization/acme/members/outsider', scopes: ['org:admin'], expect: adminsAndAuditor(404) },
  { method: 'DELETE', path: '/organization/acme/members/temp', scopes: ['org:admin'], setup: ensureTempMember, expect: admins(204) },
];

test('organization endpoints × callers', async () => {
  await runMatrix(w, organizationRows);
});

test('with FEATURE_SUPERUSERS_FULL_ACCESS a superuser token (super:user) administers any organization', async () => {
  const full = await createWorld({ FEATURE_SUPERUSERS_FULL_ACCESS: true });
  try {
    await runMatrix(full, [
      { method: 'PUT', path: '/organization/acme', scopes: ['org:admin'], body: {}, expect: { superuser: 200, outsider: 403, readonlySuperuser: 403 } },
      { method: 'GET', path: '/organization/acme/members', scopes: ['org:admin'], expect: { superuser: 200 } },
      // Past the permission check, a missing organization is a 404 for the superuser.
      { method: 'DELETE', path: '/organization/nosuchorg', scopes: ['org:admin'], expect: { superuser: 404, orgadmin: 403 } },
      { method: 'DELETE', path: '/organization/doomed', scopes: ['org:admin'], setup: (w) => ensureOrg(w, 'doomed'), expect: { superuser: 204 } },
    ]);
  } finally {
    await full.close();
  }
});

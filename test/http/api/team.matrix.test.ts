// Permission matrix for the team endpoints: every endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { findTeam } from '../../../src/model/teams.ts';
import { CALLERS } from '../../support/world.ts';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

async function dropTeam(w: World, name: string): Promise<void> {
  await w.t.app.services.db.deleteFrom('teams').where('org_id', '=', w.org.id).where('name', '=', name).execute();
}

async function ensureTeam(w: World, name: string): Promise<void> {
  const s = w.t.app.services;
  if (!(await findTeam(s, w.org.id, name))) await s.db.insertInto('teams').values({ org_id: w.org.id, name, role: 'member', description: '' }).execute();
}

async function setReadersMembership(w: World, userId: number, member: boolean): Promise<void> {
  const s = w.t.app.services;
  const readers = (await findTeam(s, w.org.id, 'readers'))!;
  await s.db.deleteFrom('team_members').where('team_id', '=', readers.id).where('user_id', '=', userId).execute();
  if (member) await s.db.insertInto('team_members').values({ team_id: readers.id, user_id: userId }).execute();
}

const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const all = (status: number) => Object.fromEntries(CALLERS.map((c) => [c, status]));

export const teamRows: MatrixRow[] = [
  { method: 'PUT', path: '/organization/acme/team/mxteam', scopes: ['org:admin'], body: { role: 'member' }, setup: (w) => dropTeam(w, 'mxteam'), expect: admins(200) },
  { method: 'DELETE', path: '/organization/acme/team/mxteam', scopes: ['org:admin'], setup: (w) => ensureTeam(w, 'mxteam'), expect: admins(204) },
  // The team's own members may list it; so may admins and global read-only superusers.
  { method: 'GET', path: '/organization/acme/team/readers/members', scopes: ['org:admin'], expect: expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 200) },
  { method: 'GET', path: '/organization/acme/team/nosuch/members', scopes: ['org:admin'], expect: expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], 404) },
  {
    method: 'PUT', path: '/organization/acme/team/readers/members/outsider', scopes: ['org:admin'],
    setup: (w) => setReadersMembership(w, w.users.outsider.id, false), expect: admins(200),
  },
  {
    method: 'DELETE', path: '/organization/acme/team/readers/members/outsider', scopes: ['org:admin'],
    setup: (w) => setReadersMembership(w, w.users.outsider.id, true), expect: admins(204),
  },
  // Quay tags this one with no scope: a token needs org:admin to hold the admin role (oauthScoped
  // here is a token with only user:read), and global read-only superusers may read it.
  { method: 'GET', path: '/organization/acme/team/readers/permissions', scopes: [], expect: expectAll(['orgadmin', 'oauthNoScope', 'readonlySuperuser'], 200) },
  // FEATURE_MAILING and FEATURE_TEAM_SYNCING are off: those routes do not exist.
  { method: 'PUT', path: '/organization/acme/team/readers/invite/a@example.com', scopes: ['org:admin'], expect: all(404) },
  { method: 'DELETE', path: '/organization/acme/team/readers/invite/a@example.com', scopes: ['org:admin'], expect: all(404) },
  { method: 'PUT', path: '/teaminvite/somecode', scopes: ['user:admin'], expect: all(404) },
  { method: 'DELETE', path: '/teaminvite/somecode', scopes: ['user:admin'], expect: all(404) },
  { method: 'POST', path: '/organization/acme/team/readers/syncing', scopes: ['org:admin', 'super:user'], body: {}, expect: all(404) },
  { method: 'DELETE', path: '/organization/acme/team/readers/syncing', scopes: ['org:admin', 'super:user'], expect: all(404) },
];

test('team endpoints × callers', async () => {
  await runMatrix(w, teamRows);
});

test('with FEATURE_MAILING the invite routes exist and follow the team-admin rule', async () => {
  const mail = await createWorld({ FEATURE_MAILING: true });
  try {
    await runMatrix(mail, [
      { method: 'PUT', path: '/organization/acme/team/readers/invite/new@example.com', scopes: ['org:admin'], expect: admins(200) },
      {
        method: 'DELETE', path: '/organization/acme/team/readers/invite/new@example.com', scopes: ['org:admin'],
        setup: async (w) => { await w.api('PUT', '/organization/acme/team/readers/invite/new@example.com', { caller: 'orgadmin', scopes: ['org:admin'] }); },
        expect: admins(204),
      },
      // An unknown code: 401 without a user, the bare 400 of Quay's data layer for users.
      { method: 'PUT', path: '/teaminvite/nosuchcode', scopes: ['user:admin'], expect: expectAll(['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'], 400) },
    ]);
  } finally {
    await mail.close();
  }
});

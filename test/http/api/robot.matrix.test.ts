// Permission matrix for user and organization robots: every endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { createRobot, findUser } from '../../../src/model/accounts.ts';

let w: World;
before(async () => {
  w = await createWorld();
  // Every human owns a robot `mine`, so the /user/robots rows have something to act on.
  for (const u of Object.values(w.users)) await createRobot(w.t.app.services, u, 'mine');
});
after(async () => { await w?.close(); });

const HUMANS = ['outsider', 'member', 'creator', 'orgadmin', 'superuser', 'readonlySuperuser'] as const;

async function dropRobots(w: World, shortname: string): Promise<void> {
  await w.t.app.services.db.deleteFrom('users').where('kind', '=', 'robot').where('username', 'like', `%+${shortname}`).execute();
}

async function ensureUserRobots(w: World, shortname: string): Promise<void> {
  const s = w.t.app.services;
  for (const u of Object.values(w.users)) if (!(await findUser(s, `${u.username}+${shortname}`))) await createRobot(s, u, shortname);
}

async function ensureOrgRobot(w: World, shortname: string): Promise<void> {
  const s = w.t.app.services;
  if (!(await findUser(s, `acme+${shortname}`))) await createRobot(s, w.org, shortname);
}

const humans = (status: number) => expectAll([...HUMANS, 'oauthScoped'], status);
const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const adminsAndAuditor = (status: number) => expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], status);
const federation = [{ issuer: 'https://issuer.example.com', subject: 'system:serviceaccount:ci:builder' }];

export const robotRows: MatrixRow[] = [
  { method: 'GET', path: '/user/robots', scopes: ['user:admin'], expect: humans(200) },
  { method: 'GET', path: '/user/robots/mine', scopes: ['user:admin'], setup: (w) => ensureUserRobots(w, 'mine'), expect: humans(200) },
  { method: 'PUT', path: '/user/robots/mxbot', scopes: ['user:admin'], setup: (w) => dropRobots(w, 'mxbot'), expect: humans(201) },
  { method: 'DELETE', path: '/user/robots/mxbot', scopes: ['user:admin'], setup: (w) => ensureUserRobots(w, 'mxbot'), expect: humans(204) },
  { method: 'GET', path: '/user/robots/mine/permissions', scopes: ['user:admin'], setup: (w) => ensureUserRobots(w, 'mine'), expect: humans(200) },
  { method: 'POST', path: '/user/robots/mine/regenerate', scopes: ['user:admin'], setup: (w) => ensureUserRobots(w, 'mine'), expect: humans(200) },
  { method: 'GET', path: '/user/robots/mine/federation', scopes: ['user:admin'], setup: (w) => ensureUserRobots(w, 'mine'), expect: humans(200) },
  { method: 'POST', path: '/user/robots/mine/federation', scopes: ['user:admin'], body: federation, setup: (w) => ensureUserRobots(w, 'mine'), expect: humans(200) },
  { method: 'DELETE', path: '/user/robots/mine/federation', scopes: ['user:admin'], setup: (w) => ensureUserRobots(w, 'mine'), expect: humans(204) },

  // Any member may list the org's robots (tokens only for admins); read-only superusers too.
  { method: 'GET', path: '/organization/acme/robots', scopes: ['org:admin'], expect: expectAll(['member', 'creator', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 200) },
  { method: 'GET', path: '/organization/acme/robots/bot', scopes: ['org:admin'], expect: adminsAndAuditor(200) },
  { method: 'PUT', path: '/organization/acme/robots/mxbot', scopes: ['org:admin'], setup: (w) => dropRobots(w, 'mxbot'), expect: admins(201) },
  { method: 'DELETE', path: '/organization/acme/robots/mxbot', scopes: ['org:admin'], setup: (w) => ensureOrgRobot(w, 'mxbot'), expect: admins(204) },
  // Quay tags the org listing with user:admin; a token needs org:admin as well to be an admin,
  // so a token holding only user:admin (oauthScoped) is refused.
  { method: 'GET', path: '/organization/acme/robots/bot/permissions', scopes: ['user:admin'], expect: expectAll(['orgadmin', 'readonlySuperuser'], 200) },
  { method: 'POST', path: '/organization/acme/robots/regen/regenerate', scopes: ['org:admin'], setup: (w) => ensureOrgRobot(w, 'regen'), expect: admins(200) },
  { method: 'GET', path: '/organization/acme/robots/bot/federation', scopes: ['org:admin'], expect: adminsAndAuditor(200) },
  { method: 'POST', path: '/organization/acme/robots/bot/federation', scopes: ['org:admin'], body: federation, expect: admins(200) },
  { method: 'DELETE', path: '/organization/acme/robots/bot/federation', scopes: ['org:admin'], expect: admins(204) },
];

test('robot endpoints × callers', async () => {
  await runMatrix(w, robotRows);
});

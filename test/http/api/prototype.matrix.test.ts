// Permission matrix for /api/v1/organization/{orgname}/prototypes: every endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { findTeam } from '../../../src/model/teams.ts';

const FIXED = '00000000-0000-4000-8000-00000000beef';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

async function ensurePrototype(w: World): Promise<void> {
  const s = w.t.app.services;
  const have = await s.db.selectFrom('permission_prototypes').select('id').where('uuid', '=', FIXED).executeTakeFirst();
  if (have) return;
  const readers = (await findTeam(s, w.org.id, 'readers'))!;
  await s.db.insertInto('permission_prototypes').values({
    uuid: FIXED, org_id: w.org.id, activating_user_id: null, delegate_user_id: null, delegate_team_id: readers.id, role: 'read',
  }).execute();
}

const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);

export const prototypeRows: MatrixRow[] = [
  { method: 'GET', path: '/organization/acme/prototypes', scopes: ['org:admin'], expect: expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], 200) },
  { method: 'POST', path: '/organization/acme/prototypes', scopes: ['org:admin'], body: { role: 'read', delegate: { kind: 'team', name: 'builders' } }, expect: admins(200) },
  { method: 'PUT', path: `/organization/acme/prototypes/${FIXED}`, scopes: ['org:admin'], body: { role: 'write' }, setup: ensurePrototype, expect: admins(200) },
  { method: 'DELETE', path: `/organization/acme/prototypes/${FIXED}`, scopes: ['org:admin'], setup: ensurePrototype, expect: admins(204) },
  { method: 'DELETE', path: '/organization/acme/prototypes/nosuch', scopes: ['org:admin'], expect: admins(404) },
];

test('prototype endpoints × callers', async () => {
  await runMatrix(w, prototypeRows);
});

// Permission matrix for /api/v1/user/apptoken (area apptoken): every endpoint × every caller.
// Tokens are the caller's own, so every human may act; unknown token uuids are 404 for them.
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

const humans = ['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'] as const;
const MISSING = '00000000-0000-4000-8000-000000000000';

const rows: MatrixRow[] = [
  { method: 'GET', path: '/user/apptoken', scopes: ['user:admin'], expect: expectAll([...humans], 200) },
  { method: 'GET', path: '/user/apptoken?expiring=true', scopes: ['user:admin'], expect: expectAll([...humans], 200) },
  { method: 'POST', path: '/user/apptoken', scopes: ['user:admin'], body: { title: 'matrix' }, expect: expectAll([...humans], 200) },
  { method: 'GET', path: `/user/apptoken/${MISSING}`, scopes: ['user:admin'], expect: expectAll([...humans], 404) },
  { method: 'DELETE', path: `/user/apptoken/${MISSING}`, scopes: ['user:admin'], expect: expectAll([...humans], 404) },
];

describe('apptoken permission matrix', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });
  test('every endpoint × caller', async () => { await runMatrix(w, rows); });
});

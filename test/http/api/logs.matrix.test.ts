// Permission matrix for the usage-log endpoints (area "logs" and the superuser log endpoints):
// every endpoint × every caller, with and without FEATURE_SUPERUSERS_FULL_ACCESS.
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

const FEATURES = { FEATURE_AGGREGATED_LOG_COUNT_RETRIEVAL: true, FEATURE_LOG_EXPORT: true };
const users = ['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'] as const;
const everyone = ['anonymous', 'outsider', 'member', 'creator', 'orgadmin', 'robot', 'oauthScoped', 'oauthNoScope', 'appToken', 'superuser', 'readonlySuperuser'] as const;

function rows(fullAccess: boolean): MatrixRow[] {
  const su = fullAccess ? (['superuser'] as const) : [];
  const read = expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser', ...su], 200);
  const write = expectAll(['orgadmin', 'oauthScoped', ...su], 200);
  return [
    { method: 'GET', path: '/user/logs', scopes: ['user:admin'], expect: expectAll([...users], 200) },
    { method: 'GET', path: '/user/aggregatelogs', scopes: ['user:admin'], expect: expectAll([...users], 200) },
    { method: 'POST', path: '/user/exportlogs', scopes: ['user:admin'], body: {}, expect: expectAll([...users], 200) },
    { method: 'GET', path: '/organization/acme/logs', scopes: ['org:admin'], expect: read },
    { method: 'GET', path: '/organization/acme/aggregatelogs', scopes: ['org:admin'], expect: read },
    { method: 'POST', path: '/organization/acme/exportlogs', scopes: ['org:admin'], body: {}, expect: write },
    { method: 'GET', path: '/repository/acme/repo/logs', scopes: ['repo:admin'], expect: read },
    { method: 'GET', path: '/repository/acme/repo/aggregatelogs', scopes: ['repo:admin'], expect: read },
    { method: 'POST', path: '/repository/acme/repo/exportlogs', scopes: ['repo:admin'], body: {}, expect: write },
    // A repository that does not exist: 404 only for those allowed to know, 403/401 for the rest.
    { method: 'GET', path: '/repository/acme/nope/logs', scopes: ['repo:admin'], expect: expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser', ...su], 404) },
    { method: 'GET', path: '/organization/nope/logs', scopes: ['org:admin'], expect: expectAll(['readonlySuperuser', ...su], 404) },
    { method: 'GET', path: '/superuser/logs', scopes: ['super:user'], expect: expectAll(['superuser', 'readonlySuperuser'], 200) },
    { method: 'GET', path: '/superuser/aggregatelogs', scopes: [], expect: expectAll(['superuser'], 200) },
    // The signed download link: the signature is the only credential, so every caller is refused alike.
    {
      method: 'GET', path: `/exportedlogs/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}-${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}?expires=9999999999&signature=x`,
      scopes: [], expect: Object.fromEntries(everyone.map((c) => [c, 403])),
    },
  ];
}

describe('logs permission matrix', () => {
  let w: World;
  before(async () => { w = await createWorld(FEATURES); });
  after(async () => { await w?.close(); });
  test('every endpoint × caller', async () => { await runMatrix(w, rows(false)); });
});

describe('logs permission matrix with FEATURE_SUPERUSERS_FULL_ACCESS', () => {
  let w: World;
  before(async () => { w = await createWorld({ ...FEATURES, FEATURE_SUPERUSERS_FULL_ACCESS: true }); });
  after(async () => { await w?.close(); });
  test('superusers reach org and repository logs too', async () => { await runMatrix(w, rows(true)); });
});

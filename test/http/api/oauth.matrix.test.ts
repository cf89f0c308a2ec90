// Permission matrix for organization OAuth applications and /app/{client_id} (area
// oauth-application): every endpoint × every caller, with and without FEATURE_SUPERUSERS_FULL_ACCESS.
import { after, before, describe, test } from 'node:test';
import { createWorld, CALLERS, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

function rows(w: World, clientId: string, fullAccess: boolean): MatrixRow[] {
  const su = fullAccess ? (['superuser'] as const) : [];
  const read = expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser', ...su], 200);
  const write = expectAll(['orgadmin', 'oauthScoped', ...su], 200);
  const app = `/organization/acme/applications/${clientId}`;
  void w;
  return [
    { method: 'GET', path: '/organization/acme/applications', scopes: ['org:admin'], expect: read },
    { method: 'POST', path: '/organization/acme/applications', scopes: ['org:admin'], body: { name: 'matrix-new' }, expect: write },
    { method: 'GET', path: app, scopes: ['org:admin'], expect: read },
    { method: 'PUT', path: app, scopes: ['org:admin'], body: { name: 'matrix-app', redirect_uri: '', application_uri: '' }, expect: write },
    // resetclientsecret carries no scope tag: a token needs org:admin through the org role cap, so
    // the "scoped" token (user:read only) is refused and the all-but-nothing token is not.
    {
      method: 'POST', path: `${app}/resetclientsecret`, scopes: [],
      expect: expectAll(['orgadmin', 'oauthNoScope', ...su], 200, { oauthScoped: 403 }),
    },
    { method: 'DELETE', path: '/organization/acme/applications/NOPE', scopes: ['org:admin'], expect: expectAll(['orgadmin', 'oauthScoped', ...su], 404) },
    { method: 'GET', path: '/organization/acme/applications/NOPE', scopes: ['org:admin'], expect: expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser', ...su], 404) },
    { method: 'GET', path: `/app/${clientId}`, scopes: [], expect: Object.fromEntries(CALLERS.map((c) => [c, 200])) },
    { method: 'GET', path: '/app/NOPE', scopes: [], expect: Object.fromEntries(CALLERS.map((c) => [c, 404])) },
  ];
}

async function clientIdOf(w: World): Promise<string> {
  const row = await w.t.app.services.db.selectFrom('oauth_applications').select('client_id').where('id', '=', w.appId).executeTakeFirstOrThrow();
  return row.client_id;
}

describe('oauth-application permission matrix', () => {
  let w: World;
  before(async () => { w = await createWorld(); });
  after(async () => { await w?.close(); });
  test('every endpoint × caller', async () => { await runMatrix(w, rows(w, await clientIdOf(w), false)); });
});

describe('oauth-application permission matrix with FEATURE_SUPERUSERS_FULL_ACCESS', () => {
  let w: World;
  before(async () => { w = await createWorld({ FEATURE_SUPERUSERS_FULL_ACCESS: true }); });
  after(async () => { await w?.close(); });
  test('superusers manage any organization\'s applications', async () => { await runMatrix(w, rows(w, await clientIdOf(w), true)); });
});

// Permission matrix for the superuser panel, service keys, global messages and registry
// capabilities. Quay's Unauthorized is 401 for anonymous callers (robots and app tokens are not
// /api/v1 credentials, so they are anonymous there) and 403 for a signed-in non-superuser; the
// global read-only superuser may call every GET and no mutation.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { createOrganization, createUser, findUser } from '../../../src/model/accounts.ts';

let w: World;
// DEBUGGING: POST /superuser/shutdown answers without stopping this process (the real stop is
// covered by superuser-shutdown.test.ts); nothing else in these rows depends on it.
before(async () => { w = await createWorld({ DEBUGGING: true }); });
after(async () => { await w?.close(); });

const SU = ['super:user'];
const everyone = (status: number) => expectAll(['anonymous', 'outsider', 'member', 'creator', 'orgadmin', 'robot', 'oauthScoped', 'oauthNoScope', 'appToken', 'superuser', 'readonlySuperuser'], status);
const read = (status = 200) => expectAll(['superuser', 'readonlySuperuser'], status);
const write = (status = 200) => expectAll(['superuser'], status);

async function ensureKey(kid: string, approved: boolean): Promise<void> {
  const s = w.t.app.services;
  if (await s.db.selectFrom('service_keys').select('kid').where('kid', '=', kid).executeTakeFirst()) return;
  await s.db.insertInto('service_keys').values({
    kid, name: kid, service: 'matrix', jwk: JSON.stringify({ kty: 'RSA', n: 'AQAB', e: 'AQAB' }), private_jwk_enc: null, metadata: '{}',
    created_at: Date.now(), expires_at: null, rotation_duration: null, approval: approved ? JSON.stringify({ approval_type: 'Super User API' }) : null,
  }).execute();
}

test('superuser, service key, message and capability endpoints × callers', async () => {
  const s = w.t.app.services;
  const instanceKid = w.t.app.ctx.keys.kid;
  await s.db.insertInto('messages').values({ uuid: 'matrix-message', content: 'x', media_type: 'text/plain', severity: 'info' }).execute();
  const rows: MatrixRow[] = [
    { method: 'GET', path: '/superuser/users/', scopes: SU, expect: read() },
    {
      method: 'POST', path: '/superuser/users/', scopes: SU, body: { username: 'matrixuser' }, expect: write(),
      setup: async () => { await s.db.deleteFrom('users').where('username', '=', 'matrixuser').execute(); },
    },
    { method: 'GET', path: '/superuser/users/member', scopes: SU, expect: read() },
    { method: 'PUT', path: '/superuser/users/member', scopes: SU, body: { enabled: true }, expect: write() },
    {
      method: 'DELETE', path: '/superuser/users/victim', scopes: SU, expect: write(204),
      setup: async () => { if (!await findUser(s, 'victim')) await createUser(s, { username: 'victim', password: null }); },
    },
    { method: 'GET', path: '/superuser/organizations/', scopes: SU, expect: read() },
    { method: 'PUT', path: '/superuser/organizations/acme', scopes: SU, body: { name: 'acme' }, expect: write() },
    {
      method: 'DELETE', path: '/superuser/organizations/victimorg', scopes: SU, expect: write(204),
      setup: async () => { if (!await findUser(s, 'victimorg')) await createOrganization(s, 'victimorg', w.users.outsider); },
    },
    { method: 'POST', path: '/superuser/takeownership/acme', scopes: SU, expect: write() },
    { method: 'GET', path: '/superuser/apptokens', scopes: SU, expect: read() },
    { method: 'GET', path: '/superuser/changelog/', scopes: SU, expect: read() },
    { method: 'GET', path: '/superuser/registrystatus', scopes: [], expect: everyone(200) },
    // Quay's bare abort(403), for callers without /api/v1 credentials too.
    { method: 'POST', path: '/superuser/shutdown', scopes: [], expect: { ...write(200), anonymous: 403, robot: 403, appToken: 403 } },
    { method: 'GET', path: '/superuser/keys', scopes: SU, expect: read() },
    { method: 'POST', path: '/superuser/keys', scopes: SU, body: { service: 'matrix', expiration: null }, expect: write() },
    { method: 'GET', path: `/superuser/keys/${instanceKid}`, scopes: SU, expect: read() },
    { method: 'PUT', path: `/superuser/keys/${instanceKid}`, scopes: SU, body: { name: 'Instance key' }, expect: write() },
    {
      method: 'DELETE', path: '/superuser/keys/matrix-key', scopes: SU, expect: write(204),
      setup: () => ensureKey('matrix-key', true),
    },
    {
      method: 'POST', path: '/superuser/approvedkeys/matrix-pending', scopes: SU, body: {}, expect: write(201),
      setup: () => ensureKey('matrix-pending', false),
    },
    { method: 'GET', path: '/messages', scopes: [], expect: everyone(200) },
    {
      method: 'POST', path: '/messages', scopes: SU, body: { message: { content: 'm', media_type: 'text/plain', severity: 'info' } }, expect: write(201),
    },
    {
      method: 'DELETE', path: '/message/matrix-message', scopes: SU, expect: write(204),
    },
    { method: 'GET', path: '/registry/capabilities', scopes: [], expect: everyone(200) },
  ];
  await runMatrix(w, rows);
});

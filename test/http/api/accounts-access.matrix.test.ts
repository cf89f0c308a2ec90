// Permission matrix for the account-access endpoints: bootstrap renewal, external login URLs,
// recovery e-mails, the superuser's config dump, and organization application tokens.
import { after, before, test } from 'node:test';
import { createWorld, CALLERS, type Caller, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-server.ts';
import { createOAuthToken } from '../../../src/model/accounts.ts';

const FIXED_TOKEN = '00000000-0000-4000-8000-0000000a7c0e';

let w: World;
let smtp: SmtpSink;
let clientId: string;
before(async () => {
  smtp = await startSmtpSink();
  w = await createWorld({
    FEATURE_PROGRAMMATIC_BOOTSTRAP: true, FEATURE_MAILING: true, ...smtp.config,
    FEATURE_GITHUB_LOGIN: true, GITHUB_LOGIN_CONFIG: { CLIENT_ID: 'gh-client' }, FEATURE_SUPERUSER_CONFIGDUMP: true,
  });
  clientId = (await w.t.app.services.db.selectFrom('oauth_applications').select('client_id').where('id', '=', w.appId).executeTakeFirstOrThrow()).client_id;
});
after(async () => {
  await w?.close();
  await smtp?.close();
});

const everyone = (status: number): Partial<Record<Caller, number>> => Object.fromEntries(CALLERS.map((c) => [c, status]));

async function ensureToken(w: World): Promise<void> {
  const s = w.t.app.services;
  if (await s.db.selectFrom('oauth_access_tokens').select('id').where('uuid', '=', FIXED_TOKEN).executeTakeFirst()) return;
  const { uuid } = await createOAuthToken(s, w.appId, w.users.orgadmin, 'repo:read', 3600, { name: 'matrix' });
  await s.db.updateTable('oauth_access_tokens').set({ uuid: FIXED_TOKEN }).where('uuid', '=', uuid).execute();
}

test('account-access endpoints × callers', async () => {
  const tokens = `/organization/acme/applications/${clientId}/tokens`;
  const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
  const rows: MatrixRow[] = [
    // Only the bootstrap token renews; any other valid OAuth token is Quay's Unauthorized (403).
    { method: 'POST', path: '/bootstrap/renew', scopes: [], expect: { ...everyone(403), anonymous: 401, robot: 401, appToken: 401 } },
    { method: 'POST', path: '/externallogin/github', scopes: [], body: { kind: 'login' }, expect: everyone(200) },
    { method: 'POST', path: '/externallogin/gitlab', scopes: [], body: { kind: 'login' }, expect: everyone(400) },
    { method: 'POST', path: '/recovery', scopes: [], body: { email: 'nobody@example.com' }, expect: everyone(200) },
    { method: 'POST', path: '/superusers/users/member/sendrecovery', scopes: ['super:user'], expect: expectAll(['superuser'], 200) },
    { method: 'GET', path: '/superuser/config', scopes: ['super:user'], expect: expectAll(['superuser'], 200) },
    { method: 'GET', path: tokens, scopes: ['org:admin'], expect: expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], 200) },
    { method: 'POST', path: tokens, scopes: ['org:admin'], body: { name: 'matrix', scope: 'org:admin' }, expect: admins(200) },
    { method: 'DELETE', path: `${tokens}/${FIXED_TOKEN}`, scopes: ['org:admin'], setup: ensureToken, expect: admins(204) },
    { method: 'DELETE', path: `${tokens}/nosuchtoken`, scopes: ['org:admin'], expect: admins(404) },
    { method: 'GET', path: '/organization/acme/applications/nosuchclient/tokens', scopes: ['org:admin'], expect: expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], 404) },
  ];
  await runMatrix(w, rows);
});

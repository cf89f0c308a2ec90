// Permission matrix for the notification endpoints (repository, organization and user namespace
// notifications, repository authorized e-mails): every endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World, type Caller } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';
import { startSmtpSink, type SmtpSink } from '../../support/smtp-server.ts';

const REPO_FIXED = '00000000-0000-4000-8000-00000000b001';
const ORG_FIXED = '00000000-0000-4000-8000-00000000b002';
const USER_FIXED = '00000000-0000-4000-8000-00000000b003';
const REPO_BODY = { event: 'repo_push', method: 'webhook', config: { url: 'https://hooks.example.com/x' }, eventConfig: {} };
const NS_BODY = { event: 'quota_warning', method: 'webhook', config: { url: 'https://hooks.example.com/x' }, eventConfig: {} };

let w: World;
let smtp: SmtpSink;
const FEATURES = { FEATURE_MAILING: true, FEATURE_QUOTA_NOTIFICATIONS: true };
before(async () => {
  smtp = await startSmtpSink();
  w = await createWorld({ ...FEATURES, ...smtp.config });
});
after(async () => {
  await w?.close();
  await smtp?.close();
});

/** Each caller starts from the same rows: only the fixed ones. */
async function reset(w: World): Promise<void> {
  const s = w.t.app.services;
  await s.db.deleteFrom('repo_notifications').execute();
  await s.db.deleteFrom('repo_authorized_emails').execute();
  const repo = await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', w.org.id).where('name', '=', 'repo').executeTakeFirstOrThrow();
  const common = { event: 'repo_push', method: 'webhook', title: null, config: JSON.stringify({ url: 'https://hooks.example.com/x' }), event_config: '{}' };
  await s.db.insertInto('repo_notifications').values([
    { ...common, uuid: REPO_FIXED, repository_id: repo.id, namespace_id: w.org.id },
    { ...common, uuid: ORG_FIXED, repository_id: null, namespace_id: w.org.id, event: 'quota_warning' },
    { ...common, uuid: USER_FIXED, repository_id: null, namespace_id: w.users.orgadmin.id, event: 'quota_warning' },
  ]).execute();
  await s.db.insertInto('repo_authorized_emails').values({ repository_id: repo.id, email: 'ops@example.com', code_hash: 'x'.repeat(64), confirmed: 1, created_at: 0 }).execute();
}

const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const readers = (status: number) => expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], status);
const HUMANS: Caller[] = ['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'];
const users = (status: number, others: Partial<Record<Caller, number>> = {}) => expectAll(HUMANS, status, others);
// Quay tags the organization endpoints with no scope: a token holding other scopes (org:admin among
// them) passes the route, and its scopes still cap the caller's organization role.
const orgAdmins = (status: number) => expectAll(['orgadmin', 'oauthNoScope'], status);
const orgReaders = (status: number) => expectAll(['orgadmin', 'oauthNoScope', 'readonlySuperuser'], status);
const ownerOnly = (status: number) => users(404, { orgadmin: status, oauthScoped: status });

const R = '/repository/acme/repo';
export const notificationRows: MatrixRow[] = [
  { method: 'GET', path: `${R}/notification/`, scopes: ['repo:admin'], setup: reset, expect: readers(200) },
  { method: 'POST', path: `${R}/notification/`, scopes: ['repo:admin'], body: REPO_BODY, setup: reset, expect: admins(201) },
  { method: 'GET', path: `${R}/notification/${REPO_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: readers(200) },
  { method: 'DELETE', path: `${R}/notification/${REPO_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: admins(204) },
  { method: 'POST', path: `${R}/notification/${REPO_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: admins(204) },
  { method: 'POST', path: `${R}/notification/${REPO_FIXED}/test`, scopes: ['repo:admin'], setup: reset, expect: admins(200) },
  { method: 'GET', path: `${R}/notification/nosuch`, scopes: ['repo:admin'], setup: reset, expect: readers(404) },
  { method: 'DELETE', path: `${R}/notification/nosuch`, scopes: ['repo:admin'], setup: reset, expect: admins(400) },
  { method: 'GET', path: '/repository/acme/nosuch/notification/', scopes: ['repo:admin'], expect: readers(404) },
  { method: 'GET', path: `${R}/authorizedemail/ops@example.com`, scopes: ['repo:admin'], setup: reset, expect: readers(200) },
  { method: 'GET', path: `${R}/authorizedemail/new@example.com`, scopes: ['repo:admin'], setup: reset, expect: readers(404) },
  { method: 'POST', path: `${R}/authorizedemail/new@example.com`, scopes: ['repo:admin'], setup: reset, expect: admins(200) },

  { method: 'GET', path: '/organization/acme/notifications', scopes: [], setup: reset, expect: orgReaders(200) },
  { method: 'POST', path: '/organization/acme/notifications', scopes: [], body: NS_BODY, setup: reset, expect: orgAdmins(201) },
  { method: 'GET', path: `/organization/acme/notifications/${ORG_FIXED}`, scopes: [], setup: reset, expect: orgReaders(200) },
  { method: 'DELETE', path: `/organization/acme/notifications/${ORG_FIXED}`, scopes: [], setup: reset, expect: orgAdmins(204) },
  { method: 'POST', path: `/organization/acme/notifications/${ORG_FIXED}`, scopes: [], setup: reset, expect: orgAdmins(204) },
  { method: 'POST', path: `/organization/acme/notifications/${ORG_FIXED}/test`, scopes: [], setup: reset, expect: orgAdmins(200) },
  { method: 'GET', path: `/organization/acme/notifications/${USER_FIXED}`, scopes: [], setup: reset, expect: orgReaders(404) },
  { method: 'GET', path: '/organization/nosuchorg/notifications', scopes: [], expect: expectAll([], 0, { orgadmin: 403, oauthNoScope: 403, readonlySuperuser: 404 }) },

  { method: 'GET', path: '/user/namespacenotifications', scopes: ['user:admin'], setup: reset, expect: users(200) },
  { method: 'POST', path: '/user/namespacenotifications', scopes: ['user:admin'], body: NS_BODY, setup: reset, expect: users(201) },
  { method: 'GET', path: `/user/namespacenotifications/${USER_FIXED}`, scopes: ['user:admin'], setup: reset, expect: ownerOnly(200) },
  { method: 'DELETE', path: `/user/namespacenotifications/${USER_FIXED}`, scopes: ['user:admin'], setup: reset, expect: ownerOnly(204) },
  { method: 'POST', path: `/user/namespacenotifications/${USER_FIXED}`, scopes: ['user:admin'], setup: reset, expect: ownerOnly(204) },
  { method: 'POST', path: `/user/namespacenotifications/${USER_FIXED}/test`, scopes: ['user:admin'], setup: reset, expect: ownerOnly(200) },
];

test('notification endpoints × callers', async () => {
  await runMatrix(w, notificationRows);
});

test('superusers with FEATURE_SUPERUSERS_FULL_ACCESS may manage repository and organization notifications', async () => {
  const full = await createWorld({ ...FEATURES, ...smtp.config, FEATURE_SUPERUSERS_FULL_ACCESS: true });
  try {
    const rows = notificationRows.filter((r) => !r.path.startsWith('/user/') && !r.path.includes('nosuchorg'));
    await runMatrix(full, rows.map((r) => ({ ...r, expect: { superuser: r.expect.orgadmin! } })));
  } finally {
    await full.close();
  }
});

test('without their feature flags the namespace and authorized-email endpoints do not exist', async () => {
  const off = await createWorld({});
  try {
    await runMatrix(off, [
      { method: 'GET', path: '/organization/acme/notifications', scopes: [], expect: { orgadmin: 404 } },
      { method: 'GET', path: '/user/namespacenotifications', scopes: ['user:admin'], expect: { orgadmin: 404 } },
      { method: 'GET', path: `${R}/authorizedemail/ops@example.com`, scopes: ['repo:admin'], expect: { orgadmin: 404 } },
      { method: 'GET', path: `${R}/notification/`, scopes: ['repo:admin'], expect: { orgadmin: 200 } },
    ]);
  } finally {
    await off.close();
  }
});

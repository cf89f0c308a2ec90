// Permission matrix for the quota endpoints: every one of the 22 × every caller. Quotas and limits
// the rows act on are (re)created with fixed ids by each row's setup.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

const ORG_QUOTA = 9001;
const ORG_LIMIT = 9101;
const USER_QUOTA = 9002; // orgadmin's own
const USER_LIMIT = 9102;
const MEMBER_QUOTA = 9003;

let w: World;
before(async () => { w = await createWorld({ FEATURE_QUOTA_MANAGEMENT: true }); });
after(async () => { await w?.close(); });

async function noQuota(w: World, namespaceId: number): Promise<void> {
  const db = w.t.app.services.db;
  await db.deleteFrom('quota_limits').where('quota_id', 'in', db.selectFrom('quotas').select('id').where('namespace_id', '=', namespaceId)).execute();
  await db.deleteFrom('quotas').where('namespace_id', '=', namespaceId).execute();
}

async function ensureQuota(w: World, namespaceId: number, id: number): Promise<void> {
  const db = w.t.app.services.db;
  if (await db.selectFrom('quotas').select('id').where('id', '=', id).executeTakeFirst()) return;
  await noQuota(w, namespaceId);
  await db.insertInto('quotas').values({ id, namespace_id: namespaceId, limit_bytes: 1000 }).execute();
}

async function ensureLimit(w: World, namespaceId: number, quotaId: number, id: number): Promise<void> {
  await ensureQuota(w, namespaceId, quotaId);
  const db = w.t.app.services.db;
  await db.deleteFrom('quota_limits').where('quota_id', '=', quotaId).where('id', '!=', id).execute();
  if (await db.selectFrom('quota_limits').select('id').where('id', '=', id).executeTakeFirst()) return;
  await db.insertInto('quota_limits').values({ id, quota_id: quotaId, type: 'Reject', percent: 100 }).execute();
}

const org = (w: World) => w.org.id;
const orgQuota = (w: World) => ensureQuota(w, org(w), ORG_QUOTA);
const orgLimit = (w: World) => ensureLimit(w, org(w), ORG_QUOTA, ORG_LIMIT);
const userLimit = (w: World) => ensureLimit(w, w.users.orgadmin.id, USER_QUOTA, USER_LIMIT);

const SU = ['super:user'];
const UA = ['user:admin'];
// Quotas: organization members, superusers, global read-only superusers. An OAuth token without
// org:admin or repo:create carries no team role (oauthScoped here holds user:read only).
const quotaReaders = expectAll(['member', 'creator', 'orgadmin', 'oauthNoScope', 'superuser', 'readonlySuperuser'], 200);
// Limits: the same, except that superusers need FEATURE_SUPERUSERS_FULL_ACCESS (off here).
const limitReaders = expectAll(['member', 'creator', 'orgadmin', 'oauthNoScope', 'readonlySuperuser'], 200);
const superuserOnly = (status: number) => expectAll(['superuser'], status);
// The caller's own quota: only orgadmin has USER_QUOTA; other users find nothing.
const ownQuota = expectAll(['orgadmin', 'oauthScoped'], 200, { outsider: 404, member: 404, creator: 404, superuser: 404, readonlySuperuser: 404 });

const O = '/organization/acme/quota';
const rows: MatrixRow[] = [
  { method: 'GET', path: O, scopes: [], setup: orgQuota, expect: quotaReaders },
  { method: 'POST', path: O, scopes: SU, body: { limit_bytes: 1000 }, setup: (w) => noQuota(w, org(w)), expect: superuserOnly(201) },
  { method: 'GET', path: `${O}/${ORG_QUOTA}`, scopes: [], setup: orgQuota, expect: quotaReaders },
  { method: 'PUT', path: `${O}/${ORG_QUOTA}`, scopes: SU, body: { limit_bytes: 2000 }, setup: orgQuota, expect: superuserOnly(200) },
  { method: 'DELETE', path: `${O}/${ORG_QUOTA}`, scopes: SU, setup: orgQuota, expect: superuserOnly(204) },
  { method: 'GET', path: `${O}/${ORG_QUOTA}/limit`, scopes: [], setup: orgLimit, expect: limitReaders },
  { method: 'POST', path: `${O}/${ORG_QUOTA}/limit`, scopes: SU, body: { type: 'Warning', threshold_percent: 50 }, setup: orgLimit, expect: superuserOnly(201) },
  { method: 'GET', path: `${O}/${ORG_QUOTA}/limit/${ORG_LIMIT}`, scopes: [], setup: orgLimit, expect: limitReaders },
  { method: 'PUT', path: `${O}/${ORG_QUOTA}/limit/${ORG_LIMIT}`, scopes: SU, body: { threshold_percent: 95 }, setup: orgLimit, expect: superuserOnly(200) },
  { method: 'DELETE', path: `${O}/${ORG_QUOTA}/limit/${ORG_LIMIT}`, scopes: SU, setup: orgLimit, expect: superuserOnly(204) },
  // Permission is decided before existence: only those who could read it learn it is not there.
  { method: 'GET', path: '/organization/nosuchorg/quota', scopes: [], expect: expectAll([], 403, { superuser: 404, readonlySuperuser: 404 }) },

  { method: 'GET', path: '/user/quota', scopes: UA, expect: expectAll(['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'], 200) },
  { method: 'GET', path: `/user/quota/${USER_QUOTA}`, scopes: UA, setup: userLimit, expect: ownQuota },
  { method: 'GET', path: `/user/quota/${USER_QUOTA}/limit`, scopes: UA, setup: userLimit, expect: ownQuota },
  { method: 'GET', path: `/user/quota/${USER_QUOTA}/limit/${USER_LIMIT}`, scopes: UA, setup: userLimit, expect: ownQuota },

  { method: 'GET', path: '/superuser/users/member/quota', scopes: SU, expect: expectAll(['superuser', 'readonlySuperuser'], 200) },
  { method: 'POST', path: '/superuser/users/member/quota', scopes: SU, body: { limit_bytes: 1000 }, setup: (w) => noQuota(w, w.users.member.id), expect: superuserOnly(201) },
  { method: 'PUT', path: `/superuser/users/member/quota/${MEMBER_QUOTA}`, scopes: SU, body: { limit: '2 KiB' }, setup: (w) => ensureQuota(w, w.users.member.id, MEMBER_QUOTA), expect: superuserOnly(200) },
  { method: 'DELETE', path: `/superuser/users/member/quota/${MEMBER_QUOTA}`, scopes: SU, setup: (w) => ensureQuota(w, w.users.member.id, MEMBER_QUOTA), expect: superuserOnly(204) },
  { method: 'GET', path: '/superuser/organization/acme/quota', scopes: SU, setup: orgQuota, expect: expectAll(['superuser', 'readonlySuperuser'], 200) },
  { method: 'POST', path: '/superuser/organization/acme/quota', scopes: SU, body: { limit: '1 GiB' }, setup: (w) => noQuota(w, org(w)), expect: superuserOnly(201) },
  { method: 'PUT', path: `/superuser/organization/acme/quota/${ORG_QUOTA}`, scopes: SU, body: {}, setup: orgQuota, expect: superuserOnly(200) },
  { method: 'DELETE', path: `/superuser/organization/acme/quota/${ORG_QUOTA}`, scopes: SU, setup: orgQuota, expect: superuserOnly(204) },
];

test('quota endpoints × callers', async () => {
  await runMatrix(w, rows);
});

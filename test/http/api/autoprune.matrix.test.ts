// Permission matrix for the auto-prune policy endpoints (organization, user, repository): every
// endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World, type Caller } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

const ORG_FIXED = '00000000-0000-4000-8000-00000000a001';
const REPO_FIXED = '00000000-0000-4000-8000-00000000a002';
const USER_FIXED = '00000000-0000-4000-8000-00000000a003';
const BODY = { method: 'number_of_tags', value: 5 };

let w: World;
before(async () => { w = await createWorld({ FEATURE_AUTO_PRUNE: true }); });
after(async () => { await w?.close(); });

/** Each caller starts from the same policies: only the fixed ones. */
async function reset(w: World): Promise<void> {
  const s = w.t.app.services;
  await s.db.deleteFrom('autoprune_policies').execute();
  const repo = await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', w.org.id).where('name', '=', 'repo').executeTakeFirstOrThrow();
  const policy = JSON.stringify({ method: 'number_of_tags', value: 3, tag_pattern: null, tag_pattern_matches: true });
  await s.db.insertInto('autoprune_policies').values([
    { uuid: ORG_FIXED, namespace_id: w.org.id, repository_id: null, policy },
    { uuid: REPO_FIXED, namespace_id: w.org.id, repository_id: repo.id, policy },
    { uuid: USER_FIXED, namespace_id: w.users.orgadmin.id, repository_id: null, policy },
  ]).execute();
}

const orgAdmins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const orgReaders = (status: number) => expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], status);
const HUMANS: Caller[] = ['outsider', 'member', 'creator', 'orgadmin', 'oauthScoped', 'superuser', 'readonlySuperuser'];
const users = (status: number, others: Partial<Record<Caller, number>> = {}) => expectAll(HUMANS, status, others);
/** USER_FIXED belongs to orgadmin: everyone else's namespace has no such policy. */
const ownerOnly = (status: number) => users(404, { orgadmin: status, oauthScoped: status });

export const autopruneRows: MatrixRow[] = [
  { method: 'GET', path: '/organization/acme/autoprunepolicy/', scopes: ['org:admin'], setup: reset, expect: orgReaders(200) },
  { method: 'POST', path: '/organization/acme/autoprunepolicy/', scopes: ['org:admin'], body: BODY, setup: reset, expect: orgAdmins(201) },
  { method: 'GET', path: `/organization/acme/autoprunepolicy/${ORG_FIXED}`, scopes: ['org:admin'], setup: reset, expect: orgReaders(200) },
  { method: 'PUT', path: `/organization/acme/autoprunepolicy/${ORG_FIXED}`, scopes: ['org:admin'], body: BODY, setup: reset, expect: orgAdmins(204) },
  { method: 'DELETE', path: `/organization/acme/autoprunepolicy/${ORG_FIXED}`, scopes: ['org:admin'], setup: reset, expect: orgAdmins(200) },
  { method: 'DELETE', path: '/organization/acme/autoprunepolicy/nosuch', scopes: ['org:admin'], setup: reset, expect: orgAdmins(404) },
  { method: 'GET', path: '/organization/nosuchorg/autoprunepolicy/', scopes: ['org:admin'], expect: expectAll([], 0, { orgadmin: 403, oauthScoped: 403, readonlySuperuser: 404 }) },

  { method: 'GET', path: '/repository/acme/repo/autoprunepolicy/', scopes: ['repo:admin'], setup: reset, expect: orgReaders(200) },
  { method: 'POST', path: '/repository/acme/repo/autoprunepolicy/', scopes: ['repo:admin'], body: BODY, setup: reset, expect: orgAdmins(201) },
  { method: 'GET', path: `/repository/acme/repo/autoprunepolicy/${REPO_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: orgReaders(200) },
  { method: 'PUT', path: `/repository/acme/repo/autoprunepolicy/${REPO_FIXED}`, scopes: ['repo:admin'], body: BODY, setup: reset, expect: orgAdmins(204) },
  { method: 'DELETE', path: `/repository/acme/repo/autoprunepolicy/${REPO_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: orgAdmins(200) },
  { method: 'GET', path: '/repository/acme/nosuch/autoprunepolicy/', scopes: ['repo:admin'], expect: orgReaders(404) },

  { method: 'GET', path: '/user/autoprunepolicy/', scopes: ['user:admin'], setup: reset, expect: users(200) },
  { method: 'POST', path: '/user/autoprunepolicy/', scopes: ['user:admin'], body: BODY, setup: reset, expect: users(201) },
  { method: 'GET', path: `/user/autoprunepolicy/${USER_FIXED}`, scopes: ['user:admin'], setup: reset, expect: ownerOnly(200) },
  { method: 'PUT', path: `/user/autoprunepolicy/${USER_FIXED}`, scopes: ['user:admin'], body: BODY, setup: reset, expect: ownerOnly(204) },
  { method: 'DELETE', path: `/user/autoprunepolicy/${USER_FIXED}`, scopes: ['user:admin'], setup: reset, expect: ownerOnly(200) },
];

test('auto-prune policy endpoints × callers', async () => {
  await runMatrix(w, autopruneRows);
});

test('superusers with FEATURE_SUPERUSERS_FULL_ACCESS may manage organization and repository policies', async () => {
  const full = await createWorld({ FEATURE_AUTO_PRUNE: true, FEATURE_SUPERUSERS_FULL_ACCESS: true });
  try {
    const rows = autopruneRows.filter((r) => !r.path.startsWith('/user/') && !r.path.includes('nosuchorg'));
    await runMatrix(full, rows.map((r) => ({ ...r, expect: { superuser: r.expect.orgadmin! } })));
  } finally {
    await full.close();
  }
});

// Permission matrix for the tag-immutability policy endpoints (organization, repository): every
// endpoint × every caller.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

const ORG_FIXED = '00000000-0000-4000-8000-00000000b001';
const REPO_FIXED = '00000000-0000-4000-8000-00000000b002';

let w: World;
before(async () => { w = await createWorld({ FEATURE_IMMUTABLE_TAGS: true }); });
after(async () => { await w?.close(); });

/** Each caller starts from the same policies: only the fixed ones. */
async function reset(w: World): Promise<void> {
  const s = w.t.app.services;
  await s.db.deleteFrom('immutability_policies').execute();
  const repo = await s.db.selectFrom('repositories').select('id').where('namespace_id', '=', w.org.id).where('name', '=', 'repo').executeTakeFirstOrThrow();
  await s.db.insertInto('immutability_policies').values([
    { uuid: ORG_FIXED, namespace_id: w.org.id, repository_id: null, tag_pattern: '^v', tag_pattern_matches: 1 },
    { uuid: REPO_FIXED, namespace_id: w.org.id, repository_id: repo.id, tag_pattern: '^v', tag_pattern_matches: 1 },
  ]).execute();
}

const admins = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
const readers = (status: number) => expectAll(['orgadmin', 'oauthScoped', 'readonlySuperuser'], status);
const BODY = { tagPattern: '^release-' };

export const immutabilityRows: MatrixRow[] = [
  { method: 'GET', path: '/organization/acme/immutabilitypolicy/', scopes: ['org:admin'], setup: reset, expect: readers(200) },
  { method: 'POST', path: '/organization/acme/immutabilitypolicy/', scopes: ['org:admin'], body: BODY, setup: reset, expect: admins(201) },
  { method: 'GET', path: `/organization/acme/immutabilitypolicy/${ORG_FIXED}`, scopes: ['org:admin'], setup: reset, expect: readers(200) },
  { method: 'PUT', path: `/organization/acme/immutabilitypolicy/${ORG_FIXED}`, scopes: ['org:admin'], body: BODY, setup: reset, expect: admins(204) },
  { method: 'DELETE', path: `/organization/acme/immutabilitypolicy/${ORG_FIXED}`, scopes: ['org:admin'], setup: reset, expect: admins(200) },
  { method: 'GET', path: '/organization/acme/immutabilitypolicy/nosuch', scopes: ['org:admin'], setup: reset, expect: readers(404) },

  { method: 'GET', path: '/repository/acme/repo/immutabilitypolicy/', scopes: ['repo:admin'], setup: reset, expect: readers(200) },
  { method: 'POST', path: '/repository/acme/repo/immutabilitypolicy/', scopes: ['repo:admin'], body: BODY, setup: reset, expect: admins(201) },
  { method: 'GET', path: `/repository/acme/repo/immutabilitypolicy/${REPO_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: readers(200) },
  { method: 'PUT', path: `/repository/acme/repo/immutabilitypolicy/${REPO_FIXED}`, scopes: ['repo:admin'], body: BODY, setup: reset, expect: admins(204) },
  { method: 'DELETE', path: `/repository/acme/repo/immutabilitypolicy/${REPO_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: admins(200) },
  { method: 'GET', path: `/repository/acme/repo/immutabilitypolicy/${ORG_FIXED}`, scopes: ['repo:admin'], setup: reset, expect: readers(404) },
  { method: 'POST', path: '/repository/acme/nosuch/immutabilitypolicy/', scopes: ['repo:admin'], body: BODY, expect: admins(404) },
];

test('immutability policy endpoints × callers', async () => {
  await runMatrix(w, immutabilityRows);
});

test('superusers with FEATURE_SUPERUSERS_FULL_ACCESS may manage any policy', async () => {
  const full = await createWorld({ FEATURE_IMMUTABLE_TAGS: true, FEATURE_SUPERUSERS_FULL_ACCESS: true });
  try {
    await runMatrix(full, immutabilityRows.map((r) => ({ ...r, expect: { superuser: r.expect.orgadmin! } })));
  } finally {
    await full.close();
  }
});

// Permission matrix for the proxy-cache configuration endpoints: every endpoint × every caller.
// Reads are for organization members (and global read-only superusers), changes and validation
// for organization admins (and superusers with FEATURE_SUPERUSERS_FULL_ACCESS).
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

const FLAGS = { FEATURE_PROXY_CACHE: true, QUAYSIDE_OUTBOUND_ALLOWLIST: ['127.0.0.1'] };

let w: World;
before(async () => { w = await createWorld(FLAGS); });
after(async () => { await w?.close(); });

async function none(w: World): Promise<void> {
  await w.t.app.services.db.deleteFrom('proxy_cache_configs').execute();
}

async function configured(w: World): Promise<void> {
  await none(w);
  await w.t.app.services.db.insertInto('proxy_cache_configs').values({
    org_id: w.org.id, upstream_registry: 'quay.io/projectquay', username_enc: null, password_enc: null, expiration_s: 86400, insecure: 0, created_at: Date.now(),
  }).execute();
}

function rows(w: World): MatrixRow[] {
  // The upstream validated against is this very Quayside (anonymous access on: "Valid").
  const upstream = new URL(w.t.url).host;
  // Quay tags these endpoints with no OAuth scope: a token holding every scope (oauthNoScope here)
  // acts with the admin's org role, one holding only user:read (oauthScoped) with none.
  const admins = (status: number) => expectAll(['orgadmin', 'oauthNoScope'], status);
  return [
    { method: 'GET', path: '/organization/acme/proxycache', scopes: [], setup: configured, expect: expectAll(['member', 'creator', 'orgadmin', 'oauthNoScope', 'readonlySuperuser'], 200) },
    { method: 'POST', path: '/organization/acme/proxycache', scopes: [], body: { upstream_registry: 'quay.io' }, setup: none, expect: admins(201) },
    { method: 'DELETE', path: '/organization/acme/proxycache', scopes: [], setup: configured, expect: admins(201) },
    { method: 'DELETE', path: '/organization/acme/proxycache', scopes: [], setup: none, expect: admins(404) },
    { method: 'POST', path: '/organization/acme/validateproxycache', scopes: [], body: { upstream_registry: upstream, insecure: true }, expect: admins(202) },
    { method: 'GET', path: '/organization/nosuch/proxycache', scopes: [], expect: expectAll(['readonlySuperuser'], 200) },
    { method: 'POST', path: '/organization/nosuch/proxycache', scopes: [], body: { upstream_registry: 'quay.io' }, expect: expectAll([], 0) },
  ];
}

test('proxy cache endpoints × callers', async () => {
  await runMatrix(w, rows(w));
});

test('superusers with FEATURE_SUPERUSERS_FULL_ACCESS may manage any organization\'s proxy cache', async () => {
  const full = await createWorld({ ...FLAGS, FEATURE_SUPERUSERS_FULL_ACCESS: true });
  try {
    const expect: Record<string, number> = { 'GET /organization/nosuch/proxycache': 200, 'POST /organization/nosuch/proxycache': 404 };
    await runMatrix(full, rows(full).map((r) => ({ ...r, expect: { superuser: expect[`${r.method} ${r.path}`] ?? (r.method === 'GET' ? 200 : r.expect.orgadmin!) } })));
  } finally {
    await full.close();
  }
});

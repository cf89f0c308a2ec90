// Endpoint coverage against shared/quay-api/endpoints.json: with every feature flag on, each
// endpoint Quayside takes on (all areas but those listed as not built yet, and quay.io billing)
// is in /api/v1/discovery with Quay's method, path and nickname. Prints coverage per area.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { call } from './client.ts';

interface Endpoint { path: string; method: string; nickname: string | null; area: string; feature_flags: string[] }
const endpoints = JSON.parse(readFileSync(new URL('../../../../shared/quay-api/endpoints.json', import.meta.url), 'utf8')) as Endpoint[];

// Areas of later issues (mirroring, builds, scanning) and quay.io billing.
const NOT_YET = new Set(['mirror', 'org-mirror', 'build/trigger', 'secscan', 'billing-excluded']);
const BILLING_FLAGS = new Set(['FEATURE_BILLING', 'FEATURE_RH_MARKETPLACE']);
// Superuser endpoints that belong to those areas: mirror health (mirroring) and build logs/status (builds).
const notYet = (e: Endpoint) => NOT_YET.has(e.area) || (e.area === 'superuser' && (e.path.includes('/mirror/') || e.path.includes('{build_uuid}')));

// Every flag endpoints.json names (some entries combine two, or name a plain config key).
const features = Object.fromEntries(endpoints.flatMap((e) => e.feature_flags)
  .flatMap((f) => f.match(/FEATURE_[A-Z_]+/g) ?? []).map((f) => [f, true]));

let t: TestApp;
before(async () => {
  t = await startTestApp({ ...features, SUPER_USERS: ['admin'], FEATURE_SUPERUSER_CONFIGDUMP: true, PERMANENTLY_DELETE_TAGS: true });
});
after(async () => { await t?.close(); });

/** `/api/v1/repository/{repository}/tag/{tag}` → `/api/v1/repository/{}/tag/{}`: parameter names may differ. */
const shape = (p: string) => p.replace(/\{[^}]+\}/g, '{}').replace(/<[^>]+>/g, '{}');

test('every in-scope endpoint of endpoints.json is served, under its Quay nickname', async () => {
  const r = await call(t, 'GET', '/api/v1/discovery?internal=true');
  assert.equal(r.status, 200);
  const served = new Map<string, string | undefined>();
  for (const [path, ops] of Object.entries(r.body.paths as Record<string, Record<string, { operationId?: string }>>)) {
    for (const [method, op] of Object.entries(ops)) if (method !== 'x-tag' && method !== 'parameters') served.set(`${method.toUpperCase()} ${shape(path)}`, op.operationId);
  }
  const perArea = new Map<string, { scope: number; served: number }>();
  const missing: string[] = [];
  const wrongNick: string[] = [];
  for (const e of endpoints) {
    if (notYet(e) || e.feature_flags.some((f) => BILLING_FLAGS.has(f))) continue;
    const key = `${e.method} ${shape(e.path)}`;
    const a = perArea.get(e.area) ?? { scope: 0, served: 0 };
    a.scope++;
    // Quay serves its nickname-less endpoints outside the API blueprint: not in discovery, only routed.
    const routed = e.nickname === null && t.app.fastify.hasRoute({ method: e.method as 'GET', url: e.path.replace(/\{([^}]+)\}/g, ':$1') });
    if (served.has(key) || routed) {
      a.served++;
      if (e.nickname && served.get(key) !== e.nickname) wrongNick.push(`${key}: ${served.get(key)} ≠ ${e.nickname}`);
    } else missing.push(`${key} (${e.area})`);
    perArea.set(e.area, a);
  }
  const total = [...perArea.values()].reduce((n, a) => ({ scope: n.scope + a.scope, served: n.served + a.served }), { scope: 0, served: 0 });
  const table = [...perArea].sort().map(([area, a]) => `${area} ${a.served}/${a.scope}`).join(', ');
  console.log(`endpoint coverage: ${total.served}/${total.scope} in scope (${endpoints.length} in endpoints.json); ${table}`);
  assert.deepEqual(missing, []);
  assert.deepEqual(wrongNick, []);
});

// Permission matrix for GET /api/v1/entities/{prefix}: open to every caller (what they see differs;
// see entities.test.ts), closed to anonymous callers when FEATURE_ANONYMOUS_ACCESS is off; and
// POST /api/v1/entities/link/{username}, 404 for everyone Quay lets that far.
import { after, before, test } from 'node:test';
import { createWorld, CALLERS, type World } from '../../support/world.ts';
import { runMatrix, type MatrixRow } from '../../support/matrix.ts';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

const all = (status: number) => Object.fromEntries(CALLERS.map((c) => [c, status]));

export const entitiesRows: MatrixRow[] = [
  { method: 'GET', path: '/entities/m?namespace=acme&includeTeams=true&includeOrgs=true', scopes: [], expect: all(200) },
  { method: 'GET', path: '/entities/or', scopes: [], expect: all(200) },
  // Only federated backends (LDAP, Keystone, …) link users; under Database Quay aborts with 404.
  { method: 'POST', path: '/entities/link/someone', scopes: [], expect: all(404) },
];

test('entity search × callers', async () => {
  await runMatrix(w, entitiesRows);
});

test('without anonymous access, callers without API credentials get 401', async () => {
  const closed = await createWorld({ FEATURE_ANONYMOUS_ACCESS: false });
  try {
    await runMatrix(closed, [{
      method: 'GET', path: '/entities/m', scopes: [],
      expect: { ...all(200), anonymous: 401, robot: 401, appToken: 401 },
    }, {
      method: 'POST', path: '/entities/link/someone', scopes: [],
      expect: { ...all(404), anonymous: 401, robot: 401, appToken: 401 },
    }]);
  } finally {
    await closed.close();
  }
});

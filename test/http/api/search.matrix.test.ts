// Permission matrix for /api/v1/find/*: open to every caller (results depend on who asks);
// /find/all is tagged repo:read, so an OAuth token without it is refused.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix, type MatrixRow } from '../../support/matrix.ts';

let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

const all = ['anonymous', 'outsider', 'member', 'creator', 'orgadmin', 'robot', 'oauthScoped', 'oauthNoScope', 'appToken', 'superuser', 'readonlySuperuser'] as const;

export const searchRows: MatrixRow[] = [
  { method: 'GET', path: '/find/repositories?query=repo', scopes: [], expect: expectAll([...all], 200) },
  { method: 'GET', path: '/find/repositories?query=repo&page=2&includeUsage=true', scopes: [], expect: expectAll([...all], 200) },
  { method: 'GET', path: '/find/all?query=acme', scopes: ['repo:read'], expect: expectAll(all.filter((c) => c !== 'oauthNoScope'), 200) },
];

test('search permission matrix', async () => { await runMatrix(w, searchRows); });

// Permission matrix for /api/v1/repository/{repository}/manifest/{manifestref}.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix } from '../../support/matrix.ts';
import { pushImage, type PushedImage } from './images.ts';

let w: World;
let img: PushedImage;
before(async () => {
  w = await createWorld();
  img = await pushImage(w, 'acme/repo', 'latest');
});
after(async () => { await w?.close(); });

test('manifest endpoints × callers', async () => {
  await runMatrix(w, [
    {
      method: 'GET', path: `/repository/acme/repo/manifest/${img.digest}`, scopes: ['repo:read'],
      expect: expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 200),
    },
    {
      method: 'GET', path: `/repository/acme/repo/manifest/sha256:${'0'.repeat(64)}`, scopes: ['repo:read'],
      expect: expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 404),
    },
  ]);
});

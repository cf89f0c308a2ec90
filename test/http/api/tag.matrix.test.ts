// Permission matrix for /api/v1/repository/{repository}/tag: every endpoint × every caller.
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

/** (Re)points a tag at the image as orgadmin, so a destructive row has something to act on. */
const retag = (name: string) => async (w: World) => {
  const res = await w.api('PUT', `/repository/acme/repo/tag/${name}`, { body: { manifest_digest: img.digest } });
  if (res.status !== 201) throw new Error(`retag ${name}: ${res.status}`);
};

test('tag endpoints × callers', async () => {
  const readers = expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 200);
  const writers = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
  await runMatrix(w, [
    { method: 'GET', path: '/repository/acme/repo/tag/', scopes: ['repo:read'], expect: readers },
    { method: 'PUT', path: '/repository/acme/repo/tag/made', scopes: ['repo:write'], body: { manifest_digest: img.digest }, expect: writers(201) },
    { method: 'DELETE', path: '/repository/acme/repo/tag/doomed', scopes: ['repo:write'], setup: retag('doomed'), expect: writers(204) },
    { method: 'POST', path: '/repository/acme/repo/tag/back/restore', scopes: ['repo:write'], body: { manifest_digest: img.digest }, expect: writers(200) },
    { method: 'POST', path: '/repository/acme/repo/tag/old/expire', scopes: ['repo:write'], body: { is_alive: true }, setup: retag('old'), expect: writers(200) },
  ]);
});

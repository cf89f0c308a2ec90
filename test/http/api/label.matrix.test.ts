// Permission matrix for /api/v1/repository/{repository}/manifest/{manifestref}/labels.
import { after, before, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { expectAll, runMatrix } from '../../support/matrix.ts';
import { pushImage, type PushedImage } from './images.ts';

let w: World;
let img: PushedImage;
let fixedId: string;
before(async () => {
  w = await createWorld();
  img = await pushImage(w, 'acme/repo', 'latest', { labels: { 'com.example.a': '1' } });
  fixedId = (await (await w.api('GET', `/repository/acme/repo/manifest/${img.digest}/labels`)).json()).labels[0].id;
});
after(async () => { await w?.close(); });

test('label endpoints × callers', async () => {
  const base = `/repository/acme/repo/manifest/${img.digest}/labels`;
  const readers = expectAll(['member', 'orgadmin', 'oauthScoped', 'readonlySuperuser'], 200);
  const writers = (status: number) => expectAll(['orgadmin', 'oauthScoped'], status);
  // DELETE needs a fresh api label per caller; its id is only known once the setup has run.
  let victim = '';
  const row = {
    method: 'DELETE' as const, scopes: ['repo:write'], expect: writers(204),
    get path() { return `${base}/${victim}`; },
    async setup(w: World) {
      const res = await w.api('POST', base, { body: { key: 'tmp', value: 'x', media_type: null } });
      victim = (await res.json()).label.id;
    },
  };
  await runMatrix(w, [
    { method: 'GET', path: base, scopes: ['repo:read'], expect: readers },
    { method: 'GET', path: `${base}/${fixedId}`, scopes: ['repo:read'], expect: readers },
    { method: 'POST', path: base, scopes: ['repo:write'], body: { key: 'added', value: 'v', media_type: 'text/plain' }, expect: writers(201) },
    row,
  ]);
});

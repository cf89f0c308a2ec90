// Quotas against skopeo (Debian's): an organization quota set through /api/v1 with Warning and
// Reject limits; pushes fill it up to the warning (admins notified), the next push is refused with
// Quay's "denied: Quota has been exceeded on namespace" and leaves nothing counted; deleting a tag
// and collecting garbage makes room again. Runs on the database QUAYSIDE_TEST_DB selects.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copy, createClientContext, deleteImage, listTags, login, type ClientContext } from '../support/clients.ts';
import { buildMultiLayerImage, type BuiltImage } from '../support/images.ts';
import { startTestApp, type TestApp } from '../support/app.ts';
import { createOAuthApplication, createOAuthToken, createOrganization, createUser, type User } from '../../src/model/accounts.ts';
import { collectGarbage } from '../../src/model/gc.ts';
import { failure, reportTimings, timed } from './e2e.ts';

const PASS = 'correct-horse-1';

let t: TestApp;
let ctx: ClientContext;
let alice: User;
let corp: User;
let rootToken: string;
let aliceToken: string;
let images: BuiltImage[];

reportTimings('quota e2e');

before(async () => {
  t = await timed('start quayside', () => startTestApp({ FEATURE_QUOTA_MANAGEMENT: true, SUPER_USERS: ['root'] }));
  const s = t.app.services;
  alice = await createUser(s, { username: 'alice', password: PASS, email: 'alice@example.com' });
  const root = await createUser(s, { username: 'root', password: PASS, email: 'root@example.com' });
  corp = await createOrganization(s, 'corp', alice);
  const app = await createOAuthApplication(s, corp, 'quota-e2e');
  rootToken = (await createOAuthToken(s, app, root, 'super:user org:admin user:admin')).token;
  aliceToken = (await createOAuthToken(s, app, alice, 'org:admin user:admin repo:read')).token;
  ctx = await createClientContext('e2e-quota-');
  images = await timed('build layouts', async () => {
    const out: BuiltImage[] = [];
    for (const n of [1, 2, 3]) out.push(await buildMultiLayerImage(join(ctx.dir, `img${n}`), 2, { seed: `quota-${n}`, layerBytes: 48 * 1024 }));
    return out;
  });
  await timed('skopeo login', () => login('skopeo', t.host, 'alice', PASS, ctx));
});

after(async () => {
  await ctx?.cleanup();
  await t?.close();
});

async function api(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${t.url}/api/v1${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

/** The bytes an image adds to a namespace that holds none of its blobs. */
const sizeOf = (img: BuiltImage) => img.manifests[0]!.config.size + img.manifests[0]!.layers.reduce((n, l) => n + l.size, 0);
const at = (path: string) => `docker://${t.host}/${path}`;
const usage = async () => (await api('GET', '/organization/corp', aliceToken)).body.quota_report.quota_bytes as number;
const notes = async () => (await api('GET', '/user/notifications', aliceToken)).body.notifications.map((n: { kind: string; metadata: unknown }) => [n.kind, n.metadata]);

test('push up to the warning, get refused at the limit, make room and push again', async () => {
  const [s1, s2, s3] = images.map(sizeOf) as [number, number, number];
  // Room for two images and a quarter of the third: its first layer cannot fit.
  const limit = s1 + s2 + Math.floor(s3 / 4);
  assert.deepEqual(await api('POST', '/organization/corp/quota', rootToken, { limit_bytes: limit }), { status: 201, body: 'Created' });
  const quotaId = (await api('GET', '/organization/corp/quota', aliceToken)).body[0].id;
  for (const [type, pct] of [['Warning', 50], ['Reject', 100]] as const) {
    assert.equal((await api('POST', `/organization/corp/quota/${quotaId}/limit`, rootToken, { type, threshold_percent: pct })).status, 201);
  }

  await timed('push img1', () => copy(images[0]!.ref, at('corp/app:v1'), ctx));
  assert.equal(await usage(), s1);
  assert.deepEqual(await notes(), [], 'under the warning threshold');

  await timed('push img2 (over Warning)', () => copy(images[1]!.ref, at('corp/app:v2'), ctx));
  assert.equal(await usage(), s1 + s2);
  assert.deepEqual(await notes(), [['quota_warning', { namespace: 'corp' }]]);

  const refused = await timed('push img3 (over Reject)', () => copy(images[2]!.ref, at('corp/app:v3'), { ...ctx, allowFailure: true }));
  assert.notEqual(refused.code, 0, failure(refused));
  assert.match(refused.stderr, /denied: Quota has been exceeded on namespace/i, failure(refused));
  assert.equal(await usage(), s1 + s2, 'nothing of the refused push is counted');
  assert.deepEqual((await listTags(at('corp/app'), ctx)).tags.sort(), ['v1', 'v2']);
  assert.deepEqual((await notes()).map((n: unknown[]) => n[0]).sort(), ['quota_error', 'quota_warning']);

  // Make room: delete v1; once its manifest is collected its blobs no longer count.
  await deleteImage(at('corp/app:v1'), ctx);
  assert.equal(await usage(), s1 + s2, 'a deleted tag still counts until garbage collection');
  assert.equal((await api('PUT', '/organization/corp', aliceToken, { tag_expiration_s: 0 })).status, 200);
  await collectGarbage(t.app.services);
  assert.equal(await usage(), s2);

  await timed('push img3 again', () => copy(images[2]!.ref, at('corp/app:v3'), ctx));
  assert.equal(await usage(), s2 + s3);
  assert.deepEqual((await listTags(at('corp/app'), ctx)).tags.sort(), ['v2', 'v3']);
  const repos = (await api('GET', '/repository?namespace=corp', aliceToken)).body.repositories;
  assert.deepEqual(repos.map((r: { name: string; quota_report: unknown }) => [r.name, r.quota_report]), [['app', { quota_bytes: s2 + s3, configured_quota: limit }]]);
});

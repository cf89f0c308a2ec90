// Tag expiration and the time machine over real HTTP: what an expired tag looks like on /v2 and
// /api/v1, restore within the namespace window, purge after it, quay.expires-after, the expire
// endpoint's include_submanifests and PERMANENTLY_DELETE_TAGS, and the DEFAULT_TAG_EXPIRATION /
// TAG_EXPIRATION_OPTIONS configuration.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { isApiError } from './client.ts';
import { json, pushImage, pushIndex, RFC2822, type PushedImage } from './images.ts';
import { collectGarbage } from '../../../src/model/gc.ts';
import { createOrganization } from '../../../src/model/accounts.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { ConfigError, loadConfig } from '../../../src/config/config.ts';

const HOUR = 3600_000;
const TWO_WEEKS = 1209600_000;

describe('expiration and the time machine', () => {
  let w: World;
  let offset = 0;
  let keep: PushedImage;
  let exp: PushedImage;
  let kids: PushedImage[];
  let multi: { digest: string };
  let multi2: { digest: string };
  let zero: PushedImage;
  let labelled: PushedImage;
  const s = () => w.t.app.services;
  const list = async (repo: string, qs = '') => json(await w.api('GET', `/repository/${repo}/tag/${qs}`));
  // A fresh /v2 client: tokens cached before a clock jump were issued in the old time.
  const v2 = () => new RegistryClient(w.t.url, 'orgadmin', PASSWORD);
  const manifestExists = async (digest: string) => !!(await s().db.selectFrom('manifests').select('id').where('digest', '=', digest).executeTakeFirst());

  before(async () => {
    w = await createWorld();
    keep = await pushImage(w, 'acme/repo', 'keep');
    exp = await pushImage(w, 'acme/repo', 'exp');
    kids = [];
    for (let i = 0; i < 4; i++) kids.push(await pushImage(w, 'acme/kids', null));
    multi = await pushIndex(w, 'acme/kids', 'multi', kids.slice(0, 2));
    multi2 = await pushIndex(w, 'acme/kids', 'multi2', kids.slice(2));
    await createOrganization(s(), 'zeroorg', w.users.orgadmin);
    zero = await pushImage(w, 'zeroorg/app', 'v1');
    labelled = await pushImage(w, 'acme/labelled', 'v1', { labels: { 'quay.expires-after': '1d' } });
    const real = s().now;
    s().now = () => real() + offset;
  });
  after(async () => { await w?.close(); });

  test('expire with include_submanifests ends the children\'s temporary tags so GC takes them with the index', async () => {
    const kidsRepo = (await findRepo(s(), 'acme', 'kids'))!;
    const hiddenAlive = async (digest: string) => {
      const m = await s().db.selectFrom('manifests').select('id').where('repository_id', '=', kidsRepo.id).where('digest', '=', digest).executeTakeFirst();
      if (!m) return null;
      const rows = await s().db.selectFrom('tags').select('lifetime_end').where('manifest_id', '=', m.id).where('hidden', '=', 1).execute();
      return rows.some((r) => r.lifetime_end === null || r.lifetime_end > s().now());
    };
    for (const k of kids) assert.equal(await hiddenAlive(k.digest), true, 'pushed by digest: kept by a temporary tag');
    const with_ = await w.api('POST', '/repository/acme/kids/tag/multi/expire', { body: { is_alive: true, include_submanifests: true } });
    assert.equal(with_.status, 200);
    assert.match(with_.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await with_.text(), '""', 'Quay\'s JSON empty string');
    const without = await w.api('POST', '/repository/acme/kids/tag/multi2/expire', { body: { is_alive: true } });
    assert.equal(without.status, 200);
    assert.equal(await hiddenAlive(kids[0]!.digest), false);
    assert.equal(await hiddenAlive(kids[1]!.digest), false);
    assert.equal(await hiddenAlive(kids[2]!.digest), true);
    await collectGarbage(s());
    assert.equal(await manifestExists(multi.digest), false);
    assert.equal(await manifestExists(multi2.digest), false);
    assert.equal(await manifestExists(kids[0]!.digest), false, 'child collected with its index');
    assert.equal(await manifestExists(kids[1]!.digest), false);
    assert.equal(await manifestExists(kids[2]!.digest), true, 'child still held by its temporary tag');
    assert.equal(await manifestExists(kids[3]!.digest), true);
  });

  test('quay.expires-after: the pushed tag and a tag moved onto the manifest both expire a day after they start', async () => {
    const moved = await w.api('PUT', '/repository/acme/labelled/tag/v2', { body: { manifest_digest: labelled.digest } });
    assert.equal(moved.status, 201);
    const tags = (await list('acme/labelled', '?onlyActiveTags=true')).tags;
    assert.deepEqual(tags.map((t: any) => t.name).sort(), ['v1', 'v2']);
    for (const t of tags) {
      assert.equal(t.end_ts - t.start_ts, 86400, t.name);
      assert.match(t.expiration, RFC2822);
    }
  });

  test('PUT expiration beyond the maximum is clamped to 104 weeks after the tag was created', async () => {
    const far = Math.floor(Date.now() / 1000) + 300 * 604800;
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/keep', { body: { expiration: far } })).status, 201);
    const t = (await list('acme/repo', '?specificTag=keep&onlyActiveTags=true')).tags[0];
    assert.equal(t.end_ts - t.start_ts, 104 * 604800);
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/keep', { body: { expiration: null } })).status, 201);
    assert.equal((await list('acme/repo', '?specificTag=keep')).tags[0].end_ts, undefined);
  });

  test('an expired tag leaves /v2 and the active list, stays in history and restorable, and is purged after the window', async () => {
    const nowS = Math.floor(s().now() / 1000);
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/exp', { body: { expiration: nowS + 7200 } })).status, 201);
    const before = (await list('acme/repo', '?specificTag=exp')).tags[0];
    assert.equal(before.end_ts, nowS + 7200);
    assert.match(before.expiration, RFC2822);

    offset += 2 * HOUR + 1000;
    const c = v2();
    const tags = await c.req('GET', '/v2/acme/repo/tags/list', { scope: 'repository:acme/repo:pull' });
    assert.equal(tags.status, 200);
    assert.deepEqual((await tags.json()).tags, ['keep']);
    const byTag = await c.req('GET', '/v2/acme/repo/manifests/exp', { scope: 'repository:acme/repo:pull' });
    assert.equal(byTag.status, 404);
    assert.equal((await byTag.json()).errors[0].code, 'MANIFEST_UNKNOWN');
    assert.deepEqual((await list('acme/repo', '?onlyActiveTags=true')).tags.map((t: any) => t.name), ['keep']);
    const hist = (await list('acme/repo', '?specificTag=exp')).tags;
    assert.equal(hist.length, 1, 'still in the history');
    assert.equal(hist[0].end_ts, before.end_ts);
    assert.equal(hist[0].manifest_digest, exp.digest);

    // Within the window: restorable, as a reversion with no expiration of its own.
    const restored = await w.api('POST', '/repository/acme/repo/tag/exp/restore', { body: { manifest_digest: exp.digest } });
    assert.equal(restored.status, 200);
    assert.deepEqual(await json(restored), {});
    const now = (await list('acme/repo', '?specificTag=exp&onlyActiveTags=true')).tags;
    assert.equal(now.length, 1);
    assert.equal(now[0].reversion, true);
    assert.equal(now[0].end_ts, undefined);
    const pulled = await c.req('GET', '/v2/acme/repo/manifests/exp', { scope: 'repository:acme/repo:pull', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(pulled.status, 200);
    await pulled.arrayBuffer();

    // Deleted and left past the two-week window: not restorable, and gone from history once GC ran.
    assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/exp')).status, 204);
    offset += TWO_WEEKS + HOUR;
    const late = await w.api('POST', '/repository/acme/repo/tag/exp/restore', { body: { manifest_digest: exp.digest } });
    assert.equal(late.status, 404);
    assert.ok(isApiError(await json(late), 404, 'not_found', w.t.url));
    assert.equal((await list('acme/repo', '?specificTag=exp')).tags.length, 2, 'history kept until GC runs');
    await collectGarbage(s());
    assert.deepEqual((await list('acme/repo', '?specificTag=exp')).tags, []);
    assert.equal(await manifestExists(exp.digest), false);
    assert.equal((await w.api('POST', '/repository/acme/repo/tag/exp/restore', { body: { manifest_digest: exp.digest } })).status, 404);
  });

  test('a namespace window of 0: a deleted tag cannot be restored or expired, and the next GC purges it', async () => {
    const set = await w.api('PUT', '/organization/zeroorg', { body: { tag_expiration_s: 0 } });
    assert.equal(set.status, 200);
    assert.equal((await json(set)).tag_expiration_s, 0);
    assert.equal((await w.api('DELETE', '/repository/zeroorg/app/tag/v1')).status, 204);
    offset += 1000;
    assert.equal((await w.api('POST', '/repository/zeroorg/app/tag/v1/restore', { body: { manifest_digest: zero.digest } })).status, 404);
    assert.equal((await w.api('POST', '/repository/zeroorg/app/tag/v1/expire', { body: { manifest_digest: zero.digest } })).status, 404,
      'nothing left inside a zero window');
    assert.equal((await list('zeroorg/app')).tags.length, 1);
    await collectGarbage(s());
    assert.deepEqual((await list('zeroorg/app')).tags, []);
    assert.equal(await manifestExists(zero.digest), false);
  });

  test('the expire endpoint is listed in discovery while PERMANENTLY_DELETE_TAGS is on (the default)', async () => {
    const d = await json(await w.api('GET', '/discovery'));
    assert.equal(d.paths['/api/v1/repository/{repository}/tag/{tag}/expire'].post.operationId, 'removeTagFromTimemachine');
  });
});

describe('DEFAULT_TAG_EXPIRATION, TAG_EXPIRATION_OPTIONS and PERMANENTLY_DELETE_TAGS: false', () => {
  let w: World;
  before(async () => {
    w = await createWorld({ PERMANENTLY_DELETE_TAGS: false, DEFAULT_TAG_EXPIRATION: '1w', TAG_EXPIRATION_OPTIONS: ['0s', '1w', '2w'] });
  });
  after(async () => { await w?.close(); });

  test('new users and organizations get the default window', async () => {
    assert.equal((await json(await w.api('GET', '/user/'))).tag_expiration_s, 604800);
    assert.equal((await json(await w.api('GET', '/organization/acme'))).tag_expiration_s, 604800);
    const created = await w.api('POST', '/organization/', { body: { name: 'neworg', email: 'neworg@example.com' } });
    assert.equal(created.status, 201);
    assert.equal((await json(await w.api('GET', '/organization/neworg'))).tag_expiration_s, 604800);
  });

  test('a user may only choose a window from TAG_EXPIRATION_OPTIONS', async () => {
    const bad = await w.api('PUT', '/user/', { body: { tag_expiration_s: 86400 } });
    assert.equal(bad.status, 400);
    assert.deepEqual(await json(bad), { message: 'Invalid tag expiration option' });
    assert.equal((await json(await w.api('GET', '/user/'))).tag_expiration_s, 604800, 'unchanged');
    const ok = await w.api('PUT', '/user/', { body: { tag_expiration_s: 1209600 } });
    assert.equal(ok.status, 200);
    assert.equal((await json(ok)).tag_expiration_s, 1209600);
    const org = await w.api('PUT', '/organization/acme', { body: { tag_expiration_s: 86400 } });
    assert.equal(org.status, 400);
    assert.deepEqual(await json(org), { message: 'Invalid tag expiration option' });
  });

  test('without PERMANENTLY_DELETE_TAGS the expire endpoint does not exist', async () => {
    await pushImage(w, 'acme/repo', 'v1');
    for (const body of [{ is_alive: true }, undefined]) {
      const res = await w.api('POST', '/repository/acme/repo/tag/v1/expire', body === undefined ? {} : { body });
      assert.equal(res.status, 404);
      assert.ok(isApiError(await json(res), 404, 'not_found', w.t.url));
    }
    const d = await json(await w.api('GET', '/discovery'));
    assert.equal(d.paths['/api/v1/repository/{repository}/tag/{tag}/expire'], undefined);
    assert.equal((await json(await w.api('GET', '/repository/acme/repo/tag/?onlyActiveTags=true'))).tags[0].name, 'v1', 'the tag is untouched');
  });
});

describe('time-machine configuration', () => {
  const load = (overrides: Record<string, unknown>) => loadConfig({ overrides, env: {}, persistSecrets: false, warn: () => {}, dataDir: '/nonexistent-quayside' });
  const fails = (overrides: Record<string, unknown>, key: string, message: RegExp) => {
    assert.throws(() => load(overrides), (e: unknown) => e instanceof ConfigError && e.key === key && message.test(e.message), JSON.stringify(overrides));
  };

  test('defaults: two weeks out of 0s, 1d, 1w, 2w, 4w; permanent deletion on', () => {
    const c = load({});
    assert.equal(c.defaultTagExpirationSeconds, 1209600);
    assert.deepEqual(c.tagExpirationOptions, [0, 86400, 604800, 1209600, 2419200]);
    assert.equal(c.permanentlyDeleteTags, true);
  });

  test('custom options and default', () => {
    const c = load({ TAG_EXPIRATION_OPTIONS: ['30m', '1h', '3d'], DEFAULT_TAG_EXPIRATION: '1h', PERMANENTLY_DELETE_TAGS: false });
    assert.deepEqual(c.tagExpirationOptions, [1800, 3600, 259200]);
    assert.equal(c.defaultTagExpirationSeconds, 3600);
    assert.equal(c.permanentlyDeleteTags, false);
  });

  test('bad values stop startup with the key named', () => {
    fails({ DEFAULT_TAG_EXPIRATION: '3w' }, 'DEFAULT_TAG_EXPIRATION', /^config: DEFAULT_TAG_EXPIRATION: default expiration must be in expiration options set/);
    fails({ DEFAULT_TAG_EXPIRATION: 'soon', TAG_EXPIRATION_OPTIONS: ['soon'] }, 'TAG_EXPIRATION_OPTIONS', /invalid tag expiration option: "soon"/);
    fails({ DEFAULT_TAG_EXPIRATION: 'soon' }, 'DEFAULT_TAG_EXPIRATION', /invalid default expiration: "soon"/);
    fails({ TAG_EXPIRATION_OPTIONS: ['1d', '1M'] }, 'TAG_EXPIRATION_OPTIONS', /invalid tag expiration option: "1M"/);
    fails({ TAG_EXPIRATION_OPTIONS: '2w' }, 'TAG_EXPIRATION_OPTIONS', /must be a list/);
    fails({ PERMANENTLY_DELETE_TAGS: 'nope' }, 'PERMANENTLY_DELETE_TAGS', /must be true or false/);
  });
});

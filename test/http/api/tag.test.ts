// /api/v1/repository/{repository}/tag over real HTTP: history fields and paging, moves,
// expirations, deletion and the time machine, checked against Quay's shapes and log entries.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError } from './client.ts';
import { json, logsOf, pullStatus, pushImage, pushIndex, RFC2822, type PushedImage } from './images.ts';
import { findRepo } from '../../../src/model/repositories.ts';

let w: World;
let a: PushedImage;
let b: PushedImage;
before(async () => {
  w = await createWorld();
  a = await pushImage(w, 'acme/repo', 'v1', { layerSizes: [100, 200] });
  b = await pushImage(w, 'acme/repo', 'v2', { layerSizes: [400] });
});
after(async () => { await w?.close(); });

const s = () => w.t.app.services;
const BAD_REQUEST = 'The browser (or proxy) sent a request that this server could not understand.';
const TAG_ERROR = 'Invalid tag: must match [A-Za-z0-9_.-], NOT start with "." or "-", and can contain 1-128 characters';
const list = async (qs = '') => json(await w.api('GET', `/repository/acme/repo/tag/${qs}`));
const tagRows = async (name: string) => {
  const repo = (await findRepo(s(), 'acme', 'repo'))!;
  return s().db.selectFrom('tags').selectAll().where('repository_id', '=', repo.id).where('name', '=', name).orderBy('id').execute();
};

describe('PUT /tag/{tag}: create and move', () => {
  test('creates a tag on a manifest and moves it, with create_tag/move_tag entries', async () => {
    const created = await w.api('PUT', '/repository/acme/repo/tag/stable', { body: { manifest_digest: a.digest } });
    assert.equal(created.status, 201);
    assert.equal(await json(created), 'Updated');
    assert.equal(await pullStatus(w, 'acme/repo', 'stable'), 200);
    const moved = await w.api('PUT', '/repository/acme/repo/tag/stable', { body: { manifest_digest: b.digest } });
    assert.equal(moved.status, 201);
    const rows = await tagRows('stable');
    assert.equal(rows.length, 2);
    assert.ok(rows[0]!.lifetime_end !== null, 'first lifetime ended');
    assert.equal(rows[1]!.lifetime_end, null);
    const create = (await logsOf(w, 'create_tag')).at(-1)!;
    assert.deepEqual(create.metadata, { username: 'orgadmin', repo: 'repo', namespace: 'acme', tag: 'stable', manifest_digest: a.digest });
    assert.equal(create.performer_id, w.users.orgadmin.id);
    const move = (await logsOf(w, 'move_tag')).at(-1)!;
    assert.deepEqual(move.metadata, { username: 'orgadmin', repo: 'repo', namespace: 'acme', tag: 'stable', manifest_digest: b.digest, original_manifest_digest: a.digest });
  });

  test('rejects bad names, unknown manifests and bad bodies, changing nothing', async () => {
    const bad = await w.api('PUT', '/repository/acme/repo/tag/-bad', { body: { manifest_digest: a.digest } });
    assert.equal(bad.status, 400);
    assert.deepEqual(await json(bad), { message: TAG_ERROR });
    const unknown = await w.api('PUT', '/repository/acme/repo/tag/x', { body: { manifest_digest: `sha256:${'0'.repeat(64)}` } });
    assert.equal(unknown.status, 404);
    assert.ok(isApiError(await json(unknown), 404, 'not_found', w.t.url));
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/x', { body: { manifest_digest: null } })).status, 404);
    const wrongType = await w.api('PUT', '/repository/acme/repo/tag/x', { body: { manifest_digest: 5 } });
    assert.equal(wrongType.status, 400);
    assert.equal((await json(wrongType)).detail, "5 is not of type 'string', 'null' (field 'manifest_digest')");
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/x', { body: 'nope' })).status, 400);
    assert.equal((await tagRows('x')).length, 0);
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/x', { caller: 'member', body: { manifest_digest: a.digest } })).status, 403);
    assert.equal((await tagRows('x')).length, 0);
  });
});

describe('PUT /tag/{tag}: expiration', () => {
  test('sets, clamps and clears the expiration, logging change_tag_expiration', async () => {
    const [row] = await tagRows('v1');
    const start = row!.lifetime_start;
    const in3h = Math.floor(Date.now() / 1000) + 3 * 3600;
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { expiration: in3h } })).status, 201);
    let cur = (await tagRows('v1')).at(-1)!;
    assert.equal(cur.lifetime_end, start + (in3h - Math.floor(start / 1000)) * 1000);
    const t = (await list('?specificTag=v1')).tags[0];
    assert.equal(t.end_ts, Math.floor(cur.lifetime_end! / 1000));
    assert.match(t.expiration, RFC2822);
    const log = (await logsOf(w, 'change_tag_expiration')).at(-1)!;
    assert.equal(log.metadata.username, 'orgadmin');
    assert.equal(log.metadata.tag, 'v1');
    assert.equal(log.metadata.old_expiration_date, null);
    assert.match(log.metadata.expiration_date, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);

    // Quay keeps a tag alive at least LABELED_EXPIRATION_MINIMUM (1h) after it was created.
    const in10m = Math.floor(Date.now() / 1000) + 600;
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { expiration: in10m } })).status, 201);
    cur = (await tagRows('v1')).at(-1)!;
    assert.equal(cur.lifetime_end, start + 3600 * 1000);

    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { expiration: null } })).status, 201);
    assert.equal((await tagRows('v1')).at(-1)!.lifetime_end, null);
    assert.equal((await logsOf(w, 'change_tag_expiration')).length, 3);
  });

  test('a past expiration is refused and an unknown tag is not found', async () => {
    const past = await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { expiration: Math.floor(Date.now() / 1000) - 60 } });
    assert.equal(past.status, 400);
    assert.deepEqual(await json(past), { message: BAD_REQUEST });
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { expiration: 1e300 } })).status, 400);
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { expiration: 'soon' } })).status, 400);
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/ghost', { body: { expiration: null } })).status, 404);
    assert.equal((await tagRows('v1')).at(-1)!.lifetime_end, null);
  });
});

describe('GET /tag/: history', () => {
  test("every lifetime, newest first, with Quay's fields", async () => {
    const r = await list();
    assert.deepEqual(Object.keys(r).sort(), ['has_additional', 'page', 'tags']);
    assert.equal(r.page, 1);
    assert.equal(r.has_additional, false);
    const names = r.tags.map((t: any) => t.name);
    assert.deepEqual([...names].sort(), ['stable', 'stable', 'v1', 'v2']);
    assert.equal(r.tags[0].name, 'stable', 'the newest lifetime first');
    const alive = r.tags.find((t: any) => t.name === 'v2');
    assert.deepEqual(Object.keys(alive).sort(), ['is_manifest_list', 'last_modified', 'manifest_digest', 'name', 'reversion', 'size', 'start_ts']);
    assert.equal(alive.reversion, false);
    assert.equal(alive.manifest_digest, b.digest);
    assert.equal(alive.is_manifest_list, false);
    assert.equal(alive.size, 400);
    assert.ok(Number.isInteger(alive.start_ts) && Math.abs(alive.start_ts - Date.now() / 1000) < 600);
    assert.match(alive.last_modified, RFC2822);
    const ended = r.tags.filter((t: any) => t.name === 'stable').find((t: any) => t.manifest_digest === a.digest);
    assert.ok(Number.isInteger(ended.end_ts));
    assert.match(ended.expiration, RFC2822);
    const v1 = r.tags.find((t: any) => t.name === 'v1');
    assert.equal(v1.size, 300);
  });

  test('onlyActiveTags, specificTag and filter_tag_name narrow the history', async () => {
    const active = await list('?onlyActiveTags=true');
    assert.deepEqual(active.tags.map((t: any) => t.name).sort(), ['stable', 'v1', 'v2']);
    assert.ok(active.tags.every((t: any) => t.end_ts === undefined));
    assert.equal((await list('?specificTag=stable')).tags.length, 2);
    assert.deepEqual((await list('?filter_tag_name=like:TAB')).tags.map((t: any) => t.name), ['stable', 'stable']);
    assert.deepEqual((await list('?filter_tag_name=eq:v2')).tags.map((t: any) => t.name), ['v2']);
    assert.deepEqual((await list('?filter_tag_name=like:_')).tags, [], "'_' is matched literally");
    assert.equal((await list('?filter_tag_name=other:x')).tags.length, 4, 'unknown operations are ignored');
    const bad = await w.api('GET', '/repository/acme/repo/tag/?filter_tag_name=nocolon');
    assert.equal(bad.status, 400);
    assert.deepEqual(await json(bad), {
      message: "Unsupported syntax for filter_tag_name. Expected <operation>:<tag_name> where <operation>can be 'like' or 'eq'.",
    });
  });

  test('pages with page/limit (1-based, at most 100) and has_additional', async () => {
    const p1 = await list('?limit=3&page=1');
    assert.equal(p1.tags.length, 3);
    assert.equal(p1.has_additional, true);
    const p2 = await list('?limit=3&page=2');
    assert.equal(p2.page, 2);
    assert.equal(p2.tags.length, 1);
    assert.equal(p2.has_additional, false);
    assert.equal((await list('?limit=0&page=0')).tags.length, 1, 'limit and page are clamped to 1');
    const bad = await w.api('GET', '/repository/acme/repo/tag/?limit=abc');
    assert.equal(bad.status, 400);
    // 120 lifetimes: a page never exceeds 100.
    const repo = (await findRepo(s(), 'acme', 'repo'))!;
    const m = await s().db.selectFrom('manifests').select('id').where('digest', '=', a.digest).where('repository_id', '=', repo.id).executeTakeFirstOrThrow();
    const old = Date.now() - 86_400_000;
    await s().db.insertInto('tags').values(Array.from({ length: 120 }, (_, i) => ({
      repository_id: repo.id, name: `bulk${i}`, manifest_id: m.id, lifetime_start: old - i * 1000, lifetime_end: null, hidden: 0, immutable: 0,
    }))).execute();
    const big = await list('?limit=500');
    assert.equal(big.tags.length, 100);
    assert.equal(big.has_additional, true);
    await s().db.deleteFrom('tags').where('name', 'like', 'bulk%').execute();
  });
});

describe('DELETE /tag/{tag} and the time machine', () => {
  test('deleting ends the lifetime (history kept) and pulls of the tag fail', async () => {
    const res = await w.api('DELETE', '/repository/acme/repo/tag/v2');
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    assert.equal(await pullStatus(w, 'acme/repo', 'v2'), 404);
    const h = (await list('?specificTag=v2')).tags;
    assert.equal(h.length, 1);
    assert.ok(h[0].end_ts > 0);
    const log = (await logsOf(w, 'delete_tag')).at(-1)!;
    assert.deepEqual(log.metadata, { username: 'orgadmin', repo: 'repo', namespace: 'acme', tag: 'v2', manifest_digest: b.digest });
    const again = await w.api('DELETE', '/repository/acme/repo/tag/v2');
    assert.equal(again.status, 404);
    assert.ok(isApiError(await json(again), 404, 'not_found', w.t.url));
    assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/v1', { caller: 'member' })).status, 403);
  });

  test('restore points the tag back, marked as a reversion, and logs revert_tag', async () => {
    const missing = await w.api('POST', '/repository/acme/repo/tag/v2/restore', { body: {} });
    assert.equal(missing.status, 400);
    assert.equal((await json(missing)).detail, 'Missing manifest_digest');
    assert.equal((await w.api('POST', '/repository/acme/repo/tag/v2/restore', { body: { manifest_digest: `sha256:${'1'.repeat(64)}` } })).status, 404);
    const res = await w.api('POST', '/repository/acme/repo/tag/v2/restore', { body: { manifest_digest: b.digest } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), {});
    assert.equal(await pullStatus(w, 'acme/repo', 'v2'), 200);
    const h = (await list('?specificTag=v2')).tags;
    assert.equal(h.length, 2);
    assert.equal(h[0].reversion, true);
    assert.equal(h[0].end_ts, undefined);
    assert.equal(h[1].reversion, false);
    const log = (await logsOf(w, 'revert_tag')).at(-1)!;
    assert.deepEqual(log.metadata, { username: 'orgadmin', repo: 'repo', tag: 'v2', manifest_digest: b.digest });
  });

  test('restore works only within the namespace time-machine window', async () => {
    const c = await pushImage(w, 'acme/repo', 'short');
    assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/short')).status, 204);
    const repo = (await findRepo(s(), 'acme', 'repo'))!;
    // Ended 15 days ago: past the default two-week window.
    await s().db.updateTable('tags').set({ lifetime_end: Date.now() - 15 * 86_400_000 }).where('repository_id', '=', repo.id).where('name', '=', 'short').execute();
    const res = await w.api('POST', '/repository/acme/repo/tag/short/restore', { body: { manifest_digest: c.digest } });
    assert.equal(res.status, 404);
    // A longer window for the organization brings it back within reach.
    await s().db.updateTable('users').set({ tag_expiration_s: 30 * 86400 }).where('id', '=', w.org.id).execute();
    assert.equal((await w.api('POST', '/repository/acme/repo/tag/short/restore', { body: { manifest_digest: c.digest } })).status, 200);
    await s().db.updateTable('users').set({ tag_expiration_s: 1209600 }).where('id', '=', w.org.id).execute();
  });

  test('expire pushes a tag out of the window so it cannot be restored', async () => {
    const noDigest = await w.api('POST', '/repository/acme/repo/tag/short/expire', { body: {} });
    assert.equal(noDigest.status, 400);
    assert.equal((await json(noDigest)).detail, 'manifest_digest required when is_alive set to false');
    const res = await w.api('POST', '/repository/acme/repo/tag/short/expire', { body: { is_alive: true } });
    assert.equal(res.status, 200);
    assert.equal(await pullStatus(w, 'acme/repo', 'short'), 404);
    const digest = (await list('?specificTag=short')).tags[0].manifest_digest;
    assert.equal((await w.api('POST', '/repository/acme/repo/tag/short/restore', { body: { manifest_digest: digest } })).status, 404);
    assert.equal((await w.api('POST', '/repository/acme/repo/tag/short/expire', { body: { manifest_digest: digest } })).status, 404, 'nothing left to expire');
    const log = (await logsOf(w, 'permanently_delete_tag')).at(-1)!;
    assert.deepEqual(log.metadata, { username: 'orgadmin', repo: 'repo', namespace: 'acme', tag: 'short', manifest_digest: digest });
  });

  test('expire with a manifest digest moves ended lifetimes of that tag past the window', async () => {
    await w.api('PUT', '/repository/acme/repo/tag/gone', { body: { manifest_digest: a.digest } });
    await w.api('DELETE', '/repository/acme/repo/tag/gone');
    const res = await w.api('POST', '/repository/acme/repo/tag/gone/expire', { body: { manifest_digest: a.digest, is_alive: false } });
    assert.equal(res.status, 200);
    assert.equal((await w.api('POST', '/repository/acme/repo/tag/gone/restore', { body: { manifest_digest: a.digest } })).status, 200,
      'still reachable through its other tags (v1, stable history)');
  });

  test('index tags are manifest lists without a size', async () => {
    const idx = await pushIndex(w, 'acme/repo', 'multi', [a, b]);
    const t = (await list('?specificTag=multi')).tags[0];
    assert.equal(t.manifest_digest, idx.digest);
    assert.equal(t.is_manifest_list, true);
    assert.equal(t.size, null);
  });
});

describe('FEATURE_IMMUTABLE_TAGS', () => {
  test('immutable tags refuse moves, expirations and deletes (409); unsetting needs admin', async () => {
    const iw = await createWorld({ FEATURE_IMMUTABLE_TAGS: true });
    try {
      const img = await pushImage(iw, 'acme/repo', 'pinned');
      const other = await pushImage(iw, 'acme/repo', 'other');
      assert.equal((await iw.api('PUT', '/repository/acme/repo/tag/pinned', { body: { immutable: true } })).status, 201);
      const t = (await json(await iw.api('GET', '/repository/acme/repo/tag/?specificTag=pinned'))).tags[0];
      assert.equal(t.immutable, true);
      for (const [method, path, body] of [
        ['PUT', '/repository/acme/repo/tag/pinned', { manifest_digest: other.digest }],
        ['PUT', '/repository/acme/repo/tag/pinned', { expiration: Math.floor(Date.now() / 1000) + 7200 }],
        ['DELETE', '/repository/acme/repo/tag/pinned', undefined],
      ] as const) {
        const res = await iw.api(method, path, { body });
        assert.equal(res.status, 409, `${method} ${JSON.stringify(body)}`);
        assert.ok(isApiError(await json(res), 409, 'tag_immutable', iw.t.url));
      }
      const writer = await iw.api('PUT', '/repository/acme/repo/tag/pinned', { caller: 'oauthScoped', scopes: ['repo:write'], body: { immutable: false } });
      assert.equal(writer.status, 403);
      assert.equal((await iw.api('PUT', '/repository/acme/repo/tag/pinned', { body: { immutable: false } })).status, 201);
      assert.equal((await iw.api('DELETE', '/repository/acme/repo/tag/pinned')).status, 204);
      assert.equal(await pullStatus(iw, 'acme/repo', img.digest), 404);
      assert.deepEqual((await logsOf(iw, 'change_tag_immutability')).map((l) => l.metadata.immutable), [true, false]);
    } finally {
      await iw.close();
    }
  });
});

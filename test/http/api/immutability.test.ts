// /api/v1 tag-immutability policies over real HTTP, field by field (endpoints.json area
// immutability), and what a policy does to tags: overwrites through /v2 and the API, moves,
// expirations, restores and deletes (API, /v2 by tag and by digest) are refused with Quay's
// errors, while creating new tags stays allowed. Policies apply to tags that already exist.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { client, json, logsOf, OCI, pullStatus, pushImage, type PushedImage } from './images.ts';
import { findRepo } from '../../../src/model/repositories.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ORG = '/organization/acme/immutabilitypolicy/';
const REPO = '/repository/acme/repo/immutabilitypolicy/';

let w: World;
before(async () => { w = await createWorld({ FEATURE_IMMUTABLE_TAGS: true }); });
after(async () => { await w?.close(); });
beforeEach(async () => { await w.t.app.services.db.deleteFrom('immutability_policies').execute(); });

function apiError(status: number, type: string, detail: string) {
  return { status, error_message: detail, title: type, error_type: type, detail, type: `${w.t.url}/api/v1/error/${type}` };
}

async function create(base: string, body: unknown): Promise<string> {
  const res = await w.api('POST', base, { body });
  assert.equal(res.status, 201, await res.clone().text());
  const out = await json(res);
  assert.deepEqual(Object.keys(out), ['uuid']);
  assert.match(out.uuid, UUID);
  return out.uuid;
}

for (const [name, base, repo] of [['organization', ORG, null], ['repository', REPO, 'repo']] as const) {
  describe(`${name} policies`, () => {
    test('create, list, get, update and delete, with their log entries', async () => {
      const before = (await logsOf(w, 'create_immutability_policy')).length;
      const uuid = await create(base, { tagPattern: '  ^v[0-9]+  ' });
      const first = { uuid, tagPattern: '^v[0-9]+', tagPatternMatches: true };
      const list = await w.api('GET', base);
      assert.equal(list.status, 200);
      assert.deepEqual(await json(list), { policies: [first] });
      const one = await w.api('GET', `${base}${uuid}`);
      assert.equal(one.status, 200);
      assert.deepEqual(await json(one), first);
      const put = await w.api('PUT', `${base}${uuid}`, { body: { tagPattern: 'dev-', tagPatternMatches: false } });
      assert.equal(put.status, 204);
      assert.equal(await put.text(), '');
      assert.deepEqual(await json(await w.api('GET', `${base}${uuid}`)), { uuid, tagPattern: 'dev-', tagPatternMatches: false });
      const del = await w.api('DELETE', `${base}${uuid}`);
      assert.equal(del.status, 200);
      assert.deepEqual(await json(del), { uuid });
      const gone = await w.api('GET', `${base}${uuid}`);
      assert.deepEqual(await json(gone), apiError(404, 'not_found', 'Not Found'));
      assert.equal(gone.status, 404);
      assert.equal((await w.api('DELETE', `${base}${uuid}`)).status, 404);
      assert.equal((await w.api('PUT', `${base}${uuid}`, { body: { tagPattern: 'x' } })).status, 404);

      const where = { namespace: 'acme', ...(repo ? { repo } : {}) };
      const repoId = repo ? (await findRepo(w.t.app.services, 'acme', repo))!.id : null;
      const created = (await logsOf(w, 'create_immutability_policy')).slice(before);
      assert.deepEqual(created.map((l) => l.metadata), [{ ...where, tag_pattern: '^v[0-9]+', tag_pattern_matches: true }]);
      assert.equal(created[0]!.performer_id, w.users.orgadmin.id);
      assert.equal(created[0]!.repository_id, repoId);
      assert.deepEqual((await logsOf(w, 'update_immutability_policy')).at(-1)!.metadata, { ...where, tag_pattern: 'dev-', tag_pattern_matches: false });
      assert.deepEqual((await logsOf(w, 'delete_immutability_policy')).at(-1)!.metadata, { ...where, policy_uuid: uuid });
    });

    test("Quay's validation messages, duplicates and bounded patterns", async () => {
      const cases: [unknown, string][] = [
        [{}, "'tagPattern' is a required property"],
        [{ tagPattern: 5 }, "5 is not of type 'string' (field 'tagPattern')"],
        [{ tagPattern: 'x', tagPatternMatches: 'no' }, "'no' is not of type 'boolean' (field 'tagPatternMatches')"],
        [{ tagPattern: '   ' }, 'tag_pattern is required and must be a non-empty string'],
        [{ tagPattern: 'v'.repeat(257) }, 'tag_pattern must be 256 characters or less'],
        [{ tagPattern: '[z-a]' }, 'Invalid regex pattern: error parsing regexp: invalid character class range: `z-a`'],
        [{ tagPattern: '(?!latest)' }, 'Invalid regex pattern: error parsing regexp: invalid or unsupported Perl syntax: `(?!`'],
      ];
      for (const [body, detail] of cases) {
        const res = await w.api('POST', base, { body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.deepEqual(await json(res), apiError(400, 'invalid_request', detail), JSON.stringify(body));
      }
      assert.equal((await w.api('POST', base)).status, 400);
      assert.deepEqual(await json(await w.api('GET', base)), { policies: [] });
      const a = await create(base, { tagPattern: 'v'.repeat(256) });
      const b = await create(base, { tagPattern: 'stable' });
      const dup = await w.api('POST', base, { body: { tagPattern: 'stable', tagPatternMatches: false } });
      assert.deepEqual(await json(dup), apiError(400, 'invalid_request', 'A policy with the same tag_pattern already exists'));
      const clash = await w.api('PUT', `${base}${a}`, { body: { tagPattern: 'stable' } });
      assert.deepEqual(await json(clash), apiError(400, 'invalid_request', 'A policy with the same tag_pattern already exists'));
      assert.equal((await w.api('PUT', `${base}${b}`, { body: { tagPattern: 'stable', tagPatternMatches: false } })).status, 204, 'its own pattern is no clash');
    });
  });
}

describe('enforcement', () => {
  let a: PushedImage;
  let b: PushedImage;
  before(async () => {
    a = await pushImage(w, 'acme/repo', 'v1');
    b = await pushImage(w, 'acme/repo', 'latest');
  });

  const tagOf = async (name: string) => (await json(await w.api('GET', `/repository/acme/repo/tag/?specificTag=${name}&onlyActiveTags=true`))).tags[0];
  const v2 = (method: string, ref: string, body?: string) => client(w).req(method, `/v2/acme/repo/manifests/${ref}`, {
    scope: 'repository:acme/repo:pull,push,*', body, headers: body ? { 'content-type': OCI } : {},
  });
  const TAG_IMMUTABLE = (tag: string) => ({ errors: [{ code: 'TAG_IMMUTABLE', message: 'tag is immutable', detail: { message: `tag '${tag}' is immutable` } }] });

  test('a new policy protects existing tags: every change is refused with Quay\'s errors', async () => {
    assert.equal((await tagOf('v1')).immutable, false);
    await create(ORG, { tagPattern: 'v' });
    assert.equal((await tagOf('v1')).immutable, true, 'listed as immutable');
    assert.equal((await tagOf('latest')).immutable, false);

    const push = await v2('PUT', 'v1', b.manifest);
    assert.equal(push.status, 409);
    assert.deepEqual(await push.json(), TAG_IMMUTABLE('v1'));
    assert.equal((await tagOf('v1')).manifest_digest, a.digest, 'not overwritten');
    const same = await v2('PUT', 'v1', a.manifest);
    assert.equal(same.status, 201, 'pushing the manifest it already points at changes nothing');
    await same.arrayBuffer();

    const move = await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { manifest_digest: b.digest } });
    assert.equal(move.status, 409);
    assert.deepEqual(await json(move), apiError(409, 'tag_immutable', "Cannot overwrite immutable tag 'v1'"));
    const expire = await w.api('PUT', '/repository/acme/repo/tag/v1', { body: { expiration: Math.floor(Date.now() / 1000) + 7200 } });
    assert.equal(expire.status, 409);
    assert.deepEqual(await json(expire), apiError(409, 'tag_immutable', "Cannot change expiration of immutable tag 'v1'"));
    const restore = await w.api('POST', '/repository/acme/repo/tag/v1/restore', { body: { manifest_digest: b.digest } });
    assert.equal(restore.status, 409);
    assert.deepEqual(await json(restore), apiError(409, 'tag_immutable', "Cannot overwrite immutable tag 'v1'"));
    const del = await w.api('DELETE', '/repository/acme/repo/tag/v1');
    assert.equal(del.status, 409);
    assert.deepEqual(await json(del), apiError(409, 'tag_immutable', "Cannot delete immutable tag 'v1'"));

    const v2DelTag = await v2('DELETE', 'v1');
    assert.equal(v2DelTag.status, 409);
    assert.deepEqual(await v2DelTag.json(), TAG_IMMUTABLE('v1'));
    const v2DelDigest = await v2('DELETE', a.digest);
    assert.equal(v2DelDigest.status, 409);
    assert.deepEqual(await v2DelDigest.json(), TAG_IMMUTABLE('v1'));

    const t = await tagOf('v1');
    assert.equal(t.manifest_digest, a.digest);
    assert.equal(t.end_ts, undefined, 'still alive, no expiration');
    assert.equal(await pullStatus(w, 'acme/repo', 'v1'), 200);
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/latest', { body: { manifest_digest: a.digest } })).status, 201, 'other tags move freely');
  });

  test('new tags matching a policy can be created, then are protected', async () => {
    await create(REPO, { tagPattern: '^release-' });
    const c = await pushImage(w, 'acme/repo', 'release-1');
    assert.equal((await tagOf('release-1')).immutable, true);
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/release-2', { body: { manifest_digest: c.digest } })).status, 201, 'created through the API');
    const move = await w.api('PUT', '/repository/acme/repo/tag/release-2', { body: { manifest_digest: a.digest } });
    assert.deepEqual(await json(move), apiError(409, 'tag_immutable', "Cannot overwrite immutable tag 'release-2'"));
  });

  test('tagPatternMatches=false protects the other tags; a repository policy only its repository', async () => {
    await pushImage(w, 'acme/other', 'scratch');
    await pushImage(w, 'acme/other', 'keep');
    await create('/repository/acme/other/immutabilitypolicy/', { tagPattern: 'scratch', tagPatternMatches: false });
    const keep = await client(w).req('DELETE', '/v2/acme/other/manifests/keep', { scope: 'repository:acme/other:pull,push,*' });
    assert.equal(keep.status, 409);
    assert.deepEqual(await keep.json(), TAG_IMMUTABLE('keep'));
    assert.equal((await w.api('DELETE', '/repository/acme/other/tag/scratch')).status, 204);
    const tmp = await pushImage(w, 'acme/repo', 'keep');
    assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/keep')).status, 204, 'acme/repo is not covered');
    assert.equal(await pullStatus(w, 'acme/repo', tmp.digest), 404);
  });

  test('removing the policy releases the tags', async () => {
    const uuid = await create(ORG, { tagPattern: 'v1' });
    assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/v1')).status, 409);
    assert.equal((await w.api('DELETE', `${ORG}${uuid}`)).status, 200);
    assert.equal((await tagOf('v1')).immutable, false);
    assert.equal((await w.api('DELETE', '/repository/acme/repo/tag/v1')).status, 204);
  });
});

describe('FEATURE_IMMUTABLE_TAGS off', () => {
  test('the routes do not exist and stored policies are ignored', async () => {
    const off = await createWorld();
    try {
      for (const [method, path] of [['GET', ORG], ['POST', REPO], ['DELETE', `${ORG}x`]] as const) {
        const res = await off.api(method, path, { body: method === 'POST' ? { tagPattern: 'x' } : undefined });
        assert.equal(res.status, 404, `${method} ${path}`);
        await res.arrayBuffer();
      }
      await pushImage(off, 'acme/repo', 'v1');
      await off.t.app.services.db.insertInto('immutability_policies').values({
        uuid: '00000000-0000-4000-8000-000000000009', namespace_id: off.org.id, repository_id: null, tag_pattern: '.*', tag_pattern_matches: 1,
      }).execute();
      const t = (await json(await off.api('GET', '/repository/acme/repo/tag/'))).tags[0];
      assert.equal('immutable' in t, false);
      assert.equal((await off.api('DELETE', '/repository/acme/repo/tag/v1')).status, 204);
    } finally {
      await off.close();
    }
  });
});

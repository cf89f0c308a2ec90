// /api/v1 auto-prune policies over real HTTP, field by field (endpoints.json area autoprune):
// organization, the caller's own namespace and repositories (in an organization and in a user
// namespace), Quay's validation messages, the usage log, and a pruned tag restored through the
// time machine.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { json, logsOf, pullStatus, pushImage } from './images.ts';
import { AUTOPRUNE_QUEUE } from '../../../src/model/autoprune.ts';
import { claim, complete } from '../../../src/model/queue.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { workerHandlers } from '../../../src/workers/index.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let w: World;
before(async () => { w = await createWorld({ FEATURE_AUTO_PRUNE: true }); });
after(async () => { await w?.close(); });
beforeEach(async () => { await w.t.app.services.db.deleteFrom('autoprune_policies').execute(); });

function apiError(status: number, type: string, detail: string) {
  return { status, error_message: detail, title: type, error_type: type, detail, type: `${w.t.url}/api/v1/error/${type}` };
}

async function create(base: string, body: unknown, caller: 'orgadmin' | 'member' = 'orgadmin'): Promise<string> {
  const res = await w.api('POST', base, { body, caller });
  assert.equal(res.status, 201, await res.clone().text());
  const out = await json(res);
  assert.deepEqual(Object.keys(out), ['uuid']);
  assert.match(out.uuid, UUID);
  return out.uuid;
}

const AREAS = [
  { name: 'organization', base: '/organization/acme/autoprunepolicy/', kind: 'namespace', namespace: 'acme', repo: null },
  { name: 'user namespace', base: '/user/autoprunepolicy/', kind: 'namespace', namespace: 'orgadmin', repo: null },
  { name: 'repository', base: '/repository/acme/repo/autoprunepolicy/', kind: 'repository', namespace: 'acme', repo: 'repo' },
] as const;

for (const area of AREAS) {
  describe(`${area.name} policies`, () => {
    test('create, list, get, update and delete, with their log entries', async () => {
      const logsBefore = (await logsOf(w, `create_${area.kind}_autoprune_policy`)).length;
      const uuid = await create(area.base, { method: 'number_of_tags', value: 10 });
      const first = { uuid, method: 'number_of_tags', value: 10, tagPattern: null, tagPatternMatches: true };
      const list = await w.api('GET', area.base);
      assert.equal(list.status, 200);
      assert.deepEqual(await json(list), { policies: [first] });
      const one = await w.api('GET', `${area.base}${uuid}`);
      assert.equal(one.status, 200);
      assert.deepEqual(await json(one), first);

      const put = await w.api('PUT', `${area.base}${uuid}`, { body: { method: 'creation_date', value: '2w', tagPattern: '  ^dev-  ', tagPatternMatches: false } });
      assert.equal(put.status, 204);
      assert.equal(await put.text(), '');
      const updated = { uuid, method: 'creation_date', value: '2w', tagPattern: '^dev-', tagPatternMatches: false };
      assert.deepEqual(await json(await w.api('GET', `${area.base}${uuid}`)), updated);

      const second = await create(area.base, { method: 'creation_date', value: '7d', tagPattern: 'rc' });
      assert.deepEqual((await json(await w.api('GET', area.base))).policies,
        [updated, { uuid: second, method: 'creation_date', value: '7d', tagPattern: 'rc', tagPatternMatches: true }]);

      const del = await w.api('DELETE', `${area.base}${uuid}`);
      assert.equal(del.status, 200);
      assert.deepEqual(await json(del), { uuid });
      const gone = await w.api('GET', `${area.base}${uuid}`);
      assert.equal(gone.status, 404);
      assert.deepEqual(await json(gone), apiError(404, 'not_found', 'Not Found'));
      assert.equal((await w.api('DELETE', `${area.base}${uuid}`)).status, 404);
      assert.equal((await w.api('PUT', `${area.base}${uuid}`, { body: { method: 'number_of_tags', value: 1 } })).status, 404);

      const where = { namespace: area.namespace, ...(area.repo ? { repo: area.repo } : {}) };
      const repoId = area.repo ? (await findRepo(w.t.app.services, area.namespace, area.repo))!.id : null;
      const created = (await logsOf(w, `create_${area.kind}_autoprune_policy`)).slice(logsBefore);
      assert.deepEqual(created.map((l) => l.metadata), [
        { method: 'number_of_tags', value: 10, tag_pattern: null, tag_pattern_matches: true, ...where },
        { method: 'creation_date', value: '7d', tag_pattern: 'rc', tag_pattern_matches: true, ...where },
      ]);
      assert.ok(created.every((l) => l.performer_id === w.users.orgadmin.id && l.repository_id === repoId));
      assert.deepEqual((await logsOf(w, `update_${area.kind}_autoprune_policy`)).at(-1)!.metadata,
        { method: 'creation_date', value: '2w', tag_pattern: '^dev-', tag_pattern_matches: false, ...where });
      const deleted = (await logsOf(w, `delete_${area.kind}_autoprune_policy`)).at(-1)!;
      assert.deepEqual(deleted.metadata, { policy_uuid: uuid, ...where });
      assert.equal(deleted.repository_id, repoId);
    });

    test("Quay's validation messages; nothing is stored", async () => {
      const cases: [unknown, string][] = [
        [{ method: 'newest', value: 3 }, 'Invalid method provided'],
        [{ method: 'number_of_tags', value: 0 }, 'Invalid value given for method type'],
        [{ method: 'number_of_tags', value: -2 }, 'Invalid value given for method type'],
        [{ method: 'number_of_tags', value: '5' }, 'Invalid value given for method type'],
        [{ method: 'creation_date', value: 7 }, 'Invalid value given for method type'],
        [{ method: 'creation_date', value: '7y' }, 'Invalid value given for method type'],
        [{ method: 'creation_date', value: '' }, 'Invalid value given for method type'],
        [{ method: 'number_of_tags', value: 3, tagPattern: '   ' }, 'tag_pattern cannot be empty'],
        [{ method: 'number_of_tags', value: 3, tagPattern: '(' }, 'Invalid regex pattern: error parsing regexp: missing closing ): `(`'],
        [{ method: 'number_of_tags', value: 3, tagPattern: 'x'.repeat(257) }, 'tag_pattern must be 256 characters or less'],
        [{ value: 3 }, "'method' is a required property"],
        [{ method: 'number_of_tags' }, "'value' is a required property"],
        [{ method: 'number_of_tags', value: true }, "True is not of type 'integer', 'string' (field 'value')"],
        [{ method: 'number_of_tags', value: 1.5 }, "1.5 is not of type 'integer', 'string' (field 'value')"],
        [{ method: 'number_of_tags', value: 3, tagPatternMatches: 'yes' }, "'yes' is not of type 'boolean' (field 'tagPatternMatches')"],
        [{ method: 'number_of_tags', value: 3, tagPattern: 5 }, "5 is not of type 'string' (field 'tagPattern')"],
      ];
      for (const [body, detail] of cases) {
        const res = await w.api('POST', area.base, { body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.deepEqual(await json(res), apiError(400, 'invalid_request', detail), JSON.stringify(body));
      }
      const noBody = await w.api('POST', area.base);
      assert.equal(noBody.status, 400);
      assert.equal((await json(noBody)).detail, 'Missing JSON body');
      assert.deepEqual(await json(await w.api('GET', area.base)), { policies: [] });

      const uuid = await create(area.base, { method: 'number_of_tags', value: 3, tagPattern: 'x' });
      const dup = await w.api('POST', area.base, { body: { method: 'number_of_tags', value: 3, tagPattern: 'x', tagPatternMatches: true } });
      assert.equal(dup.status, 400);
      assert.deepEqual(await json(dup), apiError(400, 'invalid_request', `Existing policy with same values for this ${area.kind}, duplicate policies are not permitted`));
      // A different value, pattern or sense is another policy.
      await create(area.base, { method: 'number_of_tags', value: 3, tagPattern: 'x', tagPatternMatches: false });
      await create(area.base, { method: 'number_of_tags', value: 3 });
      const badPut = await w.api('PUT', `${area.base}${uuid}`, { body: { method: 'number_of_tags', value: 'ten' } });
      assert.deepEqual(await json(badPut), apiError(400, 'invalid_request', 'Invalid value given for method type'));
      assert.deepEqual((await json(await w.api('GET', `${area.base}${uuid}`))).value, 3);
    });
  });
}

describe('scoping', () => {
  test('a policy is reachable only under its owner', async () => {
    const orgPolicy = await create('/organization/acme/autoprunepolicy/', { method: 'number_of_tags', value: 2 });
    const repoPolicy = await create('/repository/acme/repo/autoprunepolicy/', { method: 'number_of_tags', value: 2 });
    assert.equal((await w.api('GET', `/repository/acme/repo/autoprunepolicy/${orgPolicy}`)).status, 404);
    assert.equal((await w.api('GET', `/organization/acme/autoprunepolicy/${repoPolicy}`)).status, 404);
    assert.equal((await w.api('GET', `/user/autoprunepolicy/${orgPolicy}`)).status, 404);
    assert.equal((await w.api('DELETE', `/user/autoprunepolicy/${orgPolicy}`)).status, 404);
    assert.deepEqual((await json(await w.api('GET', '/organization/acme/autoprunepolicy/'))).policies.map((p: { uuid: string }) => p.uuid), [orgPolicy]);
    assert.deepEqual((await json(await w.api('GET', '/user/autoprunepolicy/'))).policies, []);
  });

  test('repositories of a user namespace have their own policies; unknown repositories are 404', async () => {
    await pushImage(w, 'orgadmin/mine', 'v1');
    const uuid = await create('/repository/orgadmin/mine/autoprunepolicy/', { method: 'creation_date', value: '3d' });
    assert.deepEqual(await json(await w.api('GET', `/repository/orgadmin/mine/autoprunepolicy/${uuid}`)),
      { uuid, method: 'creation_date', value: '3d', tagPattern: null, tagPatternMatches: true });
    const missing = await w.api('GET', '/repository/acme/nosuch/autoprunepolicy/');
    assert.equal(missing.status, 404);
    assert.equal((await w.api('POST', '/repository/acme/nosuch/autoprunepolicy/', { body: { method: 'number_of_tags', value: 1 } })).status, 404);
  });
});

describe('the time machine', () => {
  test('a tag the worker pruned is restored through the tag-restore API', async () => {
    const old = await pushImage(w, 'acme/repo', 'old');
    await new Promise((r) => setTimeout(r, 5));
    await pushImage(w, 'acme/repo', 'new');
    await create('/repository/acme/repo/autoprunepolicy/', { method: 'number_of_tags', value: 1, tagPattern: '^(old|new)$' });
    const s = w.t.app.services;
    const handler = workerHandlers(s)[AUTOPRUNE_QUEUE]!;
    for (const job of await claim(s, AUTOPRUNE_QUEUE, { leaseMs: 60_000, limit: 10 })) {
      await handler(job, new AbortController().signal, s.log);
      await complete(s, job);
    }
    assert.equal(await pullStatus(w, 'acme/repo', 'old'), 404);
    assert.equal(await pullStatus(w, 'acme/repo', 'new'), 200);
    const history = (await json(await w.api('GET', '/repository/acme/repo/tag/?specificTag=old'))).tags;
    assert.equal(history.length, 1);
    assert.equal(typeof history[0].end_ts, 'number', 'the pruned lifetime is in the history');
    assert.deepEqual((await logsOf(w, 'autoprune_tag_delete')).at(-1)!.metadata, { performer: 'autoprune worker', namespace: 'acme', repo: 'repo', tag: 'old' });
    await w.t.app.services.db.deleteFrom('autoprune_policies').execute();
    const restored = await w.api('POST', '/repository/acme/repo/tag/old/restore', { body: { manifest_digest: old.digest } });
    assert.equal(restored.status, 200);
    assert.deepEqual(await json(restored), {});
    assert.equal(await pullStatus(w, 'acme/repo', 'old'), 200);
  });
});

describe('FEATURE_AUTO_PRUNE off', () => {
  test('the routes do not exist', async () => {
    const off = await createWorld();
    try {
      for (const [method, path] of [
        ['GET', '/organization/acme/autoprunepolicy/'], ['POST', '/user/autoprunepolicy/'], ['GET', '/repository/acme/repo/autoprunepolicy/x'],
      ] as const) {
        const res = await off.api(method, path, { body: method === 'POST' ? { method: 'number_of_tags', value: 1 } : undefined });
        assert.equal(res.status, 404, `${method} ${path}`);
        await res.arrayBuffer();
      }
    } finally {
      await off.close();
    }
  });
});

// /api/v1/repository over real HTTP, checked field by field against Quay's shapes
// (shared/quay-api/endpoints.json, area "repository").
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError } from './client.ts';
import { json, logsOf, pullStatus, pushImage, RFC2822 } from './images.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { principalFor } from '../../../src/model/context.ts';
import { createRepository } from '../../../src/model/repositories.ts';

let w: World;
before(async () => { w = await createWorld({ FEATURE_REPO_MIRROR: true }); });
after(async () => { await w?.close(); });

const s = () => w.t.app.services;
const countRepos = async () => Number((await s().db.selectFrom('repositories').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
const BAD_REQUEST = 'The browser (or proxy) sent a request that this server could not understand.';

describe('POST /api/v1/repository', () => {
  test('creates a repository through the same path as push-create: prototypes and create_repo log', async () => {
    const db = s().db;
    // A default permission: every new repository in acme gives `member` write.
    await db.insertInto('permission_prototypes').values({
      uuid: 'proto-1', org_id: w.org.id, activating_user_id: null, delegate_user_id: w.users.member.id, delegate_team_id: null, role: 'write',
    }).execute();
    const res = await w.api('POST', '/repository', { caller: 'creator', scopes: ['repo:create'], body: { repository: 'made', visibility: 'private', description: 'Hello *world*', namespace: 'acme' } });
    assert.equal(res.status, 201);
    assert.deepEqual(await json(res), { namespace: 'acme', name: 'made', kind: 'image' });
    const repo = await findRepo(s(), 'acme', 'made');
    assert.equal(repo?.description, 'Hello *world*');
    assert.equal(repo?.is_public, 0);
    const perms = await db.selectFrom('repo_permissions').selectAll().where('repository_id', '=', repo!.id).execute();
    // The creator is an explicit admin (Quay's create_repository), then the default permission applies.
    assert.deepEqual(perms.map((p) => [p.user_id, p.role]), [[w.users.creator.id, 'admin'], [w.users.member.id, 'write']]);
    const logs = (await logsOf(w, 'create_repo')).filter((l) => l.repository_id === repo!.id);
    assert.equal(logs.length, 1);
    assert.deepEqual(logs[0]!.metadata, { repo: 'made', namespace: 'acme' });
    assert.equal(logs[0]!.performer_id, w.users.creator.id);
    await db.deleteFrom('permission_prototypes').execute();
    // The member can now push-write to it, and the repository works on /v2.
    await pushImage(w, 'acme/made', 'v1');
    assert.equal(await pullStatus(w, 'acme/made', 'v1'), 200);
  });

  test('defaults the namespace to the caller and accepts repo_kind image or null', async () => {
    const res = await w.api('POST', '/repository', { caller: 'outsider', body: { repository: 'mine', visibility: 'public', description: '', repo_kind: null } });
    assert.equal(res.status, 201);
    assert.deepEqual(await json(res), { namespace: 'outsider', name: 'mine', kind: 'image' });
    assert.equal((await findRepo(s(), 'outsider', 'mine'))?.is_public, 1);
  });

  test('rejects bad input with a message and creates nothing', async () => {
    const before = await countRepos();
    const cases: [unknown, string][] = [
      [{ visibility: 'private', description: '' }, "'repository' is a required property"],
      [{ repository: 'x', description: '' }, "'visibility' is a required property"],
      [{ repository: 'x', visibility: 'private' }, "'description' is a required property"],
      [{ repository: 'x', visibility: 'secret', description: '' }, "'secret' is not one of ['public', 'private'] (field 'visibility')"],
      [{ repository: 5, visibility: 'private', description: '' }, "5 is not of type 'string' (field 'repository')"],
      [{ repository: 'x', visibility: 'private', description: '', repo_kind: 'helm' }, "'helm' is not one of ['image', None] (field 'repo_kind')"],
      [{ repository: 'Bad Name', visibility: 'private', description: '', namespace: 'acme' }, 'Invalid repository name'],
      [{ repository: 'repo', visibility: 'private', description: '', namespace: 'acme' }, 'Repository already exists'],
    ];
    for (const [body, detail] of cases) {
      const res = await w.api('POST', '/repository', { body });
      const b = await json(res);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.ok(isApiError(b, 400, 'invalid_request', w.t.url), JSON.stringify(b));
      assert.equal(b.detail, detail);
    }
    const nobody = await w.api('POST', '/repository', { caller: 'anonymous', body: { repository: 'x', visibility: 'private', description: '', namespace: 'acme' } });
    assert.equal(nobody.status, 400);
    assert.equal((await json(nobody)).detail, 'Must provide a namespace or must be logged in.');
    const denied = await w.api('POST', '/repository', { caller: 'member', body: { repository: 'x', visibility: 'private', description: '', namespace: 'acme' } });
    assert.equal(denied.status, 403);
    assert.ok(isApiError(await json(denied), 403, 'insufficient_scope', w.t.url));
    const noNs = await w.api('POST', '/repository', { body: { repository: 'x', visibility: 'private', description: '', namespace: 'nosuchns' } });
    assert.equal(noNs.status, 403);
    assert.equal(await countRepos(), before);
  });
});

describe('GET /api/v1/repository/{repository}', () => {
  test("returns Quay's fields with the caller's flags, tags and status token", async () => {
    const img = await pushImage(w, 'acme/repo', 'latest', { layerSizes: [100, 250] });
    await pushImage(w, 'acme/repo', 'old');
    const res = await w.api('GET', '/repository/acme/repo', { caller: 'orgadmin' });
    assert.equal(res.status, 200);
    const b = await json(res);
    assert.deepEqual(Object.keys(b).sort(), [
      'can_admin', 'can_write', 'description', 'is_free_account', 'is_organization', 'is_public', 'is_starred', 'kind', 'name', 'namespace',
      'state', 'status_token', 'tag_expiration_s', 'tags', 'trust_enabled',
    ]);
    assert.equal(b.namespace, 'acme');
    assert.equal(b.name, 'repo');
    assert.equal(b.kind, 'image');
    assert.equal(b.description, null);
    assert.equal(b.is_public, false);
    assert.equal(b.is_organization, true);
    assert.equal(b.is_starred, false);
    assert.match(b.status_token, /^[0-9a-f-]{36}$/);
    assert.equal(b.trust_enabled, false);
    assert.equal(b.tag_expiration_s, 1209600);
    assert.equal(b.is_free_account, true);
    assert.equal(b.state, 'NORMAL');
    assert.equal(b.can_write, true);
    assert.equal(b.can_admin, true);
    assert.deepEqual(Object.keys(b.tags).sort(), ['latest', 'old']);
    const latest = b.tags.latest;
    assert.deepEqual(Object.keys(latest).sort(), ['last_modified', 'manifest_digest', 'name', 'size']);
    assert.equal(latest.name, 'latest');
    assert.equal(latest.size, 350);
    assert.equal(latest.manifest_digest, img.digest);
    assert.match(latest.last_modified, RFC2822);
    // The token is stable.
    assert.equal((await json(await w.api('GET', '/repository/acme/repo'))).status_token, b.status_token);

    const member = await json(await w.api('GET', '/repository/acme/repo', { caller: 'member' }));
    assert.equal(member.can_write, false);
    assert.equal(member.can_admin, false);
    const auditor = await w.api('GET', '/repository/acme/repo', { caller: 'readonlySuperuser' });
    assert.equal(auditor.status, 200);
    assert.equal((await json(auditor)).can_write, false);
    const readOnlyToken = await json(await w.api('GET', '/repository/acme/repo', { caller: 'oauthScoped', scopes: ['repo:read'] }));
    assert.equal(readOnlyToken.can_write, false);
    assert.equal(readOnlyToken.can_admin, false);
  });

  test('includeTags=false drops tags, includeStats adds about three months of daily counts', async () => {
    const b = await json(await w.api('GET', '/repository/acme/repo?includeTags=false&includeStats=true'));
    assert.equal(b.tags, undefined);
    assert.ok(Array.isArray(b.stats));
    assert.ok(b.stats.length >= 91 && b.stats.length <= 92, String(b.stats.length));
    for (const st of b.stats) {
      assert.match(st.date, /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(typeof st.count, 'number');
    }
    const today = new Date().toISOString().slice(0, 10);
    assert.ok(b.stats.find((x: any) => x.date === today)?.count > 0, 'pushes today are counted');
  });

  test('starred and expiring tags show up; public repositories have an empty status token', async () => {
    const repo = (await findRepo(s(), 'acme', 'repo'))!;
    await s().db.insertInto('stars').values({ user_id: w.users.orgadmin.id, repository_id: repo.id, created_at: Date.now() }).execute();
    const exp = Math.floor(Date.now() / 1000) + 7200;
    assert.equal((await w.api('PUT', '/repository/acme/repo/tag/old', { body: { expiration: exp } })).status, 201);
    const b = await json(await w.api('GET', '/repository/acme/repo'));
    assert.equal(b.is_starred, true);
    assert.match(b.tags.old.expiration, RFC2822);
    await createRepository(s(), { namespace: w.org, name: 'open', visibility: 'public', creator: principalFor(w.users.orgadmin, 'password') });
    const pub = await w.api('GET', '/repository/acme/open', { caller: 'anonymous' });
    assert.equal(pub.status, 200);
    const pb = await json(pub);
    assert.equal(pb.status_token, '');
    assert.equal(pb.is_public, true);
    assert.equal(pb.can_write, false);
    assert.equal(pb.is_starred, false);
  });

  test('missing repositories: 404 for those who could see them, 403/401 for others', async () => {
    const admin = await w.api('GET', '/repository/acme/nope');
    assert.equal(admin.status, 404);
    assert.ok(isApiError(await json(admin), 404, 'not_found', w.t.url));
    assert.equal((await w.api('GET', '/repository/acme/nope', { caller: 'outsider' })).status, 403);
    assert.equal((await w.api('GET', '/repository/acme/nope', { caller: 'anonymous' })).status, 401);
    assert.equal((await w.api('GET', '/repository/nosuchns/nope', { caller: 'outsider' })).status, 403);
    assert.equal((await w.api('GET', '/repository/acme/repo', { caller: 'outsider' })).status, 403);
  });

  test('extended repository names (several path segments) and an encoded slash both resolve', async () => {
    await createRepository(s(), { namespace: w.org, name: 'team/app/web', visibility: 'private', creator: principalFor(w.users.orgadmin, 'password') });
    const deep = await w.api('GET', '/repository/acme/team/app/web');
    assert.equal(deep.status, 200);
    const d = await json(deep);
    assert.equal(d.namespace, 'acme');
    assert.equal(d.name, 'team/app/web');
    assert.equal((await w.api('GET', '/repository/acme/team/app/web/tag/')).status, 200);
    assert.equal((await w.api('GET', '/repository/acme%2Frepo')).status, 200);
  });
});

describe('GET /api/v1/repository (list)', () => {
  test('requires namespace, starred or public; starred needs a user', async () => {
    const res = await w.api('GET', '/repository');
    assert.equal(res.status, 400);
    const b = await json(res);
    assert.ok(isApiError(b, 400, 'invalid_request', w.t.url));
    assert.equal(b.detail, 'namespace, starred or public are required for this API call');
    const anon = await w.api('GET', '/repository?starred=true', { caller: 'anonymous' });
    assert.equal(anon.status, 400);
    assert.deepEqual(await json(anon), { message: BAD_REQUEST });
  });

  test("namespace listing shows what the caller may read, with Quay's item fields", async () => {
    const admin = await json(await w.api('GET', '/repository?namespace=acme&last_modified=true&popularity=true'));
    const names = admin.repositories.map((r: any) => r.name);
    assert.ok(names.includes('repo') && names.includes('made') && names.includes('team/app/web'));
    const repo = admin.repositories.find((r: any) => r.name === 'repo');
    assert.deepEqual(Object.keys(repo).sort(), ['description', 'is_public', 'is_starred', 'kind', 'last_modified', 'name', 'namespace', 'popularity', 'state']);
    assert.equal(repo.namespace, 'acme');
    assert.equal(repo.is_public, false);
    assert.equal(repo.kind, 'image');
    assert.equal(repo.state, 'NORMAL');
    assert.equal(repo.is_starred, true);
    assert.ok(Number.isInteger(repo.last_modified) && Math.abs(repo.last_modified - Date.now() / 1000) < 600, String(repo.last_modified));
    assert.equal(typeof repo.popularity, 'number');
    assert.ok(repo.popularity > 0);
    const made = admin.repositories.find((r: any) => r.name === 'made');
    assert.ok(made.last_modified > 0);
    const deep = admin.repositories.find((r: any) => r.name === 'team/app/web');
    assert.equal(deep.last_modified, null, 'no tags: null');
    assert.equal(admin.next_page, undefined);

    const member = await json(await w.api('GET', '/repository?namespace=acme', { caller: 'member' }));
    // readers get repo; `made` through the prototype-granted write; `open` only with public=true.
    assert.deepEqual(member.repositories.map((r: any) => r.name).sort(), ['made', 'repo']);
    assert.deepEqual(Object.keys(member.repositories[0]).sort(), ['description', 'is_public', 'is_starred', 'kind', 'name', 'namespace', 'state']);
    const memberPub = await json(await w.api('GET', '/repository?namespace=acme&public=true', { caller: 'member' }));
    assert.deepEqual(memberPub.repositories.map((r: any) => r.name).sort(), ['made', 'open', 'repo']);
    const outsider = await json(await w.api('GET', '/repository?namespace=acme', { caller: 'outsider' }));
    assert.deepEqual(outsider.repositories, []);
    const anon = await json(await w.api('GET', '/repository?public=true', { caller: 'anonymous' }));
    assert.deepEqual(anon.repositories.map((r: any) => `${r.namespace}/${r.name}`).sort(), ['acme/open', 'outsider/mine']);
    assert.equal(anon.repositories[0].is_starred, undefined, 'no is_starred without a user');
    const starred = await json(await w.api('GET', '/repository?starred=true'));
    assert.deepEqual(starred.repositories.map((r: any) => r.name), ['repo']);
  });

  test('pages of 100 with an opaque next_page token; a junk token starts over', async () => {
    const db = s().db;
    const now = Date.now();
    await db.insertInto('repositories').values(Array.from({ length: 150 }, (_, i) => ({
      namespace_id: w.users.outsider.id, name: `bulk-${String(i).padStart(3, '0')}`, is_public: 0, created_at: now, last_modified: now,
    }))).execute();
    const p1 = await json(await w.api('GET', '/repository?namespace=outsider', { caller: 'outsider' }));
    assert.equal(p1.repositories.length, 100);
    assert.equal(typeof p1.next_page, 'string');
    assert.ok(!p1.next_page.includes('bulk') && !/^\d+$/.test(p1.next_page), 'token is opaque');
    const p2 = await json(await w.api('GET', `/repository?namespace=outsider&next_page=${encodeURIComponent(p1.next_page)}`, { caller: 'outsider' }));
    assert.equal(p2.repositories.length, 51);
    assert.equal(p2.next_page, undefined);
    const all = [...p1.repositories, ...p2.repositories].map((r: any) => r.name);
    assert.equal(new Set(all).size, 151);
    const tampered = p1.next_page.slice(0, -4) + (p1.next_page.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const junk = await json(await w.api('GET', `/repository?namespace=outsider&next_page=${encodeURIComponent(tampered)}`, { caller: 'outsider' }));
    assert.equal(junk.repositories.length, 100);
    assert.deepEqual(junk.repositories.map((r: any) => r.name), p1.repositories.map((r: any) => r.name));
  });
});

describe('changes: description, visibility, state, deletion', () => {
  test('PUT updates the description and logs set_repo_description; bad bodies change nothing', async () => {
    const res = await w.api('PUT', '/repository/acme/repo', { caller: 'orgadmin', body: { description: 'New text' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { success: true });
    assert.equal((await findRepo(s(), 'acme', 'repo'))?.description, 'New text');
    const log = (await logsOf(w, 'set_repo_description')).at(-1)!;
    assert.deepEqual(log.metadata, { repo: 'repo', namespace: 'acme', description: 'New text' });
    for (const body of [{}, { description: 7 }]) {
      const bad = await w.api('PUT', '/repository/acme/repo', { body });
      assert.equal(bad.status, 400);
      assert.ok(isApiError(await json(bad), 400, 'invalid_request', w.t.url));
    }
    assert.equal((await w.api('PUT', '/repository/acme/repo', { caller: 'member', body: { description: 'x' } })).status, 403);
    assert.equal((await findRepo(s(), 'acme', 'repo'))?.description, 'New text');
  });

  test('changevisibility makes the repository public and private, logged', async () => {
    assert.equal((await w.api('GET', '/repository/acme/repo', { caller: 'anonymous' })).status, 401);
    const res = await w.api('POST', '/repository/acme/repo/changevisibility', { body: { visibility: 'public' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { success: true });
    assert.equal((await w.api('GET', '/repository/acme/repo', { caller: 'anonymous' })).status, 200);
    const bad = await w.api('POST', '/repository/acme/repo/changevisibility', { body: { visibility: 'hidden' } });
    assert.equal(bad.status, 400);
    assert.equal((await json(bad)).detail, "'hidden' is not one of ['public', 'private'] (field 'visibility')");
    assert.equal((await w.api('POST', '/repository/acme/repo/changevisibility', { body: { visibility: 'private' } })).status, 200);
    assert.equal((await w.api('GET', '/repository/acme/repo', { caller: 'anonymous' })).status, 401);
    const logs = await logsOf(w, 'change_repo_visibility');
    assert.deepEqual(logs.map((l) => l.metadata.visibility), ['public', 'private']);
  });

  test('changestate READ_ONLY refuses API and /v2 writes; NORMAL restores them', async () => {
    const res = await w.api('PUT', '/repository/acme/repo/changestate', { body: { state: 'READ_ONLY' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { success: true });
    const view = await json(await w.api('GET', '/repository/acme/repo'));
    assert.equal(view.state, 'READ_ONLY');
    assert.equal(view.can_write, false);
    const tagPut = await w.api('PUT', '/repository/acme/repo/tag/other', { body: { manifest_digest: view.tags.latest.manifest_digest } });
    assert.equal(tagPut.status, 503);
    assert.deepEqual(await json(tagPut), { message: 'Repository is in read only or mirror mode: RepositoryState.READ_ONLY' });
    await assert.rejects(pushImage(w, 'acme/repo', 'blocked'), /push failed|upload start/);
    assert.equal((await w.api('PUT', '/repository/acme/repo/changestate', { body: { state: 'MIRROR' } })).status, 200);
    const del = await w.api('DELETE', '/repository/acme/repo/tag/latest');
    assert.equal(del.status, 503);
    assert.deepEqual(await json(del), { message: 'Repository is in read only or mirror mode: RepositoryState.MIRROR' });
    const bad = await w.api('PUT', '/repository/acme/repo/changestate', { body: { state: 'BROKEN' } });
    assert.equal(bad.status, 400);
    assert.equal((await json(bad)).detail, "'BROKEN' is not one of ['NORMAL', 'READ_ONLY', 'MIRROR'] (field 'state')");
    assert.equal((await w.api('PUT', '/repository/acme/repo/changestate', { body: { state: 'NORMAL' } })).status, 200);
    await pushImage(w, 'acme/repo', 'after');
    assert.deepEqual((await logsOf(w, 'change_repo_state')).map((l) => l.metadata), [
      { repo: 'repo', namespace: 'acme', state_changed: 'READ_ONLY' },
      { repo: 'repo', namespace: 'acme', state_changed: 'MIRROR' },
      { repo: 'repo', namespace: 'acme', state_changed: 'NORMAL' },
    ]);
  });

  test('legacy repository tokens answer 410 Gone', async () => {
    const list = await w.api('GET', '/repository/acme/repo/tokens/');
    assert.equal(list.status, 410);
    assert.deepEqual(await json(list), { message: 'Handling of access tokens is no longer supported' });
    const create = await w.api('POST', '/repository/acme/repo/tokens/', { body: { friendlyName: 'x' } });
    assert.equal(create.status, 410);
    assert.deepEqual(await json(create), { message: 'Creation of access tokens is no longer supported' });
    assert.equal((await w.api('PUT', '/repository/acme/repo/tokens/abc', { body: { role: 'read' } })).status, 410);
    assert.equal((await w.api('DELETE', '/repository/acme/repo/tokens/abc')).status, 410);
    assert.equal((await w.api('GET', '/repository/acme/repo/tokens/abc', { caller: 'member' })).status, 403);
  });

  test('DELETE hides the repository at once (API, /v2, listing), frees its name and logs delete_repo', async () => {
    await pushImage(w, 'acme/made', 'v2');
    const before = (await findRepo(s(), 'acme', 'made'))!;
    await s().db.insertInto('stars').values({ user_id: w.users.member.id, repository_id: before.id, created_at: Date.now() }).execute();
    assert.equal((await w.api('DELETE', '/repository/acme/made', { caller: 'member' })).status, 403);
    const res = await w.api('DELETE', '/repository/acme/made');
    assert.equal(res.status, 204);
    assert.equal(await res.text(), '');
    assert.equal((await w.api('GET', '/repository/acme/made')).status, 404);
    assert.notEqual(await pullStatus(w, 'acme/made', 'v2'), 200);
    const list = await json(await w.api('GET', '/repository?namespace=acme'));
    assert.ok(!list.repositories.some((r: any) => r.name === 'made'));
    const row = await s().db.selectFrom('repositories').selectAll().where('id', '=', before.id).executeTakeFirstOrThrow();
    assert.equal(row.state, 'MARKED_FOR_DELETION');
    assert.notEqual(row.name, 'made');
    assert.equal((await s().db.selectFrom('stars').select('id').where('repository_id', '=', before.id).execute()).length, 0);
    const live = await s().db.selectFrom('tags').select('id').where('repository_id', '=', before.id).where('lifetime_end', 'is', null).execute();
    assert.equal(live.length, 0, 'no tag of the deleted repository stays alive');
    const log = (await logsOf(w, 'delete_repo')).at(-1)!;
    assert.deepEqual(log.metadata, { repo: 'made', namespace: 'acme' });
    // The name is free again: a new, empty repository.
    assert.equal((await w.api('POST', '/repository', { body: { repository: 'made', visibility: 'private', description: '', namespace: 'acme' } })).status, 201);
    const again = await json(await w.api('GET', '/repository/acme/made'));
    assert.deepEqual(again.tags, {});
    assert.equal((await w.api('DELETE', '/repository/acme/nope')).status, 404);
  });
});

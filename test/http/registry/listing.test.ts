import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { createOrganization, createUser, findUser } from '../../../src/model/accounts.ts';
import { findRepo, setVisibility } from '../../../src/model/repositories.ts';
import { setRepoPermission } from '../../../src/model/permissions.ts';
import { ANONYMOUS } from '../../../src/model/context.ts';

let t: TestApp;
let alice: RegistryClient;
let bob: RegistryClient;
const TAGS = ['a', 'a-1', 'a.1', 'a_1', 'b', 'B2', 'latest', 'v1.0', 'v1.0-rc1', 'v10'];

before(async () => {
  t = await startTestApp({ QUAYSIDE_TAG_LIST_MAX: 5, QUAYSIDE_CATALOG_MAX: 50 });
  const s = t.app.services;
  const a = await createUser(s, { username: 'alice', password: 'password1' });
  const b = await createUser(s, { username: 'bob', password: 'password2' });
  await createOrganization(s, 'org', a);
  alice = new RegistryClient(t.url, 'alice', 'password1');
  bob = new RegistryClient(t.url, 'bob', 'password2');
  const img = await alice.pushImage('alice/many', TAGS[0]!);
  for (const tag of TAGS.slice(1)) assert.equal((await alice.pushManifest('alice/many', tag, img.manifest)).status, 201);
  await alice.pushImage('alice/private', 'v1');
  await alice.pushImage('org/shared', 'v1');
  await alice.pushImage('org/hidden', 'v1');
  await alice.pushImage('alice/public', 'v1');
  await setVisibility(s, (await findRepo(s, 'alice', 'public'))!, 'public', ANONYMOUS);
  await setRepoPermission(s, (await findRepo(s, 'org', 'shared'))!.id, { userId: b.id }, 'read');
  void findUser;
});
after(() => t.close());

test('tags/list is sorted in byte order and pages with n, last and a Link header', async () => {
  const scope = 'repository:alice/many:pull';
  const sorted = [...TAGS].sort();
  const got: string[] = [];
  let path: string | null = '/v2/alice/many/tags/list?n=3';
  let pages = 0;
  while (path) {
    const res = await alice.req('GET', path, { scope });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { name: string; tags: string[] };
    assert.equal(body.name, 'alice/many');
    got.push(...body.tags);
    const link = res.headers.get('link');
    path = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
    pages++;
  }
  assert.deepEqual(got, sorted);
  assert.equal(pages, 4);
  const after = await alice.req('GET', `/v2/alice/many/tags/list?n=2&last=${sorted[7]}`, { scope });
  assert.deepEqual(((await after.json()) as { tags: string[] }).tags, sorted.slice(8, 10));
});

test('n is capped by the server, and a bad n is refused', async () => {
  const scope = 'repository:alice/many:pull';
  const res = await alice.req('GET', '/v2/alice/many/tags/list?n=100000', { scope });
  const body = (await res.json()) as { tags: string[] };
  assert.equal(body.tags.length, 5);
  assert.match(res.headers.get('link')!, /n=5&last=/);
  const all = await alice.req('GET', '/v2/alice/many/tags/list', { scope });
  assert.equal(((await all.json()) as { tags: string[] }).tags.length, 5);
  const bad = await alice.req('GET', '/v2/alice/many/tags/list?n=-1', { scope });
  assert.equal(bad.status, 400);
  const zero = await alice.req('GET', '/v2/alice/many/tags/list?n=0', { scope });
  assert.deepEqual(((await zero.json()) as { tags: string[] }).tags, []);
});

test('_catalog lists only what the caller may see', async () => {
  const list = async (c: RegistryClient) => {
    const res = await c.req('GET', '/v2/_catalog', { scope: 'registry:catalog:*' });
    assert.equal(res.status, 200);
    return ((await res.json()) as { repositories: string[] }).repositories;
  };
  assert.deepEqual(await list(alice), ['alice/many', 'alice/private', 'alice/public', 'org/hidden', 'org/shared']);
  assert.deepEqual(await list(bob), ['alice/public', 'org/shared']);
  const page = await alice.req('GET', '/v2/_catalog?n=2', { scope: 'registry:catalog:*' });
  assert.deepEqual(((await page.json()) as { repositories: string[] }).repositories, ['alice/many', 'alice/private']);
  assert.equal(page.headers.get('link'), '</v2/_catalog?n=2&last=alice%2Fprivate>; rel="next"');
  const anon = await fetch(`${t.url}/v2/_catalog`);
  assert.equal(anon.status, 401);
});

test('invalid names answer NAME_INVALID and never reach the model', async () => {
  const scope = 'repository:alice/many:pull';
  for (const path of ['/v2/alice/../etc/manifests/latest', '/v2/alice/%2e%2e/x/manifests/latest', '/v2/Alice/App/manifests/latest', `/v2/alice/${'a'.repeat(300)}/manifests/latest`, '/v2/alice/x%2fy/tags/list', '/v2/-a/b/tags/list']) {
    const res = await alice.req('GET', path, { scope });
    assert.ok(res.status === 400 || res.status === 404, `${path} → ${res.status}`);
    const body = (await res.json()) as { errors: { code: string }[] };
    assert.ok(['NAME_INVALID', 'NOT_FOUND'].includes(body.errors[0]!.code), `${path}: ${body.errors[0]!.code}`);
  }
  const single = await alice.req('GET', '/v2/noslash/tags/list', { scope });
  assert.equal(single.status, 400);
});

test('unknown endpoints and methods answer in the OCI envelope', async () => {
  const res = await fetch(`${t.url}/v2/alice/many/nothing/here`);
  assert.equal(res.status, 404);
  const m = await alice.req('POST', '/v2/alice/many/tags/list', { scope: 'repository:alice/many:pull' });
  assert.equal(m.status, 405);
  assert.equal(((await m.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNSUPPORTED');
});

test('a missing repository is NAME_UNKNOWN to someone who could create it', async () => {
  const res = await alice.req('GET', '/v2/alice/absent/tags/list', { scope: 'repository:alice/absent:pull,push' });
  assert.equal(res.status, 404);
  assert.equal(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code, 'NAME_UNKNOWN');
});

// Tag-name patterns (linear-time matching, bounded input) and immutability evaluation: the tag's
// own flag or any policy of its repository or namespace, only with FEATURE_IMMUTABLE_TAGS on.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createTestServices, type TestServices } from '../support/services.ts';
import { createOrganization, createUser, type User } from '../../src/model/accounts.ts';
import { principalFor } from '../../src/model/context.ts';
import { DomainError } from '../../src/model/errors.ts';
import {
  createImmutabilityPolicy, deleteImmutabilityPolicy, isTagImmutable, listImmutabilityPolicies, policyProtectedNames, updateImmutabilityPolicy,
} from '../../src/model/immutability.ts';
import { createRepository, type Repo } from '../../src/model/repositories.ts';
import { MAX_TAG_PATTERN_LENGTH, tagMatches, tagPatternIssue } from '../../src/model/tag-pattern.ts';

describe('tag patterns', () => {
  test('a catastrophic-backtracking pattern runs in linear time', () => {
    const evil = `${'a'.repeat(40)}!`;
    // A backtracking engine takes ~2^40 steps here; RE2 answers at once.
    const started = performance.now();
    for (let i = 0; i < 200; i++) {
      assert.equal(tagMatches('(a+)+$', evil, 'search'), false);
      assert.equal(tagMatches('(a+)+$', evil, 'prefix'), false);
      assert.equal(tagMatches('(a|aa)+$', evil, 'search'), false);
      assert.equal(tagMatches('(x+x+)+y', 'x'.repeat(128), 'search'), false);
    }
    assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
    const long = `${'a'.repeat(100_000)}!`;
    const t0 = performance.now();
    assert.equal(tagMatches('(a+)+$', long, 'search'), false);
    assert.ok(performance.now() - t0 < 2000, 'linear in the input');
  });

  test('prefix matching anchors at the start only (Python re.match); search finds anywhere', () => {
    assert.equal(tagMatches('v1', 'v1.2.3', 'prefix'), true);
    assert.equal(tagMatches('v1', 'xv1', 'prefix'), false);
    assert.equal(tagMatches('v1', 'xv1', 'search'), true);
    assert.equal(tagMatches('^release-\\d+$', 'release-12', 'prefix'), true);
    assert.equal(tagMatches('^release-\\d+$', 'release-12b', 'prefix'), false);
  });

  test('patterns are bounded and must compile; RE2 has no lookaround or backreferences', () => {
    assert.equal(tagPatternIssue('a'.repeat(MAX_TAG_PATTERN_LENGTH)), null);
    assert.equal(tagPatternIssue('a'.repeat(MAX_TAG_PATTERN_LENGTH + 1)), 'tag_pattern must be 256 characters or less');
    assert.equal(tagPatternIssue('('), 'Invalid regex pattern: error parsing regexp: missing closing ): `(`');
    assert.match(tagPatternIssue('(?=v)v')!, /^Invalid regex pattern: /);
    assert.match(tagPatternIssue('(a)\\1')!, /^Invalid regex pattern: /);
    assert.equal(tagMatches('(', 'x', 'search'), false, 'a stored pattern that does not compile matches nothing');
  });
});

describe('immutability evaluation', () => {
  let ts: TestServices;
  let admin: User;
  let outsider: User;
  let app: Repo;
  let web: Repo;
  let other: Repo;
  const as = (u: User) => ({ principal: principalFor(u, 'password'), ip: null });
  const imm = (repo: Repo, name: string, flag = 0) => isTagImmutable(ts.s, ts.s.db, repo, { name, immutable: flag });

  before(async () => {
    ts = await createTestServices();
    ts.s.config.features.IMMUTABLE_TAGS = true;
    admin = await createUser(ts.s, { username: 'admin', password: 'password1' });
    outsider = await createUser(ts.s, { username: 'outsider', password: 'password1' });
    const org = await createOrganization(ts.s, 'acme', admin);
    const creator = principalFor(admin, 'password');
    app = (await createRepository(ts.s, { namespace: org, name: 'app', visibility: 'private', creator })).repo;
    web = (await createRepository(ts.s, { namespace: org, name: 'web', visibility: 'private', creator })).repo;
    other = (await createRepository(ts.s, { namespace: admin, name: 'app', visibility: 'private', creator })).repo;
  });
  after(() => ts?.close());

  test('organization policies cover every repository of the organization, repository policies one', async () => {
    const orgPolicy = await createImmutabilityPolicy(ts.s, as(admin), { kind: 'org', orgname: 'acme' }, { tagPattern: '  v\\d+  ' });
    const repoPolicy = await createImmutabilityPolicy(ts.s, as(admin), { kind: 'repo', namespace: 'acme', name: 'web' }, { tagPattern: 'stable', tagPatternMatches: true });
    assert.equal(await imm(app, 'v1'), true);
    assert.equal(await imm(web, 'v22-rc'), true, 'prefix match');
    assert.equal(await imm(app, 'latest'), false);
    assert.equal(await imm(web, 'stable'), true);
    assert.equal(await imm(app, 'stable'), false, 'another repository');
    assert.equal(await imm(other, 'v1'), false, 'another namespace');
    assert.equal(await imm(app, 'latest', 1), true, 'the flag alone');
    assert.deepEqual([...(await policyProtectedNames(ts.s, web, ['v1', 'stable', 'x']))].sort(), ['stable', 'v1']);
    assert.deepEqual((await listImmutabilityPolicies(ts.s, principalFor(admin, 'password'), { kind: 'org', orgname: 'acme' })),
      [{ uuid: orgPolicy, tagPattern: 'v\\d+', tagPatternMatches: true }]);
    await deleteImmutabilityPolicy(ts.s, as(admin), { kind: 'org', orgname: 'acme' }, orgPolicy);
    assert.equal(await imm(app, 'v1'), false, 'removing the policy releases the tag');
    await deleteImmutabilityPolicy(ts.s, as(admin), { kind: 'repo', namespace: 'acme', name: 'web' }, repoPolicy);
  });

  test('tagPatternMatches=false protects the tags that do not match', async () => {
    const uuid = await createImmutabilityPolicy(ts.s, as(admin), { kind: 'repo', namespace: 'acme', name: 'app' }, { tagPattern: 'dev-', tagPatternMatches: false });
    assert.equal(await imm(app, 'dev-123'), false);
    assert.equal(await imm(app, 'release'), true);
    await deleteImmutabilityPolicy(ts.s, as(admin), { kind: 'repo', namespace: 'acme', name: 'app' }, uuid);
  });

  test('with FEATURE_IMMUTABLE_TAGS off neither flags nor policies apply', async () => {
    const uuid = await createImmutabilityPolicy(ts.s, as(admin), { kind: 'org', orgname: 'acme' }, { tagPattern: '.*' });
    ts.s.config.features.IMMUTABLE_TAGS = false;
    try {
      assert.equal(await imm(app, 'anything'), false);
      assert.equal(await imm(app, 'anything', 1), false);
      assert.equal((await policyProtectedNames(ts.s, app, ['anything'])).size, 0);
    } finally {
      ts.s.config.features.IMMUTABLE_TAGS = true;
    }
    assert.equal(await imm(app, 'anything'), true);
    await deleteImmutabilityPolicy(ts.s, as(admin), { kind: 'org', orgname: 'acme' }, uuid);
  });

  test('validation, duplicates and permissions', async () => {
    const org = { kind: 'org', orgname: 'acme' } as const;
    const err = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        assert.ok(e instanceof DomainError);
        return [e.code, e.message];
      }
      assert.fail('expected an error');
    };
    assert.deepEqual(await err(createImmutabilityPolicy(ts.s, as(admin), org, { tagPattern: '   ' })), ['invalid_request', 'tag_pattern is required and must be a non-empty string']);
    assert.deepEqual(await err(createImmutabilityPolicy(ts.s, as(admin), org, { tagPattern: 'x'.repeat(257) })), ['invalid_request', 'tag_pattern must be 256 characters or less']);
    const a = await createImmutabilityPolicy(ts.s, as(admin), org, { tagPattern: 'a' });
    const b = await createImmutabilityPolicy(ts.s, as(admin), org, { tagPattern: 'b' });
    assert.deepEqual(await err(createImmutabilityPolicy(ts.s, as(admin), org, { tagPattern: 'a', tagPatternMatches: false })), ['invalid_request', 'A policy with the same tag_pattern already exists']);
    assert.deepEqual(await err(updateImmutabilityPolicy(ts.s, as(admin), org, b, { tagPattern: 'a' })), ['invalid_request', 'A policy with the same tag_pattern already exists']);
    await updateImmutabilityPolicy(ts.s, as(admin), org, a, { tagPattern: 'a', tagPatternMatches: false });
    assert.deepEqual(await err(updateImmutabilityPolicy(ts.s, as(admin), org, 'nosuch', { tagPattern: 'z' })), ['not_found', 'Not Found']);
    assert.deepEqual(await err(createImmutabilityPolicy(ts.s, as(outsider), org, { tagPattern: 'z' })), ['denied', 'Unauthorized']);
    assert.deepEqual(await err(createImmutabilityPolicy(ts.s, as(outsider), { kind: 'repo', namespace: 'acme', name: 'app' }, { tagPattern: 'z' })), ['denied', 'Unauthorized']);
    assert.deepEqual(await err(createImmutabilityPolicy(ts.s, as(admin), { kind: 'repo', namespace: 'acme', name: 'nope' }, { tagPattern: 'z' })), ['not_found', 'Not Found']);
    for (const u of [a, b]) await deleteImmutabilityPolicy(ts.s, as(admin), org, u);
  });
});

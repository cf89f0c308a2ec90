// Manifest labels over real HTTP: labels copied from the image config at push time (and the
// quay.expires-after label), and labels added, read and removed through the API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWorld, type World } from '../../support/world.ts';
import { isApiError } from './client.ts';
import { client, json, logsOf, pushImage, type PushedImage } from './images.ts';
import { findRepo } from '../../../src/model/repositories.ts';

let w: World;
let img: PushedImage;
const CONFIG_LABELS = {
  'com.example.a': '1',
  'org.opencontainers.image.title': 'busybox',
  'json.value': '{"a": [1, 2]}',
  'Odd_Key': 'kept as the image has it',
  'quay.expires-after': '2h',
};
before(async () => {
  w = await createWorld({ LABEL_KEY_RESERVED_PREFIXES: ['acme.'] });
  img = await pushImage(w, 'acme/repo', 'labelled', { labels: CONFIG_LABELS });
});
after(async () => { await w?.close(); });

const s = () => w.t.app.services;
const base = () => `/repository/acme/repo/manifest/${img.digest}/labels`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const countLabels = async () => Number((await s().db.selectFrom('labels').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

describe('labels from the image config', () => {
  test('are attached at push with source_type manifest and an inferred media type', async () => {
    const res = await w.api('GET', base(), { caller: 'member' });
    assert.equal(res.status, 200);
    const b = await json(res);
    assert.deepEqual(Object.keys(b), ['labels']);
    const byKey = Object.fromEntries(b.labels.map((l: any) => [l.key, l]));
    assert.deepEqual(Object.keys(byKey).sort(), Object.keys(CONFIG_LABELS).sort());
    for (const l of b.labels) {
      assert.deepEqual(Object.keys(l).sort(), ['id', 'key', 'media_type', 'source_type', 'value']);
      assert.match(l.id, UUID);
      assert.equal(l.source_type, 'manifest');
      assert.equal(l.value, CONFIG_LABELS[l.key as keyof typeof CONFIG_LABELS]);
    }
    assert.equal(byKey['json.value'].media_type, 'application/json');
    assert.equal(byKey['com.example.a'].media_type, 'text/plain');
  });

  test('quay.expires-after gives the pushed tag an expiration; an empty or bad value does not', async () => {
    const t = (await json(await w.api('GET', '/repository/acme/repo/tag/?specificTag=labelled'))).tags[0];
    assert.equal(t.end_ts - t.start_ts, 7200);
    for (const [tag, value] of [['empty', ''], ['bogus', 'soon'], ['weeks', '1w']] as const) {
      await pushImage(w, 'acme/repo', tag, { labels: { 'quay.expires-after': value } });
      const x = (await json(await w.api('GET', `/repository/acme/repo/tag/?specificTag=${tag}`))).tags[0];
      if (tag === 'weeks') assert.equal(x.end_ts - x.start_ts, 604800);
      else assert.equal(x.end_ts, undefined, tag);
    }
  });

  test('a re-push of the same manifest does not duplicate labels; a non-JSON config pushes fine without labels', async () => {
    const before = await countLabels();
    const res = await client(w).pushManifest('acme/repo', 'again', img.manifest);
    assert.equal(res.status, 201);
    assert.equal(await countLabels(), before);
    const junk = await pushImage(w, 'acme/repo', 'junk', { rawConfig: '{"config": {"Labels": ' });
    assert.deepEqual((await json(await w.api('GET', `/repository/acme/repo/manifest/${junk.digest}/labels`))).labels, []);
  });

  test('filter keeps labels whose key starts with the prefix', async () => {
    const b = await json(await w.api('GET', `${base()}?filter=com.`));
    assert.deepEqual(b.labels.map((l: any) => l.key), ['com.example.a']);
    assert.deepEqual((await json(await w.api('GET', `${base()}?filter=COM.`))).labels, []);
  });
});

describe('labels through the API', () => {
  test('POST adds an api label (201, Location), inferring the media type when null, and logs it', async () => {
    const res = await w.api('POST', base(), { body: { key: 'env.stage', value: '[1,2]', media_type: null } });
    assert.equal(res.status, 201);
    const b = await json(res);
    assert.deepEqual(Object.keys(b), ['label']);
    assert.deepEqual({ ...b.label, id: 'x' }, { id: 'x', key: 'env.stage', value: '[1,2]', source_type: 'api', media_type: 'application/json' });
    assert.match(b.label.id, UUID);
    assert.equal(res.headers.get('location'), `/api/v1/repository/acme/repo/manifest/${img.digest}/labels/${b.label.id}`);
    const one = await w.api('GET', `${base()}/${b.label.id}`, { caller: 'member' });
    assert.equal(one.status, 200);
    assert.deepEqual(await json(one), b.label);
    const log = (await logsOf(w, 'manifest_label_add')).at(-1)!;
    assert.deepEqual(log.metadata, {
      id: b.label.id, key: 'env.stage', value: '[1,2]', manifest_digest: img.digest, media_type: 'application/json', namespace: 'acme', repo: 'repo',
    });
    const plain = await json(await w.api('POST', base(), { body: { key: 'owner', value: 'team-a', media_type: 'text/plain' } }));
    assert.equal(plain.label.media_type, 'text/plain');
  });

  test('reserved prefixes, bad keys and bad bodies are refused and add nothing', async () => {
    const before = await countLabels();
    for (const key of ['quay.expires-after', 'io.quay.x', 'com.docker.x', 'org.opencontainers.x', 'internal.y', 'acme.custom']) {
      const res = await w.api('POST', base(), { body: { key, value: 'v', media_type: 'text/plain' } });
      assert.equal(res.status, 400, key);
      assert.deepEqual(await json(res), { message: 'Label has a reserved prefix' });
    }
    for (const key of ['Bad Key', 'a..b', '-a', 'a-', '', 'x'.repeat(256)]) {
      const res = await w.api('POST', base(), { body: { key, value: 'v', media_type: 'text/plain' } });
      assert.equal(res.status, 400, key);
      assert.deepEqual(await json(res), {
        message: 'Label is of an invalid format or missing please use ^[a-z0-9](([a-z0-9]|[-.](?![.-]))*[a-z0-9])?$ format for labels',
      });
    }
    const cases: [unknown, string][] = [
      [{ key: 'k', value: 'v' }, "'media_type' is a required property"],
      [{ key: 'k', value: 'v', media_type: 'text/html' }, "'text/html' is not one of ['text/plain', 'application/json', None] (field 'media_type')"],
      [{ key: 'k', value: 3, media_type: null }, "3 is not of type 'string' (field 'value')"],
    ];
    for (const [body, detail] of cases) {
      const res = await w.api('POST', base(), { body });
      assert.equal(res.status, 400);
      const b = await json(res);
      assert.ok(isApiError(b, 400, 'invalid_request', w.t.url));
      assert.equal(b.detail, detail);
    }
    assert.equal((await w.api('POST', base(), { caller: 'member', body: { key: 'k', value: 'v', media_type: null } })).status, 403);
    const unknown = await w.api('POST', `/repository/acme/repo/manifest/sha256:${'0'.repeat(64)}/labels`, { body: { key: 'k', value: 'v', media_type: null } });
    assert.equal(unknown.status, 404);
    assert.equal(await countLabels(), before);
  });

  test('DELETE removes api labels (logged) but not labels from the manifest', async () => {
    const labels = (await json(await w.api('GET', base()))).labels;
    const api = labels.find((l: any) => l.key === 'owner');
    const fromImage = labels.find((l: any) => l.key === 'com.example.a');
    const res = await w.api('DELETE', `${base()}/${api.id}`);
    assert.equal(res.status, 204);
    assert.equal((await w.api('GET', `${base()}/${api.id}`)).status, 404);
    assert.equal((await w.api('DELETE', `${base()}/${api.id}`)).status, 404);
    const log = (await logsOf(w, 'manifest_label_delete')).at(-1)!;
    assert.deepEqual(log.metadata, { id: api.id, key: 'owner', value: 'team-a', manifest_digest: img.digest, namespace: 'acme', repo: 'repo' });
    const immutable = await w.api('DELETE', `${base()}/${fromImage.id}`);
    assert.equal(immutable.status, 400);
    assert.equal((await json(immutable)).detail, 'Cannot delete immutable label');
    assert.equal((await w.api('GET', `${base()}/${fromImage.id}`)).status, 200);
  });

  test('a label is only found under its own manifest; writes are refused while the repository is read-only', async () => {
    const other = await pushImage(w, 'acme/repo', 'other');
    const id = (await json(await w.api('GET', base()))).labels[0].id;
    assert.equal((await w.api('GET', `/repository/acme/repo/manifest/${other.digest}/labels/${id}`)).status, 404);
    const repo = (await findRepo(s(), 'acme', 'repo'))!;
    await s().db.updateTable('repositories').set({ state: 'READ_ONLY' }).where('id', '=', repo.id).execute();
    try {
      const add = await w.api('POST', base(), { body: { key: 'k', value: 'v', media_type: null } });
      assert.equal(add.status, 503);
      assert.deepEqual(await json(add), { message: 'Repository is in read only or mirror mode: RepositoryState.READ_ONLY' });
      assert.equal((await w.api('DELETE', `${base()}/${id}`)).status, 503);
      assert.equal((await w.api('GET', base())).status, 200);
    } finally {
      await s().db.updateTable('repositories').set({ state: 'NORMAL' }).where('id', '=', repo.id).execute();
    }
  });
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { RegistryClient, sha256 } from '../../support/registry-client.ts';
import { createUser, createOrganization, findUser } from '../../../src/model/accounts.ts';
import { findRepo } from '../../../src/model/repositories.ts';
import { setRepoPermission } from '../../../src/model/permissions.ts';

let t: TestApp;
let alice: RegistryClient;
let bob: RegistryClient;
const RW = 'repository:alice/app:pull,push';

before(async () => {
  t = await startTestApp();
  const s = t.app.services;
  const a = await createUser(s, { username: 'alice', password: 'password1' });
  await createUser(s, { username: 'bob', password: 'password2' });
  await createOrganization(s, 'shared', a);
  alice = new RegistryClient(t.url, 'alice', 'password1');
  bob = new RegistryClient(t.url, 'bob', 'password2');
  await alice.pushImage('alice/app', 'seed');
});
after(() => t.close());

async function errCode(res: Response): Promise<string> {
  const body = (await res.json()) as { errors: { code: string }[] };
  return body.errors[0]!.code;
}

test('POST opens a session: 202, Location, Range, Docker-Upload-UUID', async () => {
  const res = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  assert.equal(res.status, 202);
  const uuid = res.headers.get('docker-upload-uuid')!;
  assert.match(uuid, /^[0-9a-f-]{36}$/);
  assert.equal(res.headers.get('location'), `/v2/alice/app/blobs/uploads/${uuid}`);
  assert.equal(res.headers.get('range'), '0-0');
  const st = await alice.req('GET', `/v2/alice/app/blobs/uploads/${uuid}`, { scope: RW });
  assert.equal(st.status, 204);
  assert.equal(st.headers.get('range'), '0-0');
  assert.equal(st.headers.get('docker-upload-uuid'), uuid);
});

test('monolithic POST ?digest= stores the blob in one request', async () => {
  const data = randomBytes(1000);
  const digest = sha256(data);
  const res = await alice.req('POST', `/v2/alice/app/blobs/uploads/?digest=${digest}`, { scope: RW, body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('location'), `/v2/alice/app/blobs/${digest}`);
  const got = await alice.req('GET', `/v2/alice/app/blobs/${digest}`, { scope: RW });
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
});

test('chunked upload with Content-Range; out-of-order chunk answers 416 with the current Range', async () => {
  const data = randomBytes(3000);
  const digest = sha256(data);
  const open = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  const loc = open.headers.get('location')!;
  const p1 = await alice.req('PATCH', loc, { scope: RW, body: data.subarray(0, 1000), headers: { 'content-type': 'application/octet-stream', 'content-range': '0-999' } });
  assert.equal(p1.status, 202);
  assert.equal(p1.headers.get('range'), '0-999');
  const bad = await alice.req('PATCH', loc, { scope: RW, body: data.subarray(2000, 3000), headers: { 'content-type': 'application/octet-stream', 'content-range': '2000-2999' } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.get('range'), '0-999');
  const p2 = await alice.req('PATCH', loc, { scope: RW, body: data.subarray(1000, 2000), headers: { 'content-type': 'application/octet-stream', 'content-range': '1000-1999' } });
  assert.equal(p2.status, 202);
  assert.equal(p2.headers.get('range'), '0-1999');
  // The last chunk rides on the closing PUT.
  const put = await alice.req('PUT', `${loc}?digest=${digest}`, { scope: RW, body: data.subarray(2000), headers: { 'content-type': 'application/octet-stream', 'content-range': '2000-2999' } });
  assert.equal(put.status, 201);
  const head = await alice.req('HEAD', `/v2/alice/app/blobs/${digest}`, { scope: RW });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), '3000');
  assert.equal(head.headers.get('docker-content-digest'), digest);
  // The session is gone once closed.
  assert.equal((await alice.req('GET', loc, { scope: RW })).status, 404);
});

test('streaming PATCH without Content-Range (what podman and skopeo send)', async () => {
  const data = randomBytes(200_000);
  const digest = sha256(data);
  const open = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  const loc = open.headers.get('location')!;
  const stream = new ReadableStream({ start(c) { c.enqueue(data.subarray(0, 100_000)); c.enqueue(data.subarray(100_000)); c.close(); } });
  const p = await alice.req('PATCH', loc, { scope: RW, body: stream as never, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(p.status, 202);
  assert.equal(p.headers.get('range'), `0-${data.length - 1}`);
  assert.equal((await alice.req('PUT', `${loc}?digest=${digest}`, { scope: RW })).status, 201);
});

test('a wrong digest on close answers DIGEST_INVALID and stores nothing', async () => {
  const data = randomBytes(500);
  const wrong = sha256(randomBytes(10));
  const open = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  const loc = open.headers.get('location')!;
  const put = await alice.req('PUT', `${loc}?digest=${wrong}`, { scope: RW, body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 400);
  assert.equal(await errCode(put), 'DIGEST_INVALID');
  assert.equal((await alice.req('HEAD', `/v2/alice/app/blobs/${wrong}`, { scope: RW })).status, 404);
  assert.equal((await alice.req('HEAD', `/v2/alice/app/blobs/${sha256(data)}`, { scope: RW })).status, 404);
});

test('unknown digest algorithms and malformed digests are refused', async () => {
  const open = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  const loc = open.headers.get('location')!;
  const md5 = await alice.req('PUT', `${loc}?digest=md5:d41d8cd98f00b204e9800998ecf8427e`, { scope: RW });
  assert.equal(await errCode(md5), 'UNSUPPORTED');
  const bad = await alice.req('PUT', `${loc}?digest=sha256:xyz`, { scope: RW });
  assert.equal(bad.status, 400);
  assert.equal(await errCode(bad), 'DIGEST_INVALID');
  const missing = await alice.req('PUT', loc, { scope: RW });
  assert.equal(await errCode(missing), 'DIGEST_INVALID');
});

test('Content-Length that does not match the body is SIZE_INVALID', async () => {
  const open = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  const loc = open.headers.get('location')!;
  const res = await alice.req('PATCH', loc, { scope: RW, body: randomBytes(100), headers: { 'content-type': 'application/octet-stream', 'content-range': '0-199' } });
  assert.equal(res.status, 416);
});

test('DELETE cancels a session', async () => {
  const open = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  const loc = open.headers.get('location')!;
  assert.equal((await alice.req('DELETE', loc, { scope: RW })).status, 204);
  const again = await alice.req('GET', loc, { scope: RW });
  assert.equal(again.status, 404);
  assert.equal(await errCode(again), 'BLOB_UPLOAD_UNKNOWN');
});

test('an upload session belongs to its creator: another principal sees BLOB_UPLOAD_UNKNOWN', async () => {
  const s = t.app.services;
  const repo = (await findRepo(s, 'shared', 'common')) ?? null;
  assert.equal(repo, null);
  await alice.pushImage('shared/common', 'v1');
  const common = (await findRepo(s, 'shared', 'common'))!;
  await setRepoPermission(s, common.id, { userId: (await findUser(s, 'bob'))!.id }, 'write');
  const scope = 'repository:shared/common:pull,push';
  const open = await alice.req('POST', '/v2/shared/common/blobs/uploads/', { scope });
  const loc = open.headers.get('location')!;
  const data = randomBytes(64);
  for (const [method, path, body] of [['GET', loc], ['PATCH', loc, data], ['PUT', `${loc}?digest=${sha256(data)}`, data], ['DELETE', loc]] as const) {
    const res = await bob.req(method, path, { scope, body, headers: body ? { 'content-type': 'application/octet-stream' } : {} });
    assert.equal(res.status, 404, `${method} by bob`);
    assert.equal(await errCode(res), 'BLOB_UPLOAD_UNKNOWN');
  }
  // The owner's session is untouched.
  const put = await alice.req('PUT', `${loc}?digest=${sha256(data)}`, { scope, body: data, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201);
});

test('a session id from another repository is unknown', async () => {
  const open = await alice.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  const uuid = open.headers.get('docker-upload-uuid')!;
  await alice.pushImage('alice/other', 'v1');
  const res = await alice.req('GET', `/v2/alice/other/blobs/uploads/${uuid}`, { scope: 'repository:alice/other:pull,push' });
  assert.equal(res.status, 404);
  assert.equal(await errCode(res), 'BLOB_UPLOAD_UNKNOWN');
});

test('cross-repository mount: 201 when the caller can read the source, a new session otherwise', async () => {
  const data = randomBytes(777);
  const digest = await alice.pushBlob('alice/app', data);
  const scopes = ['repository:alice/mounted:pull,push', 'repository:alice/app:pull'];
  const res = await alice.req('POST', `/v2/alice/mounted/blobs/uploads/?mount=${digest}&from=alice/app`, { scope: scopes });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  const got = await alice.req('GET', `/v2/alice/mounted/blobs/${digest}`, { scope: 'repository:alice/mounted:pull' });
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), data);
  // Bob cannot read alice/app: the mount falls back to a plain upload session.
  const bobScopes = ['repository:bob/mine:pull,push', 'repository:alice/app:pull'];
  const denied = await bob.req('POST', `/v2/bob/mine/blobs/uploads/?mount=${digest}&from=alice/app`, { scope: bobScopes });
  assert.equal(denied.status, 202);
  assert.equal((await bob.req('HEAD', `/v2/bob/mine/blobs/${digest}`, { scope: 'repository:bob/mine:pull' })).status, 404);
  // Without `from`, Quayside mounts only from repositories the caller can read.
  const auto = await bob.req('POST', `/v2/bob/mine/blobs/uploads/?mount=${digest}`, { scope: 'repository:bob/mine:pull,push' });
  assert.equal(auto.status, 202);
  const autoAlice = await alice.req('POST', `/v2/alice/auto/blobs/uploads/?mount=${digest}`, { scope: 'repository:alice/auto:pull,push' });
  assert.equal(autoAlice.status, 201);
});

test('blob GET supports Range; HEAD has no body; unknown blobs are BLOB_UNKNOWN', async () => {
  const data = randomBytes(1000);
  const digest = await alice.pushBlob('alice/app', data);
  const part = await alice.req('GET', `/v2/alice/app/blobs/${digest}`, { scope: RW, headers: { range: 'bytes=100-199' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), 'bytes 100-199/1000');
  assert.deepEqual(Buffer.from(await part.arrayBuffer()), data.subarray(100, 200));
  const tail = await alice.req('GET', `/v2/alice/app/blobs/${digest}`, { scope: RW, headers: { range: 'bytes=-10' } });
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), data.subarray(990));
  const beyond = await alice.req('GET', `/v2/alice/app/blobs/${digest}`, { scope: RW, headers: { range: 'bytes=5000-' } });
  assert.equal(beyond.status, 416);
  const unknown = await alice.req('GET', `/v2/alice/app/blobs/${sha256('nope')}`, { scope: RW });
  assert.equal(unknown.status, 404);
  assert.equal(await errCode(unknown), 'BLOB_UNKNOWN');
});

test('a blob stored for one repository is not readable through another', async () => {
  const data = randomBytes(300);
  const digest = await alice.pushBlob('alice/app', data);
  await alice.pushImage('alice/elsewhere', 'v1');
  const res = await alice.req('GET', `/v2/alice/elsewhere/blobs/${digest}`, { scope: 'repository:alice/elsewhere:pull' });
  assert.equal(res.status, 404);
});

test('blob DELETE unlinks an unreferenced blob and refuses a referenced one', async () => {
  const data = randomBytes(128);
  const digest = await alice.pushBlob('alice/app', data);
  const del = await alice.req('DELETE', `/v2/alice/app/blobs/${digest}`, { scope: 'repository:alice/app:*' });
  assert.equal(del.status, 202);
  assert.equal((await alice.req('HEAD', `/v2/alice/app/blobs/${digest}`, { scope: RW })).status, 404);
  const img = await alice.pushImage('alice/app', 'keep');
  const refused = await alice.req('DELETE', `/v2/alice/app/blobs/${img.layer}`, { scope: 'repository:alice/app:*' });
  assert.equal(refused.status, 405);
  assert.equal(await errCode(refused), 'UNSUPPORTED');
});

test('pulls and pushes need the right token: 401 with a scoped challenge, signed in or not (as Quay)', async () => {
  const anon = await fetch(`${t.url}/v2/alice/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(anon.status, 401);
  assert.equal(anon.headers.get('www-authenticate'), `Bearer realm="${t.url}/v2/auth",service="${t.host}",scope="repository:alice/app:pull,push"`);
  const denied = await bob.req('POST', '/v2/alice/app/blobs/uploads/', { scope: RW });
  assert.equal(denied.status, 401);
  assert.equal(await errCode(denied), 'UNAUTHORIZED');
});

test('pushing to a repository that does not exist creates it, private by default', async () => {
  await alice.pushImage('alice/brand-new', 'v1');
  const repo = (await findRepo(t.app.services, 'alice', 'brand-new'))!;
  assert.equal(repo.is_public, 0);
  const logs = await t.app.services.db.selectFrom('logs').select('kind').where('repository_id', '=', repo.id).execute();
  const kinds = logs.map((l) => l.kind);
  assert.ok(kinds.includes('create_repo'));
  assert.ok(kinds.includes('push_repo'));
  assert.ok(kinds.includes('create_tag'));
});

test('nested repository names work', async () => {
  const img = await alice.pushImage('shared/team/app', 'v1');
  const res = await alice.req('GET', '/v2/shared/team/app/manifests/v1', { scope: 'repository:shared/team/app:pull' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('docker-content-digest'), img.digest);
});

test('REGISTRY_STATE readonly refuses writes with a clear error and still serves pulls', async () => {
  const t2 = await startTestApp({ REGISTRY_STATE: 'readonly' });
  try {
    await createUser(t2.app.services, { username: 'carol', password: 'password3' });
    const c = new RegistryClient(t2.url, 'carol', 'password3');
    const token = await c.token('repository:carol/x:pull,push');
    const res = await fetch(`${t2.url}/v2/carol/x/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    // No push is granted in read-only mode, so the write is refused at the token check.
    assert.equal(res.status, 401);
    const pull = await c.token('repository:carol/x:pull');
    assert.ok(pull.length > 0);
  } finally {
    await t2.close();
  }
});

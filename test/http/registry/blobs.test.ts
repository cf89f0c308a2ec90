// GET /v2/<name>/blobs/<digest> on filesystem storage: the direct send path (reused buffers,
// hijacked reply) must keep every header, Range answer and metric of the ordinary reply path, and
// survive clients that go away mid-download.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { RegistryClient, sha256 } from '../../support/registry-client.ts';
import { createUser } from '../../../src/model/accounts.ts';

const MiB = 1024 * 1024;
const SCOPE = 'repository:alice/big:pull';

let t: TestApp;
let alice: RegistryClient;
// Not a multiple of the 1 MiB read size, so the last chunk is short.
const big = randomBytes(3 * MiB + 123);
let digest: string;

before(async () => {
  t = await startTestApp();
  await createUser(t.app.services, { username: 'alice', password: 'password1', email: 'alice@example.com' });
  alice = new RegistryClient(t.url, 'alice', 'password1');
  digest = await alice.pushBlob('alice/big', big);
});
after(() => t.close());

const get = (headers: Record<string, string> = {}) => alice.req('GET', `/v2/alice/big/blobs/${digest}`, { scope: SCOPE, headers });

test('a multi-MiB blob arrives byte-exact with every header the ordinary reply path sends', async () => {
  const res = await get();
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(big.length));
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  assert.equal(res.headers.get('accept-ranges'), 'bytes');
  assert.equal(res.headers.get('etag'), `"${digest}"`);
  assert.equal(res.headers.get('cache-control'), 'max-age=31536000');
  assert.match(res.headers.get('x-request-id') ?? '', /\S/);
  assert.equal(res.headers.get('transfer-encoding'), null);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(sha256(body), digest);
});

test('Range requests across 1 MiB boundaries, open-ended and suffix, answer 206 with the exact bytes', async () => {
  const cases: [string, number, number][] = [
    [`bytes=${MiB - 5}-${2 * MiB + 5}`, MiB - 5, 2 * MiB + 5],
    [`bytes=${MiB}-`, MiB, big.length - 1],
    ['bytes=-1048700', big.length - 1048700, big.length - 1],
    [`bytes=0-${big.length + 100}`, 0, big.length - 1],
  ];
  for (const [range, start, end] of cases) {
    const res = await get({ range });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${big.length}`, range);
    assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(big.subarray(start, end + 1)), range);
  }
  const beyond = await get({ range: `bytes=${big.length}-` });
  assert.equal(beyond.status, 416);
  assert.equal(beyond.headers.get('content-range'), `bytes */${big.length}`);
});

test('concurrent downloads of different blobs never see each other\'s bytes', async () => {
  const others = [randomBytes(2 * MiB + 7), randomBytes(5 * MiB), randomBytes(1 * MiB + 1)];
  const digests = await Promise.all(others.map((b) => alice.pushBlob('alice/big', b)));
  const all = [...others, big, ...others];
  const ds = [...digests, digest, ...digests];
  const bodies = await Promise.all(ds.map(async (d) => {
    const res = await alice.req('GET', `/v2/alice/big/blobs/${d}`, { scope: SCOPE });
    assert.equal(res.status, 200);
    return Buffer.from(await res.arrayBuffer());
  }));
  bodies.forEach((b, i) => assert.equal(sha256(b), sha256(all[i]!), `download ${i}`));
});

test('a client that hangs up mid-download leaves the server serving, and the bytes counted', async () => {
  const token = await alice.token(SCOPE);
  const url = new URL(`${t.url}/v2/alice/big/blobs/${digest}`);
  const got = await new Promise<number>((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n >= 64 * 1024) {
          req.destroy();
          resolve(n);
        }
      });
      res.on('error', () => {});
    });
    req.on('error', (e) => (e.message.includes('aborted') || (e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
    req.end();
  });
  assert.ok(got < big.length);
  for (let i = 0; i < 3; i++) {
    const res = await get();
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), digest);
  }
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  const line = metrics.split('\n').find((l) => l.startsWith('quayside_http_response_bytes_total{') && l.includes('route="blob_get"') && l.includes('method="GET"'));
  assert.ok(line, 'blob_get bytes are counted');
  assert.ok(Number(line.slice(line.lastIndexOf(' ') + 1)) >= 3 * big.length);
  const count = metrics.split('\n').find((l) => l.startsWith('quayside_http_requests_total{') && l.includes('route="blob_get"') && l.includes('status="2xx"'));
  assert.ok(count && Number(count.slice(count.lastIndexOf(' ') + 1)) >= 4, count);
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { RegistryClient, nextLink, parseChallenge } from '../../bench/client.ts';

// A tiny token-auth registry front: enough of Quay's /v2/auth dance to check
// that the bench client authenticates, caches per scope and replays bodies.

const USER = 'bench';
const PASS = 's3cret';
let server: http.Server;
let base: string;
const tokenCalls: string[] = [];
const uploads: { auth: string; bytes: number }[] = [];
const TAGS = Array.from({ length: 7 }, (_, i) => `t${i}`);

function bodyLength(req: http.IncomingMessage): Promise<number> {
  return new Promise((res) => {
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res(n));
  });
}

before(async () => {
  server = http.createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://x');
    const auth = req.headers.authorization ?? '';
    if (url.pathname === '/v2/auth') {
      await bodyLength(req);
      if (auth !== 'Basic ' + Buffer.from(`${USER}:${PASS}`).toString('base64')) {
        res.writeHead(401).end();
        return;
      }
      const scope = url.searchParams.get('scope') ?? '';
      tokenCalls.push(`${url.searchParams.get('service')}|${scope}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `tok:${scope}` }));
      return;
    }
    const repo = /^\/v2\/(.+?)\/(blobs|manifests|tags)\//.exec(url.pathname)?.[1];
    const want = repo ? `Bearer tok:repository:${repo}:pull,push` : 'Bearer tok:';
    const bytes = await bodyLength(req);
    if (auth !== want) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://localhost:${(server.address() as AddressInfo).port}/v2/auth",service="localhost"` });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    if (url.pathname === '/v2/') {
      res.writeHead(200).end('{}');
    } else if (req.method === 'POST' && url.pathname.endsWith('/blobs/uploads/')) {
      // An absolute Location on a foreign host: the client must keep the load on loopback.
      res.writeHead(202, { location: `https://registry.example.com/v2/${repo}/blobs/uploads/u1?_state=abc` }).end();
    } else if (req.method === 'PUT' && url.pathname.endsWith('/blobs/uploads/u1')) {
      uploads.push({ auth, bytes });
      assert.equal(url.searchParams.get('_state'), 'abc');
      res.writeHead(201, { location: `/v2/${repo}/blobs/${url.searchParams.get('digest')}` }).end();
    } else if (url.pathname.endsWith('/tags/list')) {
      const n = Number(url.searchParams.get('n') ?? 3);
      const last = url.searchParams.get('last');
      const from = last ? TAGS.indexOf(last) + 1 : 0;
      const page = TAGS.slice(from, from + n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (from + n < TAGS.length) headers.link = `</v2/${repo}/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"`;
      res.writeHead(200, headers).end(JSON.stringify({ name: repo, tags: page }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => server.close());

test('fetches a bearer token per scope with Basic credentials and caches it', async () => {
  tokenCalls.length = 0;
  uploads.length = 0;
  const client = new RegistryClient({ baseUrl: base, username: USER, password: PASS });
  try {
    await client.ping();
    const data = Buffer.alloc(4096, 7);
    await client.pushBlob('bench/a', 'sha256:00', data);
    await client.pushBlob('bench/a', 'sha256:01', data);
    await client.pushBlob('bench/b', 'sha256:02', data);
    assert.deepEqual(tokenCalls, ['localhost|', 'localhost|repository:bench/a:pull,push', 'localhost|repository:bench/b:pull,push']);
    assert.deepEqual(
      uploads.map((u) => u.bytes),
      [4096, 4096, 4096],
    );
  } finally {
    client.close();
  }
});

test('replays a streamed body after a 401 by calling its factory again', async () => {
  uploads.length = 0;
  const client = new RegistryClient({ baseUrl: base, username: USER, password: PASS });
  let made = 0;
  try {
    // No ping: the challenge arrives while the body is in flight.
    const res = await client.request({
      method: 'PUT',
      url: '/v2/bench/d/blobs/uploads/u1?_state=abc&digest=sha256:04',
      repo: 'bench/d',
      headers: { 'content-length': '100000' },
      body: () => {
        made++;
        return Readable.from([Buffer.alloc(60_000), Buffer.alloc(40_000)]);
      },
    });
    assert.equal(res.status, 201);
    assert.equal(made, 2);
    assert.deepEqual(uploads, [{ auth: 'Bearer tok:repository:bench/d:pull,push', bytes: 100_000 }]);
  } finally {
    client.close();
  }
});

test('surfaces a 401 when it has no credentials', async () => {
  const client = new RegistryClient({ baseUrl: base });
  try {
    await assert.rejects(client.ping(), /401/);
  } finally {
    client.close();
  }
});

test('listTags follows Link rel="next" until the last page', async () => {
  const client = new RegistryClient({ baseUrl: base, username: USER, password: PASS });
  try {
    const { tags, pages } = await client.listTags('bench/t');
    assert.deepEqual(tags, TAGS);
    assert.equal(pages, 3);
  } finally {
    client.close();
  }
});

test('parses challenges and Link headers', () => {
  assert.deepEqual(parseChallenge('Bearer realm="http://h:1/v2/auth",service="h:1",scope="repository:a/b:pull"'), {
    scheme: 'bearer',
    realm: 'http://h:1/v2/auth',
    service: 'h:1',
  });
  assert.equal(parseChallenge('Basic realm="x"')?.scheme, 'basic');
  assert.equal(parseChallenge('Negotiate'), undefined);
  assert.equal(nextLink('</v2/a/tags/list?n=2&last=b>; rel="next"'), '/v2/a/tags/list?n=2&last=b');
  assert.equal(nextLink('<http://x/p>; rel="prev", </q?last=z>; rel=next'), '/q?last=z');
  assert.equal(nextLink(undefined), undefined);
});

test('pins foreign hosts to the base origin but keeps loopback ones', () => {
  const client = new RegistryClient({ baseUrl: 'http://127.0.0.1:5555' });
  assert.equal(client.resolve('https://quay.example.com/v2/a?x=1').toString(), 'http://127.0.0.1:5555/v2/a?x=1');
  assert.equal(client.resolve('http://localhost:6000/v2/auth').toString(), 'http://localhost:6000/v2/auth');
  client.close();
});

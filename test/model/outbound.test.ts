// The outbound-URL guard (SSRF): every address class that must be refused, by IP literal, by a
// DNS name resolving to it, by DNS changing its answer between check and connect, and by redirect
// — each with a real local server that must never see the request.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  checkOutboundUrl, isBlockedAddress, makeOutboundPolicy, OutboundBlockedError, outboundPolicy, outboundRequest, type Lookup,
} from '../../src/model/outbound.ts';

interface Target { server: Server; port: number; hits: string[] }

async function target(host: string, handler?: (url: string, res: import('node:http').ServerResponse) => void): Promise<Target> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    if (handler) handler(req.url ?? '/', res);
    else res.end('reached');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, port: (server.address() as AddressInfo).port, hits };
}

const refused = (re?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof OutboundBlockedError, `expected OutboundBlockedError, got ${String(e)}`);
  if (re) assert.match(e.message, re);
  return true;
};

const fixed = (answers: Record<string, string[]>): Lookup => async (name) => {
  const a = answers[name];
  if (!a) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

describe('address classification', () => {
  const blocked = [
    '127.0.0.1', '127.255.255.254', '::1', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255', '192.168.0.1', '192.168.255.255',
    '169.254.169.254', '169.254.0.1', 'fd00::1', 'fc00::1', 'fe80::1', '0.0.0.0', '100.64.0.1', '::', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
    '::ffff:169.254.169.254', '224.0.0.1', '255.255.255.255', '64:ff9b::7f00:1', '2002:7f00:1::', 'not-an-ip',
  ];
  const allowed = ['8.8.8.8', '1.1.1.1', '172.32.0.1', '172.15.255.255', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'];

  test('loopback, private, link-local, metadata, ULA and translation ranges are blocked', () => {
    for (const a of blocked) assert.equal(isBlockedAddress(a), true, a);
  });
  test('public unicast addresses pass', () => {
    for (const a of allowed) assert.equal(isBlockedAddress(a), false, a);
  });
});

describe('checkOutboundUrl', () => {
  const none = makeOutboundPolicy([], fixed({ 'public.example': ['93.184.216.34'] }));

  test('every blocked IP literal is refused, including encoded forms of loopback', async () => {
    for (const url of [
      'http://127.0.0.1/', 'http://[::1]/', 'http://10.1.2.3:8080/x', 'http://172.16.9.9/', 'http://192.168.1.1/', 'http://169.254.169.254/latest/meta-data/',
      'http://[fd00::1]/', 'http://[fd12:3456::1]:443/', 'http://2130706433/', 'http://0x7f.0.0.1/', 'http://127.1/', 'http://[::ffff:127.0.0.1]/', 'http://0.0.0.0/',
    ]) await assert.rejects(checkOutboundUrl(none, url), refused(/not a public address/), url);
  });

  test('metadata and local host names are refused without asking DNS', async () => {
    for (const url of ['http://localhost:8080/', 'http://metadata.google.internal/', 'http://foo.internal/', 'http://printer.local/', 'http://a.localhost/']) {
      await assert.rejects(checkOutboundUrl(none, url), refused(/not allowed/), url);
    }
  });

  test('a DNS name resolving to loopback (or to any blocked address among others) is refused', async () => {
    const p = makeOutboundPolicy([], fixed({
      'evil.example': ['127.0.0.1'], 'evil6.example': ['::1'], 'meta.example': ['169.254.169.254'],
      'mixed.example': ['93.184.216.34', '10.0.0.5'], 'ula.example': ['fd00::5'],
    }));
    for (const host of ['evil.example', 'evil6.example', 'meta.example', 'mixed.example', 'ula.example']) {
      await assert.rejects(checkOutboundUrl(p, `https://${host}/hook`), refused(/resolves to/), host);
    }
    assert.equal((await checkOutboundUrl(none, 'https://public.example/hook')).hostname, 'public.example');
    await assert.rejects(checkOutboundUrl(none, 'https://nxdomain.example/'), refused(/cannot resolve/));
  });

  test('the system resolver is used: this machine\'s own name resolving to loopback is refused', async (t) => {
    const name = hostname();
    const addrs = await lookup(name, { all: true }).catch(() => []);
    if (!addrs.length || !addrs.every((a) => isBlockedAddress(a.address))) return t.skip(`${name} does not resolve to a blocked address here`);
    await assert.rejects(checkOutboundUrl(makeOutboundPolicy(), `http://${name}:9/`), refused(/resolves to/));
  });

  test('only http(s) without credentials', async () => {
    await assert.rejects(checkOutboundUrl(none, 'file:///etc/passwd'), refused(/only http and https/));
    await assert.rejects(checkOutboundUrl(none, 'gopher://public.example/'), refused(/only http and https/));
    await assert.rejects(checkOutboundUrl(none, 'http://user:pw@public.example/'), refused(/credentials/));
    await assert.rejects(checkOutboundUrl(none, 'not a url'), refused(/not a valid URL/));
  });

  test('the allowlist admits exactly what it names: host:port, host, IP, CIDR', async () => {
    const p = makeOutboundPolicy(['127.0.0.1:5000', 'hooks.internal', '10.20.0.0/16', '[::1]:7000', 'fd00::9'], fixed({ 'hooks.internal': ['10.9.9.9'] }));
    await checkOutboundUrl(p, 'http://127.0.0.1:5000/');
    await assert.rejects(checkOutboundUrl(p, 'http://127.0.0.1:5001/'), refused());
    await checkOutboundUrl(p, 'http://hooks.internal/');
    await checkOutboundUrl(p, 'http://10.20.3.4:9999/');
    await assert.rejects(checkOutboundUrl(p, 'http://10.21.3.4/'), refused());
    await checkOutboundUrl(p, 'http://[::1]:7000/');
    await assert.rejects(checkOutboundUrl(p, 'http://[::1]:7001/'), refused());
    await checkOutboundUrl(p, 'http://[fd00::9]:1/');
    assert.throws(() => makeOutboundPolicy(['10.0.0.0/33']), /invalid CIDR/);
    assert.throws(() => makeOutboundPolicy(['host:0']), /invalid allowlist entry/);
  });

  test('the configured policy reads QUAYSIDE_OUTBOUND_ALLOWLIST and SSRF_ALLOWED_HOSTS', async () => {
    const p = outboundPolicy({ raw: { QUAYSIDE_OUTBOUND_ALLOWLIST: ['127.0.0.1:4000'], SSRF_ALLOWED_HOSTS: ['192.168.0.0/16'] } });
    await checkOutboundUrl(p, 'http://127.0.0.1:4000/');
    await checkOutboundUrl(p, 'http://192.168.7.7/');
    await assert.rejects(checkOutboundUrl(p, 'http://127.0.0.1:4001/'), refused());
    await assert.rejects(checkOutboundUrl(outboundPolicy({ raw: {} }), 'http://192.168.7.7/'), refused());
  });
});

describe('outboundRequest', () => {
  let loop4: Target;
  let loop6: Target | null = null;
  let bouncer: Target;

  before(async () => {
    loop4 = await target('127.0.0.1');
    loop6 = await target('::1').catch(() => null);
    bouncer = await target('127.0.0.1', (url, res) => {
      const to = decodeURIComponent(url.slice('/to/'.length));
      if (url.startsWith('/to/')) res.writeHead(302, { location: to }).end();
      else if (url === '/see-other') res.writeHead(303, { location: '/landed' }).end();
      else res.end(`landed ${url}`);
    });
  });
  after(async () => {
    for (const t of [loop4, loop6, bouncer]) if (t) await new Promise((r) => t.server.close(r));
  });

  test('a loopback server is unreachable unless allowlisted', async () => {
    await assert.rejects(outboundRequest(makeOutboundPolicy(), `http://127.0.0.1:${loop4.port}/`), refused());
    if (loop6) await assert.rejects(outboundRequest(makeOutboundPolicy(), `http://[::1]:${loop6.port}/`), refused());
    assert.deepEqual(loop4.hits, []);
    const res = await outboundRequest(makeOutboundPolicy([`127.0.0.1:${loop4.port}`]), `http://127.0.0.1:${loop4.port}/ok`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'reached');
    assert.deepEqual(loop4.hits, ['GET /ok']);
    loop4.hits.length = 0;
  });

  test('DNS is checked at connect time: a name that turns into loopback after the check is refused', async () => {
    let calls = 0;
    // First answer public (the up-front check passes), then loopback (the rebinding attack).
    const rebinding: Lookup = async () => (calls++ === 0 ? [{ address: '93.184.216.34', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]);
    const p = makeOutboundPolicy([], rebinding);
    await checkOutboundUrl(p, `http://rebind.example:${loop4.port}/`);
    await assert.rejects(outboundRequest(p, `http://rebind.example:${loop4.port}/steal`), refused(/resolves to 127\.0\.0\.1/));
    assert.equal(calls, 2);
    assert.deepEqual(loop4.hits, []);
  });

  test('a name resolving to loopback is refused when requested', async () => {
    const p = makeOutboundPolicy([], fixed({ 'evil.example': ['127.0.0.1'] }));
    await assert.rejects(outboundRequest(p, `http://evil.example:${loop4.port}/`), refused(/resolves to/));
    assert.deepEqual(loop4.hits, []);
  });

  test('a redirect to loopback is refused, and the loopback server never hears of it', async () => {
    const p = makeOutboundPolicy([`127.0.0.1:${bouncer.port}`]);
    const hop = (to: string) => `http://127.0.0.1:${bouncer.port}/to/${encodeURIComponent(to)}`;
    await assert.rejects(outboundRequest(p, hop(`http://127.0.0.1:${loop4.port}/x`)), refused(/127\.0\.0\.1 is not a public address/));
    await assert.rejects(outboundRequest(p, hop(`http://localhost:${loop4.port}/x`)), refused(/not allowed/));
    await assert.rejects(outboundRequest(p, hop('http://169.254.169.254/latest/meta-data/')), refused());
    if (loop6) await assert.rejects(outboundRequest(p, hop(`http://[::1]:${loop6.port}/x`)), refused());
    assert.deepEqual(loop4.hits, []);
    assert.deepEqual(loop6?.hits ?? [], []);
    // Allowed hops are followed; 303 turns a POST into a GET; maxRedirects 0 returns the 3xx itself.
    const ok = await outboundRequest(p, hop(`http://127.0.0.1:${bouncer.port}/final`));
    assert.equal(await ok.text(), 'landed /final');
    const post = await outboundRequest(p, `http://127.0.0.1:${bouncer.port}/see-other`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    assert.equal(await post.text(), 'landed /landed');
    assert.ok(bouncer.hits.includes('GET /landed'));
    const raw = await outboundRequest(p, hop(`http://127.0.0.1:${loop4.port}/x`), { maxRedirects: 0 });
    assert.equal(raw.status, 302);
    raw.body.resume();
    assert.deepEqual(loop4.hits, []);
  });
});

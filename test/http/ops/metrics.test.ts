// GET /metrics: per-app Prometheus registry with bounded route labels, bytes and queue depth.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { call } from '../api/client.ts';

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inner = line.slice(name.length + 1, line.indexOf('}'));
    const have = inner.split(',');
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('GET /metrics', () => {
  let a: TestApp;
  let b: TestApp;
  // One after the other: with Promise.all, a second start that failed left the first app listening
  // and unassigned, so nothing closed it and the file never exited (a CI hang on PostgreSQL).
  before(async () => {
    a = await startTestApp();
    b = await startTestApp();
  });
  after(async () => { await Promise.all([a?.close(), b?.close()]); });

  test('is Prometheus text with request counts and latency by route pattern, method and status class', async () => {
    for (const type of ['invalid_token', 'not_found', 'nope']) await call(a, 'GET', `/api/v1/error/${type}`);
    await call(a, 'GET', '/no/such/path');
    const r = await fetch(`${a.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const route = '/api/v1/error/:error_type';
    assert.equal(sample(text, 'quayside_http_requests_total', { route, method: 'GET', status: '2xx' }), 2);
    assert.equal(sample(text, 'quayside_http_requests_total', { route, method: 'GET', status: '4xx' }), 1);
    assert.equal(sample(text, 'quayside_http_request_duration_seconds_count', { route, method: 'GET', status: '2xx' }), 2);
    assert.equal(sample(text, 'quayside_http_request_duration_seconds_bucket', { route, method: 'GET', status: '2xx', le: '+Inf' }), 2);
    assert.equal(sample(text, 'quayside_http_requests_total', { route: '(unmatched)', method: 'GET', status: '4xx' }), 1);
    // Raw URLs never become labels.
    assert.doesNotMatch(text, /invalid_token"/);
    assert.doesNotMatch(text, /no\/such\/path/);
  });

  test('counts request and response body bytes', async () => {
    const body = JSON.stringify({ username: 'metricsuser', password: 'password123', email: 'm@example.com' });
    const r = await fetch(`${a.url}/api/v1/user/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const out = Buffer.byteLength(await r.text());
    assert.equal(r.status, 200);
    const text = await (await fetch(`${a.url}/metrics`)).text();
    assert.equal(sample(text, 'quayside_http_request_bytes_total', { route: '/api/v1/user/', method: 'POST' }), Buffer.byteLength(body));
    assert.equal(sample(text, 'quayside_http_response_bytes_total', { route: '/api/v1/user/', method: 'POST' }), out);
  });

  test('streamed (chunked) request bodies are counted as received', async () => {
    const chunks = ['{"username": "streamer", ', '"password": "password123"}'];
    const stream = new ReadableStream({ start(c) { for (const x of chunks) c.enqueue(new TextEncoder().encode(x)); c.close(); } });
    const r = await fetch(`${b.url}/api/v1/user/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    assert.equal(r.status, 200, await r.text());
    const text = await (await fetch(`${b.url}/metrics`)).text();
    assert.equal(sample(text, 'quayside_http_request_bytes_total', { route: '/api/v1/user/', method: 'POST' }), chunks.join('').length);
  });

  test('queue depth is read from the jobs table at scrape time', async () => {
    const s = a.app.services;
    const now = Date.now();
    await s.db.insertInto('jobs').values([
      { queue: 'gc', payload: '{}', available_at: 0, created_at: now },
      { queue: 'gc', payload: '{}', available_at: now + 3600_000, created_at: now },
      { queue: 'gc', payload: '{}', available_at: 0, lease_expires_at: now + 3600_000, created_at: now },
      { queue: 'notify', payload: '{}', available_at: 0, created_at: now },
    ]).execute();
    const text = await (await fetch(`${a.url}/metrics`)).text();
    assert.equal(sample(text, 'quayside_queue_depth', { queue: 'gc' }), 3);
    assert.equal(sample(text, 'quayside_queue_items_available', { queue: 'gc' }), 1);
    assert.equal(sample(text, 'quayside_queue_items_running', { queue: 'gc' }), 1);
    assert.equal(sample(text, 'quayside_queue_depth', { queue: 'notify' }), 1);
    await s.db.deleteFrom('jobs').where('queue', '=', 'notify').execute();
    const again = await (await fetch(`${a.url}/metrics`)).text();
    assert.equal(sample(again, 'quayside_queue_depth', { queue: 'notify' }), undefined);
  });

  test('a database outage leaves /metrics answering without the queue gauges', async () => {
    const s = a.app.services;
    const db = s.db;
    (s as { db: unknown }).db = new Proxy(db, {
      get(target, prop, recv) {
        if (prop === 'executeQuery') return async () => { throw new Error('connection refused'); };
        return Reflect.get(target, prop, recv);
      },
    });
    try {
      const r = await fetch(`${a.url}/metrics`);
      assert.equal(r.status, 200);
      const text = await r.text();
      assert.equal(sample(text, 'quayside_queue_depth', { queue: 'gc' }), undefined);
      assert.match(text, /quayside_http_requests_total/);
    } finally {
      (s as { db: unknown }).db = db;
    }
  });

  test('each app has its own registry', async () => {
    const text = await (await fetch(`${b.url}/metrics`)).text();
    assert.equal(sample(text, 'quayside_http_requests_total', { route: '/api/v1/error/:error_type', method: 'GET', status: '2xx' }), undefined);
    assert.equal(sample(text, 'quayside_queue_depth', { queue: 'gc' }), undefined);
  });

  test('a handler may name its route with req.metricsRoute (the /v2 registry does)', async () => {
    await fetch(`${b.url}/v2/`);
    const text = await (await fetch(`${b.url}/metrics`)).text();
    const v2 = text.split('\n').filter((l) => l.startsWith('quayside_http_requests_total{') && l.includes('method="GET"') && !l.includes('/api/v1') && !l.includes('/metrics'));
    assert.ok(v2.length >= 1, text);
    assert.doesNotMatch(v2.join('\n'), /route="\(unmatched\)"/);
  });
});

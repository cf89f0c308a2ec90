// /api/v1/superuser/registrysize/: GET reports the last computed size with the job's state, POST
// queues a computation that the registry_size worker runs; superusers only (reads also for global
// read-only superusers).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createWorld, PASSWORD, type World } from '../../support/world.ts';
import { expectAll, runMatrix } from '../../support/matrix.ts';
import { RegistryClient } from '../../support/registry-client.ts';
import { json } from './images.ts';
import { claim, complete } from '../../../src/model/queue.ts';
import { REGISTRY_SIZE_QUEUE } from '../../../src/model/registry-size.ts';
import { startWorkers } from '../../../src/workers/index.ts';

const SU = ['super:user'];
let w: World;
before(async () => { w = await createWorld(); });
after(async () => { await w?.close(); });

const s = () => w.t.app.services;
const size = async (caller: 'superuser' | 'readonlySuperuser' = 'superuser') => {
  const res = await w.api('GET', '/superuser/registrysize/', { caller, scopes: SU });
  assert.equal(res.status, 200);
  return json(res);
};
const queue = (caller: 'superuser' = 'superuser') => w.api('POST', '/superuser/registrysize/', { caller, scopes: SU });
const dropJobs = () => s().db.deleteFrom('jobs').where('queue', '=', REGISTRY_SIZE_QUEUE).execute();

test('never computed: zero bytes, never ran, nothing queued', async () => {
  assert.deepEqual(await size(), { size_bytes: 0, last_ran: null, queued: false, running: false });
  assert.deepEqual(await size('readonlySuperuser'), { size_bytes: 0, last_ran: null, queued: false, running: false });
});

test('POST queues once (201, then 202); the worker computes the size of every distinct blob', async () => {
  // Two repositories share one layer: it counts once, as in Quay's sum over stored blobs.
  const c = new RegistryClient(w.t.url, 'orgadmin', PASSWORD);
  const shared = randomBytes(1000);
  const own = [randomBytes(300), randomBytes(70)];
  await c.pushBlob('acme/one', shared);
  await c.pushBlob('acme/two', shared);
  await c.pushBlob('acme/one', own[0]!);
  await c.pushBlob('acme/two', own[1]!);
  const expected = 1000 + 300 + 70;

  const first = await queue();
  assert.equal(first.status, 201);
  assert.match(first.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(await first.text(), '""');
  assert.deepEqual(await size(), { size_bytes: 0, last_ran: null, queued: true, running: false });
  const again = await queue();
  assert.equal(again.status, 202);
  assert.equal(await again.text(), '""');
  assert.equal((await s().db.selectFrom('jobs').select('id').where('queue', '=', REGISTRY_SIZE_QUEUE).execute()).length, 1, 'one job');

  const startedAt = Date.now();
  const workers = startWorkers(s(), { pollMs: 10 });
  let r: any;
  try {
    for (let i = 0; i < 500; i++) {
      r = await size();
      if (r.last_ran !== null && !r.queued && !r.running) break;
      await new Promise((res) => setTimeout(res, 20));
    }
  } finally {
    await workers.stop();
  }
  assert.equal(r.size_bytes, expected);
  assert.equal(r.queued, false);
  assert.equal(r.running, false);
  assert.ok(Number.isInteger(r.last_ran) && r.last_ran >= startedAt && r.last_ran <= Date.now(), `last_ran ${r.last_ran} is epoch ms`);
  assert.deepEqual(Object.keys(r).sort(), ['last_ran', 'queued', 'running', 'size_bytes']);
  // Done: a new request queues a new run (201), keeping the last result meanwhile.
  assert.equal((await queue()).status, 201);
  assert.deepEqual(await size(), { size_bytes: expected, last_ran: r.last_ran, queued: true, running: false });
  await dropJobs();
});

test('a claimed job is running; a lapsed lease counts as queued again', async () => {
  assert.equal((await queue()).status, 201);
  const [job] = await claim(s(), REGISTRY_SIZE_QUEUE, { leaseMs: 60_000, limit: 1 });
  assert.ok(job);
  const r = await size();
  assert.equal(r.running, true);
  assert.equal(r.queued, false);
  assert.equal((await queue()).status, 202, 'already running');
  assert.ok(await complete(s(), job!));
  assert.equal((await size()).running, false);

  assert.equal((await queue()).status, 201);
  const [short] = await claim(s(), REGISTRY_SIZE_QUEUE, { leaseMs: 1, limit: 1 });
  assert.ok(short);
  await new Promise((res) => setTimeout(res, 10));
  const lapsed = await size();
  assert.equal(lapsed.running, false);
  assert.equal(lapsed.queued, true);
  await dropJobs();
});

test('registry size × callers: superusers only; global read-only superusers may read', async () => {
  await runMatrix(w, [
    { method: 'GET', path: '/superuser/registrysize/', scopes: SU, expect: expectAll(['superuser', 'readonlySuperuser'], 200) },
    { method: 'POST', path: '/superuser/registrysize/', scopes: SU, expect: expectAll(['superuser'], 201), setup: async () => { await dropJobs(); } },
  ]);
  // A refused caller queues nothing.
  await dropJobs();
  for (const caller of ['readonlySuperuser', 'orgadmin', 'anonymous'] as const) {
    assert.notEqual((await w.api('POST', '/superuser/registrysize/', { caller, scopes: SU })).status, 201);
  }
  assert.equal((await s().db.selectFrom('jobs').select('id').where('queue', '=', REGISTRY_SIZE_QUEUE).execute()).length, 0);
});

test('listed in discovery only as internal, under Quay\'s nicknames', async () => {
  const pub = await json(await w.api('GET', '/discovery'));
  const hidden = pub.paths['/api/v1/superuser/registrysize/'];
  assert.equal(hidden?.get, undefined);
  assert.equal(hidden?.post, undefined);
  const d = await json(await w.api('GET', '/discovery?internal=true'));
  const p = d.paths['/api/v1/superuser/registrysize/'];
  assert.equal(p.get.operationId, 'getRegistrySize');
  assert.equal(p.post.operationId, 'queueRegistrySizeCalculation');
  assert.deepEqual(p.post.security, [{ oauth2_implicit: ['super:user'] }]);
});

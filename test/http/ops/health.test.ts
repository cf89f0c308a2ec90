// Quay's health endpoints: body shape, status codes, aliases, failing checks, superuser detail.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from '../../support/app.ts';
import { call, userWithToken } from '../api/client.ts';

describe('health endpoints', () => {
  let t: TestApp;
  before(async () => { t = await startTestApp(); });
  after(async () => { await t?.close(); });

  test('instance, endtoend and warning report their services and 200 when healthy', async () => {
    const expected: Record<string, string[]> = {
      '/health/instance': ['auth', 'database', 'disk_space', 'service_key'],
      '/health': ['auth', 'database', 'disk_space', 'service_key'],
      '/health/endtoend': ['auth', 'database', 'storage'],
      '/status': ['auth', 'database', 'storage'],
      '/health/warning': ['disk_space_warning'],
    };
    for (const [path, services] of Object.entries(expected)) {
      const r = await call(t, 'GET', path);
      assert.equal(r.status, 200, `${path}: ${r.text}`);
      assert.deepEqual(Object.keys(r.body).sort(), ['data', 'status_code']);
      assert.equal(r.body.status_code, 200);
      assert.deepEqual(Object.keys(r.body.data), ['services'], path);
      assert.deepEqual(Object.keys(r.body.data.services).sort(), services, path);
      assert.ok(Object.values(r.body.data.services).every((v) => v === true), path);
      assert.match(r.headers.get('cache-control') ?? '', /no-cache/);
    }
  });

  test('superusers get the expanded detail', async () => {
    const { token } = await userWithToken(t, 'root', ['super:user'], { superuser: true });
    const r = await call(t, 'GET', '/health/instance', { token });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.services_expanded.database, { status: true });
    assert.equal(r.body.data.local_service_key_id, t.app.ctx.keys.kid);
    assert.equal(typeof r.body.data.hostname, 'string');
    assert.deepEqual(r.body.data.notes, []);
    const plain = await userWithToken(t, 'pleb', ['super:user']);
    const r2 = await call(t, 'GET', '/health/instance', { token: plain.token });
    assert.equal(r2.body.data.services_expanded, undefined);
  });

  test('the storage check leaves nothing behind', async () => {
    await call(t, 'GET', '/health/endtoend');
    const left: string[] = [];
    for await (const p of t.app.services.storage.list('health/')) left.push(p);
    assert.deepEqual(left, []);
  });
});

describe('failing checks', () => {
  test('a disk below the threshold makes instance health 503 with status_code 503', async () => {
    const t = await startTestApp({ DISKSPACE_HEALTH_THRESHOLD: 1 });
    try {
      const r = await call(t, 'GET', '/health/instance');
      assert.equal(r.status, 503);
      assert.equal(r.body.status_code, 503);
      assert.equal(r.body.data.services.disk_space, false);
      assert.equal(r.body.data.services.database, true);
      // The warning endpoint has its own threshold.
      assert.equal((await call(t, 'GET', '/health/warning')).status, 200);
    } finally {
      await t.close();
    }
  });

  test('broken storage fails endtoend but not instance health', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'quayside-health-'));
    // The storage path is a regular file: every write fails.
    const blocker = join(dataDir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const t2 = await startTestApp({ DISTRIBUTED_STORAGE_CONFIG: { broken: ['LocalStorage', { storage_path: blocker }] } }, { dataDir });
    try {
      const e2e = await call(t2, 'GET', '/health/endtoend');
      assert.equal(e2e.status, 503);
      assert.deepEqual(e2e.body.data.services, { database: true, storage: false, auth: true });
      assert.equal((await call(t2, 'GET', '/health/instance')).status, 200);
    } finally {
      await t2.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a closed database fails database health instead of hanging', async () => {
    const t = await startTestApp();
    try {
      const db = t.app.services.db;
      // Swap in a database handle whose every query fails, as an outage would.
      (t.app.services as { db: unknown }).db = new Proxy(db, {
        get(target, prop, recv) {
          if (prop === 'executeQuery') return async () => { throw new Error('connection refused'); };
          return Reflect.get(target, prop, recv);
        },
      });
      const r = await call(t, 'GET', '/health/instance');
      (t.app.services as { db: unknown }).db = db;
      assert.equal(r.status, 503);
      assert.equal(r.body.data.services.database, false);
    } finally {
      await t.close();
    }
  });
});

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { expireAbandonedUploads, sweepOrphanUploads } from '../../src/model/upload-expiry.ts';
import { enqueue } from '../../src/model/queue.ts';
import { layout } from '../../src/storage/driver.ts';
import { startWorkers, QUEUES, periodic } from '../../src/workers/index.ts';
import type { Services } from '../../src/model/context.ts';
import { createTestServices, TEST_DB, type TestServices } from '../support/services.ts';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

describe(`upload expiry (${TEST_DB})`, () => {
  let t: TestServices;
  let s: Services;
  let repoId: number;

  before(async () => {
    t = await createTestServices({ uploadExpirySeconds: DAY / 1000 });
    s = t.s;
    const now = Date.now();
    const user = await s.db.insertInto('users').values({ uuid: randomUUID(), username: 'alice', kind: 'user', created_at: now, email: null, password_hash: null, robot_owner_id: null, description: null, given_name: null, family_name: null, company: null, location: null, invoice_email_address: null, maximum_queued_builds_count: null, metadata: null, last_accessed: null })
      .returning('id').executeTakeFirstOrThrow();
    const repo = await s.db.insertInto('repositories').values({ namespace_id: Number(user.id), name: 'app', created_at: now, description: null, badge_token: null, last_modified: null })
      .returning('id').executeTakeFirstOrThrow();
    repoId = Number(repo.id);
  });
  after(() => t.close());
  beforeEach(async () => {
    await s.db.deleteFrom('uploads').execute();
    await s.db.deleteFrom('jobs').execute();
    await s.storage.delete('uploads/');
  });

  /** An upload session with a row last touched `ageMs` ago (or no row) and data written `dataAgeMs` ago. */
  async function session(opts: { ageMs?: number | null; dataAgeMs?: number }): Promise<string> {
    const uuid = randomUUID();
    const now = Date.now();
    if (opts.ageMs !== null) {
      const at = now - (opts.ageMs ?? 0);
      await s.db.insertInto('uploads').values({ uuid, repository_id: repoId, principal: 'user:1', created_at: at, updated_at: at }).execute();
    }
    await s.storage.uploadAppend(layout.upload(uuid), 0, Readable.from([Buffer.from('some bytes')]));
    const when = new Date(now - (opts.dataAgeMs ?? opts.ageMs ?? 0));
    await utimes(join(t.storage.rootDir, 'uploads', uuid, 'data'), when, when);
    return uuid;
  }
  const hasRow = async (uuid: string) => (await s.db.selectFrom('uploads').select('uuid').where('uuid', '=', uuid).executeTakeFirst()) !== undefined;
  const hasData = async (uuid: string) => (await s.storage.uploadSize(layout.upload(uuid))) > 0;
  const listed = async () => {
    const out: string[] = [];
    for await (const p of s.storage.list('uploads/')) out.push(p);
    return out.sort();
  };

  it('removes sessions untouched for longer than the limit, row and data, and keeps fresh ones', async () => {
    const old1 = await session({ ageMs: 2 * DAY });
    const old2 = await session({ ageMs: DAY + 60_000, dataAgeMs: 0 }); // row age decides, not data age
    const fresh = await session({ ageMs: 60_000 });
    const justUnder = await session({ ageMs: DAY - 60_000 });

    const r = await expireAbandonedUploads(s, DAY);
    assert.deepEqual(r, { expired: 2, orphans: 0, errors: 0 });
    for (const gone of [old1, old2]) {
      assert.equal(await hasRow(gone), false);
      assert.equal(await hasData(gone), false);
    }
    for (const kept of [fresh, justUnder]) {
      assert.equal(await hasRow(kept), true);
      assert.equal(await hasData(kept), true);
    }
    assert.deepEqual(await listed(), [fresh, justUnder].map((u) => `uploads/${u}/data`).sort());
    assert.deepEqual(await expireAbandonedUploads(s, DAY), { expired: 0, orphans: 0, errors: 0 });
  });

  it('handles more expired sessions than one batch', async () => {
    const at = Date.now() - 2 * DAY;
    const rows = Array.from({ length: 1201 }, () => ({ uuid: randomUUID(), repository_id: repoId, principal: 'x', created_at: at, updated_at: at }));
    for (let i = 0; i < rows.length; i += 200) await s.db.insertInto('uploads').values(rows.slice(i, i + 200)).execute();
    const withData = await session({ ageMs: 2 * DAY });
    const r = await expireAbandonedUploads(s, DAY, { sweep: false });
    assert.equal(r.expired, 1202);
    assert.equal(await hasData(withData), false);
    assert.equal(Number((await s.db.selectFrom('uploads').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n), 0);
  });

  it('sweeps old session data that has no row, and spares young data and data with a row', async () => {
    const orphan = await session({ ageMs: null, dataAgeMs: 2 * DAY });
    const youngOrphan = await session({ ageMs: null, dataAgeMs: 60_000 });
    const oldDataFreshRow = await session({ ageMs: 60_000, dataAgeMs: 2 * DAY });

    assert.deepEqual(await sweepOrphanUploads(s, DAY), { orphans: 1, errors: 0 });
    assert.equal(await hasData(orphan), false);
    assert.equal(await hasData(youngOrphan), true);
    assert.equal(await hasData(oldDataFreshRow), true);

    // Part of a session still being written keeps all of it.
    const mixed = await session({ ageMs: null, dataAgeMs: 2 * DAY });
    await s.storage.write(`uploads/${mixed}/extra`, Buffer.from('new'));
    assert.deepEqual(await sweepOrphanUploads(s, DAY), { orphans: 0, errors: 0 });
    assert.equal(await hasData(mixed), true);

    // expireAbandonedUploads runs the sweep too.
    const another = await session({ ageMs: null, dataAgeMs: 3 * DAY });
    assert.deepEqual(await expireAbandonedUploads(s, DAY), { expired: 0, orphans: 1, errors: 0 });
    assert.equal(await hasData(another), false);
  });

  it('ignores objects directly under uploads/ that are not sessions', async () => {
    await s.storage.write('uploads/stray', Buffer.from('x'));
    await utimes(join(t.storage.rootDir, 'uploads', 'stray'), new Date(0), new Date(0));
    assert.deepEqual(await sweepOrphanUploads(s, DAY), { orphans: 0, errors: 0 });
    assert.deepEqual(await listed(), ['uploads/stray']);
  });

  it('runs from the upload_expiry queue in the workers, which keep it scheduled', async () => {
    const old = await session({ ageMs: 2 * DAY });
    const fresh = await session({ ageMs: 0 });
    const workers = startWorkers(s, { pollMs: 10 });
    try {
      await enqueue(s, QUEUES.uploadExpiry, {});
      const end = Date.now() + 10_000;
      // The row goes first, the data right after it.
      while ((await hasRow(old)) || (await hasData(old))) {
        assert.ok(Date.now() < end, 'expiry job ran');
        await sleep(10);
      }
      assert.equal(await hasRow(fresh), true);
      assert.equal(await hasData(fresh), true);
      // The one-off job is gone; the periodic run is queued for a period from now.
      const ours = () => s.db.selectFrom('jobs').selectAll().where('queue', '=', QUEUES.uploadExpiry).execute();
      let pending = await ours();
      while (pending.length !== 1) {
        assert.ok(Date.now() < end, `jobs: ${JSON.stringify(pending)}`);
        await sleep(10);
        pending = await ours();
      }
      assert.equal(pending[0]!.queue, QUEUES.uploadExpiry);
      assert.ok(Number(pending[0]!.available_at) >= Date.now() + periodic(s)[QUEUES.uploadExpiry]! - 20_000);
    } finally {
      await workers.stop();
    }
  });
});

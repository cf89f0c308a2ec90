// A worker replica in its own process for runner.test.ts: runs the `work` queue of the database
// given as argv[2], prints each handled payload's `i` on stdout, and exits once the queue is empty.
import pino from 'pino';
import { openDatabase } from '../../src/db/db.ts';
import type { Services } from '../../src/model/context.ts';
import { SecretBox } from '../../src/model/crypto.ts';
import { FilesystemDriver } from '../../src/storage/fs.ts';
import { startRunner } from '../../src/workers/runner.ts';
import { testConfig } from '../support/services.ts';

const uri = process.argv[2]!;
const dir = process.argv[3]!;
const handle = openDatabase(uri, { poolSize: 3 });
const s: Services = {
  db: handle.db, dialect: handle.dialect, storage: new FilesystemDriver(dir), config: testConfig(dir, uri),
  log: pino({ level: 'silent' }), box: new SecretBox('x'), now: () => Date.now(),
};
// A start barrier: under load the processes boot hundreds of ms apart, and the first one up would
// drain the whole queue alone. Each announces itself, then waits for the others.
const peers = Number(process.argv[4] ?? 1);
await s.db.insertInto('settings').values({ key: `runner-ready-${process.pid}`, value: '1' }).execute();
for (;;) {
  const ready = await s.db.selectFrom('settings').select('key').where('key', 'like', 'runner-ready-%').execute();
  if (ready.length >= peers) break;
  await new Promise((r) => setTimeout(r, 10));
}
const runner = startRunner(s, {
  async work(job) {
    process.stdout.write(`${(job.payload as { i: number }).i}\n`);
    await new Promise((r) => setTimeout(r, Math.random() * 3));
  },
}, { pollMs: 5, leaseMs: 30_000, concurrency: 3 });
// Let the others take their first jobs, then drain.
await new Promise((r) => setTimeout(r, 300));
for (;;) {
  const left = await s.db.selectFrom('jobs').select('id').where('queue', '=', 'work').limit(1).execute();
  if (left.length === 0) break;
  await new Promise((r) => setTimeout(r, 20));
}
await runner.stop();
await handle.close();

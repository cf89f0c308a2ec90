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
const runner = startRunner(s, {
  async work(job) {
    process.stdout.write(`${(job.payload as { i: number }).i}\n`);
    await new Promise((r) => setTimeout(r, Math.random() * 3));
  },
}, { pollMs: 5, leaseMs: 30_000, concurrency: 3 });
// Wait for the others to start, then drain.
await new Promise((r) => setTimeout(r, 300));
for (;;) {
  const left = await s.db.selectFrom('jobs').select('id').where('queue', '=', 'work').limit(1).execute();
  if (left.length === 0) break;
  await new Promise((r) => setTimeout(r, 20));
}
await runner.stop();
await handle.close();

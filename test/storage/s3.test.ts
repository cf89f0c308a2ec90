import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { planParts, S3Driver } from '../../src/storage/s3.ts';
import { driverSuite } from './driver-suite.ts';
import { startS3Server } from '../support/s3server.ts';
import type { S3TestServer } from '../support/s3server.ts';

let server: S3TestServer;
before(async () => { server = await startS3Server(); });
after(async () => { await server?.stop(); });

let n = 0;
driverSuite('s3', async () => {
  const driver = new S3Driver({
    bucket: server.bucket,
    endpoint: server.endpoint,
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
    forcePathStyle: true,
    // Each fixture gets its own storage_path, so rawEntries() shows keys written outside it.
    prefix: `store-${++n}`,
  });
  return {
    driver,
    cleanup: async () => {},
    async rawEntries() {
      const keys: string[] = [];
      let ContinuationToken: string | undefined;
      do {
        const r = await driver.client.send(new ListObjectsV2Command({ Bucket: server.bucket, ContinuationToken }));
        for (const o of r.Contents ?? []) keys.push(o.Key!);
        ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (ContinuationToken);
      return keys.sort();
    },
  };
});

describe('S3Driver specifics', () => {
  it('returns null from redirectURL when redirects are off', async () => {
    const d = new S3Driver({ bucket: server.bucket, endpoint: server.endpoint, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, forcePathStyle: true, redirect: false });
    assert.equal(await d.redirectURL('a/b', 60), null);
    await d.close();
  });

  it('commits large segments by server-side copy and streams only the small ones', async () => {
    const MiB = 1024 * 1024;
    const d = new S3Driver({ bucket: server.bucket, endpoint: server.endpoint, accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey, forcePathStyle: true, prefix: 'copies' });
    const session = `uploads/${randomUUID()}`;
    const chunks = [randomBytes(MiB), randomBytes(12 * MiB), randomBytes(7 * MiB), randomBytes(1000)];
    let off = 0;
    for (const c of chunks) off = await d.uploadAppend(session, off, Readable.from([c]));
    const sent: string[] = [];
    d.client.middlewareStack.add((next, context) => (args) => {
      sent.push(context.commandName!);
      return next(args);
    }, { step: 'initialize' });
    await d.uploadCommit(session, 'copies/dest');
    const count = (name: string) => sent.filter((c) => c === name).length;
    // Parts: 1 MiB + the first 4 MiB of the 12 MiB segment (streamed), its other 8 MiB (copied),
    // the 7 MiB segment (copied), the final 1000 bytes (streamed).
    assert.equal(count('UploadPartCopyCommand'), 2, sent.join(','));
    assert.equal(count('UploadPartCommand'), 2, sent.join(','));
    assert.equal(count('CompleteMultipartUploadCommand'), 1);
    const got = Buffer.concat(await Readable.from(await d.read('copies/dest')).toArray());
    assert.ok(got.equals(Buffer.concat(chunks)));
    await d.close();
  });

  it('plans commit parts: copies large segments, merges small runs to the 5 MiB minimum', () => {
    const MiB = 1024 * 1024;
    const sizes = [100_000, 6 * MiB, MiB, 3 * MiB, 12 * MiB, 7 * MiB, 10];
    let off = 0;
    const segs = sizes.map((size, i) => { const s = { key: `s${i}`, offset: off, size }; off += size; return s; });
    const plan = planParts(segs);
    let total = 0;
    for (const [i, p] of plan.entries()) {
      const size = 'copy' in p ? p.copy.end - p.copy.start : p.size;
      if (i < plan.length - 1) assert.ok(size >= 5 * MiB, `part ${i + 1} is ${size} bytes`);
      total += size;
    }
    assert.equal(total, off);
    assert.deepEqual(plan.map((p) => ('copy' in p ? 'copy' : 'stream')), ['stream', 'stream', 'copy', 'copy', 'stream']);
    // One segment over the 5 GiB copy limit is split into several copy parts.
    const huge = planParts([{ key: 'h', offset: 0, size: 12 * 1024 * MiB }]);
    assert.equal(huge.length, 3);
    assert.ok(huge.every((p) => 'copy' in p && p.copy.end - p.copy.start <= 5 * 1024 * MiB));
  });
});

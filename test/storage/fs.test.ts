import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { it } from 'node:test';
import { FileRangeStream, FilesystemDriver } from '../../src/storage/fs.ts';
import { InvalidPathError } from '../../src/storage/driver.ts';
import { driverSuite } from './driver-suite.ts';

const MiB = 1024 * 1024;

driverSuite('filesystem', async () => {
  // The driver's root sits one level down so that an escape into its parent would be visible.
  const base = await mkdtemp(join(tmpdir(), 'quayside-fs-'));
  const root = join(base, 'root');
  return {
    driver: new FilesystemDriver(root),
    cleanup: () => rm(base, { recursive: true, force: true }),
    async rawEntries() {
      const all = await readdir(base, { recursive: true, withFileTypes: true });
      return all.filter((e) => !e.isDirectory()).map((e) => relative(base, join(e.parentPath, e.name))).sort();
    },
  };
});

it('filesystem: leaves no temp files behind and keeps objects as plain files', async () => {
  const base = await mkdtemp(join(tmpdir(), 'quayside-fs-'));
  try {
    const d = new FilesystemDriver(base);
    await d.write('blobs/sha256/ab/abcd', Buffer.from('hello'));
    await assert.rejects(d.write('blobs/x', (async function* () { yield Buffer.from('x'); throw new Error('boom'); })() as never));
    assert.deepEqual(await readdir(join(base, '_tmp')), []);
    assert.deepEqual(await readdir(join(base, 'blobs/sha256/ab')), ['abcd']);
    const listed: string[] = [];
    for await (const p of d.list('blobs/')) listed.push(p);
    assert.deepEqual(listed, ['blobs/sha256/ab/abcd']);
    // A symlink-free root that is itself relative still confines paths.
    await assert.rejects(new FilesystemDriver('.').stat('../etc/passwd'), InvalidPathError);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

/** Like a socket: keeps each chunk it was handed and only takes its bytes when the write completes. */
function lateCopyingSink(delayMs: number): { sink: Writable; bytes: () => Buffer } {
  const out: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        out.push(Buffer.from(chunk));
        cb();
      }, delayMs);
    },
  });
  return { sink, bytes: () => Buffer.concat(out) };
}

it('filesystem: writeTo sends ranges byte-exact while reusing its buffers, and closes the file', async () => {
  const base = await mkdtemp(join(tmpdir(), 'quayside-fs-'));
  try {
    const d = new FilesystemDriver(base);
    const data = randomBytes(5 * MiB + 17);
    await d.write('blobs/big', data);
    const ranges: [number | undefined, number | undefined][] = [[undefined, undefined], [MiB - 3, 3 * MiB + 9], [4 * MiB, undefined], [10, 100]];
    for (const [offset, length] of ranges) {
      const s = await d.read('blobs/big', { offset, length });
      assert.ok(s instanceof FileRangeStream);
      const { sink, bytes } = lateCopyingSink(2);
      await s.writeTo(sink);
      const start = offset ?? 0;
      assert.ok(bytes().equals(data.subarray(start, length === undefined ? undefined : start + length)), `range ${offset}+${length}`);
      assert.ok(s.destroyed);
    }
    // Two at once, from two files: neither may see the other's bytes.
    const other = randomBytes(3 * MiB);
    await d.write('blobs/other', other);
    const [a, b] = [lateCopyingSink(1), lateCopyingSink(3)];
    const [sa, sb] = [await d.read('blobs/big') as FileRangeStream, await d.read('blobs/other') as FileRangeStream];
    await Promise.all([sa.writeTo(a.sink), sb.writeTo(b.sink)]);
    assert.ok(a.bytes().equals(data));
    assert.ok(b.bytes().equals(other));
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

it('filesystem: writeTo stops when the destination is destroyed or the read is aborted', async () => {
  const base = await mkdtemp(join(tmpdir(), 'quayside-fs-'));
  try {
    const d = new FilesystemDriver(base);
    await d.write('blobs/big', randomBytes(8 * MiB));
    const { sink } = lateCopyingSink(5);
    const s = await d.read('blobs/big') as FileRangeStream;
    setTimeout(() => sink.destroy(), 20);
    await assert.rejects(s.writeTo(sink));
    assert.ok(s.destroyed);

    const ac = new AbortController();
    const s2 = await d.read('blobs/big', { signal: ac.signal }) as FileRangeStream;
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(s2.writeTo(lateCopyingSink(5).sink), { name: 'AbortError' });
    assert.ok(s2.destroyed);

    const used = await d.read('blobs/big') as FileRangeStream;
    for await (const _ of used) break;
    await assert.rejects(used.writeTo(lateCopyingSink(0).sink), /nobody has read/);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

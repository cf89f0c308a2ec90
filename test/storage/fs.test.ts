import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { FilesystemDriver } from '../../src/storage/fs.ts';
import { InvalidPathError } from '../../src/storage/driver.ts';
import { driverSuite } from './driver-suite.ts';

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

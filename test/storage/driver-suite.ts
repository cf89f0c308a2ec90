// The behaviour every StorageDriver must have. Each driver's test file calls driverSuite() with a
// factory for a fresh, empty driver; nothing here knows which backend it is talking to, except
// through the optional rawEntries() hook used to prove that rejected paths wrote nothing anywhere.
import { createHash, randomBytes, randomFillSync, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  InvalidPathError,
  OffsetMismatchError,
  PathNotFoundError,
} from '../../src/storage/driver.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';

export interface DriverFixture {
  driver: StorageDriver;
  cleanup: () => Promise<void>;
  /** Every object/file the backend holds, including anything outside the driver's root. */
  rawEntries?: () => Promise<string[]>;
}

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

async function sha256Of(stream: Readable): Promise<{ hex: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of stream) {
    h.update(c as Uint8Array);
    size += (c as Uint8Array).length;
  }
  return { hex: h.digest('hex'), size };
}

function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** A stream of `buf` in `chunk`-sized pieces, yielding to the event loop between pieces. */
function slowStream(buf: Buffer, chunk: number): Readable {
  return Readable.from((async function* () {
    for (let i = 0; i < buf.length; i += chunk) {
      await tick();
      yield buf.subarray(i, i + chunk);
    }
  })(), { objectMode: false });
}

/** Yields `good` bytes, then fails. */
function failingStream(good: Buffer, chunk = 256 * 1024): Readable {
  return Readable.from((async function* () {
    for (let i = 0; i < good.length; i += chunk) {
      await tick();
      yield good.subarray(i, i + chunk);
    }
    throw new Error('client went away');
  })(), { objectMode: false });
}

/** Emits `good` bytes and then is destroyed without an error, like a dropped connection. */
function destroyedStream(good: Buffer): Readable {
  let sent = false;
  const s = new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(good);
        setTimeout(() => s.destroy(), 20);
      }
    },
  });
  return s;
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const p of it) out.push(p);
  return out.sort();
}

function isErr(cls: new (...args: never[]) => Error) {
  return (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    return true;
  };
}

// A real gc() lets the streaming test measure live memory rather than garbage awaiting collection.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

export function driverSuite(name: string, make: () => Promise<DriverFixture>): void {
  describe(`StorageDriver: ${name}`, () => {
    let fx: DriverFixture;
    let d: StorageDriver;
    before(async () => {
      fx = await make();
      d = fx.driver;
    });
    after(async () => {
      await d?.close?.();
      await fx?.cleanup();
    });

    it('writes, stats and reads back buffers and streams', async () => {
      const a = randomBytes(70_000);
      assert.equal(await d.write('rt/a', a), a.length);
      const b = randomBytes(300_000);
      assert.equal(await d.write('rt/sub/b', slowStream(b, 65_536)), b.length);

      const st = await d.stat('rt/a');
      assert.ok(st.exists);
      assert.equal(st.size, a.length);
      assert.ok(st.modified instanceof Date && Math.abs(st.modified.getTime() - Date.now()) < 60_000);
      assert.deepEqual(await readAll(await d.read('rt/a')), a);
      assert.deepEqual(await readAll(await d.read('rt/sub/b')), b);
      assert.deepEqual(await d.stat('rt/missing'), { exists: false });
      // A "directory" of objects is not itself an object.
      assert.deepEqual(await d.stat('rt/sub'), { exists: false });

      assert.equal(await d.write('rt/empty', new Uint8Array(0)), 0);
      assert.equal((await d.stat('rt/empty') as { size: number }).size, 0);
      assert.equal((await readAll(await d.read('rt/empty'))).length, 0);
    });

    it('serves byte ranges', async () => {
      const data = randomBytes(1000);
      await d.write('range/obj', data);
      const r = async (offset?: number, length?: number) => readAll(await d.read('range/obj', { offset, length }));
      assert.deepEqual(await r(10), data.subarray(10));
      assert.deepEqual(await r(10, 20), data.subarray(10, 30));
      assert.deepEqual(await r(0, 1), data.subarray(0, 1));
      assert.deepEqual(await r(999), data.subarray(999));
      assert.deepEqual(await r(990, 50), data.subarray(990), 'length past the end is cut at the end');
      assert.equal((await r(1000)).length, 0, 'offset at the end');
      assert.equal((await r(5000)).length, 0, 'offset past the end');
      assert.equal((await r(5000, 10)).length, 0);
      assert.equal((await r(3, 0)).length, 0);
    });

    it('reports a missing object as PathNotFoundError', async () => {
      await assert.rejects(d.read('nope/missing'), isErr(PathNotFoundError));
      await assert.rejects(d.read('nope/missing', { offset: 5, length: 5 }), isErr(PathNotFoundError));
      await assert.rejects(d.read('nope/missing', { length: 0 }), isErr(PathNotFoundError));
    });

    it('honours an AbortSignal on read', async () => {
      const data = randomBytes(4 * MiB);
      await d.write('abort/obj', data);
      const pre = new AbortController();
      pre.abort();
      await assert.rejects(d.read('abort/obj', { signal: pre.signal }), { name: 'AbortError' });

      const ac = new AbortController();
      const s = await d.read('abort/obj', { signal: ac.signal });
      let got = 0;
      await assert.rejects((async () => {
        for await (const c of s) {
          got += (c as Buffer).length;
          ac.abort();
        }
      })(), { name: 'AbortError' });
      assert.ok(got < data.length);
    });

    it('overwrites atomically: readers see the old or the new object, never a mix', async () => {
      const size = 2 * MiB;
      const oldData = Buffer.alloc(size, 0x61);
      const newData = Buffer.alloc(size, 0x62);
      await d.write('atomic/obj', oldData);
      let writing = true;
      const writer = d.write('atomic/obj', slowStream(newData, 64 * 1024)).finally(() => { writing = false; });
      const seen = new Set<string>();
      let reads = 0;
      while (writing || reads < 3) {
        const got = await readAll(await d.read('atomic/obj'));
        reads++;
        assert.equal(got.length, size, 'a reader saw a partial object');
        const first = got[0]!;
        assert.ok(got.every((b) => b === first), 'a reader saw a mix of old and new bytes');
        seen.add(String.fromCharCode(first));
      }
      assert.equal(await writer, size);
      // Once the write is acknowledged, every read sees the new object.
      const after = await readAll(await d.read('atomic/obj'));
      seen.add(String.fromCharCode(after[0]!));
      assert.ok(seen.has('a'), 'no read overlapped the write');
      assert.ok(seen.has('b'), 'the new object was never observed');
      assert.deepEqual(after, newData);
    });

    it('a write whose body fails midway publishes nothing', async () => {
      await assert.rejects(d.write('fail/new', failingStream(randomBytes(10 * MiB))), /client went away/);
      assert.deepEqual(await d.stat('fail/new'), { exists: false });

      const old = randomBytes(1000);
      await d.write('fail/old', old);
      await assert.rejects(d.write('fail/old', failingStream(randomBytes(MiB))), /client went away/);
      assert.deepEqual(await readAll(await d.read('fail/old')), old);

      await assert.rejects(d.write('fail/destroyed', destroyedStream(randomBytes(MiB))));
      assert.deepEqual(await d.stat('fail/destroyed'), { exists: false });
      assert.deepEqual(await collect(d.list('fail/')), ['fail/old']);

      // Aborted once the driver has started reading, whatever the machine's speed.
      const ac = new AbortController();
      const body = slowStream(randomBytes(4 * MiB), 64 * 1024);
      const src = body[Symbol.asyncIterator]();
      let pulled = 0;
      const tripwire = Readable.from((async function* () {
        for (;;) {
          const n = await src.next();
          if (n.done) return;
          if (++pulled === 2) ac.abort();
          yield n.value as Buffer;
        }
      })(), { objectMode: false });
      await assert.rejects(d.write('fail/aborted', tripwire, { signal: ac.signal }));
      assert.deepEqual(await d.stat('fail/aborted'), { exists: false });
    });

    it('lists recursively below a prefix', async () => {
      for (const p of ['ls/a/b/c', 'ls/a/d', 'ls/e', 'lsx/f', 'ls/a/bb/g']) await d.write(p, Buffer.from(p));
      assert.deepEqual(await collect(d.list('ls/a/')), ['ls/a/b/c', 'ls/a/bb/g', 'ls/a/d']);
      assert.deepEqual(await collect(d.list('ls/a')), ['ls/a/b/c', 'ls/a/bb/g', 'ls/a/d']);
      assert.deepEqual(await collect(d.list('ls/a/b')), ['ls/a/b/c'], 'a prefix names a directory, not a string prefix');
      assert.deepEqual(await collect(d.list('ls/')), ['ls/a/b/c', 'ls/a/bb/g', 'ls/a/d', 'ls/e']);
      assert.deepEqual(await collect(d.list('ls-missing/')), []);
    });

    it('deletes objects and whole prefixes', async () => {
      for (const p of ['del/a', 'del/x/1', 'del/x/y/2', 'delx/3']) await d.write(p, Buffer.from(p));
      await d.delete('del/a');
      assert.deepEqual(await d.stat('del/a'), { exists: false });
      await d.delete('del/a');
      await d.delete('del-missing/');
      await d.delete('del/x/');
      assert.deepEqual(await collect(d.list('del/')), []);
      assert.deepEqual(await d.stat('del/x/y/2'), { exists: false });
      assert.ok((await d.stat('delx/3')).exists, 'a sibling sharing the string prefix survives');
    });

    it('rejects invalid paths with InvalidPathError and writes nothing', async () => {
      const before = fx.rawEntries ? await fx.rawEntries() : [];
      const bad = [
        '../x', 'a/../b', '/abs', 'a//b', '.hidden', '', '%2e%2e', '..', '.', 'a/./b', 'a/.b',
        'a\\b', '_tmp/x', '-x', 'x'.repeat(2000), 'a/'.repeat(600) + 'z', 'a\0b', 'sp ace',
      ];
      const body = () => Readable.from([Buffer.from('evil')]);
      for (const p of bad) {
        const ops: Array<[string, () => Promise<unknown>]> = [
          ['stat', () => d.stat(p)],
          ['read', () => d.read(p)],
          ['write', () => d.write(p, Buffer.from('evil'))],
          ['write stream', () => d.write(p, body())],
          ['delete', () => d.delete(p)],
          ['delete prefix', () => d.delete(`${p}/`)],
          ['list', () => collect(d.list(p))],
          ['redirectURL', () => d.redirectURL(p, 60)],
          ['uploadAppend', () => d.uploadAppend(p, 0, body())],
          ['uploadSize', () => d.uploadSize(p)],
          ['uploadRead', () => d.uploadRead(p)],
          ['uploadCommit session', () => d.uploadCommit(p, 'ok/dest')],
          ['uploadCommit dest', () => d.uploadCommit('uploads/ok-session', p)],
          ['uploadAbort', () => d.uploadAbort(p)],
        ];
        for (const [op, fn] of ops) {
          await assert.rejects(fn(), isErr(InvalidPathError), `${op}(${JSON.stringify(p.slice(0, 40))})`);
        }
      }
      for (const p of ['x', 'b', 'abs', 'a/b', 'hidden', 'ok/dest']) assert.deepEqual(await d.stat(p), { exists: false });
      if (fx.rawEntries) assert.deepEqual(await fx.rawEntries(), before);
    });

    it('runs a resumable upload: appends, offsets, failed appends, reads, commit', async () => {
      const session = `uploads/${randomUUID()}`;
      const chunks = [100_000, 6 * MiB, MiB, 3 * MiB, 12 * MiB, 7 * MiB, 10].map((n) => randomBytes(n));
      const all = Buffer.concat(chunks);
      assert.equal(await d.uploadSize(session), 0);
      assert.equal((await readAll(await d.uploadRead(session))).length, 0);

      let size = 0;
      for (const [i, c] of chunks.entries()) {
        if (i === 1) {
          await assert.rejects(d.uploadAppend(session, 0, slowStream(c, MiB)), isErr(OffsetMismatchError));
          await assert.rejects(d.uploadAppend(session, size + 1, slowStream(c, MiB)), (err: unknown) => {
            assert.ok(err instanceof OffsetMismatchError);
            assert.equal(err.expected, size);
            assert.equal(err.got, size + 1);
            return true;
          });
          assert.equal(await d.uploadSize(session), size);
        }
        if (i === 3) {
          await assert.rejects(d.uploadAppend(session, size, destroyedStream(randomBytes(2 * MiB))));
          assert.equal(await d.uploadSize(session), size, 'a destroyed append keeps the previous size');
          await assert.rejects(d.uploadAppend(session, size, failingStream(randomBytes(6 * MiB))), /client went away/);
          assert.equal(await d.uploadSize(session), size, 'a failed append keeps the previous size');
        }
        const n = await d.uploadAppend(session, size, slowStream(c, 512 * 1024));
        size += c.length;
        assert.equal(n, size);
        assert.equal(await d.uploadSize(session), size);
      }

      assert.equal(sha256(await readAll(await d.uploadRead(session))), sha256(all));
      for (const from of [0, 1, 99_999, 100_000, 6 * MiB + 123, all.length - 1, all.length]) {
        const got = await readAll(await d.uploadRead(session, from));
        assert.equal(got.length, all.length - from);
        assert.ok(got.equals(all.subarray(from)), `uploadRead from ${from}`);
      }

      const dest = `blobs/sha256/${sha256(all).slice(0, 2)}/${sha256(all)}`;
      await d.uploadCommit(session, dest);
      const st = await d.stat(dest);
      assert.ok(st.exists);
      assert.equal(st.size, all.length);
      assert.deepEqual(await sha256Of(await d.read(dest)), { hex: sha256(all), size: all.length });
      assert.equal(await d.uploadSize(session), 0);
      assert.deepEqual(await collect(d.list(`${session}/`)), []);
    });

    it('commits one-append and empty sessions', async () => {
      const one = `uploads/${randomUUID()}`;
      const data = randomBytes(300_000);
      await d.uploadAppend(one, 0, Readable.from([data]));
      await d.uploadCommit(one, 'commit/one');
      assert.deepEqual(await readAll(await d.read('commit/one')), data);
      assert.deepEqual(await collect(d.list(`${one}/`)), []);

      const empty = `uploads/${randomUUID()}`;
      await d.uploadCommit(empty, 'commit/empty');
      assert.equal((await d.stat('commit/empty') as { size: number }).size, 0);

      const zeroAppend = `uploads/${randomUUID()}`;
      assert.equal(await d.uploadAppend(zeroAppend, 0, Readable.from([])), 0);
      assert.equal(await d.uploadAppend(zeroAppend, 0, Readable.from([data])), data.length);
      assert.equal(await d.uploadSize(zeroAppend), data.length);
      await d.uploadCommit(zeroAppend, 'commit/zero');
      assert.deepEqual(await readAll(await d.read('commit/zero')), data);
    });

    it('aborts an upload session', async () => {
      const session = `uploads/${randomUUID()}`;
      await d.uploadAppend(session, 0, Readable.from([randomBytes(1000)]));
      await d.uploadAppend(session, 1000, Readable.from([randomBytes(1000)]));
      await d.uploadAbort(session);
      assert.equal(await d.uploadSize(session), 0);
      assert.deepEqual(await collect(d.list(`${session}/`)), []);
      await d.uploadAbort(session);
      await d.uploadAbort(`uploads/${randomUUID()}`);
    });

    it('streams a 64 MiB write without holding it in memory', async (t) => {
      const total = 64 * MiB;
      const chunk = MiB;
      const h = createHash('sha256');
      // Warm up first: a client's lazy set-up on first use is not per-object memory.
      await d.write('big/warmup', slowStream(randomBytes(6 * MiB), MiB));
      await d.delete('big/warmup');
      gc();
      const baseline = process.memoryUsage.rss();
      let peak = baseline;
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 5);
      let produced = 0;
      const body = Readable.from((async function* () {
        while (produced < total) {
          // Fresh buffers, so a driver that kept references to chunks would really hold 64 MiB.
          const buf = randomFillSync(Buffer.allocUnsafe(chunk));
          h.update(buf);
          produced += chunk;
          gc();
          await tick();
          yield buf;
        }
      })(), { objectMode: false });
      let n: number;
      try {
        n = await d.write('big/obj', body);
        peak = Math.max(peak, process.memoryUsage.rss());
      } finally {
        clearInterval(sampler);
      }
      assert.equal(n, total);
      const growth = peak - baseline;
      t.diagnostic(`RSS growth ${(growth / MiB).toFixed(1)} MiB`);
      assert.ok(growth < total / 2, `RSS grew by ${(growth / MiB).toFixed(1)} MiB while writing 64 MiB`);
      assert.deepEqual(await sha256Of(await d.read('big/obj')), { hex: h.digest('hex'), size: total });
      await d.delete('big/obj');
    });

    it('gives no redirect, or a URL that serves the object', async () => {
      const data = randomBytes(50_000);
      await d.write('redir/obj', data);
      const url = await d.redirectURL('redir/obj', 60);
      if (url === null) return;
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
    });
  });
}

// Filesystem blob storage. Objects are plain files below rootDir; writes land in <root>/_tmp first
// and are renamed into place after fsync, so a crash never leaves a partial object at a final path.
// '_tmp' can never clash with a key because validatePath() rejects segments starting with '_'.
import { randomUUID } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, opendir, rename, rm, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { addAbortSignal, Readable, type Writable } from 'node:stream';
import {
  InvalidPathError,
  OffsetMismatchError,
  PathNotFoundError,
  validatePath,
} from './driver.ts';
import type { ReadOptions, StatResult, StorageDriver, WriteOptions } from './driver.ts';

const TMP_DIR = '_tmp';
const DATA_FILE = 'data';

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

const COALESCE_BYTES = 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
const EARLY_SYNC_BYTES = 32 * 1024 * 1024;

function emptyStream(): Readable {
  return Readable.from([]);
}

// 1 MiB buffers whose writes have completed, for FileRangeStream.writeTo to reuse. A fresh buffer
// per chunk made large pulls spend most of their CPU in garbage collection (each is external memory,
// which V8 answers with a full collection every few dozen MiB). Bounded: 16 MiB at most.
const spare: Buffer[] = [];
const SPARE_MAX = 16;

function takeBuffer(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(READ_CHUNK);
}

function giveBuffers(bufs: Buffer[]): void {
  for (const b of bufs) if (spare.length < SPARE_MAX) spare.push(b);
}

/** Resolves once `dest` is done with `chunk` (handed to the kernel), so its buffer may be reused. */
function writeChunk(dest: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    if (dest.destroyed) {
      reject(new Error('destination closed'));
      return;
    }
    // A destination destroyed mid-write may never call back; 'close' ends the wait.
    const onClose = () => reject(new Error('destination closed'));
    dest.once('close', onClose);
    dest.write(chunk, (err) => {
      dest.off('close', onClose);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** Streams that can send themselves to a Writable faster than piping (see FileRangeStream). */
export interface WritesTo {
  writeTo(dest: Writable): Promise<void>;
}

/**
 * Bytes [start, end) of an open file (end Infinity: to EOF); owns and closes the handle. Read like
 * any Readable (a fresh 1 MiB buffer per chunk: a consumer may keep chunks), or sent with
 * writeTo(), which reuses two buffers — reading the next chunk while the last one is written —
 * because it knows when the destination has finished with each.
 */
export class FileRangeStream extends Readable implements WritesTo {
  readonly #fh: FileHandle;
  #pos: number;
  readonly #end: number;

  constructor(fh: FileHandle, start: number, end: number, signal?: AbortSignal) {
    super({ highWaterMark: READ_CHUNK });
    this.#fh = fh;
    this.#pos = start;
    this.#end = end;
    if (signal) addAbortSignal(signal, this);
  }

  override _read(): void {
    const want = Math.min(READ_CHUNK, this.#end - this.#pos);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafeSlow(want);
    this.#fh.read(buf, 0, want, this.#pos).then(({ bytesRead }) => {
      if (this.destroyed) return;
      if (bytesRead === 0) {
        this.push(null);
        return;
      }
      this.#pos += bytesRead;
      this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
    }, (err: unknown) => this.destroy(err as Error));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // close() waits for a read still in flight.
    this.#fh.close().then(() => cb(err), (e: unknown) => cb(err ?? (e as Error)));
  }

  /** Writes the whole range to `dest` (not ended), then closes the file. Only on a fresh stream. */
  async writeTo(dest: Writable): Promise<void> {
    if (this.readableDidRead || this.destroyed) throw new Error('writeTo() needs a stream nobody has read from');
    // Failures surface as this promise's rejection; an abort's 'error' event has no reader to go to.
    this.on('error', () => {});
    const remaining = this.#end - this.#pos;
    // A small object takes one exact buffer; only large ones are worth the reuse.
    const bufs = remaining <= READ_CHUNK ? [Buffer.allocUnsafe(Math.max(remaining, 0))] : [takeBuffer(), takeBuffer()];
    // The write that last used each buffer: it must finish before the buffer is read into again.
    const inflight: (Promise<void> | undefined)[] = [];
    let done = false;
    try {
      for (let i = 0; ; i = (i + 1) % bufs.length) {
        const buf = bufs[i]!;
        const want = Math.min(buf.length, this.#end - this.#pos);
        if (want <= 0) break;
        await inflight[i];
        // An abort destroys the stream and closes the file: report the abort, not the closed file.
        if (this.destroyed) throw this.errored ?? new Error('stream destroyed');
        const bytesRead = await this.#fh.read(buf, 0, want, this.#pos).then((r) => r.bytesRead, (e: unknown) => {
          throw this.errored ?? e;
        });
        if (bytesRead === 0) break;
        this.#pos += bytesRead;
        const w = writeChunk(dest, bytesRead === buf.length ? buf : buf.subarray(0, bytesRead));
        w.catch(() => {}); // awaited later; a read failing first must not leave it unhandled
        inflight[i] = w;
      }
      await Promise.all(inflight);
      done = true;
    } finally {
      // After a failure the destination may still hold a buffer: those are left to the collector.
      if (done && bufs.length > 1) giveBuffers(bufs);
      this.destroy();
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

const MAX_GATHER = 256;

/** What a short writev left: the buffers after the first `written` bytes. */
function unwritten(bufs: Buffer[], written: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && written >= bufs[i]!.byteLength) written -= bufs[i++]!.byteLength;
  const rest = bufs.slice(i);
  if (written > 0) rest[0] = rest[0]!.subarray(written);
  return rest;
}

/** Writes every chunk of body at consecutive positions from `start`; returns the bytes written. */
async function copyInto(fh: FileHandle, start: number, body: Readable | Uint8Array, signal?: AbortSignal): Promise<number> {
  signal?.throwIfAborted();
  if (body instanceof Uint8Array) {
    let done = 0;
    while (done < body.byteLength) {
      const { bytesWritten } = await fh.write(body, done, body.byteLength - done, start + done);
      done += bytesWritten;
    }
    return done;
  }
  // Aborting destroys the body, which makes the loop below throw.
  if (signal) addAbortSignal(signal, body);
  // Network bodies arrive in 16–64 KiB chunks; one write per chunk costs a thread-pool round trip
  // each. Gathering COALESCE_BYTES into one writev keeps memory bounded and the disk path fast, without
  // copying into a new buffer (which made large pushes spend their time in garbage collection).
  // One batch is written while the next is gathered, so the socket keeps being read during writes.
  let pos = start;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let inflight: Promise<void> | undefined;
  // Dirty pages are handed to the disk every EARLY_SYNC_BYTES while the body still streams, so the
  // fsync that publishes the object finds little left to write (256 MiB: ~150 ms → ~5 ms here).
  let unsynced = 0;
  let syncing: Promise<void> | undefined;
  let syncError: unknown;
  const writeAll = async (bufs: Buffer[], at: number, bytes: number) => {
    let left = bytes;
    while (left > 0) {
      const { bytesWritten } = await fh.writev(bufs, at);
      at += bytesWritten;
      left -= bytesWritten;
      if (left > 0) bufs = unwritten(bufs, bytesWritten);
    }
  };
  const flush = async () => {
    await inflight;
    if (pendingBytes === 0) return;
    const w = writeAll(pending, pos, pendingBytes);
    pos += pendingBytes;
    unsynced += pendingBytes;
    pending = [];
    pendingBytes = 0;
    inflight = w;
    w.catch(() => {}); // awaited by the next flush; a body failing first must not leave it unhandled
    if (unsynced >= EARLY_SYNC_BYTES && syncing === undefined) {
      unsynced = 0;
      // Linux reports a failed writeback to one sync call only: keep its error for the caller.
      syncing = w.then(() => fh.datasync()).catch((err: unknown) => {
        syncError ??= err;
      }).finally(() => {
        syncing = undefined;
      });
    }
  };
  try {
    for await (const chunk of body) {
      const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      pending.push(buf);
      pendingBytes += buf.byteLength;
      if (pendingBytes >= COALESCE_BYTES || pending.length >= MAX_GATHER) await flush();
    }
    await flush();
    await inflight;
    await syncing;
    if (syncError !== undefined) throw syncError;
  } finally {
    // The caller truncates after a failure: no write may land after that.
    await inflight?.catch(() => {});
    await syncing;
  }
  return pos - start;
}

export class FilesystemDriver implements StorageDriver {
  readonly kind = 'local' as const;
  readonly rootDir: string;
  // Appends to one session are serialized within this process so the offset check and the write
  // cannot interleave. (Several processes sharing one directory get no such guarantee.)
  #sessionLocks = new Map<string, Promise<unknown>>();

  constructor(rootDir: string) {
    this.rootDir = resolve(rootDir);
  }

  /** Validates a key and resolves it below rootDir, refusing anything that would escape. */
  #abs(path: string, prefix = false): string {
    validatePath(path, prefix);
    const abs = resolve(this.rootDir, prefix && path.endsWith('/') ? path.slice(0, -1) : path);
    if (!abs.startsWith(this.rootDir + sep)) throw new InvalidPathError(path);
    return abs;
  }

  async stat(path: string): Promise<StatResult> {
    const abs = this.#abs(path);
    try {
      const st = await stat(abs);
      if (!st.isFile()) return { exists: false };
      return { exists: true, size: st.size, modified: st.mtime };
    } catch (err) {
      if (isMissing(err)) return { exists: false };
      throw err;
    }
  }

  async read(path: string, opts: ReadOptions = {}): Promise<Readable> {
    const abs = this.#abs(path);
    opts.signal?.throwIfAborted();
    const fh = await this.#openExisting(abs, path);
    return this.#streamFrom(fh, opts.offset ?? 0, opts.length, opts.signal);
  }

  async #openExisting(abs: string, path: string): Promise<FileHandle> {
    let fh: FileHandle;
    try {
      fh = await open(abs, 'r');
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') throw new PathNotFoundError(path);
      throw err;
    }
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new PathNotFoundError(path);
    }
    return fh;
  }

  async #streamFrom(fh: FileHandle, offset: number, length: number | undefined, signal?: AbortSignal): Promise<Readable> {
    if (offset < 0 || (length !== undefined && length < 0)) {
      await fh.close();
      throw new RangeError('offset and length must not be negative');
    }
    if (length === 0) {
      await fh.close();
      return emptyStream();
    }
    return new FileRangeStream(fh, offset, length === undefined ? Infinity : offset + length, signal);
  }

  async write(path: string, body: Readable | Uint8Array, opts: WriteOptions = {}): Promise<number> {
    const abs = this.#abs(path);
    const tmpDir = join(this.rootDir, TMP_DIR);
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, randomUUID());
    const fh = await open(tmp, 'wx');
    let published = false;
    try {
      const n = await copyInto(fh, 0, body, opts.signal);
      await fh.sync();
      await fh.close();
      await mkdir(dirname(abs), { recursive: true });
      await rename(tmp, abs);
      published = true;
      await fsyncDir(dirname(abs));
      return n;
    } finally {
      if (!published) {
        await fh.close().catch(() => {});
        await unlink(tmp).catch(() => {});
      }
    }
  }

  async delete(path: string): Promise<void> {
    if (path.endsWith('/')) {
      await rm(this.#abs(path, true), { recursive: true, force: true });
      return;
    }
    const abs = this.#abs(path);
    try {
      await unlink(abs);
    } catch (err) {
      // A directory is not an object, so there is nothing to delete at that key.
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    const abs = this.#abs(prefix, true);
    const rel = abs.slice(this.rootDir.length + 1).split(sep).join('/');
    yield* this.#walk(abs, rel);
  }

  async *#walk(dir: string, rel: string): AsyncIterable<string> {
    let handle;
    try {
      handle = await opendir(dir);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    for await (const ent of handle) {
      if (dir === this.rootDir && ent.name === TMP_DIR) continue;
      const childRel = `${rel}/${ent.name}`;
      if (ent.isDirectory()) yield* this.#walk(join(dir, ent.name), childRel);
      else if (ent.isFile()) yield childRel;
    }
  }

  async redirectURL(path: string, _expiresInSeconds: number): Promise<string | null> {
    this.#abs(path);
    return null;
  }

  // ---- Resumable uploads: <root>/<session>/data grows by appends.

  #dataFile(session: string): { dir: string; data: string } {
    const dir = this.#abs(session);
    return { dir, data: join(dir, DATA_FILE) };
  }

  async #withSessionLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#sessionLocks.get(key) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(fn);
    this.#sessionLocks.set(key, run);
    try {
      return await run;
    } finally {
      if (this.#sessionLocks.get(key) === run) this.#sessionLocks.delete(key);
    }
  }

  async uploadAppend(session: string, offset: number, body: Readable, opts: WriteOptions = {}): Promise<number> {
    const { dir, data } = this.#dataFile(session);
    return this.#withSessionLock(dir, async () => {
      await mkdir(dir, { recursive: true });
      const fh = await open(data, fsc.O_RDWR | fsc.O_CREAT);
      try {
        const { size } = await fh.stat();
        if (size !== offset) {
          // The body is left to the caller: it may still need the connection to answer.
          throw new OffsetMismatchError(size, offset);
        }
        try {
          // No fsync per append (as Distribution): the bytes are in the page cache, which survives a
          // killed process; uploadCommit fsyncs the whole file before publishing it. After a machine
          // crash a shorter file than the session row records is caught and the session dropped.
          const n = await copyInto(fh, offset, body, opts.signal);
          return offset + n;
        } catch (err) {
          // Cut off whatever part of the failed body reached the file.
          await fh.truncate(offset);
          await fh.sync();
          throw err;
        }
      } finally {
        await fh.close();
      }
    });
  }

  async uploadSize(session: string): Promise<number> {
    const { data } = this.#dataFile(session);
    try {
      return (await stat(data)).size;
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
  }

  async uploadRead(session: string, offset = 0): Promise<Readable> {
    const { data } = this.#dataFile(session);
    let fh: FileHandle;
    try {
      fh = await open(data, 'r');
    } catch (err) {
      if (isMissing(err)) return emptyStream();
      throw err;
    }
    return this.#streamFrom(fh, offset, undefined);
  }

  async uploadCommit(session: string, dest: string): Promise<void> {
    const { dir, data } = this.#dataFile(session);
    const destAbs = this.#abs(dest);
    await this.#withSessionLock(dir, async () => {
      let fh: FileHandle;
      try {
        fh = await open(data, 'r+');
      } catch (err) {
        if (!isMissing(err)) throw err;
        // A session that never received bytes publishes an empty object.
        await this.write(dest, new Uint8Array(0));
        await rm(dir, { recursive: true, force: true });
        return;
      }
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await mkdir(dirname(destAbs), { recursive: true });
      await rename(data, destAbs);
      await fsyncDir(dirname(destAbs));
      await rm(dir, { recursive: true, force: true });
    });
  }

  async uploadAbort(session: string): Promise<void> {
    const { dir } = this.#dataFile(session);
    await this.#withSessionLock(dir, () => rm(dir, { recursive: true, force: true }));
  }
}

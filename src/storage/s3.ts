// S3 (and S3-compatible) blob storage. Whole-object writes are atomic by S3's own semantics
// (PutObject / CompleteMultipartUpload). A resumable upload session is a set of segment objects
// '<session>/seg-<offset>', one per append, so appends never rewrite earlier bytes; commit stitches
// them together server-side with CopyObject / UploadPartCopy wherever S3's 5 MiB part minimum allows.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import type { CompletedPart, S3ClientConfig } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { addAbortSignal, Readable } from 'node:stream';
import {
  OffsetMismatchError,
  PathNotFoundError,
  validatePath,
} from './driver.ts';
import type { ReadOptions, StatResult, StorageDriver, WriteOptions } from './driver.ts';

export interface S3Options {
  bucket: string;
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** storage_path inside the bucket */
  prefix?: string;
  forcePathStyle?: boolean;
  /** When false, redirectURL returns null and blobs are proxied. */
  redirect?: boolean;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** S3's minimum size for every multipart part but the last. */
const MIN_PART = 5 * MiB;
/** S3's maximum for CopyObject and for one UploadPartCopy part. */
const MAX_COPY = 5 * GiB;
/** Parts of a streamed write in flight at once; memory per write is about (this + 1) parts. */
const STREAM_QUEUE = 3;
const MAX_PARTS = 10_000;
const SEGMENT_RE = /\/seg-(\d{16})$/;
const DELETE_BATCH = 1000;

interface Segment {
  key: string;
  offset: number;
  size: number;
}

/** A byte range [start, end) of one object, the unit a commit part is built from. */
interface Piece {
  key: string;
  start: number;
  end: number;
}

type PartPlan = { copy: Piece } | { stream: Piece[]; size: number };

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(err) === 404;
}

/**
 * Part size for the n-th part of a streamed write: small parts keep memory low for typical blobs,
 * and doubling every 2000 parts lets S3's 10,000 parts reach about 310 GiB.
 */
function streamPartSize(n: number): number {
  return MIN_PART * 2 ** Math.floor((n - 1) / 2000);
}

/** Re-chunks a byte stream into freshly allocated buffers of exactly sizeFor(n) bytes; the last
 * one may be shorter. (lib-storage's Upload was measured holding ~4.5 parts per in-flight part.) */
async function* fixedParts(body: Readable, sizeFor: (n: number) => number): AsyncGenerator<Buffer> {
  let n = 1;
  let part: Buffer | undefined;
  let fill = 0;
  for await (const c of body) {
    let chunk: Buffer = typeof c === 'string' ? Buffer.from(c) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
    while (chunk.length > 0) {
      part ??= Buffer.allocUnsafe(sizeFor(n));
      const take = Math.min(chunk.length, part.length - fill);
      chunk.copy(part, fill, 0, take);
      fill += take;
      chunk = chunk.subarray(take);
      if (fill === part.length) {
        yield part;
        n++;
        part = undefined;
        fill = 0;
      }
    }
  }
  if (part) yield part.subarray(0, fill);
}

function segmentKey(sessionKey: string, offset: number): string {
  return `${sessionKey}/seg-${String(offset).padStart(16, '0')}`;
}

/**
 * Splits a session's segments into multipart parts: segments (or tails of them) of at least
 * MIN_PART are copied server-side; runs of smaller ones are read and re-uploaded, merged until they
 * reach MIN_PART, borrowing the head of the next large segment when needed. Only the final part may
 * be smaller than MIN_PART.
 */
export function planParts(segments: readonly Segment[]): PartPlan[] {
  const parts: PartPlan[] = [];
  let run: Piece[] = [];
  let runSize = 0;
  const flushRun = () => {
    if (runSize > 0) parts.push({ stream: run, size: runSize });
    run = [];
    runSize = 0;
  };
  for (const seg of segments) {
    if (seg.size === 0) continue;
    let start = 0;
    if (runSize > 0) {
      const need = MIN_PART - runSize;
      if (seg.size >= MIN_PART && seg.size - need >= MIN_PART) {
        run.push({ key: seg.key, start: 0, end: need });
        runSize += need;
        flushRun();
        start = need;
      } else {
        run.push({ key: seg.key, start: 0, end: seg.size });
        runSize += seg.size;
        if (runSize >= MIN_PART) flushRun();
        continue;
      }
    }
    const remaining = seg.size - start;
    if (remaining >= MIN_PART) {
      const n = Math.ceil(remaining / MAX_COPY);
      const chunk = Math.ceil(remaining / n);
      for (let s = start; s < seg.size; s += chunk) {
        parts.push({ copy: { key: seg.key, start: s, end: Math.min(seg.size, s + chunk) } });
      }
    } else {
      run = [{ key: seg.key, start, end: seg.size }];
      runSize = remaining;
    }
  }
  flushRun();
  return parts;
}

export class S3Driver implements StorageDriver {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly client: S3Client;
  #prefix: string;
  #redirect: boolean;

  constructor(opts: S3Options) {
    this.bucket = opts.bucket;
    this.#prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.#redirect = opts.redirect ?? true;
    const cfg: S3ClientConfig = {
      region: opts.region ?? 'us-east-1',
      forcePathStyle: opts.forcePathStyle,
      // Many S3-compatible servers reject or mangle the newer default CRC checksum headers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    if (opts.endpoint) cfg.endpoint = opts.endpoint;
    if (opts.accessKeyId && opts.secretAccessKey) {
      cfg.credentials = { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey };
    }
    this.client = new S3Client(cfg);
  }

  #key(path: string, prefix = false): string {
    validatePath(path, prefix);
    return this.#prefix ? `${this.#prefix}/${path}` : path;
  }

  #copySource(key: string): string {
    return `${this.bucket}/${encodeURIComponent(key).replace(/%2F/g, '/')}`;
  }

  async stat(path: string): Promise<StatResult> {
    const Key = this.#key(path);
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { exists: true, size: r.ContentLength ?? 0, modified: r.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return { exists: false };
      throw err;
    }
  }

  async read(path: string, opts: ReadOptions = {}): Promise<Readable> {
    const key = this.#key(path);
    const offset = opts.offset ?? 0;
    if (offset < 0 || (opts.length !== undefined && opts.length < 0)) {
      throw new RangeError('offset and length must not be negative');
    }
    if (opts.length === 0) {
      if (!(await this.stat(path)).exists) throw new PathNotFoundError(path);
      return Readable.from([]);
    }
    return this.#getRange(key, offset, opts.length, opts.signal, path);
  }

  async #getRange(Key: string, offset: number, length: number | undefined, signal: AbortSignal | undefined, path: string): Promise<Readable> {
    signal?.throwIfAborted();
    let Range: string | undefined;
    if (length !== undefined) Range = `bytes=${offset}-${offset + length - 1}`;
    else if (offset > 0) Range = `bytes=${offset}-`;
    try {
      const r = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key, Range }),
        { abortSignal: signal },
      );
      const body = r.Body as Readable;
      if (signal) addAbortSignal(signal, body);
      return body;
    } catch (err) {
      if (isNotFound(err)) throw new PathNotFoundError(path);
      // The object exists but the range starts at or past its end: that is simply no bytes.
      if (statusOf(err) === 416 || (err as { name?: string }).name === 'InvalidRange') return Readable.from([]);
      throw err;
    }
  }

  async write(path: string, body: Readable | Uint8Array, opts: WriteOptions = {}): Promise<number> {
    return this.#put(this.#key(path), body, opts.signal);
  }

  /** Stores one object from a buffer or a stream of unknown length, never holding all of it. */
  async #put(Key: string, body: Readable | Uint8Array, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    if (body instanceof Uint8Array) {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key, Body: body, ContentLength: body.byteLength }),
        { abortSignal: signal },
      );
      return body.byteLength;
    }
    // Aborting destroys the body, which makes reading it throw.
    if (signal) addAbortSignal(signal, body);
    const parts = fixedParts(body, streamPartSize);
    const first = await parts.next();
    if (first.done || first.value.length < streamPartSize(1)) {
      const data = first.done ? Buffer.alloc(0) : first.value;
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key, Body: data, ContentLength: data.length }),
        { abortSignal: signal },
      );
      return data.length;
    }
    return this.#multipartFromParts(Key, first.value, parts, signal);
  }

  async #multipartFromParts(Key: string, first: Buffer, rest: AsyncGenerator<Buffer>, signal?: AbortSignal): Promise<number> {
    const created = await this.client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key }),
      { abortSignal: signal },
    );
    const UploadId = created.UploadId!;
    const done: CompletedPart[] = [];
    const inflight = new Set<Promise<void>>();
    // Held in an object: a part's failure is recorded from a callback, out of TS's flow analysis.
    const failed: { err?: unknown; yes: boolean } = { yes: false };
    let total = 0;
    let PartNumber = 0;
    const send = (data: Buffer) => {
      const n = ++PartNumber;
      total += data.length;
      const p: Promise<void> = this.client
        .send(
          new UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber: n, Body: data, ContentLength: data.length }),
          { abortSignal: signal },
        )
        .then((r) => { done.push({ PartNumber: n, ETag: r.ETag }); }, (err: unknown) => { if (!failed.yes) Object.assign(failed, { yes: true, err }); })
        .finally(() => inflight.delete(p));
      inflight.add(p);
    };
    try {
      send(first);
      for (;;) {
        if (inflight.size >= STREAM_QUEUE) await Promise.race(inflight);
        if (failed.yes) throw failed.err;
        const next = await rest.next();
        if (next.done) break;
        if (PartNumber >= MAX_PARTS) throw new Error(`object too large for a multipart upload: ${Key}`);
        send(next.value);
      }
      await Promise.all(inflight);
      if (failed.yes) throw failed.err;
      done.sort((a, b) => a.PartNumber! - b.PartNumber!);
      await this.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: done },
      }));
      return total;
    } catch (err) {
      await rest.return(undefined).catch(() => {});
      await Promise.allSettled(inflight);
      // The caller needs this error, not a failure to clean up after it.
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })).catch(() => {});
      throw err;
    }
  }

  async delete(path: string): Promise<void> {
    if (path.endsWith('/')) {
      await this.#deletePrefix(this.#key(path, true));
      return;
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.#key(path) }));
  }

  async #deletePrefix(prefix: string): Promise<void> {
    let batch: string[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const r = await this.client.send(new DeleteObjectsCommand({
        Bucket: this.bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      }));
      if (r.Errors && r.Errors.length > 0) {
        const e = r.Errors[0]!;
        throw new Error(`S3 DeleteObjects failed for ${e.Key}: ${e.Code} ${e.Message}`);
      }
      batch = [];
    };
    // Listing while deleting is safe with continuation tokens; deleted keys are never re-listed.
    for await (const obj of this.#listKeys(prefix)) {
      batch.push(obj.key);
      if (batch.length >= DELETE_BATCH) await flush();
    }
    await flush();
  }

  async *#listKeys(prefix: string): AsyncIterable<{ key: string; size: number }> {
    let ContinuationToken: string | undefined;
    do {
      const r = await this.client.send(new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: prefix,
        ContinuationToken,
      }));
      for (const o of r.Contents ?? []) {
        if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 };
      }
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async *list(prefix: string): AsyncIterable<string> {
    let key = this.#key(prefix, true);
    // Prefixes name directories, as on the filesystem: 'a/b' must not match 'a/bc'.
    if (!key.endsWith('/')) key += '/';
    const strip = this.#prefix ? this.#prefix.length + 1 : 0;
    for await (const o of this.#listKeys(key)) yield o.key.slice(strip);
  }

  async redirectURL(path: string, expiresInSeconds: number): Promise<string | null> {
    const Key = this.#key(path);
    if (!this.#redirect) return null;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key }), {
      expiresIn: expiresInSeconds,
    });
  }

  // ---- Resumable uploads.

  /** The session's segments that form a contiguous run from offset 0, in order. */
  async #segments(sessionKey: string): Promise<Segment[]> {
    const found: Segment[] = [];
    for await (const o of this.#listKeys(`${sessionKey}/`)) {
      const m = SEGMENT_RE.exec(o.key);
      if (m) found.push({ key: o.key, offset: Number(m[1]), size: o.size });
    }
    found.sort((a, b) => a.offset - b.offset);
    const run: Segment[] = [];
    let end = 0;
    for (const s of found) {
      // An empty segment is superseded by the next append at the same offset.
      if (s.offset !== end || s.size === 0) continue;
      run.push(s);
      end += s.size;
    }
    return run;
  }

  static #sizeOf(segments: readonly Segment[]): number {
    return segments.reduce((n, s) => n + s.size, 0);
  }

  async uploadAppend(session: string, offset: number, body: Readable, opts: WriteOptions = {}): Promise<number> {
    const sessionKey = this.#key(session);
    const size = S3Driver.#sizeOf(await this.#segments(sessionKey));
    if (size !== offset) throw new OffsetMismatchError(size, offset);
    // The segment appears only once fully stored, so a failed append leaves the old size.
    const n = await this.#put(segmentKey(sessionKey, offset), body, opts.signal);
    return offset + n;
  }

  async uploadSize(session: string): Promise<number> {
    return S3Driver.#sizeOf(await this.#segments(this.#key(session)));
  }

  async uploadRead(session: string, offset = 0): Promise<Readable> {
    const segments = await this.#segments(this.#key(session));
    const pieces: Piece[] = [];
    let pos = 0;
    for (const s of segments) {
      if (pos + s.size > offset) pieces.push({ key: s.key, start: Math.max(0, offset - pos), end: s.size });
      pos += s.size;
    }
    return Readable.from(this.#readPieces(pieces));
  }

  async *#readPieces(pieces: readonly Piece[]): AsyncIterable<Buffer> {
    for (const p of pieces) {
      const stream = await this.#getRange(p.key, p.start, p.end - p.start, undefined, p.key);
      for await (const chunk of stream) yield chunk as Buffer;
    }
  }

  async uploadCommit(session: string, dest: string): Promise<void> {
    const sessionKey = this.#key(session);
    const destKey = this.#key(dest);
    const segments = await this.#segments(sessionKey);
    const total = S3Driver.#sizeOf(segments);
    if (segments.length === 0) {
      await this.#put(destKey, new Uint8Array(0));
    } else if (segments.length === 1 && total <= MAX_COPY) {
      await this.client.send(new CopyObjectCommand({
        Bucket: this.bucket,
        Key: destKey,
        CopySource: this.#copySource(segments[0]!.key),
      }));
    } else {
      await this.#multipartCommit(destKey, planParts(segments));
    }
    await this.#deletePrefix(`${sessionKey}/`);
  }

  async #multipartCommit(Key: string, plan: PartPlan[]): Promise<void> {
    const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key }));
    const UploadId = created.UploadId!;
    try {
      const parts: CompletedPart[] = [];
      for (const [i, part] of plan.entries()) {
        const PartNumber = i + 1;
        if ('copy' in part) {
          const r = await this.client.send(new UploadPartCopyCommand({
            Bucket: this.bucket,
            Key,
            UploadId,
            PartNumber,
            CopySource: this.#copySource(part.copy.key),
            CopySourceRange: `bytes=${part.copy.start}-${part.copy.end - 1}`,
          }));
          parts.push({ PartNumber, ETag: r.CopyPartResult?.ETag });
        } else {
          // Merged small pieces are at most ~3 * MIN_PART, so holding one part in memory is
          // bounded, and a buffered body lets the SDK retry the request.
          const body = Buffer.alloc(part.size);
          let at = 0;
          for await (const chunk of this.#readPieces(part.stream)) {
            (chunk as Buffer).copy(body, at);
            at += (chunk as Buffer).length;
          }
          if (at !== part.size) throw new Error(`upload segment changed during commit of ${Key}`);
          const r = await this.client.send(new UploadPartCommand({
            Bucket: this.bucket,
            Key,
            UploadId,
            PartNumber,
            Body: body,
            ContentLength: body.length,
          }));
          parts.push({ PartNumber, ETag: r.ETag });
        }
      }
      await this.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: parts },
      }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId })).catch(() => {});
      throw err;
    }
  }

  async uploadAbort(session: string): Promise<void> {
    await this.#deletePrefix(`${this.#key(session)}/`);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

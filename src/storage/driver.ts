// The one blob-storage interface. Every driver (filesystem, S3) implements it and must pass the
// shared suite in test/storage/driver-suite.ts. Paths are '/'-separated keys below the driver's
// root, validated by validatePath() inside every driver so nothing from a request can escape it.
import type { Readable } from 'node:stream';

export type StatResult = { exists: false } | { exists: true; size: number; modified: Date };

export interface ReadOptions {
  /** First byte to return (default 0). */
  offset?: number;
  /** Number of bytes to return from offset (default: to the end). */
  length?: number;
  signal?: AbortSignal;
}

export interface WriteOptions {
  signal?: AbortSignal;
}

export interface StorageDriver {
  readonly kind: 'local' | 's3';
  stat(path: string): Promise<StatResult>;
  /** A stream of the object's bytes; throws PathNotFoundError when it does not exist. */
  read(path: string, opts?: ReadOptions): Promise<Readable>;
  /** Writes the whole object atomically: readers see all of it or nothing. Returns bytes written. */
  write(path: string, body: Readable | Uint8Array, opts?: WriteOptions): Promise<number>;
  /** Deletes an object, or every object below a prefix ending in '/'. Missing paths are fine. */
  delete(path: string): Promise<void>;
  /** Every object path below a prefix (recursive), in no guaranteed order. */
  list(prefix: string): AsyncIterable<string>;
  /** A pre-signed URL for GET, or null when the driver cannot redirect (filesystem). */
  redirectURL(path: string, expiresInSeconds: number): Promise<string | null>;

  // ---- Resumable uploads. A session is a path prefix (e.g. 'uploads/<uuid>'); its content is the
  // concatenation of appended segments. Sessions survive process restarts and are usable from any
  // replica: all state lives in storage.
  /** Appends body at `offset`, which must equal the session's current size (else OffsetMismatchError).
   * Returns the new total size. A failed or aborted append leaves the previous size intact. */
  uploadAppend(session: string, offset: number, body: Readable, opts?: WriteOptions): Promise<number>;
  /** Current committed size of the session (0 for a session that has no data yet). */
  uploadSize(session: string): Promise<number>;
  /** The session's bytes so far, from `offset` (used to re-hash after a restart). */
  uploadRead(session: string, offset?: number): Promise<Readable>;
  /** Publishes the session's content at `dest` atomically (fsync+rename / multipart copy) and
   * removes the session. */
  uploadCommit(session: string, dest: string): Promise<void>;
  /** Removes the session and all its data. Missing sessions are fine. */
  uploadAbort(session: string): Promise<void>;

  close?(): Promise<void>;
}

// Fields are declared explicitly (not parameter properties) because Node's type stripping
// only accepts erasable syntax.
export class PathNotFoundError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`storage path not found: ${path}`);
    this.path = path;
    this.name = 'PathNotFoundError';
  }
}

export class OffsetMismatchError extends Error {
  readonly expected: number;
  readonly got: number;
  constructor(expected: number, got: number) {
    super(`upload offset mismatch: session has ${expected} bytes, append at ${got}`);
    this.expected = expected;
    this.got = got;
    this.name = 'OffsetMismatchError';
  }
}

export class InvalidPathError extends Error {
  readonly path: string;
  constructor(path: string) {
    super(`invalid storage path: ${JSON.stringify(path)}`);
    this.path = path;
    this.name = 'InvalidPathError';
  }
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Storage keys: segments of [A-Za-z0-9._-] not starting with '.', '-' or '_'; no '..', no empty
 * segments, no absolute paths. A trailing '/' is allowed only when `prefix` is true. */
export function validatePath(path: string, prefix = false): string {
  if (typeof path !== 'string' || path.length === 0 || path.length > 1024) throw new InvalidPathError(path);
  let p = path;
  if (prefix && p.endsWith('/')) p = p.slice(0, -1);
  const parts = p.split('/');
  for (const part of parts) {
    if (!SEGMENT.test(part) || part === '..' || part === '.') throw new InvalidPathError(path);
  }
  return path;
}

/** Storage layout shared by all drivers. */
export const layout = {
  blob(digest: string): string {
    const [alg, hex] = digest.split(':');
    return `blobs/${alg}/${hex!.slice(0, 2)}/${hex}`;
  },
  upload(uuid: string): string {
    return `uploads/${uuid}`;
  },
};

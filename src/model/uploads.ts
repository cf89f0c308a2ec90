// Blob upload sessions. Bytes stream from the request through one sha256 into the storage
// driver; the digest is checked at the end and the blob published atomically. A session belongs
// to the repository and the principal that opened it, lives in the database and in storage (so it
// survives restarts and works on any replica), and only its owner can see it.
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { layout, OffsetMismatchError } from '../storage/driver.ts';
import { parseDigest } from './names.ts';
import { recordBlob } from './blobs.ts';
import { withDigestLock } from './digest-lock.ts';
import { transientBytesConsumed } from '../storage/young-gc.ts';

export interface UploadSession {
  uuid: string;
  repository_id: number;
  size: number;
}

// Running hash per session in this process. Missing (restart, other replica) or stale states are
// rebuilt by re-reading the session's bytes from storage — correctness never depends on memory.
const hashes = new Map<string, { hash: Hash; size: number }>();
// Appends to one session are serialized in-process; the offset check in storage and the
// conditional row update catch races between replicas.
const locks = new Map<string, Promise<unknown>>();

async function withSessionLock<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(uuid) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chained = prev.then(() => mine);
  locks.set(uuid, chained);
  await prev.catch(() => {});
  try {
    return await fn();
  } finally {
    release();
    if (locks.get(uuid) === chained) locks.delete(uuid);
  }
}

export async function startUpload(s: Services, repoId: number, principal: Principal): Promise<UploadSession> {
  const uuid = randomUUID();
  const now = s.now();
  await s.db.insertInto('uploads').values({ uuid, repository_id: repoId, principal: principal.key, size: 0, created_at: now, updated_at: now }).execute();
  hashes.set(uuid, { hash: createHash('sha256'), size: 0 });
  return { uuid, repository_id: repoId, size: 0 };
}

/** The session, if it exists, belongs to this repository and was opened by this principal. */
export async function getUpload(s: Services, uuid: string, repoId: number, principal: Principal): Promise<UploadSession> {
  if (!/^[0-9a-f-]{36}$/.test(uuid)) throw new DomainError('blob_upload_unknown', 'blob upload unknown to registry');
  const row = await s.db.selectFrom('uploads').select(['uuid', 'repository_id', 'size', 'principal']).where('uuid', '=', uuid).executeTakeFirst();
  if (!row || row.repository_id !== repoId || row.principal !== principal.key) {
    throw new DomainError('blob_upload_unknown', 'blob upload unknown to registry');
  }
  return { uuid: row.uuid, repository_id: row.repository_id, size: row.size };
}

async function hashStateAt(s: Services, uuid: string, size: number): Promise<Hash> {
  const cur = hashes.get(uuid);
  if (cur && cur.size === size) return cur.hash;
  const hash = createHash('sha256');
  if (size > 0) {
    const stream = await s.storage.uploadRead(layout.upload(uuid));
    let seen = 0;
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      const take = Math.min(buf.length, size - seen);
      hash.update(take === buf.length ? buf : buf.subarray(0, take));
      seen += take;
      if (seen >= size) break;
    }
    stream.destroy();
    if (seen !== size) throw new DomainError('blob_upload_invalid', 'upload data is incomplete');
  }
  hashes.set(uuid, { hash, size });
  return hash;
}

export interface AppendOptions {
  /** Content-Range start, when the client sent one: must equal the session's size. */
  rangeStart?: number;
  /** Content-Range end (inclusive) or Content-Length: the body must have exactly this many bytes. */
  expectedLength?: number;
  signal?: AbortSignal;
}

/** Appends the body to the session; returns the new size. */
export async function appendUpload(s: Services, session: UploadSession, body: Readable, opts: AppendOptions = {}): Promise<number> {
  return withSessionLock(session.uuid, async () => {
    const row = await s.db.selectFrom('uploads').select('size').where('uuid', '=', session.uuid).executeTakeFirst();
    if (!row) throw new DomainError('blob_upload_unknown', 'blob upload unknown to registry');
    const offset = row.size;
    if (opts.rangeStart !== undefined && opts.rangeStart !== offset) {
      throw new DomainError('range_invalid', `chunk starts at ${opts.rangeStart} but the upload has ${offset} bytes`, { size: offset });
    }
    const release = await claimSession(s, session.uuid, offset);
    try {
      return await appendClaimed(s, session, body, offset, opts);
    } finally {
      await release();
    }
  });
}

// A claim lapses this long after its last heartbeat, so a crashed writer blocks its session for
// seconds, not for the length of an upload; a live writer renews it while its body streams.
const CLAIM_MS = 20_000;
const HEARTBEAT_MS = 5_000;

/** One writer per session across replicas: the storage drivers' own offset checks cannot stop two
 * appends racing from different processes (both pass, both write). SQLite deployments are one
 * process, where the in-process session lock already serializes writers. Returns the release. */
async function claimSession(s: Services, uuid: string, size: number): Promise<() => Promise<void>> {
  if (s.dialect !== 'postgres') return async () => {};
  const now = s.now();
  const res = await s.db.updateTable('uploads').set({ claimed_until: now + CLAIM_MS })
    .where('uuid', '=', uuid).where('size', '=', size)
    .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', now)]))
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) {
    throw new DomainError('range_invalid', 'another request is writing to this upload; retry from its current Range', { size });
  }
  const beat = setInterval(() => {
    s.db.updateTable('uploads').set({ claimed_until: s.now() + CLAIM_MS }).where('uuid', '=', uuid).execute()
      .catch((err) => s.log.warn({ err, uuid }, 'renewing an upload claim failed'));
  }, HEARTBEAT_MS);
  beat.unref();
  return async () => {
    clearInterval(beat);
    await s.db.updateTable('uploads').set({ claimed_until: null }).where('uuid', '=', uuid).execute();
  };
}

async function appendClaimed(s: Services, session: UploadSession, body: Readable, offset: number, opts: AppendOptions): Promise<number> {
  const hash = await hashStateAt(s, session.uuid, offset);
  const copy = hash.copy();
  let count = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      copy.update(chunk);
      count += chunk.length;
      transientBytesConsumed(chunk.length);
      if (opts.expectedLength !== undefined && count > opts.expectedLength) cb(new DomainError('size_invalid', 'body is longer than Content-Length/Content-Range'));
      else cb(null, chunk);
    },
  });
  body.on('error', (e) => meter.destroy(e));
  // The driver consuming `meter` gets its errors; but once it has stopped reading, pipe() would
  // re-emit a late 'error' with no listener left: an uncaught exception that kills the process
  // (one PATCH whose body outruns its Content-Range did). Keep a listener for good.
  meter.on('error', () => {});
  body.pipe(meter);
  let newSize: number;
  try {
    newSize = await s.storage.uploadAppend(layout.upload(session.uuid), offset, meter, { signal: opts.signal });
  } catch (e) {
    if (e instanceof OffsetMismatchError) {
      // Storage disagrees with the size the database acknowledged: an append died with its
      // process after writing part of its body (or another replica is appending right now).
      // Those bytes cannot be cut off here, so the session cannot go on: the client restarts.
      await dropInconsistentSession(s, session.uuid);
    }
    throw e;
  }
  if (opts.expectedLength !== undefined && count !== opts.expectedLength) {
    // The bytes are stored; the client lied about the size. Roll the session back to be safe.
    hashes.delete(session.uuid);
    await abortUploadData(s, session.uuid);
    await s.db.deleteFrom('uploads').where('uuid', '=', session.uuid).execute();
    throw new DomainError('size_invalid', `body has ${count} bytes, expected ${opts.expectedLength}`);
  }
  const res = await s.db.updateTable('uploads').set({ size: newSize, updated_at: s.now() })
    .where('uuid', '=', session.uuid).where('size', '=', offset).executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) {
    hashes.delete(session.uuid);
    throw new DomainError('range_invalid', 'upload changed concurrently');
  }
  hashes.set(session.uuid, { hash: copy, size: newSize });
  session.size = newSize;
  return newSize;
}

async function dropInconsistentSession(s: Services, uuid: string): Promise<never> {
  hashes.delete(uuid);
  s.log.warn({ uuid }, 'upload session data does not match its acknowledged size (interrupted append); dropping the session');
  await s.db.deleteFrom('uploads').where('uuid', '=', uuid).execute();
  await abortUploadData(s, uuid);
  throw new DomainError('blob_upload_unknown', 'blob upload unknown to registry: its data was left inconsistent by an interrupted request; start a new upload');
}

async function abortUploadData(s: Services, uuid: string): Promise<void> {
  await s.storage.uploadAbort(layout.upload(uuid)).catch((e) => s.log.warn({ err: e, uuid }, 'upload cleanup failed; the sweep will retry'));
}

/** Closes the session: verifies the digest, publishes the blob, links it to the repository. */
export async function completeUpload(s: Services, session: UploadSession, digest: string): Promise<{ digest: string; size: number }> {
  return withSessionLock(session.uuid, async () => {
    const row = await s.db.selectFrom('uploads').select('size').where('uuid', '=', session.uuid).executeTakeFirst();
    if (!row) throw new DomainError('blob_upload_unknown', 'blob upload unknown to registry');
    if (parseDigest(digest).algorithm !== 'sha256') {
      // Uploads are hashed once, with sha256, while they stream; the session stays usable.
      throw new DomainError('unsupported', 'blob uploads are verified with sha256 digests only', { digest });
    }
    const release = await claimSession(s, session.uuid, row.size);
    try {
      return await publishClaimed(s, session, digest, row.size);
    } finally {
      await release(); // a no-op once the published session's row is gone
    }
  });
}

async function publishClaimed(s: Services, session: UploadSession, digest: string, size: number): Promise<{ digest: string; size: number }> {
  const actual = `sha256:${(await hashStateAt(s, session.uuid, size)).copy().digest('hex')}`;
  if (actual !== digest) {
    hashes.delete(session.uuid);
    await s.db.deleteFrom('uploads').where('uuid', '=', session.uuid).execute();
    await abortUploadData(s, session.uuid);
    throw new DomainError('digest_invalid', 'provided digest did not match uploaded content', { expected: digest, actual });
  }
  // Only the acknowledged bytes were hashed; unacknowledged ones left by an interrupted append
  // would be published with them under a digest they do not match.
  if ((await s.storage.uploadSize(layout.upload(session.uuid))) !== size) await dropInconsistentSession(s, session.uuid);
  // Under the digest lock the collector cannot delete this object between our storage write and
  // the rows that make it visible. Storage first, then rows: a crash in between leaves an orphan
  // object (swept later), never a row pointing at missing bytes.
  await withDigestLock(s, digest, async () => {
    const known = await s.db.selectFrom('blobs').select('size').where('digest', '=', digest).executeTakeFirst();
    const blobPath = layout.blob(digest);
    if (known && (await s.storage.stat(blobPath)).exists) {
      await abortUploadData(s, session.uuid); // content already stored once
    } else {
      await s.storage.uploadCommit(layout.upload(session.uuid), blobPath);
    }
    await s.db.transaction().execute(async (tx) => {
      await recordBlob(s, tx, session.repository_id, digest, size);
      await tx.deleteFrom('uploads').where('uuid', '=', session.uuid).execute();
    });
  });
  hashes.delete(session.uuid);
  return { digest, size: size };
}

export async function cancelUpload(s: Services, session: UploadSession): Promise<void> {
  await withSessionLock(session.uuid, async () => {
    await s.db.deleteFrom('uploads').where('uuid', '=', session.uuid).execute();
    hashes.delete(session.uuid);
    await abortUploadData(s, session.uuid);
  });
}

// A real S3-compatible server for tests, on 127.0.0.1 with an ephemeral port and its own temp dir.
// It is the maintained @20minutes/s3rver fork: the original s3rver 3.x answers UploadPartCopy with
// NotImplemented and does not decode aws-chunked bodies, both of which the S3 driver relies on.
// A few places where s3rver departs from S3 are corrected below (see patchS3rver), so that tests
// exercise S3's semantics rather than the fake's shortcuts.
// The server runs in a child process (this same file, see the bottom) so that its memory and CPU
// do not blur measurements of the process under test, as S3 would be remote in production.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

type RangeOpts = { start?: number; end?: number | object };
interface FilesystemStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getObject(bucket: string, key: string, opts?: RangeOpts): Promise<unknown>;
  putContent(objectPath: string, content: Readable | Buffer): Promise<[number, string]>;
  copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, meta?: unknown): Promise<unknown>;
  putObjectMultipart(bucket: string, uploadId: string, parts: Array<{ number: number }>): Promise<unknown>;
  putMetadata(bucket: string, key: string, meta: unknown): Promise<void>;
  getMetadata(bucket: string, key: string): Promise<unknown>;
}
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  status: number;
  type: string;
  body: unknown;
}
type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface S3rverInstance {
  store: FilesystemStore;
  middleware: Middleware[];
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
type S3ErrorCtor = new (code: string, message: string, detail?: Record<string, unknown>) => Error;
interface SignatureV4 {
  getStringToSign(req: { uri: string }, parsed: unknown): string;
}

function patchSignatureV4(): void {
  // s3rver canonicalizes bucket-level requests (ListObjectsV2, DeleteObjects) as '/bucket' while
  // AWS SDK v3 sends and signs '/bucket/', so every such request failed the signature check.
  const v4 = createRequire(import.meta.url)('@20minutes/s3rver/lib/signature/v4.js') as SignatureV4;
  const originalStringToSign = v4.getStringToSign;
  v4.getStringToSign = (req, parsed) =>
    originalStringToSign({ ...req, uri: /^\/[^/]+$/.test(req.uri) ? `${req.uri}/` : req.uri }, parsed);
}

function patchS3rver(server: S3rverInstance): void {
  const store = server.store;

  // It reads a Range end of 0 as "no end" (`end || Infinity`), so 'bytes=0-0' returned everything.
  // A Number object is truthy yet compares as 0.
  const getObject = store.getObject.bind(store);
  store.getObject = (bucket, key, opts) =>
    getObject(bucket, key, opts?.end === 0 ? { ...opts, end: new Number(0) } : opts);

  // It writes objects in place, so a reader during an overwrite saw a torn object; S3 publishes a
  // new version atomically. Temp names do not end in '._S3rver_object', so listings skip them.
  store.putContent = async (objectPath, content) => {
    const tmp = `${objectPath}.${randomUUID()}.tmp`;
    const md5 = createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        md5.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(Buffer.isBuffer(content) ? Readable.from([content]) : content, measure, createWriteStream(tmp));
      await rename(tmp, objectPath);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return [size, md5.digest('hex')];
  };
  // Same for CopyObject, which copied the content in place; the rest mirrors s3rver's own version.
  store.copyObject = async (srcBucket, srcKey, destBucket, destKey, meta) => {
    const src = (resource: string) => store.getResourcePath(srcBucket, srcKey, resource);
    const dest = (resource: string) => store.getResourcePath(destBucket, destKey, resource);
    if (src('object') !== dest('object')) {
      await mkdir(dirname(dest('object')), { recursive: true });
      const tmp = `${dest('object')}.${randomUUID()}.tmp`;
      await copyFile(src('object'), tmp);
      await rename(tmp, dest('object'));
    }
    if (meta) {
      await store.putMetadata(destBucket, destKey, meta);
    } else if (src('object') !== dest('object')) {
      await copyFile(src('metadata.json'), dest('metadata.json'));
      await copyFile(src('object.md5'), dest('object.md5'));
    }
    return store.getMetadata(destBucket, destKey);
  };

  // It accepted parts under S3's 5 MiB minimum, which S3 rejects with EntityTooSmall when the
  // upload is completed; planning commit parts around that limit is exactly what needs testing.
  const S3Error = createRequire(import.meta.url)('@20minutes/s3rver/lib/models/error.js') as S3ErrorCtor;
  const putObjectMultipart = store.putObjectMultipart.bind(store);
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const dir = join(store.getResourcePath(bucket, undefined, 'uploads'), uploadId);
    const sorted = [...parts].sort((a, b) => a.number - b.number);
    for (const part of sorted.slice(0, -1)) {
      const { size } = await stat(join(dir, String(part.number)));
      if (size < 5 * 1024 * 1024) {
        throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed object size.', {
          PartNumber: part.number,
          ProposedSize: size,
        });
      }
    }
    return putObjectMultipart(bucket, uploadId, parts);
  };

  // It has no AbortMultipartUpload (DELETE ?uploadId answered MethodNotAllowed), so a failed
  // multipart upload left its parts behind. This runs before s3rver's signature check.
  server.middleware.unshift(async (ctx, next) => {
    const uploadId = ctx.query.uploadId;
    const m = /^\/([^/]+)\/./.exec(ctx.path);
    if (ctx.method !== 'DELETE' || typeof uploadId !== 'string' || !m) return next();
    if (!/^[0-9a-f]+$/.test(uploadId)) {
      ctx.status = 400;
      return;
    }
    const dir = join(store.getResourcePath(m[1]!, undefined, 'uploads'), uploadId);
    const existed = await rm(dir, { recursive: true }).then(() => true, () => false);
    if (existed) {
      ctx.status = 204;
    } else {
      ctx.status = 404;
      ctx.type = 'application/xml';
      ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>';
    }
  });
}

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  stop(): Promise<void>;
}

const BUCKET = 'quayside-test';
type ReadyMessage = { port: number } | { error: string };

export async function startS3Server(): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), 'quayside-s3-'));
  // execArgv is cleared so the child does not inherit e.g. --test flags.
  const child = fork(fileURLToPath(import.meta.url), [directory], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  let port: number;
  try {
    port = await new Promise<number>((res, rej) => {
      child.once('message', (m: ReadyMessage) => ('port' in m ? res(m.port) : rej(new Error(`s3 test server: ${m.error}`))));
      child.once('error', rej);
      child.once('exit', (code) => rej(new Error(`s3 test server exited with ${code}`)));
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  // A test that forgets stop() must not hang: the child exits when this process goes away.
  child.unref();
  (child.channel as { unref?: () => void } | undefined)?.unref?.();
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket: BUCKET,
    // s3rver's built-in account.
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    stop() {
      stopping ??= stopChild(child, exited).finally(() => rm(directory, { recursive: true, force: true }));
      return stopping;
    },
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.disconnect();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Child side: serve until the parent disconnects. */
async function serve(directory: string): Promise<void> {
  const send = (m: ReadyMessage) => process.send!(m);
  try {
    patchSignatureV4();
    const S3rver = createRequire(import.meta.url)('@20minutes/s3rver') as S3rverCtor;
    const server = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory,
      vhostBuckets: false,
      configureBuckets: [{ name: BUCKET }],
    });
    patchS3rver(server);
    const addr = await server.run();
    // The parent disconnects to stop us, or by dying; either way leave nothing behind.
    process.once('disconnect', () => {
      setTimeout(() => process.exit(0), 2000).unref();
      server.close()
        .catch(() => {})
        .then(() => rm(directory, { recursive: true, force: true }))
        .finally(() => process.exit(0));
    });
    send({ port: addr.port });
  } catch (err) {
    send({ error: String((err as Error)?.stack ?? err) });
    process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  await serve(process.argv[2]!);
}

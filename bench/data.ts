import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

// AES-256-CTR over zeros is a fast, seekable, deterministic PRNG: any byte range
// of a large blob can be regenerated on demand, so nothing big is held in memory.

const BLOCK = 16;
const PIECE = 1 << 20;
const ZEROS = Buffer.alloc(PIECE);

function keyFor(seed: string): Buffer {
  return createHash('sha256').update(`quayside-bench:${seed}`).digest();
}

function counterIv(offset: number): Buffer {
  if (offset % BLOCK !== 0) throw new Error(`offset ${offset} not ${BLOCK}-byte aligned`);
  const iv = Buffer.alloc(BLOCK);
  iv.writeBigUInt64BE(BigInt(offset / BLOCK), 8);
  return iv;
}

/** Bytes [offset, offset+length) of the pseudo-random blob named by `seed`. */
export function blobStream(seed: string, offset: number, length: number): Readable {
  const cipher = createCipheriv('aes-256-ctr', keyFor(seed), counterIv(offset));
  let remaining = length;
  return new Readable({
    highWaterMark: PIECE,
    read() {
      if (remaining <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(PIECE, remaining);
      remaining -= n;
      this.push(cipher.update(n === PIECE ? ZEROS : ZEROS.subarray(0, n)));
    },
  });
}

/** The whole blob in memory, generated before a timed push so the load generator spends the shared
 * cores on sending only (the servers' CPU is what the benchmark compares). */
export async function blobBuffer(seed: string, size: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for await (const chunk of blobStream(seed, 0, size)) at += (chunk as Buffer).copy(out, at);
  return out;
}

/** First pass over the stream: the digest must be known before a monolithic PUT starts. */
export async function blobDigest(seed: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of blobStream(seed, 0, size)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

export interface SmallBlob {
  digest: string;
  data: Buffer;
}

export function smallBlobs(count: number, size: number): SmallBlob[] {
  const out: SmallBlob[] = [];
  for (let i = 0; i < count; i++) {
    const data = randomBytes(size);
    out.push({ digest: sha256(data), data });
  }
  return out;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

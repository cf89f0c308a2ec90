// Minimal ustar writer for building image layers offline. Produces a chunk stream so large files
// (busybox) are streamed rather than held whole; headers are deterministic (uid/gid 0, fixed
// mtime) so the same inputs always give the same layer digest.
import { createReadStream, statSync } from 'node:fs';

export type TarEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode?: number; content: string | Buffer }
  | { type: 'file'; path: string; mode?: number; source: string }
  | { type: 'symlink'; path: string; target: string };

const BLOCK = 512;
const END = Buffer.alloc(BLOCK * 2);

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  // ustar stores long paths as prefix + '/' + name; split at the last '/' that makes both fit.
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name) return { name, prefix };
  }
  throw new Error(`tar path too long for ustar: ${path}`);
}

export function tarHeader(opts: {
  path: string;
  size: number;
  mode: number;
  typeflag: '0' | '2' | '5';
  linkname?: string;
  mtime?: number;
}): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { name, prefix } = splitName(opts.path);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(opts.mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(opts.size, 12), 124, 'ascii');
  h.write(octal(opts.mtime ?? 0, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum is computed with its own field as spaces
  h.write(opts.typeflag, 156, 'ascii');
  if (opts.linkname) h.write(opts.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/** Yields the tar archive's bytes. Paths are relative ("bin/busybox"); dirs get a trailing '/'. */
export async function* tarStream(entries: TarEntry[], mtime = 0): AsyncGenerator<Buffer> {
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    if (e.type === 'dir') {
      yield tarHeader({ path: path.endsWith('/') ? path : path + '/', size: 0, mode: e.mode ?? 0o755, typeflag: '5', mtime });
    } else if (e.type === 'symlink') {
      yield tarHeader({ path, size: 0, mode: 0o777, typeflag: '2', linkname: e.target, mtime });
    } else if ('content' in e) {
      const body = typeof e.content === 'string' ? Buffer.from(e.content) : e.content;
      yield tarHeader({ path, size: body.length, mode: e.mode ?? 0o644, typeflag: '0', mtime });
      yield body;
      yield padding(body.length);
    } else {
      const size = statSync(e.source).size;
      yield tarHeader({ path, size, mode: e.mode ?? 0o755, typeflag: '0', mtime });
      let seen = 0;
      for await (const chunk of createReadStream(e.source)) {
        seen += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      if (seen !== size) throw new Error(`${e.source} changed size while archiving`);
      yield padding(size);
    }
  }
  yield END;
}

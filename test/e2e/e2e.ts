// Shared bits of the real-client end-to-end tests: step timings (printed after each file, so a
// slow client or server step is visible) and readers for what skopeo writes to oci:/dir:.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after } from 'node:test';
import type { RunResult } from '../support/clients.ts';

const timings: [string, number][] = [];

/** Prints the collected timings once the file's tests are done. */
export function reportTimings(title: string): void {
  after(() => {
    const total = timings.reduce((n, [, ms]) => n + ms, 0);
    console.log(`${title} timings (ms), total ${total}:\n` + timings.map(([l, ms]) => `  ${String(ms).padStart(6)}  ${l}`).join('\n'));
  });
}

export async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([label, Math.round(performance.now() - t0)]);
  }
}

export function sha256(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** Digest of the manifest skopeo wrote into a `dir:` destination (copied verbatim). */
export async function dirManifestDigest(dir: string): Promise<string> {
  return sha256(await readFile(join(dir, 'manifest.json')));
}

/** The descriptor index.json of an `oci:` destination holds for `tag`. */
export async function ociTagDescriptor(layout: string, tag: string): Promise<{ digest: string; mediaType: string; size: number }> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; mediaType: string; size: number; annotations?: Record<string, string> }[];
  };
  const hit = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!hit) throw new Error(`tag ${tag} not in ${layout}/index.json: ${JSON.stringify(index)}`);
  return hit;
}

export function ociBlob(layout: string, digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

/** The failure text of a client run, for assertions on what a user would read. */
export function failure(r: RunResult): string {
  return `exit ${r.code}${r.timedOut ? ' (timed out)' : ''}\n${r.stderr}`;
}

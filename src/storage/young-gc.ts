// Paces young-generation collections while large bodies stream through the process.
//
// Node's HTTP parser hands every body chunk (16–64 KiB) to JavaScript as a fresh Buffer whose bytes
// live outside the V8 heap. Those chunks die young, but a push allocates almost nothing else, so no
// scavenge runs to free them; their external bytes pile up until V8 24's "external memory pressure"
// starts a full mark-compact of the whole heap — about eight per 256 MiB pushed, with helper threads,
// which was half of the server's CPU per large push (measured: bench/blob-cost.ts). A scavenge of a
// small young generation frees the dead chunks for ~0.2 ms, so one every PACE_BYTES keeps the external
// total far below the pressure threshold and no full collection is needed.
//
// The collector is reachable only when the process runs with --expose-gc (bin/node-flags sets it);
// elsewhere (the in-process test server) this is a no-op and V8 falls back to its own pacing.

const PACE_BYTES = 16 * 1024 * 1024;

type GcFn = (opts?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

const gc: GcFn | undefined = typeof (globalThis as { gc?: unknown }).gc === 'function'
  ? ((globalThis as { gc: GcFn }).gc)
  : undefined;

let pending = 0;

/** Counts bytes of short-lived external buffers (request body chunks) that have been consumed. */
export function transientBytesConsumed(n: number): void {
  if (gc === undefined) return;
  pending += n;
  if (pending < PACE_BYTES) return;
  pending = 0;
  gc({ type: 'minor' });
}

export const youngGcPacing = gc !== undefined;

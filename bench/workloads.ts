import type { RegistryClient } from './client.ts';
import { blobBuffer, blobDigest, sha256, smallBlobs } from './data.ts';
import type { SmallBlob } from './data.ts';

export interface Sizes {
  smallCount: number;
  smallSize: number;
  pushConcurrency: number;
  bigSize: number;
  chunkSize: number;
  manifestSeconds: number;
  manifestConcurrency: number;
  pullConcurrency: number;
  tagCount: number;
  tagListCalls: number;
}

const MiB = 1 << 20;

export const FULL: Sizes = {
  smallCount: 2000,
  smallSize: 4096,
  pushConcurrency: 16,
  bigSize: 256 * MiB,
  chunkSize: 16 * MiB,
  manifestSeconds: 10,
  manifestConcurrency: 32,
  pullConcurrency: 16,
  tagCount: 5000,
  tagListCalls: 20,
};

export const QUICK: Sizes = {
  ...FULL,
  smallCount: 200,
  bigSize: 32 * MiB,
  chunkSize: 4 * MiB,
  manifestSeconds: 2,
  tagCount: 500,
};

// Hard ceilings so a pathological server cannot hang the run.
const LIMIT = {
  smallPushMs: 120_000,
  bigTransferMs: 600_000,
  tagPushMs: 300_000,
  tagListMs: 60_000,
  manifestMaxOps: 5_000_000,
};

export type Better = 'higher' | 'lower';

export interface Metric {
  id: string;
  workload: string;
  metric: string;
  better: Better;
  value?: number;
  note?: string;
  error?: string;
}

/** Inputs shared by both servers so they see byte-identical workloads. */
export interface Fixtures {
  sizes: Sizes;
  small: SmallBlob[];
  smallSinglePost: SmallBlob[];
  bigMono: { seed: string; digest: string };
  bigChunked: { seed: string; digest: string };
  layer: SmallBlob;
  config: SmallBlob;
  manifest: Buffer;
}

export const MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
export const ACCEPT = [
  MANIFEST_TYPE,
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

export async function makeFixtures(sizes: Sizes, runId: string): Promise<Fixtures> {
  const layer = smallBlobs(1, sizes.smallSize)[0];
  const configJson = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'quayside-bench' }],
  });
  const config = { data: Buffer.from(configJson), digest: sha256(configJson) };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.data.length, digest: config.digest },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.data.length, digest: layer.digest }],
    }),
  );
  const monoSeed = `${runId}-mono`;
  const chunkedSeed = `${runId}-chunked`;
  return {
    sizes,
    small: smallBlobs(sizes.smallCount, sizes.smallSize),
    smallSinglePost: smallBlobs(sizes.smallCount, sizes.smallSize),
    bigMono: { seed: monoSeed, digest: await blobDigest(monoSeed, sizes.bigSize) },
    bigChunked: { seed: chunkedSeed, digest: await blobDigest(chunkedSeed, sizes.bigSize) },
    layer,
    config,
    manifest,
  };
}

interface PoolResult {
  done: number;
  seconds: number;
  truncated: boolean;
}

/** Runs fn(0..count-1) with bounded concurrency; stops handing out work at the deadline. */
async function pool(count: number, concurrency: number, limitMs: number, fn: (i: number) => Promise<void>): Promise<PoolResult> {
  let next = 0;
  let done = 0;
  let failed = false;
  const start = performance.now();
  const deadline = start + limitMs;
  // One failure stops every worker, so a broken step does not keep loading the next one.
  const worker = async (): Promise<void> => {
    while (!failed && next < count && performance.now() < deadline) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed = true;
        throw err;
      }
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { done, seconds: (performance.now() - start) / 1000, truncated: done < count };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

const MB = 1e6;

function mbps(bytes: number, seconds: number): number {
  return bytes / MB / seconds;
}

function truncNote(r: PoolResult, total: number): string | undefined {
  return r.truncated ? `time limit hit: ${r.done}/${total}` : undefined;
}

async function guarded(ids: Omit<Metric, 'value'>[], body: () => Promise<Metric[]>): Promise<Metric[]> {
  try {
    return await body();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return ids.map((m) => ({ ...m, error: message.split('\n')[0].slice(0, 200) }));
  }
}

const REPO = {
  small: 'bench/small',
  big: 'bench/big',
  manifests: 'bench/manifests',
  tags: 'bench/tags',
};

// --- 1. small blob pushes ---------------------------------------------------

export async function smallBlobPush(client: RegistryClient, fx: Fixtures): Promise<Metric[]> {
  const { sizes } = fx;
  const label = `1. push ${sizes.smallCount} × ${sizes.smallSize / 1024} KiB blobs, c=${sizes.pushConcurrency}`;
  const twoReq: Omit<Metric, 'value'> = { id: 'small-push', workload: label, metric: 'POST+PUT blobs/s', better: 'higher' };
  const single: Omit<Metric, 'value'> = { id: 'small-push-single', workload: label, metric: 'single POST ?digest= blobs/s', better: 'higher' };
  const out = await guarded([twoReq], async () => {
    const r = await pool(fx.small.length, sizes.pushConcurrency, LIMIT.smallPushMs, (i) =>
      client.pushBlob(REPO.small, fx.small[i].digest, fx.small[i].data),
    );
    return [{ ...twoReq, value: r.done / r.seconds, note: truncNote(r, fx.small.length) }];
  });
  out.push(
    ...(await guarded([single], async () => {
      // One probe blob decides support, so an unsupporting peer costs one request, not 2,000.
      const [probe, ...rest] = fx.smallSinglePost;
      if (!(await client.pushBlobSinglePost(REPO.small, probe.digest, probe.data))) {
        return [{ ...single, note: 'unsupported (server answered 202: opened a session instead)' }];
      }
      const r = await pool(rest.length, sizes.pushConcurrency, LIMIT.smallPushMs, async (i) => {
        if (!(await client.pushBlobSinglePost(REPO.small, rest[i].digest, rest[i].data))) {
          throw new Error('server stopped honouring single POST uploads');
        }
      });
      return [{ ...single, value: r.done / r.seconds, note: truncNote(r, rest.length) }];
    })),
  );
  return out;
}

// --- 2. big blob pushes -----------------------------------------------------

export async function bigBlobPush(client: RegistryClient, fx: Fixtures): Promise<Metric[]> {
  const { sizes } = fx;
  const label = `2. push one ${sizes.bigSize / MiB} MiB blob`;
  const mono: Omit<Metric, 'value'> = { id: 'big-push-mono', workload: label, metric: 'monolithic PUT MB/s', better: 'higher' };
  const chunked: Omit<Metric, 'value'> = {
    id: 'big-push-chunked',
    workload: label,
    metric: `chunked PATCH ${sizes.chunkSize / MiB} MiB MB/s`,
    better: 'higher',
  };
  const out = await guarded([mono], async () => {
    const data = await blobBuffer(fx.bigMono.seed, sizes.bigSize);
    const t0 = performance.now();
    await client.pushBlobStream(REPO.big, fx.bigMono.digest, sizes.bigSize, data, LIMIT.bigTransferMs);
    return [{ ...mono, value: mbps(sizes.bigSize, (performance.now() - t0) / 1000) }];
  });
  out.push(
    ...(await guarded([chunked], async () => {
      const data = await blobBuffer(fx.bigChunked.seed, sizes.bigSize);
      const t0 = performance.now();
      await client.pushBlobChunked(
        REPO.big,
        fx.bigChunked.digest,
        sizes.bigSize,
        sizes.chunkSize,
        (start, length) => data.subarray(start, start + length),
        LIMIT.bigTransferMs,
      );
      return [{ ...chunked, value: mbps(sizes.bigSize, (performance.now() - t0) / 1000) }];
    })),
  );
  return out;
}

// --- 3. manifest GET by tag -------------------------------------------------

async function pushImage(client: RegistryClient, repo: string, fx: Fixtures): Promise<void> {
  await client.pushBlob(repo, fx.layer.digest, fx.layer.data);
  await client.pushBlob(repo, fx.config.digest, fx.config.data);
}

export async function manifestGet(client: RegistryClient, fx: Fixtures): Promise<Metric[]> {
  const { sizes } = fx;
  const label = `3. manifest GET by tag, c=${sizes.manifestConcurrency}, ${sizes.manifestSeconds} s`;
  const ids: Omit<Metric, 'value'>[] = [
    { id: 'manifest-rps', workload: label, metric: 'req/s', better: 'higher' },
    { id: 'manifest-p50', workload: label, metric: 'p50 latency ms', better: 'lower' },
    { id: 'manifest-p99', workload: label, metric: 'p99 latency ms', better: 'lower' },
  ];
  return guarded(ids, async () => {
    await pushImage(client, REPO.manifests, fx);
    await client.putManifest(REPO.manifests, 'latest', MANIFEST_TYPE, fx.manifest);
    // Warm-up: token fetch, socket pool, server caches.
    await pool(200, sizes.manifestConcurrency, 10_000, async () => {
      await client.getManifest(REPO.manifests, 'latest', ACCEPT);
    });
    const latencies = new Float64Array(LIMIT.manifestMaxOps);
    let n = 0;
    let failed = false;
    const start = performance.now();
    const end = start + sizes.manifestSeconds * 1000;
    const worker = async (): Promise<void> => {
      while (!failed && performance.now() < end && n < LIMIT.manifestMaxOps) {
        const t = performance.now();
        try {
          const res = await client.getManifest(REPO.manifests, 'latest', ACCEPT);
          if (res.body.length !== fx.manifest.length) throw new Error(`manifest body ${res.body.length} bytes, expected ${fx.manifest.length}`);
        } catch (err) {
          failed = true;
          throw err;
        }
        latencies[n++] = performance.now() - t;
      }
    };
    await Promise.all(Array.from({ length: sizes.manifestConcurrency }, worker));
    const seconds = (performance.now() - start) / 1000;
    const sorted = latencies.subarray(0, n).sort();
    return [
      { ...ids[0], value: n / seconds, note: `${n} requests` },
      { ...ids[1], value: percentile(sorted, 50) },
      { ...ids[2], value: percentile(sorted, 99) },
    ];
  });
}

// --- 4. blob pulls (reuses what 1 and 2 pushed) -----------------------------

export async function blobPull(client: RegistryClient, fx: Fixtures): Promise<Metric[]> {
  const { sizes } = fx;
  const big: Omit<Metric, 'value'> = { id: 'pull-big', workload: `4. blob pull`, metric: `GET ${sizes.bigSize / MiB} MiB MB/s`, better: 'higher' };
  const small: Omit<Metric, 'value'> = {
    id: 'pull-small',
    workload: `4. blob pull`,
    metric: `GET ${sizes.smallCount} × ${sizes.smallSize / 1024} KiB, c=${sizes.pullConcurrency}, req/s`,
    better: 'higher',
  };
  const out = await guarded([big], async () => {
    const t0 = performance.now();
    const bytes = await client.pullBlob(REPO.big, fx.bigMono.digest, LIMIT.bigTransferMs);
    const seconds = (performance.now() - t0) / 1000;
    if (bytes !== sizes.bigSize) throw new Error(`pulled ${bytes} bytes, expected ${sizes.bigSize}`);
    return [{ ...big, value: mbps(bytes, seconds) }];
  });
  out.push(
    ...(await guarded([small], async () => {
      const r = await pool(fx.small.length, sizes.pullConcurrency, LIMIT.smallPushMs, async (i) => {
        const bytes = await client.pullBlob(REPO.small, fx.small[i].digest);
        if (bytes !== sizes.smallSize) throw new Error(`pulled ${bytes} bytes, expected ${sizes.smallSize}`);
      });
      return [{ ...small, value: r.done / r.seconds, note: truncNote(r, fx.small.length) }];
    })),
  );
  return out;
}

// --- 5. tags/list on a repository with many tags ----------------------------

export async function tagList(client: RegistryClient, fx: Fixtures): Promise<Metric[]> {
  const { sizes } = fx;
  const label = `5. tags/list, ${sizes.tagCount} tags`;
  const push: Omit<Metric, 'value'> = { id: 'tag-push', workload: label, metric: `tag PUTs/s (setup, c=${sizes.pushConcurrency})`, better: 'higher' };
  const list: Omit<Metric, 'value'> = { id: 'tag-list', workload: label, metric: `full listings/s (?n=${sizes.tagCount}, Link followed; ${sizes.tagListCalls} sequential)`, better: 'higher' };
  return guarded([push, list], async () => {
    await pushImage(client, REPO.tags, fx);
    const width = String(sizes.tagCount - 1).length;
    const r = await pool(sizes.tagCount, sizes.pushConcurrency, LIMIT.tagPushMs, (i) =>
      client.putManifest(REPO.tags, `t${String(i).padStart(width, '0')}`, MANIFEST_TYPE, fx.manifest),
    );
    if (r.truncated) throw new Error(`tag setup hit time limit: ${r.done}/${sizes.tagCount}`);
    const pushMetric: Metric = { ...push, value: r.done / r.seconds };
    const first = await client.listTags(REPO.tags, sizes.tagCount);
    if (first.tags.length !== sizes.tagCount) throw new Error(`listed ${first.tags.length} tags, expected ${sizes.tagCount}`);
    let calls = 0;
    let pages = 0;
    const t0 = performance.now();
    const deadline = t0 + LIMIT.tagListMs;
    while (calls < sizes.tagListCalls && performance.now() < deadline) {
      const listing = await client.listTags(REPO.tags, sizes.tagCount);
      pages += listing.pages;
      calls++;
    }
    const seconds = (performance.now() - t0) / 1000;
    const perListing = pages / calls;
    return [
      pushMetric,
      {
        ...list,
        value: calls / seconds,
        note: `${perListing === 1 ? '1 page' : `${perListing.toFixed(1)} pages`} per listing${calls < sizes.tagListCalls ? `; time limit hit at ${calls}` : ''}`,
      },
    ];
  });
}

/** Numbered as in the brief; pulls (4) read back what 1 and 2 pushed. `only` picks steps by number. */
export async function runAll(
  client: RegistryClient, fx: Fixtures, log: (msg: string) => void, only?: ReadonlySet<number>, stepPeakKiB?: () => number,
): Promise<Metric[]> {
  const steps: [string, (c: RegistryClient, f: Fixtures) => Promise<Metric[]>][] = [
    ['small blob push', smallBlobPush],
    ['big blob push', bigBlobPush],
    ['manifest GET', manifestGet],
    ['blob pull', blobPull],
    ['tags/list', tagList],
  ];
  // Tokens first, untimed: a token request checks the bench user's bcrypt password (~0.25 s of server
  // CPU, once per repository), which is login cost, not the transfer each step measures.
  for (const repo of Object.values(REPO)) await client.authorize(repo);
  const results: Metric[] = [];
  const peaks: Metric[] = [];
  for (const [i, [name, step]] of steps.entries()) {
    if (only && !only.has(i + 1)) continue;
    const t0 = performance.now();
    log(`  ${name}…`);
    // Each step starts from a collected load-generator heap: the last step's garbage (two 256 MiB
    // blobs after step 2) must not be freed in the middle of the next one's timing.
    (globalThis as { gc?: () => void }).gc?.();
    stepPeakKiB?.();
    const metrics = await step(client, fx);
    for (const m of metrics) if (m.error) log(`    ${m.metric}: ERROR ${m.error}`);
    log(`  ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    results.push(...metrics);
    if (stepPeakKiB) peaks.push({ id: `rss-${i + 1}`, workload: 'server cost', metric: `max RSS MiB during ${i + 1}. ${name}`, better: 'lower', value: stepPeakKiB() / 1024 });
  }
  return [...results, ...peaks];
}

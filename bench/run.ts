import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RegistryClient } from './client.ts';
import { RssSampler, treeCpuSeconds } from './rss.ts';
import { killAllStarted, startServer } from './servers.ts';
import type { ServerName } from './servers.ts';
import { FULL, QUICK, makeFixtures, runAll } from './workloads.ts';
import type { Fixtures, Metric } from './workloads.ts';

const USAGE = `usage: npm run bench -- [--quick] [--only quayside|distribution] [--steps 1,2,4] [--rounds N] [--json out.json]
  --steps: 1 small push, 2 big push, 3 manifest GET, 4 blob pull (needs 1 and 2), 5 tags/list`;

const SERVERS: ServerName[] = ['quayside', 'distribution'];

interface ServerResult {
  server: ServerName;
  metrics: Metric[];
  error?: string;
}

const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};

function parse(): { quick: boolean; only?: ServerName; json?: string; rounds: number; steps?: Set<number> } {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      json: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      steps: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    log(USAGE);
    process.exit(0);
  }
  if (values.only !== undefined && !SERVERS.includes(values.only as ServerName)) {
    log(`--only must be one of ${SERVERS.join(', ')}\n${USAGE}`);
    process.exit(2);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) {
    log(`--rounds must be an integer from 1 to 10\n${USAGE}`);
    process.exit(2);
  }
  let steps: Set<number> | undefined;
  if (values.steps !== undefined) {
    steps = new Set(values.steps.split(',').map(Number));
    if ([...steps].some((n) => !Number.isInteger(n) || n < 1 || n > 5)) {
      log(`--steps takes step numbers 1-5, comma-separated\n${USAGE}`);
      process.exit(2);
    }
  }
  return { quick: values.quick, only: values.only as ServerName | undefined, json: values.json, rounds, steps };
}

async function benchServer(name: ServerName, repoRoot: string, fx: Fixtures, steps?: ReadonlySet<number>): Promise<ServerResult> {
  log(`\n== ${name}`);
  let server;
  try {
    server = await startServer(name, repoRoot);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`  could not start: ${message}`);
    return { server: name, metrics: [], error: `could not start: ${message.split('\n')[0]}` };
  }
  log(`  listening on ${server.baseUrl} (pid ${server.pid}, log ${server.logPath})`);
  const sampler = new RssSampler(server.pid);
  sampler.start(200);
  const cpuAtStart = treeCpuSeconds(server.pid);
  const client = new RegistryClient({
    baseUrl: server.baseUrl,
    username: server.credentials?.username,
    password: server.credentials?.password,
    maxSockets: 64,
  });
  try {
    await client.ping();
    const metrics = await runAll(client, fx, log, steps, () => sampler.takeWindow());
    const maxKiB = sampler.stop();
    const cpu = treeCpuSeconds(server.pid) - cpuAtStart;
    metrics.push({
      id: 'rss',
      workload: 'server cost',
      metric: 'max RSS MiB (200 ms samples)',
      better: 'lower',
      value: maxKiB / 1024,
      note: `${sampler.samples} samples`,
    });
    // Client and server share 2 cores, so server CPU time is the fairer cost measure.
    metrics.push({ id: 'cpu', workload: 'server cost', metric: 'server CPU seconds, whole run', better: 'lower', value: cpu });
    log(`  ${client.requestCount} HTTP requests, max RSS ${(maxKiB / 1024).toFixed(1)} MiB, server CPU ${cpu.toFixed(1)} s`);
    return { server: name, metrics };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    log(`  failed: ${message}`);
    return { server: name, metrics: [], error: message.split('\n')[0] };
  } finally {
    sampler.stop();
    client.close();
    await server.stop();
  }
}

/** Per-metric median over rounds; a metric that failed in any round is reported failed. */
function median(runs: ServerResult[]): ServerResult {
  if (runs.length === 1) return runs[0];
  const failedRun = runs.find((r) => r.error);
  if (failedRun) return failedRun;
  const metrics = runs[0].metrics.map((m): Metric => {
    const all = runs.map((r) => r.metrics.find((x) => x.id === m.id));
    const failed = all.find((x) => x?.error);
    if (failed) return failed;
    const values = all.map((x) => x?.value).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    if (values.length === 0) return m;
    const mid = values.length >> 1;
    const value = values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    return { ...m, value, note: [m.note, `median of ${values.length}: ${values.map(fmt).join(' / ')}`].filter(Boolean).join('; ') };
  });
  return { server: runs[0].server, metrics };
}

function fmt(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function cell(m: Metric | undefined, result: ServerResult | undefined, notes: string[]): string {
  if (!result) return 'not run';
  if (result.error && !m) return 'ERROR';
  if (!m) return '—';
  if (m.error) {
    notes.push(`${result.server} / ${m.metric}: ${m.error}`);
    return 'ERROR';
  }
  if (m.note) notes.push(`${result.server} / ${m.metric}: ${m.note}`);
  return m.value === undefined ? 'n/a' : fmt(m.value);
}

/** >1 always means Quayside is better, whichever direction the metric runs. */
function ratio(q: Metric | undefined, d: Metric | undefined): string {
  if (q?.value === undefined || d?.value === undefined || q.error || d.error) return '—';
  if (q.value === 0 || d.value === 0) return '—';
  const r = q.better === 'higher' ? q.value / d.value : d.value / q.value;
  return `${r.toFixed(2)}×`;
}

function table(results: ServerResult[], fx: Fixtures, quick: boolean, rounds: number): string {
  const by = new Map(results.map((r) => [r.server, r]));
  const q = by.get('quayside');
  const d = by.get('distribution');
  const order: Metric[] = [];
  const seen = new Set<string>();
  for (const r of [q, d]) {
    for (const m of r?.metrics ?? []) {
      if (!seen.has(m.id)) {
        seen.add(m.id);
        order.push(m);
      }
    }
  }
  let distVersion = 'unknown';
  try {
    distVersion = execFileSync('/usr/bin/docker-registry', ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as unknown
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const s = fx.sizes;
  const lines = [
    `## Quayside vs Distribution${quick ? ' (quick smoke run, reduced sizes)' : ''}`,
    '',
    `- ${new Date().toISOString()}, Node ${process.version}, ${availableParallelism()} cores (${cpu}).`,
    `- **The load generator and the server share these ${availableParallelism()} cores**: absolute numbers are lower bounds; compare the ratio column.`,
    `- Peer: ${distVersion}, filesystem storage, no auth, access log off. Quayside: \`serve --data-dir\` with its default auth (bench superuser).`,
    `- Sizes: ${s.smallCount} × ${s.smallSize / 1024} KiB blobs, ${s.bigSize / (1 << 20)} MiB big blob (${s.chunkSize / (1 << 20)} MiB chunks), ${s.tagCount} tags. MB = 10^6 bytes.`,
    `- Ratio = Quayside / Distribution for throughput, Distribution / Quayside for latency, memory and CPU: **>1 means Quayside is better**.`,
    `- ${rounds === 1 ? 'Single round: expect run-to-run noise of ±20-40% on this shared machine; use --rounds 3 for medians.' : `Median of ${rounds} rounds (servers alternate within a round).`}`,
    '',
    '| Workload | Metric | Quayside | Distribution | Ratio (>1 = Quayside better) |',
    '|---|---|---:|---:|---:|',
  ];
  const notes: string[] = [];
  for (const m of order) {
    const qm = q?.metrics.find((x) => x.id === m.id);
    const dm = d?.metrics.find((x) => x.id === m.id);
    lines.push(`| ${m.workload} | ${m.metric} | ${cell(qm, q, notes)} | ${cell(dm, d, notes)} | ${ratio(qm, dm)} |`);
  }
  for (const r of results) if (r.error) notes.unshift(`${r.server}: ${r.error}`);
  if (notes.length > 0) lines.push('', 'Notes:', ...notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = parse();
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const sizes = args.quick ? QUICK : FULL;
  const targets = args.only ? [args.only] : SERVERS;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAllStarted();
      process.exit(130);
    });
  }
  log(`preparing fixtures (${sizes.bigSize / (1 << 20)} MiB digests computed from the PRNG stream)…`);
  const fx = await makeFixtures(sizes, randomBytes(8).toString('hex'));
  const rounds: ServerResult[][] = targets.map(() => []);
  // Servers alternate within each round so background noise hits both alike.
  for (let round = 0; round < args.rounds; round++) {
    if (args.rounds > 1) log(`\n### round ${round + 1}/${args.rounds}`);
    for (const [i, name] of targets.entries()) rounds[i].push(await benchServer(name, repoRoot, fx, args.steps));
  }
  const results = rounds.map(median);
  const out = table(results, fx, args.quick, args.rounds);
  process.stdout.write(`\n${out}\n`);
  if (args.json) writeFileSync(args.json, JSON.stringify({ sizes, rounds, results }, null, 2));
  if (results.some((r) => r.error || r.metrics.some((m) => m.error))) process.exitCode = 1;
}

main().catch((err: unknown) => {
  killAllStarted();
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});

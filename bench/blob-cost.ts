// Per-operation cost of large blob transfers on one server: server CPU seconds and peak RSS per
// 256 MiB push (monolithic PUT, 16 MiB PATCHes) and pull (this Node client, and curl, which costs
// the shared cores far less). CPU per operation is the number to compare on a busy machine.
//   node --expose-gc bench/blob-cost.ts [quayside|distribution] [rounds]
import { execFileSync } from 'node:child_process';
import { blobBuffer, blobDigest } from './data.ts';
import { RssSampler, treeCpuSeconds, treeRssKiB } from './rss.ts';
import { costMain } from './cost-main.ts';

const MiB = 1 << 20;
const SIZE = 256 * MiB;
const REPO = 'bench/cost';
const LIMIT_MS = 600_000;

interface Row {
  op: string;
  mbps: number[];
  cpuPerOp: number;
  maxRssMiB: number;
}

/** Runs op once per round; prepare (untimed, e.g. generating the blob to push) runs before each. */
async function measure<T>(pid: number, rounds: number, op: (i: number, prepared: T) => Promise<void>,
  prepare: (i: number) => Promise<T> = async () => undefined as T): Promise<Omit<Row, 'op'>> {
  const sampler = new RssSampler(pid);
  sampler.start(50);
  let cpu = 0;
  const mbps: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const prepared = await prepare(i);
    const cpu0 = treeCpuSeconds(pid);
    const t0 = performance.now();
    await op(i, prepared);
    mbps.push(SIZE / 1e6 / ((performance.now() - t0) / 1000));
    cpu += treeCpuSeconds(pid) - cpu0;
  }
  return { mbps, cpuPerOp: cpu / rounds, maxRssMiB: sampler.stop() / 1024 };
}

costMain('node --expose-gc bench/blob-cost.ts [quayside|distribution] [rounds]', 3, async (name, rounds, server, client) => {
  const seeds = Array.from({ length: 2 * rounds }, (_, i) => `cost-${i}`);
  const digests = await Promise.all(seeds.map((s) => blobDigest(s, SIZE)));
  const rows: Row[] = [];
  const idle = treeRssKiB(server.pid) / 1024;
  rows.push({ op: 'push: monolithic PUT', ...await measure(server.pid, rounds, (i, data: Buffer) =>
    client.pushBlobStream(REPO, digests[i]!, SIZE, data, LIMIT_MS), (i) => blobBuffer(seeds[i]!, SIZE)) });
  rows.push({ op: 'push: 16 MiB PATCHes', ...await measure(server.pid, rounds, (i, data: Buffer) =>
    client.pushBlobChunked(REPO, digests[rounds + i]!, SIZE, 16 * MiB, (s, l) => data.subarray(s, s + l), LIMIT_MS),
  (i) => blobBuffer(seeds[rounds + i]!, SIZE)) });
  rows.push({ op: 'pull: Node client', ...await measure(server.pid, rounds, async () => {
    const n = await client.pullBlob(REPO, digests[0]!, LIMIT_MS);
    if (n !== SIZE) throw new Error(`pulled ${n} bytes`);
  }) });
  let auth: string[] = [];
  if (server.credentials) {
    const basic = Buffer.from(`${server.credentials.username}:${server.credentials.password}`).toString('base64');
    const r = await fetch(`${server.baseUrl}/v2/auth?service=bench&scope=repository:${REPO}:pull`, { headers: { authorization: `Basic ${basic}` } });
    auth = ['-H', `Authorization: Bearer ${((await r.json()) as { token: string }).token}`];
  }
  rows.push({ op: 'pull: curl', ...await measure(server.pid, rounds, async () => {
    const n = Number(execFileSync('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', ...auth, `${server.baseUrl}/v2/${REPO}/blobs/${digests[0]}`], { encoding: 'utf8' }));
    if (n !== SIZE) throw new Error(`curl pulled ${n} bytes`);
  }) });
  console.log(`## ${name}: 256 MiB blobs, ${rounds} rounds (RSS before the first push: ${idle.toFixed(0)} MiB)\n`);
  console.log('| Operation | MB/s (each round) | server CPU s / op | max RSS MiB |\n|---|---|---:|---:|');
  for (const r of rows) console.log(`| ${r.op} | ${r.mbps.map((v) => v.toFixed(0)).join(' / ')} | ${r.cpuPerOp.toFixed(2)} | ${r.maxRssMiB.toFixed(0)} |`);
});

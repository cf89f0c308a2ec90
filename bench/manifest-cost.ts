// Per-request cost of manifest GET by tag on one server: server CPU microseconds per request
// (the number to compare on a busy machine) plus the wall-clock rate, at concurrency 32.
//   node bench/manifest-cost.ts [quayside|distribution] [requests]
import { sha256, smallBlobs } from './data.ts';
import { treeCpuSeconds } from './rss.ts';
import type { RegistryClient } from './client.ts';
import { costMain } from './cost-main.ts';
import { ACCEPT, MANIFEST_TYPE } from './workloads.ts';

const REPO = 'bench/mcost';
const CONCURRENCY = 32;

async function run(client: RegistryClient, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next++ < count) {
      const res = await client.getManifest(REPO, 'latest', ACCEPT);
      if (res.status !== 200) throw new Error(`manifest GET answered ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

costMain('node bench/manifest-cost.ts [quayside|distribution] [requests]', 20_000, async (name, count, server, client) => {
  const layer = smallBlobs(1, 4096)[0]!;
  const configJson = JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } });
  const config = { data: Buffer.from(configJson), digest: sha256(configJson) };
  await client.pushBlob(REPO, layer.digest, layer.data);
  await client.pushBlob(REPO, config.digest, config.data);
  await client.putManifest(REPO, 'latest', MANIFEST_TYPE, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MANIFEST_TYPE,
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.data.length, digest: config.digest },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.data.length, digest: layer.digest }],
  })));
  await run(client, 2000); // warm-up: token, sockets, JIT
  process.stderr.write(`measuring (server pid ${server.pid})\n`);
  const cpu0 = treeCpuSeconds(server.pid);
  const t0 = performance.now();
  await run(client, count);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = treeCpuSeconds(server.pid) - cpu0;
  console.log(`${name}: ${count} manifest GETs, ${(count / seconds).toFixed(0)} req/s, server CPU ${(cpu * 1e6 / count).toFixed(0)} µs/request`);
});

// The young-generation pacing used while request bodies stream: with --expose-gc (as bin/node-flags
// runs the server) every 16 MiB of consumed body bytes runs one scavenge; without it, nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const moduleUrl = new URL('../../src/storage/young-gc.ts', import.meta.url).href;

function run(flags: string[]): { pacing: boolean; minor: number } {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    const { transientBytesConsumed, youngGcPacing } = await import(${JSON.stringify(moduleUrl)});
    let minor = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    });
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((r) => setTimeout(r, 50));
    minor = 0;
    for (let i = 0; i < 4 * 16; i++) transientBytesConsumed(1024 * 1024); // 64 MiB: four paces
    await new Promise((r) => setTimeout(r, 50));
    obs.disconnect();
    console.log(JSON.stringify({ pacing: youngGcPacing, minor }));`;
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()!) as { pacing: boolean; minor: number };
}

test('bin/node-flags exposes the collector the pacing needs', () => {
  const flags = readFileSync(fileURLToPath(new URL('../../bin/node-flags', import.meta.url)), 'utf8').split('\n').map((l) => l.trim());
  assert.ok(flags.includes('--expose-gc'));
});

test('with --expose-gc, 64 MiB of consumed body bytes run four scavenges', () => {
  const r = run(['--expose-gc']);
  assert.equal(r.pacing, true);
  assert.ok(r.minor >= 4, `${r.minor} scavenges`);
});

test('without --expose-gc it does nothing', () => {
  const r = run([]);
  assert.equal(r.pacing, false);
  assert.ok(r.minor <= 1, `${r.minor} scavenges (V8 may run one of its own)`);
});

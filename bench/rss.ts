import { readFileSync, readdirSync } from 'node:fs';

// Sums the whole process tree: a server may fork workers (cluster, helpers),
// and their memory is part of its cost.

function vmRssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // the process exited between listing and reading
  }
  return out;
}

// USER_HZ is 100 on every Linux ABI Node supports.
const TICKS_PER_SECOND = 100;

/** utime + stime in seconds, from /proc/<pid>/stat (fields 14 and 15). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces; fields are counted after its closing paren.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

function treeSum(root: number, measure: (pid: number) => number): number {
  let total = 0;
  const seen = new Set<number>();
  const queue = [root];
  while (queue.length > 0 && seen.size < 1024) {
    const pid = queue.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    total += measure(pid);
    queue.push(...children(pid));
  }
  return total;
}

export function treeRssKiB(root: number): number {
  return treeSum(root, vmRssKiB);
}

export function treeCpuSeconds(root: number): number {
  return treeSum(root, cpuSeconds);
}

export class RssSampler {
  private readonly pid: number;
  private timer?: NodeJS.Timeout;
  maxKiB = 0;
  samples = 0;
  /** Max since the last takeWindow(), so each workload's peak can be reported on its own. */
  private windowKiB = 0;

  constructor(pid: number) {
    this.pid = pid;
  }

  start(intervalMs = 200): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    return this.maxKiB;
  }

  takeWindow(): number {
    this.sample();
    const w = this.windowKiB;
    this.windowKiB = 0;
    return w;
  }

  private sample(): void {
    const kib = treeRssKiB(this.pid);
    this.samples++;
    if (kib > this.maxKiB) this.maxKiB = kib;
    if (kib > this.windowKiB) this.windowKiB = kib;
  }
}

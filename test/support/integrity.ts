// Invariants of the registry core that must hold after anything — crashes, races, bad input:
// every blob's bytes hash to its digest, every manifest row's bytes to its digest, and each tag
// name has one history of non-overlapping lifetimes with at most one live row.
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Services } from '../../src/model/context.ts';
import { layout, PathNotFoundError } from '../../src/storage/driver.ts';

type Inspect = Pick<Services, 'db' | 'storage'>;

async function hashOf(s: Inspect, path: string, algorithm = 'sha256'): Promise<{ digest: string; size: number } | null> {
  let stream;
  try {
    stream = await s.storage.read(path);
  } catch (e) {
    if (e instanceof PathNotFoundError) return null;
    throw e;
  }
  const h = createHash(algorithm);
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `${algorithm}:${h.digest('hex')}`, size };
}

/** Re-hashes every blob the database knows and every object under blobs/ in storage (orphans
 * included: an orphan may be swept, but never hold the wrong bytes). Returns the problems found. */
export async function blobProblems(s: Inspect): Promise<string[]> {
  const problems: string[] = [];
  const rows = await s.db.selectFrom('blobs').select(['digest', 'size']).execute();
  for (const r of rows) {
    const got = await hashOf(s, layout.blob(r.digest), r.digest.split(':')[0]);
    if (!got) problems.push(`blob row ${r.digest} has no bytes in storage`);
    else if (got.digest !== r.digest || got.size !== r.size) problems.push(`blob row ${r.digest} (${r.size} B) holds ${got.digest} (${got.size} B)`);
  }
  for await (const path of s.storage.list('blobs/')) {
    const m = /^blobs\/(sha256|sha512)\/([0-9a-f]{2})\/([0-9a-f]{64}|[0-9a-f]{128})$/.exec(path);
    if (!m || !m[3]!.startsWith(m[2]!)) {
      problems.push(`unexpected object ${path} under blobs/`);
      continue;
    }
    const got = await hashOf(s, path, m[1]);
    if (got && got.digest !== `${m[1]}:${m[3]}`) problems.push(`object ${path} holds ${got.digest}`);
  }
  return problems;
}

export async function manifestProblems(s: Inspect): Promise<string[]> {
  const problems: string[] = [];
  const rows = await s.db.selectFrom('manifests').select(['id', 'digest', 'bytes', 'size']).execute();
  for (const r of rows) {
    const bytes = Buffer.from(r.bytes);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (digest !== r.digest || bytes.length !== r.size) problems.push(`manifest ${r.id} ${r.digest} holds ${digest} (${bytes.length} B, row says ${r.size})`);
  }
  return problems;
}

/** Per (repository, visible tag name): at most one live row, and lifetimes that follow each other
 * without overlapping. `now` decides what "live" means. */
export async function tagHistoryProblems(s: Inspect, now = Date.now()): Promise<string[]> {
  const problems: string[] = [];
  const rows = await s.db.selectFrom('tags').select(['id', 'repository_id', 'name', 'lifetime_start', 'lifetime_end', 'manifest_id'])
    .where('hidden', '=', 0).orderBy('repository_id').orderBy('name').orderBy('lifetime_start').orderBy('id').execute();
  const groups = new Map<string, typeof rows>();
  for (const r of rows) {
    const k = `${r.repository_id}/${r.name}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  for (const [k, g] of groups) {
    const live = g.filter((r) => r.lifetime_end === null || r.lifetime_end > now);
    if (live.length > 1) problems.push(`${k}: ${live.length} live rows (${live.map((r) => r.id).join(', ')})`);
    for (const r of g) {
      if (r.lifetime_end !== null && r.lifetime_end < r.lifetime_start) problems.push(`${k}: row ${r.id} ends before it starts`);
    }
    for (let i = 1; i < g.length; i++) {
      const prev = g[i - 1]!;
      const next = g[i]!;
      if (prev.lifetime_end === null || prev.lifetime_end > next.lifetime_start) {
        problems.push(`${k}: row ${prev.id} [${prev.lifetime_start}, ${prev.lifetime_end}] overlaps row ${next.id} [${next.lifetime_start}, ${next.lifetime_end}]`);
      }
    }
  }
  return problems;
}

export async function allProblems(s: Inspect): Promise<string[]> {
  return [...(await blobProblems(s)), ...(await manifestProblems(s)), ...(await tagHistoryProblems(s))];
}

/** Every file below a directory with its size: a before/after snapshot of local storage. */
export async function fileTree(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  async function walk(d: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(dir, p), (await stat(p)).size);
    }
  }
  await walk(dir);
  return out;
}

/** Row counts of the tables a /v2 write can touch. */
export async function registryRowCounts(s: Inspect): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of ['repositories', 'uploads', 'blobs', 'repo_blobs', 'manifests', 'manifest_blobs', 'manifest_children', 'tags'] as const) {
    const r = await s.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    out[table] = Number(r.n);
  }
  return out;
}

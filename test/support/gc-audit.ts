// What garbage collection promises, checked from outside: reachable content is whole (by /v2 or
// straight from the database and storage, every digest re-hashed), nothing points at something
// missing, and after a pass nothing collectable is left. Shared by the GC load and crash tests.
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Services } from '../../src/model/context.ts';
import { layout, PathNotFoundError } from '../../src/storage/driver.ts';
import type { RegistryClient } from './registry-client.ts';

type Inspect = Pick<Services, 'db' | 'storage' | 'config'>;

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

interface Descriptor { digest: string; size: number; urls?: string[] }

/** The blobs and child manifests a manifest's bytes reference. */
export function references(bytes: Uint8Array): { blobs: Descriptor[]; children: Descriptor[] } {
  const m = JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  if (Array.isArray(m.manifests)) return { blobs: [], children: m.manifests };
  return { blobs: [m.config, ...(m.layers ?? [])].filter((d): d is Descriptor => !!d && !d.urls?.length), children: [] };
}

function digestOf(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function hashObject(s: Pick<Services, 'storage'>, digest: string): Promise<{ digest: string; size: number } | null> {
  let stream;
  try {
    stream = await s.storage.read(layout.blob(digest));
  } catch (e) {
    if (e instanceof PathNotFoundError) return null;
    throw e;
  }
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** A stored manifest and everything below it, as a pull would need them: the manifest row (bytes
 * hash to its digest), each blob's row, its link to the repository and its object (re-hashed),
 * each child manifest recursively. `hashed` caches blobs already verified. */
export async function storedClosureProblems(s: Inspect, repoId: number, digest: string, hashed = new Set<string>()): Promise<string[]> {
  const m = await s.db.selectFrom('manifests').select(['id', 'bytes']).where('repository_id', '=', repoId).where('digest', '=', digest).executeTakeFirst();
  if (!m) return [`repository ${repoId}: manifest ${digest} is gone`];
  const bytes = Buffer.from(m.bytes);
  if (digestOf(bytes) !== digest) return [`repository ${repoId}: manifest ${digest} holds other bytes`];
  const problems: string[] = [];
  const refs = references(bytes);
  for (const b of refs.blobs) {
    const row = await s.db.selectFrom('blobs').innerJoin('repo_blobs', 'repo_blobs.blob_id', 'blobs.id').select(['blobs.size'])
      .where('blobs.digest', '=', b.digest).where('repo_blobs.repository_id', '=', repoId).executeTakeFirst();
    if (!row) {
      problems.push(`repository ${repoId}: manifest ${digest} needs blob ${b.digest}, which has no row linked to the repository`);
      continue;
    }
    if (hashed.has(b.digest)) continue;
    const got = await hashObject(s, b.digest);
    if (!got) problems.push(`blob ${b.digest} (of manifest ${digest}) has no object`);
    else if (got.digest !== b.digest || got.size !== b.size) problems.push(`blob ${b.digest} holds ${got.digest} (${got.size} B)`);
    else hashed.add(b.digest);
  }
  for (const c of refs.children) problems.push(...(await storedClosureProblems(s, repoId, c.digest, hashed)));
  return problems;
}

/** Pulls `ref` through /v2 as a client would: the manifest, then every child and blob, each
 * re-hashed against its digest. Returns the problems, and the manifest digest when it resolved. */
export async function pullProblems(c: RegistryClient, repo: string, ref: string, hashed = new Set<string>()): Promise<{ digest: string | null; problems: string[]; status: number }> {
  const scope = `repository:${repo}:pull`;
  const res = await c.req('GET', `/v2/${repo}/manifests/${ref}`, { scope, headers: { accept: MANIFEST_ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) return { digest: null, problems: [`GET ${repo}:${ref} answered ${res.status} ${body.toString().slice(0, 200)}`], status: res.status };
  const digest = digestOf(body);
  const problems: string[] = [];
  if (res.headers.get('docker-content-digest') !== digest) problems.push(`${repo}:${ref}: Docker-Content-Digest ${res.headers.get('docker-content-digest')} for bytes ${digest}`);
  if (ref.includes(':') && ref !== digest) problems.push(`${repo}@${ref} returned bytes of ${digest}`);
  const refs = references(body);
  for (const b of refs.blobs) {
    const key = `${repo}@${b.digest}`;
    if (hashed.has(key)) continue;
    const blob = await c.req('GET', `/v2/${repo}/blobs/${b.digest}`, { scope });
    const data = Buffer.from(await blob.arrayBuffer());
    if (blob.status !== 200) problems.push(`${repo}: blob ${b.digest} of ${digest} answered ${blob.status} ${data.toString().slice(0, 200)}`);
    else if (digestOf(data) !== b.digest || data.length !== b.size) problems.push(`${repo}: blob ${b.digest} of ${digest} came back as ${digestOf(data)} (${data.length} B)`);
    else hashed.add(key);
  }
  for (const child of refs.children) {
    const sub = await pullProblems(c, repo, child.digest, hashed);
    problems.push(...sub.problems);
  }
  return { digest, problems, status: 200 };
}

/** Rows that point at something missing, and blob rows whose object is missing or wrong. */
export async function danglingReferences(s: Inspect): Promise<string[]> {
  const problems: string[] = [];
  const say = (what: string, rows: unknown[]) => {
    if (rows.length) problems.push(`${rows.length} ${what}: ${JSON.stringify(rows.slice(0, 5))}`);
  };
  say('manifest_blobs rows without their blob', await s.db.selectFrom('manifest_blobs').leftJoin('blobs', 'blobs.id', 'manifest_blobs.blob_id')
    .select(['manifest_blobs.manifest_id', 'manifest_blobs.blob_id']).where('blobs.id', 'is', null).execute());
  say('manifest_blobs rows without their manifest', await s.db.selectFrom('manifest_blobs').leftJoin('manifests', 'manifests.id', 'manifest_blobs.manifest_id')
    .select(['manifest_blobs.manifest_id']).where('manifests.id', 'is', null).execute());
  say('repo_blobs rows without their blob', await s.db.selectFrom('repo_blobs').leftJoin('blobs', 'blobs.id', 'repo_blobs.blob_id')
    .select(['repo_blobs.repository_id', 'repo_blobs.blob_id']).where('blobs.id', 'is', null).execute());
  say('tags without their manifest', await s.db.selectFrom('tags').leftJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.id', 'tags.manifest_id']).where('manifests.id', 'is', null).execute());
  say('manifest_children rows without their child', await s.db.selectFrom('manifest_children').leftJoin('manifests', 'manifests.id', 'manifest_children.child_id')
    .select(['manifest_children.manifest_id', 'manifest_children.child_id']).where('manifests.id', 'is', null).execute());
  // Every manifest's blobs are linked to its repository (a pull checks the link).
  say('manifest blobs not linked to the manifest\'s repository', await s.db.selectFrom('manifest_blobs')
    .select(['manifest_blobs.manifest_id', 'manifest_blobs.blob_id'])
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('repo_blobs').select('repo_blobs.blob_id')
      .whereRef('repo_blobs.repository_id', '=', 'manifest_blobs.repository_id').whereRef('repo_blobs.blob_id', '=', 'manifest_blobs.blob_id'))))
    .execute());
  for (const r of await s.db.selectFrom('blobs').select(['digest', 'size']).execute()) {
    const got = await hashObject(s, r.digest);
    if (!got) problems.push(`blob row ${r.digest} has no object`);
    else if (got.digest !== r.digest || got.size !== r.size) problems.push(`blob row ${r.digest} (${r.size} B) holds ${got.digest} (${got.size} B)`);
  }
  return problems;
}

/** What a finished collection pass that started at `now` must have removed. Returns one line per
 * kind of leftover (with a few examples). */
export async function garbageLeft(s: Inspect, now: number): Promise<string[]> {
  const grace = s.config.pushTempTagExpirationSeconds * 1000;
  const out: string[] = [];
  const say = (what: string, rows: unknown[]) => {
    if (rows.length) out.push(`${rows.length} ${what}: ${JSON.stringify(rows.slice(0, 5))}`);
  };
  say('tag rows past their time-machine window or expiry', await s.db.selectFrom('tags')
    .innerJoin('repositories', 'repositories.id', 'tags.repository_id').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select(['tags.id', 'tags.name', 'tags.repository_id']).where('tags.lifetime_end', 'is not', null)
    .where((eb) => eb.or([
      eb.and([eb('tags.hidden', '=', 1), eb('tags.lifetime_end', '<=', now)]),
      eb.and([eb('tags.hidden', '=', 0), eb(sql<number>`tags.lifetime_end + users.tag_expiration_s * 1000`, '<=', now)]),
    ])).execute());
  say('referrer tags whose subject is gone', await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .select(['tags.id', 'manifests.digest', 'manifests.subject_digest']).where('tags.hidden', '=', 1).where('tags.lifetime_end', 'is', null)
    .where('manifests.subject_digest', 'is not', null).where('tags.lifetime_start', '<=', now - grace)
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('manifests as subj').select('subj.id')
      .whereRef('subj.repository_id', '=', 'manifests.repository_id').whereRef('subj.digest', '=', 'manifests.subject_digest'))))
    .execute());
  say('repositories marked for deletion', await s.db.selectFrom('repositories').select(['id', 'name'])
    .where('state', '=', 'MARKED_FOR_DELETION').execute());
  say('manifests no tag row and no index references', await s.db.selectFrom('manifests').select(['id', 'digest', 'repository_id'])
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('tags').select('tags.id').whereRef('tags.manifest_id', '=', 'manifests.id'))))
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('manifest_children').select('manifest_children.child_id').whereRef('manifest_children.child_id', '=', 'manifests.id'))))
    .execute());
  say('expired blob links no manifest of their repository uses', await s.db.selectFrom('repo_blobs').select(['repository_id', 'blob_id', 'expires_at'])
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '<=', now)]))
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('manifest_blobs').select('manifest_blobs.blob_id')
      .whereRef('manifest_blobs.repository_id', '=', 'repo_blobs.repository_id').whereRef('manifest_blobs.blob_id', '=', 'repo_blobs.blob_id'))))
    .execute());
  say('blob rows nothing links or references', await s.db.selectFrom('blobs').select(['id', 'digest'])
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('repo_blobs').select('repo_blobs.blob_id').whereRef('repo_blobs.blob_id', '=', 'blobs.id'))))
    .where(({ not, exists, selectFrom }) => not(exists(selectFrom('manifest_blobs').select('manifest_blobs.blob_id').whereRef('manifest_blobs.blob_id', '=', 'blobs.id'))))
    .execute());
  const orphans: string[] = [];
  for await (const path of s.storage.list('blobs/')) {
    const m = /^blobs\/sha256\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(path);
    if (!m) continue;
    if (await s.db.selectFrom('blobs').select('id').where('digest', '=', `sha256:${m[1]}`).executeTakeFirst()) continue;
    const st = await s.storage.stat(path);
    if (st.exists && st.modified.getTime() <= now - grace) orphans.push(path);
  }
  say('objects without a blob row, older than the grace window', orphans);
  return out;
}

/** Manifests that must be whole: those of live tags (visible or hidden) and of history still
 * inside its namespace's time-machine window at `now`, in repositories not marked for deletion. */
export async function protectedManifests(s: Inspect, now: number, marginMs = 0): Promise<{ repositoryId: number; repo: string; digest: string; tag: string; live: boolean; hidden: boolean }[]> {
  const rows = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
    .innerJoin('repositories', 'repositories.id', 'tags.repository_id').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select(['tags.repository_id', 'users.username', 'repositories.name as repo', 'manifests.digest', 'tags.name', 'tags.lifetime_end', 'tags.hidden', 'users.tag_expiration_s'])
    .where('repositories.state', '!=', 'MARKED_FOR_DELETION').execute();
  return rows.filter((r) => {
    if (r.lifetime_end === null || r.lifetime_end > now) return true;
    return !r.hidden && r.lifetime_end + r.tag_expiration_s * 1000 > now + marginMs;
  }).map((r) => ({
    repositoryId: r.repository_id, repo: `${r.username}/${r.repo}`, digest: r.digest, tag: r.name,
    live: r.lifetime_end === null || r.lifetime_end > now, hidden: !!r.hidden,
  }));
}

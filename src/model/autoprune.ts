// Auto-prune policies (FEATURE_AUTO_PRUNE): per namespace (organization or user) or per
// repository, keep only the newest N tags (`number_of_tags`) or the tags younger than a duration
// (`creation_date`, e.g. "7d"), optionally only among tags whose name matches (or does not match)
// a pattern. A queued job per namespace applies them, after pushes and on a schedule. A pruned tag's
// lifetime ends as on a delete, so it stays restorable from the time machine; immutable tags are
// never pruned.
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { requireOrgAdmin } from './organizations.ts';
import { enqueue } from './queue.ts';
import { accessRepo } from './repository-api.ts';
import type { Repo } from './repositories.ts';
import { assertTagPattern, selectedByPattern } from './tag-pattern.ts';
import { aliveAt, lockRepository } from './tags.ts';
import { policyProtectedNames } from './immutability.ts';

type Db = Transaction<Database> | Services['db'];

export const AUTOPRUNE_QUEUE = 'autoprune';
export const AUTOPRUNE_SWEEP_QUEUE = 'autoprune_sweep';

// ---- Who owns a policy (shared with immutability policies)

export type PolicyOwner =
  | { kind: 'org'; orgname: string }
  /** The calling user's own namespace (/user/autoprunepolicy/). */
  | { kind: 'user' }
  | { kind: 'repo'; namespace: string; name: string };

export interface ResolvedOwner {
  namespaceId: number;
  namespace: string;
  repo: Repo | null;
}

/**
 * Authorizes before revealing existence: organization admins (superusers with full access; global
 * read-only superusers for reads), the user themself, or repository admins.
 */
export async function resolvePolicyOwner(s: Services, p: Principal, owner: PolicyOwner, mode: 'read' | 'write'): Promise<ResolvedOwner> {
  switch (owner.kind) {
    case 'org': {
      const { org } = await requireOrgAdmin(s, p, owner.orgname, mode);
      return { namespaceId: org.id, namespace: org.username, repo: null };
    }
    case 'user':
      if (p.kind !== 'user') throw new DomainError('denied', 'Unauthorized');
      return { namespaceId: p.userId, namespace: p.username, repo: null };
    case 'repo': {
      const { repo } = await accessRepo(s, p, owner.namespace, owner.name, 'admin', { readonlySuperuser: mode === 'read' });
      return { namespaceId: repo.namespace_id, namespace: repo.namespace, repo };
    }
  }
}

// ---- Policy values

export type PruneMethod = 'number_of_tags' | 'creation_date';

/** The stored policy (autoprune_policies.policy), in Quay's key names. */
export interface PolicyConfig {
  method: PruneMethod;
  value: number | string;
  tag_pattern: string | null;
  tag_pattern_matches: boolean;
}

export interface AutoprunePolicy {
  uuid: string;
  method: string | null;
  value: number | string | null;
  tagPattern: string | null;
  tagPatternMatches: boolean | null;
}

export interface AutopruneInput {
  method: string;
  value: number | string;
  tagPattern?: string;
  tagPatternMatches?: boolean;
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** Python's timedelta stops at 999999999 days. */
const MAX_DELTA_MS = 999_999_999 * 86_400_000;

/**
 * Quay's convert_to_timedelta: Python int() of everything but the last character (so surrounding
 * spaces, a sign and digit-separating underscores are accepted), then one of s, m, h, d, w.
 */
export function parseDelta(value: string): number | null {
  const m = /^(\s*[+-]?\d+(?:_\d+)*\s*)([smhdw])$/.exec(value);
  if (!m) return null;
  const ms = Number(m[1]!.trim().replace(/_/g, '')) * UNIT_MS[m[2]!]!;
  return Number.isSafeInteger(ms) && Math.abs(ms) <= MAX_DELTA_MS ? ms : null;
}

function validValue(method: PruneMethod, value: unknown): boolean {
  if (!value) return false;
  if (method === 'number_of_tags') return typeof value === 'number' && Number.isInteger(value) && value > 0;
  return typeof value === 'string' && parseDelta(value) !== null;
}

/** Quay's assert_valid_*_autoprune_policy, plus a bounded, linear-time pattern. */
function normalize(input: AutopruneInput): PolicyConfig {
  if (input.method !== 'number_of_tags' && input.method !== 'creation_date') throw new DomainError('invalid_request', 'Invalid method provided');
  if (!validValue(input.method, input.value)) throw new DomainError('invalid_request', 'Invalid value given for method type');
  const pattern = typeof input.tagPattern === 'string' ? input.tagPattern.trim() : null;
  if (pattern === '') throw new DomainError('invalid_request', 'tag_pattern cannot be empty');
  if (pattern !== null) assertTagPattern(pattern);
  return { method: input.method, value: input.value, tag_pattern: pattern, tag_pattern_matches: input.tagPatternMatches ?? true };
}

function readConfig(text: string): Partial<PolicyConfig> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Partial<PolicyConfig>) : {};
  } catch {
    return {};
  }
}

type Row = { id: number; uuid: string; policy: string; repository_id: number | null };

/** Quay's get_view. */
function view(r: Row): AutoprunePolicy {
  const c = readConfig(r.policy);
  return { uuid: r.uuid, method: c.method ?? null, value: c.value ?? null, tagPattern: c.tag_pattern ?? null, tagPatternMatches: c.tag_pattern_matches ?? null };
}

function rowsOf(db: Db, o: ResolvedOwner) {
  let q = db.selectFrom('autoprune_policies').select(['id', 'uuid', 'policy', 'repository_id']).where('namespace_id', '=', o.namespaceId);
  q = o.repo ? q.where('repository_id', '=', o.repo.id) : q.where('repository_id', 'is', null);
  return q;
}

const kindOf = (o: ResolvedOwner) => (o.repo ? 'repository' : 'namespace');

function logMeta(o: ResolvedOwner, extra: Record<string, unknown>): Record<string, unknown> {
  return { ...extra, namespace: o.namespace, ...(o.repo ? { repo: o.repo.name } : {}) };
}

function configMeta(c: PolicyConfig): Record<string, unknown> {
  return { method: c.method, value: c.value, tag_pattern: c.tag_pattern, tag_pattern_matches: c.tag_pattern_matches };
}

// ---- Policies through the API

export async function listAutoprunePolicies(s: Services, p: Principal, owner: PolicyOwner): Promise<AutoprunePolicy[]> {
  const o = await resolvePolicyOwner(s, p, owner, 'read');
  return (await rowsOf(s.db, o).orderBy('id').execute()).map(view);
}

export async function getAutoprunePolicy(s: Services, p: Principal, owner: PolicyOwner, uuid: string): Promise<AutoprunePolicy> {
  const o = await resolvePolicyOwner(s, p, owner, 'read');
  const row = await rowsOf(s.db, o).where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  return view(row);
}

function sameConfig(a: Partial<PolicyConfig>, b: PolicyConfig): boolean {
  return a.method === b.method && a.value === b.value && (a.tag_pattern ?? null) === b.tag_pattern && (a.tag_pattern_matches ?? true) === b.tag_pattern_matches;
}

export async function createAutoprunePolicy(
  s: Services, actor: { principal: Principal; ip: string | null }, owner: PolicyOwner, input: AutopruneInput,
): Promise<string> {
  const o = await resolvePolicyOwner(s, actor.principal, owner, 'write');
  const cfg = normalize(input);
  const uuid = randomUUID();
  await s.db.transaction().execute(async (tx) => {
    const existing = await rowsOf(tx, o).execute();
    if (existing.some((r) => sameConfig(readConfig(r.policy), cfg))) {
      throw new DomainError('invalid_request', `Existing policy with same values for this ${kindOf(o)}, duplicate policies are not permitted`);
    }
    await tx.insertInto('autoprune_policies').values({ uuid, namespace_id: o.namespaceId, repository_id: o.repo?.id ?? null, policy: JSON.stringify(cfg) }).execute();
    await logAction(s, `create_${kindOf(o)}_autoprune_policy`, {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, configMeta(cfg)),
    }, tx);
    // Quay's create_task: the namespace gets a prune run soon after its first policy.
    await enqueueNamespacePrune(s, o.namespaceId, tx);
  });
  return uuid;
}

export async function updateAutoprunePolicy(
  s: Services, actor: { principal: Principal; ip: string | null }, owner: PolicyOwner, uuid: string, input: AutopruneInput,
): Promise<void> {
  const o = await resolvePolicyOwner(s, actor.principal, owner, 'write');
  const row = await rowsOf(s.db, o).where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  const cfg = normalize(input);
  await s.db.transaction().execute(async (tx) => {
    const r = await tx.updateTable('autoprune_policies').set({ policy: JSON.stringify(cfg) }).where('id', '=', row.id).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new DomainError('not_found', 'Not Found');
    await logAction(s, `update_${kindOf(o)}_autoprune_policy`, {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, configMeta(cfg)),
    }, tx);
    await enqueueNamespacePrune(s, o.namespaceId, tx);
  });
}

export async function deleteAutoprunePolicy(
  s: Services, actor: { principal: Principal; ip: string | null }, owner: PolicyOwner, uuid: string,
): Promise<void> {
  const o = await resolvePolicyOwner(s, actor.principal, owner, 'write');
  await s.db.transaction().execute(async (tx) => {
    const row = await rowsOf(tx, o).where('uuid', '=', uuid).executeTakeFirst();
    if (!row) throw new DomainError('not_found', 'Not Found');
    await tx.deleteFrom('autoprune_policies').where('id', '=', row.id).execute();
    await logAction(s, `delete_${kindOf(o)}_autoprune_policy`, {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, { policy_uuid: uuid }),
    }, tx);
  });
}

// ---- Scheduling

/** One pending prune job per namespace however often it is asked for. */
export function enqueueNamespacePrune(s: Services, namespaceId: number, db: Db = s.db): Promise<boolean> {
  return enqueue(s, AUTOPRUNE_QUEUE, { namespace_id: namespaceId }, { dedupeKey: `autoprune:${namespaceId}` }, db);
}

/** After a push created or moved a tag: queue a prune of the namespace when it has policies. Never
 * fails the push. */
export async function schedulePruneAfterPush(s: Services, repo: { namespace_id: number }): Promise<void> {
  if (!s.config.features.AUTO_PRUNE) return;
  try {
    const any = await s.db.selectFrom('autoprune_policies').select('id').where('namespace_id', '=', repo.namespace_id).limit(1).executeTakeFirst();
    if (any) await enqueueNamespacePrune(s, repo.namespace_id);
  } catch (err) {
    s.log.warn({ err, namespaceId: repo.namespace_id }, 'could not queue auto-prune after push');
  }
}

/** The periodic sweep: a prune job for every namespace with a policy. Returns how many were queued. */
export async function queueAutopruneSweep(s: Services): Promise<number> {
  if (!s.config.features.AUTO_PRUNE) return 0;
  const rows = await s.db.selectFrom('autoprune_policies').select('namespace_id').distinct().execute();
  let queued = 0;
  for (const r of rows) if (await enqueueNamespacePrune(s, r.namespace_id)) queued++;
  return queued;
}

/** Quay's AUTOPRUNE_TASK_RUN_MINIMUM_INTERVAL_MINUTES (default 60), as the sweep period. */
export function autopruneIntervalMs(s: Services): number {
  const v = Number(s.config.raw.AUTOPRUNE_TASK_RUN_MINIMUM_INTERVAL_MINUTES);
  return (Number.isFinite(v) && v > 0 ? v : 60) * 60_000;
}

// ---- Pruning

const REPO_PAGE = 100;
const TAG_BATCH = 100;

interface LiveTag {
  id: number;
  name: string;
  lifetime_start: number;
  immutable: number;
}

/** Applies every policy of the namespace (and of its repositories) to its normal repositories. */
export async function pruneNamespace(s: Services, namespaceId: number, signal?: AbortSignal): Promise<{ pruned: number }> {
  if (!s.config.features.AUTO_PRUNE) return { pruned: 0 };
  const ns = await s.db.selectFrom('users').select(['id', 'username', 'enabled']).where('id', '=', namespaceId).executeTakeFirst();
  if (!ns || ns.enabled !== 1) return { pruned: 0 };
  const rows = await s.db.selectFrom('autoprune_policies').select(['id', 'policy', 'repository_id']).where('namespace_id', '=', ns.id).orderBy('id').execute();
  const nsPolicies: PolicyConfig[] = [];
  const repoPolicies = new Map<number, PolicyConfig[]>();
  for (const r of rows) {
    const cfg = usable(readConfig(r.policy));
    if (!cfg) {
      s.log.warn({ policyId: r.id }, 'skipping an invalid auto-prune policy');
      continue;
    }
    if (r.repository_id === null) nsPolicies.push(cfg);
    else repoPolicies.set(r.repository_id, [...(repoPolicies.get(r.repository_id) ?? []), cfg]);
  }
  if (nsPolicies.length === 0 && repoPolicies.size === 0) return { pruned: 0 };

  let pruned = 0;
  let after = 0;
  for (;;) {
    signal?.throwIfAborted();
    let q = s.db.selectFrom('repositories').select(['id', 'name']).where('namespace_id', '=', ns.id).where('state', '=', 'NORMAL').where('id', '>', after);
    if (nsPolicies.length === 0) q = q.where('id', 'in', [...repoPolicies.keys()]);
    const repos = await q.orderBy('id').limit(REPO_PAGE).execute();
    for (const repo of repos) {
      signal?.throwIfAborted();
      const policies = [...nsPolicies, ...(repoPolicies.get(repo.id) ?? [])];
      if (policies.length) pruned += await pruneRepository(s, { id: repo.id, name: repo.name, namespace_id: ns.id, namespace: ns.username }, policies);
    }
    if (repos.length < REPO_PAGE) break;
    after = repos[repos.length - 1]!.id;
  }
  return { pruned };
}

function usable(c: Partial<PolicyConfig>): PolicyConfig | null {
  if (c.method !== 'number_of_tags' && c.method !== 'creation_date') return null;
  if (!validValue(c.method, c.value)) return null;
  return { method: c.method, value: c.value!, tag_pattern: typeof c.tag_pattern === 'string' ? c.tag_pattern : null, tag_pattern_matches: c.tag_pattern_matches !== false };
}

/**
 * The tags the policies remove, as Quay orders the work: every creation_date policy first, then
 * every number_of_tags policy over what is left (so the result does not depend on policy order).
 * Counting keeps the newest tags among those the policy's pattern selects; protected (immutable)
 * tags are never removed but still count as kept.
 */
export function tagsToPrune(tags: readonly LiveTag[], policies: readonly PolicyConfig[], now: number, isProtected: (t: LiveTag) => boolean): LiveTag[] {
  const newestFirst = [...tags].sort((a, b) => b.lifetime_start - a.lifetime_start || b.id - a.id);
  const doomed = new Set<number>();
  const selected = (p: PolicyConfig, t: LiveTag) => selectedByPattern(p.tag_pattern, p.tag_pattern_matches, t.name, 'search');
  for (const p of policies) {
    if (p.method !== 'creation_date') continue;
    const age = parseDelta(p.value as string)!;
    for (const t of newestFirst) if (now - t.lifetime_start > age && selected(p, t) && !isProtected(t)) doomed.add(t.id);
  }
  for (const p of policies) {
    if (p.method !== 'number_of_tags') continue;
    const candidates = newestFirst.filter((t) => !doomed.has(t.id) && selected(p, t));
    for (const t of candidates.slice(p.value as number)) if (!isProtected(t)) doomed.add(t.id);
  }
  return newestFirst.filter((t) => doomed.has(t.id));
}

async function pruneRepository(
  s: Services, repo: { id: number; name: string; namespace_id: number; namespace: string }, policies: PolicyConfig[],
): Promise<number> {
  const now = s.now();
  const tags = await s.db.selectFrom('tags').select(['id', 'name', 'lifetime_start', 'immutable'])
    .where('repository_id', '=', repo.id).where('hidden', '=', 0).where(aliveAt(now)).execute();
  const live = tags.map((t) => ({ id: t.id, name: t.name, lifetime_start: Number(t.lifetime_start), immutable: t.immutable }));
  const guarded = await policyProtectedNames(s, repo, live.map((t) => t.name));
  const flags = s.config.features.IMMUTABLE_TAGS;
  const doomed = tagsToPrune(live, policies, now, (t) => (flags && t.immutable === 1) || guarded.has(t.name));
  let pruned = 0;
  for (let i = 0; i < doomed.length; i += TAG_BATCH) {
    const batch = doomed.slice(i, i + TAG_BATCH);
    pruned += await s.db.transaction().execute(async (tx) => {
      await lockRepository(s, tx, repo.id);
      const at = s.now();
      // Re-read under the lock: a tag moved, deleted or made immutable since stays as it is.
      const current = await tx.selectFrom('tags').select(['id', 'name', 'immutable']).where('id', 'in', batch.map((t) => t.id))
        .where(aliveAt(at)).execute();
      const guardedNow = await policyProtectedNames(s, repo, current.map((t) => t.name), tx);
      let n = 0;
      for (const t of current) {
        if ((flags && t.immutable === 1) || guardedNow.has(t.name)) continue;
        await tx.updateTable('tags').set({ lifetime_end: at }).where('id', '=', t.id).execute();
        await logAction(s, 'autoprune_tag_delete', {
          namespaceId: repo.namespace_id, repositoryId: repo.id, performer: null, ip: null,
          metadata: { performer: 'autoprune worker', namespace: repo.namespace, repo: repo.name, tag: t.name },
        }, tx);
        n++;
      }
      return n;
    });
  }
  return pruned;
}

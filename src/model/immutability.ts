// Tag immutability (FEATURE_IMMUTABLE_TAGS). A tag is immutable when its own flag is set (PUT
// /tag/{tag} {"immutable": true}) or when an immutability policy of its repository or namespace
// selects its name. Policies are evaluated whenever a tag is about to change rather than copied onto
// tag rows, so a new policy protects tags that already exist and removing one releases them.
// Quay matches policy patterns at the start of the name (Python's re.match).
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { assertTagPattern, selectedByPattern } from './tag-pattern.ts';
import { resolvePolicyOwner, type PolicyOwner } from './autoprune.ts';

type Db = Transaction<Database> | Services['db'];

export interface RepoKey {
  id: number;
  namespace_id: number;
}

interface PatternRow {
  tag_pattern: string;
  tag_pattern_matches: number;
}

// ---- Enforcement

async function policiesFor(db: Db, repo: RepoKey): Promise<PatternRow[]> {
  return db.selectFrom('immutability_policies').select(['tag_pattern', 'tag_pattern_matches'])
    .where('namespace_id', '=', repo.namespace_id)
    .where((eb) => eb.or([eb('repository_id', 'is', null), eb('repository_id', '=', repo.id)]))
    .execute();
}

function protects(policies: PatternRow[], name: string): boolean {
  return policies.some((p) => selectedByPattern(p.tag_pattern, p.tag_pattern_matches === 1, name, 'prefix'));
}

/** With the feature off nothing is immutable (as in Quay, where the flag is then ignored). */
export async function isTagImmutable(s: Services, db: Db, repo: RepoKey, tag: { name: string; immutable: number | boolean }): Promise<boolean> {
  if (!s.config.features.IMMUTABLE_TAGS) return false;
  if (tag.immutable === true || tag.immutable === 1) return true;
  return protects(await policiesFor(db, repo), tag.name);
}

export type ImmutableOperation = 'delete' | 'overwrite' | 'change expiration of';

/** Quay's ImmutableTagException: "Cannot <operation> immutable tag '<tag>'" (409 tag_immutable on
 * the API, TAG_IMMUTABLE on /v2 with the tag named in detail). */
export function immutableTagError(name: string, op: ImmutableOperation): DomainError {
  return new DomainError('tag_immutable', `Cannot ${op} immutable tag '${name}'`, { message: `tag '${name}' is immutable` });
}

export async function assertTagMutable(
  s: Services, db: Db, repo: RepoKey, tag: { name: string; immutable: number | boolean }, op: ImmutableOperation,
): Promise<void> {
  if (await isTagImmutable(s, db, repo, tag)) throw immutableTagError(tag.name, op);
}

/** The names among `names` that the repository's or namespace's policies protect (for listings). */
export async function policyProtectedNames(s: Services, repo: RepoKey, names: readonly string[], db: Db = s.db): Promise<Set<string>> {
  if (!s.config.features.IMMUTABLE_TAGS || names.length === 0) return new Set();
  const policies = await policiesFor(db, repo);
  if (policies.length === 0) return new Set();
  return new Set(names.filter((n) => protects(policies, n)));
}

// ---- Policies through the API

/** Owners of immutability policies: organizations and repositories. */
export type ImmutabilityOwner = Extract<PolicyOwner, { kind: 'org' | 'repo' }>;

export interface ImmutabilityPolicy {
  uuid: string;
  tagPattern: string;
  tagPatternMatches: boolean;
}

export interface ImmutabilityInput {
  tagPattern?: string | null;
  tagPatternMatches?: boolean;
}

interface NormalizedInput {
  tag_pattern: string;
  tag_pattern_matches: boolean;
}

/** Quay's _parse_policy_config + _validate_policy. */
function normalize(input: ImmutabilityInput): NormalizedInput {
  const pattern = typeof input.tagPattern === 'string' ? input.tagPattern.trim() : '';
  if (!pattern) throw new DomainError('invalid_request', 'tag_pattern is required and must be a non-empty string');
  assertTagPattern(pattern);
  return { tag_pattern: pattern, tag_pattern_matches: input.tagPatternMatches ?? true };
}

type Row = { id: number; uuid: string; tag_pattern: string; tag_pattern_matches: number };

function view(r: Row): ImmutabilityPolicy {
  return { uuid: r.uuid, tagPattern: r.tag_pattern, tagPatternMatches: r.tag_pattern_matches === 1 };
}

function rowsOf(db: Db, namespaceId: number, repositoryId: number | null) {
  let q = db.selectFrom('immutability_policies').select(['id', 'uuid', 'tag_pattern', 'tag_pattern_matches']).where('namespace_id', '=', namespaceId);
  q = repositoryId === null ? q.where('repository_id', 'is', null) : q.where('repository_id', '=', repositoryId);
  return q;
}

const DUPLICATE = 'A policy with the same tag_pattern already exists';

export async function listImmutabilityPolicies(s: Services, p: Principal, owner: ImmutabilityOwner): Promise<ImmutabilityPolicy[]> {
  const o = await resolvePolicyOwner(s, p, owner, 'read');
  return (await rowsOf(s.db, o.namespaceId, o.repo?.id ?? null).orderBy('id').execute()).map(view);
}

export async function getImmutabilityPolicy(s: Services, p: Principal, owner: ImmutabilityOwner, uuid: string): Promise<ImmutabilityPolicy> {
  const o = await resolvePolicyOwner(s, p, owner, 'read');
  const row = await rowsOf(s.db, o.namespaceId, o.repo?.id ?? null).where('uuid', '=', uuid).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  return view(row);
}

function logMeta(o: { namespace: string; repo: { name: string } | null }, extra: Record<string, unknown>): Record<string, unknown> {
  return { namespace: o.namespace, ...(o.repo ? { repo: o.repo.name } : {}), ...extra };
}

export async function createImmutabilityPolicy(
  s: Services, actor: { principal: Principal; ip: string | null }, owner: ImmutabilityOwner, input: ImmutabilityInput,
): Promise<string> {
  const o = await resolvePolicyOwner(s, actor.principal, owner, 'write');
  const cfg = normalize(input);
  const uuid = randomUUID();
  await s.db.transaction().execute(async (tx) => {
    const existing = await rowsOf(tx, o.namespaceId, o.repo?.id ?? null).where('tag_pattern', '=', cfg.tag_pattern).executeTakeFirst();
    if (existing) throw new DomainError('invalid_request', DUPLICATE);
    await tx.insertInto('immutability_policies').values({
      uuid, namespace_id: o.namespaceId, repository_id: o.repo?.id ?? null, tag_pattern: cfg.tag_pattern, tag_pattern_matches: cfg.tag_pattern_matches ? 1 : 0,
    }).execute();
    await logAction(s, 'create_immutability_policy', {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, { ...cfg }),
    }, tx);
  });
  return uuid;
}

export async function updateImmutabilityPolicy(
  s: Services, actor: { principal: Principal; ip: string | null }, owner: ImmutabilityOwner, uuid: string, input: ImmutabilityInput,
): Promise<void> {
  const o = await resolvePolicyOwner(s, actor.principal, owner, 'write');
  const cfg = normalize(input);
  await s.db.transaction().execute(async (tx) => {
    const row = await rowsOf(tx, o.namespaceId, o.repo?.id ?? null).where('uuid', '=', uuid).executeTakeFirst();
    if (!row) throw new DomainError('not_found', 'Not Found');
    const clash = await rowsOf(tx, o.namespaceId, o.repo?.id ?? null).where('tag_pattern', '=', cfg.tag_pattern).where('uuid', '!=', uuid).executeTakeFirst();
    if (clash) throw new DomainError('invalid_request', DUPLICATE);
    await tx.updateTable('immutability_policies').set({ tag_pattern: cfg.tag_pattern, tag_pattern_matches: cfg.tag_pattern_matches ? 1 : 0 })
      .where('id', '=', row.id).execute();
    await logAction(s, 'update_immutability_policy', {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, { ...cfg }),
    }, tx);
  });
}

export async function deleteImmutabilityPolicy(
  s: Services, actor: { principal: Principal; ip: string | null }, owner: ImmutabilityOwner, uuid: string,
): Promise<void> {
  const o = await resolvePolicyOwner(s, actor.principal, owner, 'write');
  await s.db.transaction().execute(async (tx) => {
    const row = await rowsOf(tx, o.namespaceId, o.repo?.id ?? null).where('uuid', '=', uuid).executeTakeFirst();
    if (!row) throw new DomainError('not_found', 'Not Found');
    await tx.deleteFrom('immutability_policies').where('id', '=', row.id).execute();
    await logAction(s, 'delete_immutability_policy', {
      namespaceId: o.namespaceId, repositoryId: o.repo?.id ?? null, performer: actor.principal, ip: actor.ip, metadata: logMeta(o, { policy_uuid: uuid }),
    }, tx);
  });
}

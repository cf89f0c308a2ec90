// Storage quotas (Quay's namespacequota): at most one quota per namespace, with Warning and Reject
// limits at a percentage of it; the exact bytes each namespace and repository uses; enforcement on
// push; and a recount job that rebuilds the figures from scratch.
//
// Usage is the size of the unique blobs referenced by the namespace's manifest rows (config blobs
// included; a blob shared by two repositories of the namespace counts once). It changes only where
// manifest rows appear (push) or go (garbage collection), and both paths call in here inside their
// own transaction, after taking the namespace's namespace_sizes row lock (PostgreSQL; SQLite runs one
// writer at a time). Under that lock the "does anything else in the namespace still use this blob?"
// question sees every committed change, so two concurrent pushes sharing a new layer add it once.
// Lock order: repository row, then namespace_sizes row; holding the latter nothing here waits for
// another repository's row (see recountLocked).
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { DataModelError } from './data-errors.ts';
import { isUniqueViolation, type User } from './accounts.ts';
import { capOrgRole, orgAccess, type Actor } from './organizations.ts';
import { logAction } from './logs.ts';
import { createUserNotification } from './user-notifications.ts';
import { cancelUpload, type UploadSession } from './uploads.ts';
import { enqueue, type Job } from './queue.ts';

type Tx = Transaction<Database>;
type Db = Tx | Services['db'];

export type LimitType = 'Warning' | 'Reject';

export interface QuotaLimit { id: number; type: LimitType; percent: number }

export interface Quota {
  /** null for the system default (DEFAULT_SYSTEM_REJECT_QUOTA_BYTES), which has no row. */
  id: number | null;
  limitBytes: number;
  limits: QuotaLimit[];
  isDefault: boolean;
}

/** A requested limit: `limit_bytes`, or Quay's human `limit` ("10 GiB"). */
export interface LimitInput { limitBytes?: number; limit?: string }

const QUOTA_EXCEEDED = 'Quota has been exceeded on namespace';
const INT64_LIMIT = 2 ** 63;

// ---- Sizes written the way Quay's bitmath reads and prints them

const SI_PREFIXES = ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
const NIST_PREFIXES = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'Zi', 'Yi'];

/**
 * bitmath's parse_string_unsafe (1.3, SI by default): a bare number is bytes, one-letter units are
 * decimal (K, M, G…), "Ki", "Gi"… are binary; a trailing B/b is dropped and put back. Null where
 * bitmath raises, including for a lone "B" ("10 B"), which Quay rejects too.
 */
export function parseHumanSize(text: string): number | null {
  if (/^\s*\d+\s*$/.test(text)) return Number(text.trim());
  const at = text.search(/[A-Za-z]/);
  if (at < 0) return null;
  const value = text.slice(0, at).trim();
  if (!/^\d+$/.test(value)) return null;
  let unit = `${text.slice(at).replace(/[Bb]+$/, '')}B`;
  let factor: number | null = null;
  if (unit.length === 2) {
    unit = unit[0] === 'K' ? `k${unit.slice(1)}` : unit[0] === 'k' ? unit : unit[0]!.toUpperCase() + unit.slice(1);
    const i = SI_PREFIXES.indexOf(unit[0]!);
    if (i >= 0) factor = 1000 ** (i + 1);
  } else if (unit.length === 3) {
    unit = unit[0]!.toUpperCase() + unit.slice(1);
    const i = NIST_PREFIXES.indexOf(unit.slice(0, 2));
    if (i >= 0) factor = 1024 ** (i + 1);
  }
  return factor === null ? null : Number(value) * factor;
}

/** Python's '%.1f': like toFixed(1) except that exact ties go to the even digit. */
function pyFixed1(x: number): string {
  const quarters = x * 4;
  if (Number.isInteger(quarters) && Math.abs(quarters % 2) === 1) {
    const t = Math.floor(x * 10);
    return ((t % 2 === 0 ? t : t + 1) / 10).toFixed(1);
  }
  return x.toFixed(1);
}

/** bitmath.Byte(n).best_prefix().format("{value:.1f} {unit}"): "10.0 GiB", "500.0 Byte". */
export function humanSize(bytes: number): string {
  if (Math.abs(bytes) < 1) return `${pyFixed1(bytes * 8)} Bit`;
  // The same float logarithm as Python's math.log(n, 1024), so the unit flips where Quay's does.
  const i = Math.trunc(Math.log(Math.abs(bytes)) / Math.log(1024));
  if (i === 0) return `${pyFixed1(bytes)} Byte`;
  const k = Math.min(i, NIST_PREFIXES.length);
  return `${pyFixed1(bytes / 1024 ** k)} ${NIST_PREFIXES[k - 1]}B`;
}

/** DEFAULT_SYSTEM_REJECT_QUOTA_BYTES, or null when unset or 0 (Quay's "no system default"). */
export function systemDefaultQuota(s: Services): number | null {
  const v = s.config.raw.DEFAULT_SYSTEM_REJECT_QUOTA_BYTES;
  return typeof v === 'number' && Number.isFinite(v) && v !== 0 ? v : null;
}

function enforcing(s: Services): boolean {
  return s.config.features.QUOTA_MANAGEMENT === true && s.config.features.VERIFY_QUOTA !== false;
}

function quotaExceeded(): DomainError {
  return new DomainError('quota_exceeded', QUOTA_EXCEEDED, {});
}

// ---- Reading quotas

interface QuotaRow { id: number; namespace_id: number; limit_bytes: number }

async function limitsOf(db: Db, quotaId: number): Promise<QuotaLimit[]> {
  const rows = await db.selectFrom('quota_limits').select(['id', 'type', 'percent']).where('quota_id', '=', quotaId).orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, type: r.type, percent: r.percent }));
}

async function toQuota(db: Db, row: QuotaRow): Promise<Quota> {
  return { id: row.id, limitBytes: row.limit_bytes, limits: await limitsOf(db, row.id), isDefault: false };
}

async function quotaRows(db: Db, namespaceId: number): Promise<QuotaRow[]> {
  return db.selectFrom('quotas').select(['id', 'namespace_id', 'limit_bytes']).where('namespace_id', '=', namespaceId).orderBy('id').execute();
}

/** Path ids are text; anything but a plain number finds nothing. */
function idOf(raw: string): number | null {
  return /^\d{1,15}$/.test(raw) ? Number(raw) : null;
}

async function findQuota(s: Services, namespaceId: number, rawId: string): Promise<QuotaRow> {
  const id = idOf(rawId);
  const row = id === null ? undefined
    : await s.db.selectFrom('quotas').select(['id', 'namespace_id', 'limit_bytes']).where('id', '=', id).where('namespace_id', '=', namespaceId).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  return row;
}

/** Quay's get_namespace_quota_limit: a limit of another quota is a bare 400 with an empty message. */
async function findLimit(s: Services, quota: QuotaRow, rawId: string): Promise<QuotaLimit> {
  const id = idOf(rawId);
  const row = id === null ? undefined
    : await s.db.selectFrom('quota_limits').select(['id', 'quota_id', 'type', 'percent']).where('id', '=', id).executeTakeFirst();
  if (!row) throw new DomainError('not_found', 'Not Found');
  if (row.quota_id !== quota.id) throw new DataModelError('');
  return { id: row.id, type: row.type, percent: row.percent };
}

// ---- Who may do what

type OrgNeed = 'read' | 'readLimits' | 'write';

/**
 * Quay's checks on /organization/{orgname}/quota…: quotas are read by members, superusers and
 * global read-only superusers; limits by members, full-access superusers and read-only superusers;
 * every change needs a superuser. Authorizes before revealing whether the namespace exists. As in
 * Quay the path also reaches a user's namespace (its owner counts as its admin), which is how a
 * superuser gives a user quota its limits.
 */
async function orgFor(s: Services, p: Principal, orgname: string, need: OrgNeed): Promise<User> {
  const ns = await s.db.selectFrom('users').selectAll().where('username', '=', orgname).where('kind', 'in', ['user', 'org']).executeTakeFirst();
  const a = await orgAccess(s, p, ns?.kind === 'org' ? ns.id : null);
  const member = a.member || (ns?.kind === 'user' && p.kind === 'user' && p.userId === ns.id && capOrgRole(p, 'admin') !== null);
  const ok = need === 'write' ? a.superuser
    : need === 'read' ? member || a.superuser || a.readonlySuper
      : member || a.fullAccess || a.readonlySuper;
  if (!ok) throw new DomainError('denied', 'Unauthorized');
  if (!ns) throw new DomainError('not_found', 'Not Found');
  return ns;
}

/** A user or organization by name (never a robot), for the superuser endpoints. */
async function namespaceFor(s: Services, name: string): Promise<User> {
  const ns = await s.db.selectFrom('users').selectAll().where('username', '=', name).where('kind', 'in', ['user', 'org']).executeTakeFirst();
  if (!ns) throw new DomainError('not_found', 'Not Found');
  return ns;
}

// ---- Quota changes (shared by the organization and superuser endpoints)

/** Quay's limit parsing: a bad human limit is a 400 whose wording differs by endpoint. */
function requestedBytes(input: LimitInput, badFormat: string): { value: number; human: boolean } | null {
  if (input.limit !== undefined) {
    const v = parseHumanSize(input.limit);
    if (v === null) throw new DomainError('invalid_request', badFormat);
    return { value: v, human: true };
  }
  return input.limitBytes !== undefined ? { value: input.limitBytes, human: false } : null;
}

/** Quay's update_namespace_quota_size rule; human limits are floats in Quay, hence '0.0'. */
function checkSize(r: { value: number; human: boolean }): void {
  if (!(r.value > 0)) {
    const shown = r.human && Number.isInteger(r.value) ? r.value.toFixed(1) : String(r.value);
    throw new DomainError('invalid_request', `Invalid quota size limit value: '${shown}'`);
  }
  if (r.value >= INT64_LIMIT) throw new DomainError('invalid_request', 'Unsupported quota size limit.');
}

async function createQuotaFor(s: Services, actor: Actor, ns: User, input: LimitInput, msgs: { badFormat: string; exists: string }): Promise<void> {
  const r = requestedBytes(input, msgs.badFormat) ?? { value: 0, human: false };
  if ((await quotaRows(s.db, ns.id)).length) throw new DomainError('invalid_request', msgs.exists);
  checkSize(r);
  try {
    await s.db.transaction().execute(async (tx) => {
      const row = await tx.insertInto('quotas').values({ namespace_id: ns.id, limit_bytes: r.value }).returning('id').executeTakeFirstOrThrow();
      await logAction(s, 'org_create_quota', {
        namespaceId: ns.id, performer: actor.principal, ip: actor.ip, metadata: { namespace: ns.username, quota_id: row.id, limit_bytes: r.value },
      }, tx);
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new DomainError('invalid_request', msgs.exists);
    throw e;
  }
}

async function changeQuotaFor(s: Services, actor: Actor, ns: User, quota: QuotaRow, input: LimitInput, badFormat: string): Promise<Quota> {
  const r = requestedBytes(input, badFormat);
  // Quay skips a missing or zero limit ("if limit_bytes:"), and refuses negative ones.
  if (r && r.value !== 0) {
    checkSize(r);
    await s.db.transaction().execute(async (tx) => {
      await tx.updateTable('quotas').set({ limit_bytes: r.value }).where('id', '=', quota.id).execute();
      await logAction(s, 'org_change_quota', {
        namespaceId: ns.id, performer: actor.principal, ip: actor.ip, metadata: { namespace: ns.username, quota_id: quota.id, limit_bytes: r.value },
      }, tx);
    });
    quota = { ...quota, limit_bytes: r.value };
  }
  return toQuota(s.db, quota);
}

async function deleteQuotaFor(s: Services, actor: Actor, ns: User, quota: QuotaRow): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('quota_limits').where('quota_id', '=', quota.id).execute();
    await tx.deleteFrom('quotas').where('id', '=', quota.id).execute();
    await logAction(s, 'org_delete_quota', {
      namespaceId: ns.id, performer: actor.principal, ip: actor.ip, metadata: { namespace: ns.username, quota_id: quota.id },
    }, tx);
  });
}

// ---- /organization/{orgname}/quota…

const ORG_BAD_FORMAT = 'Invalid limit format, use a number followed by a unit (e.g. 1GiB)';

/** The organization's quotas; without one, the system default (as Quay's listOrganizationQuota). */
export async function listOrgQuotas(s: Services, p: Principal, orgname: string): Promise<Quota[]> {
  const org = await orgFor(s, p, orgname, 'read');
  if (org.kind !== 'org') throw new DomainError('not_found', 'Not Found'); // Quay's get_organization
  const rows = await quotaRows(s.db, org.id);
  const dflt = systemDefaultQuota(s);
  if (!rows.length && dflt !== null) return [{ id: null, limitBytes: dflt, limits: [], isDefault: true }];
  return Promise.all(rows.map((r) => toQuota(s.db, r)));
}

export async function getOrgQuota(s: Services, p: Principal, orgname: string, quotaId: string): Promise<Quota> {
  const org = await orgFor(s, p, orgname, 'read');
  return toQuota(s.db, await findQuota(s, org.id, quotaId));
}

export async function createOrgQuota(s: Services, actor: Actor, orgname: string, input: LimitInput): Promise<void> {
  const org = await orgFor(s, actor.principal, orgname, 'write');
  if (org.kind !== 'org') throw new DomainError('not_found', 'Not Found');
  await createQuotaFor(s, actor, org, input, { badFormat: ORG_BAD_FORMAT, exists: `Organization quota for '${orgname}' already exists` });
}

export async function changeOrgQuota(s: Services, actor: Actor, orgname: string, quotaId: string, input: LimitInput): Promise<Quota> {
  const org = await orgFor(s, actor.principal, orgname, 'write');
  return changeQuotaFor(s, actor, org, await findQuota(s, org.id, quotaId), input, ORG_BAD_FORMAT);
}

export async function deleteOrgQuota(s: Services, actor: Actor, orgname: string, quotaId: string): Promise<void> {
  const org = await orgFor(s, actor.principal, orgname, 'write');
  await deleteQuotaFor(s, actor, org, await findQuota(s, org.id, quotaId));
}

export async function listOrgQuotaLimits(s: Services, p: Principal, orgname: string, quotaId: string): Promise<QuotaLimit[]> {
  const org = await orgFor(s, p, orgname, 'readLimits');
  return limitsOf(s.db, (await findQuota(s, org.id, quotaId)).id);
}

export async function getOrgQuotaLimit(s: Services, p: Principal, orgname: string, quotaId: string, limitId: string): Promise<QuotaLimit> {
  const org = await orgFor(s, p, orgname, 'readLimits');
  return findLimit(s, await findQuota(s, org.id, quotaId), limitId);
}

/** Quay's _quota_type: case-insensitive, stored as its canonical name. */
function limitType(name: string, wrap: boolean): LimitType {
  const t = name.toLowerCase();
  if (t === 'warning') return 'Warning';
  if (t === 'reject') return 'Reject';
  const msg = 'Quota type must be one of [Warning, Reject]';
  throw wrap ? new DomainError('invalid_request', msg) : new DataModelError(msg);
}

const THRESHOLD_MSG = 'Quota limit threshold must be between 1 and 100';
const validPercent = (n: number) => n > 0 && n <= 100;

/**
 * Quay's createOrganizationQuotaLimit. Its duplicate lookup validates the type and a non-zero
 * threshold first (uncaught there: bare 400 {"message"}), then the insert validates again inside
 * its try (the ApiError envelope). Several Reject limits at different thresholds are allowed.
 */
export async function createOrgQuotaLimit(s: Services, actor: Actor, orgname: string, quotaId: string, input: { type: string; percent: number }): Promise<void> {
  const org = await orgFor(s, actor.principal, orgname, 'write');
  const quota = await findQuota(s, org.id, quotaId);
  if (input.percent && !validPercent(input.percent)) throw new DataModelError(THRESHOLD_MSG);
  let dup = s.db.selectFrom('quota_limits').select('id').where('quota_id', '=', quota.id);
  if (input.type) dup = dup.where('type', '=', limitType(input.type, false));
  if (input.percent) dup = dup.where('percent', '=', input.percent);
  if (await dup.executeTakeFirst()) throw new DomainError('invalid_request', 'Quota limit already exists');
  if (!validPercent(input.percent)) throw new DomainError('invalid_request', THRESHOLD_MSG);
  const type = limitType(input.type, true);
  await s.db.transaction().execute(async (tx) => {
    const row = await tx.insertInto('quota_limits').values({ quota_id: quota.id, type, percent: input.percent }).returning('id').executeTakeFirstOrThrow();
    await logAction(s, 'org_create_quota_limit', {
      namespaceId: org.id, performer: actor.principal, ip: actor.ip,
      metadata: { namespace: orgname, quota_id: quota.id, limit_id: row.id, type, threshold_percent: input.percent },
    }, tx);
  });
}

/** Quay's changeOrganizationQuotaLimit; answers with the parent quota. Both fields are checked
 * before either is written (Quay saves the type even when the threshold is then refused). */
export async function changeOrgQuotaLimit(
  s: Services, actor: Actor, orgname: string, quotaId: string, limitId: string, input: { type?: string; percent?: number },
): Promise<Quota> {
  const org = await orgFor(s, actor.principal, orgname, 'write');
  const quota = await findQuota(s, org.id, quotaId);
  const limit = await findLimit(s, quota, limitId);
  const type = input.type !== undefined ? limitType(input.type, false) : undefined;
  if (input.percent !== undefined && !validPercent(input.percent)) throw new DataModelError(THRESHOLD_MSG);
  if (type !== undefined || input.percent !== undefined) {
    await s.db.transaction().execute(async (tx) => {
      await tx.updateTable('quota_limits').set({ ...(type !== undefined ? { type } : {}), ...(input.percent !== undefined ? { percent: input.percent } : {}) })
        .where('id', '=', limit.id).execute();
      await logAction(s, 'org_change_quota_limit', {
        namespaceId: org.id, performer: actor.principal, ip: actor.ip,
        metadata: { namespace: orgname, quota_id: quota.id, limit_id: limit.id, type: type ?? limit.type, threshold_percent: input.percent ?? limit.percent },
      }, tx);
    });
  }
  return toQuota(s.db, quota);
}

export async function deleteOrgQuotaLimit(s: Services, actor: Actor, orgname: string, quotaId: string, limitId: string): Promise<void> {
  const org = await orgFor(s, actor.principal, orgname, 'write');
  const quota = await findQuota(s, org.id, quotaId);
  const limit = await findLimit(s, quota, limitId);
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('quota_limits').where('id', '=', limit.id).execute();
    await logAction(s, 'org_delete_quota_limit', {
      namespaceId: org.id, performer: actor.principal, ip: actor.ip, metadata: { namespace: orgname, quota_id: quota.id, limit_id: limit.id },
    }, tx);
  });
}

// ---- /user/quota… (the caller's own namespace, read only)

function callerId(p: Principal): number {
  if (p.kind !== 'user') throw new DomainError('denied', 'Unauthorized');
  return p.userId;
}

export async function listUserQuotas(s: Services, p: Principal): Promise<Quota[]> {
  return Promise.all((await quotaRows(s.db, callerId(p))).map((r) => toQuota(s.db, r)));
}

export async function getUserQuota(s: Services, p: Principal, quotaId: string): Promise<Quota> {
  return toQuota(s.db, await findQuota(s, callerId(p), quotaId));
}

export async function listUserQuotaLimits(s: Services, p: Principal, quotaId: string): Promise<QuotaLimit[]> {
  return limitsOf(s.db, (await findQuota(s, callerId(p), quotaId)).id);
}

/** Quay's getUserQuotaLimit checks the limit, then answers with its quota (endpoints.json's quirk). */
export async function getUserQuotaLimit(s: Services, p: Principal, quotaId: string, limitId: string): Promise<Quota> {
  const quota = await findQuota(s, callerId(p), quotaId);
  await findLimit(s, quota, limitId);
  return toQuota(s.db, quota);
}

// ---- /superuser/{users|organization}/{namespace}/quota… (the caller is checked by the HTTP layer)

const SU_BAD_FORMAT = 'Invalid limit format';

export async function listNamespaceQuotas(s: Services, namespace: string): Promise<Quota[]> {
  const ns = await namespaceFor(s, namespace);
  return Promise.all((await quotaRows(s.db, ns.id)).map((r) => toQuota(s.db, r)));
}

export async function createNamespaceQuota(s: Services, actor: Actor, namespace: string, input: LimitInput): Promise<void> {
  const ns = await namespaceFor(s, namespace);
  await createQuotaFor(s, actor, ns, input, { badFormat: SU_BAD_FORMAT, exists: `Quota for '${namespace}' already exists` });
}

export async function changeNamespaceQuota(s: Services, actor: Actor, namespace: string, quotaId: string, input: LimitInput): Promise<Quota> {
  const ns = await namespaceFor(s, namespace);
  return changeQuotaFor(s, actor, ns, await findQuota(s, ns.id, quotaId), input, SU_BAD_FORMAT);
}

export async function deleteNamespaceQuota(s: Services, actor: Actor, namespace: string, quotaId: string): Promise<void> {
  const ns = await namespaceFor(s, namespace);
  await deleteQuotaFor(s, actor, ns, await findQuota(s, ns.id, quotaId));
}

// ---- Verdicts: Quay's check_limits

export interface QuotaVerdict {
  severity: LimitType | null;
  usageBytes: number;
  /** The quota's size (or the system default). */
  quotaBytes: number;
  thresholdPercent: number | null;
}

/** The highest limit the usage is over decides; with no quota, the system default rejects at >=. */
async function evaluate(s: Services, db: Db, namespaceId: number, size: number): Promise<QuotaVerdict> {
  const quota = (await quotaRows(db, namespaceId))[0];
  if (!quota) {
    const dflt = systemDefaultQuota(s) ?? 0;
    const over = dflt > 0 && size >= dflt;
    return { severity: over ? 'Reject' : null, usageBytes: size, quotaBytes: dflt, thresholdPercent: over ? 100 : null };
  }
  let best = 0;
  let severity: LimitType | null = null;
  let thresholdPercent: number | null = null;
  for (const l of await limitsOf(db, quota.id)) {
    const allowed = Math.trunc(quota.limit_bytes * l.percent / 100);
    if (size > allowed && best < allowed) {
      best = allowed;
      severity = l.type;
      thresholdPercent = l.percent;
    }
  }
  return { severity, usageBytes: size, quotaBytes: quota.limit_bytes, thresholdPercent };
}

// ---- Usage accounting

/** Locks the namespace's usage row for the rest of the transaction, creating it if missing. */
async function lockUsage(s: Services, tx: Tx, namespaceId: number): Promise<{ size: number; fresh: boolean }> {
  const created = await tx.insertInto('namespace_sizes')
    .values({ namespace_id: namespaceId, size_bytes: 0, backfill_status: 'complete', updated_at: s.now() })
    .onConflict((oc) => oc.column('namespace_id').doNothing()).returning('namespace_id').executeTakeFirst();
  let q = tx.selectFrom('namespace_sizes').select('size_bytes').where('namespace_id', '=', namespaceId);
  if (s.dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirstOrThrow();
  return { size: Number(row.size_bytes), fresh: created !== undefined };
}

/** What removing (or, for a new manifest, having added) `manifestIds` changes: the bytes of their
 * blobs that no other manifest of the namespace, and of the repository, references. */
async function exclusiveBytes(tx: Tx, namespaceId: number, repoId: number, manifestIds: number[]): Promise<{ ns: number; repo: number }> {
  const rows = await tx.selectFrom('blobs')
    .select((eb) => [
      'blobs.size',
      eb.exists(eb.selectFrom('manifest_blobs as o').innerJoin('repositories as r', 'r.id', 'o.repository_id').select('o.blob_id')
        .whereRef('o.blob_id', '=', 'blobs.id').where('r.namespace_id', '=', namespaceId).where('o.manifest_id', 'not in', manifestIds)).as('in_ns'),
      eb.exists(eb.selectFrom('manifest_blobs as o').select('o.blob_id')
        .whereRef('o.blob_id', '=', 'blobs.id').where('o.repository_id', '=', repoId).where('o.manifest_id', 'not in', manifestIds)).as('in_repo'),
    ])
    .where('blobs.id', 'in', (eb) => eb.selectFrom('manifest_blobs').select('manifest_blobs.blob_id').where('manifest_blobs.manifest_id', 'in', manifestIds))
    .execute();
  let ns = 0;
  let repo = 0;
  for (const r of rows) {
    if (!r.in_ns) ns += Number(r.size);
    if (!r.in_repo) repo += Number(r.size);
  }
  return { ns, repo };
}

async function addUsage(s: Services, tx: Tx, namespaceId: number, repoId: number, d: { ns: number; repo: number }, sign: 1 | -1): Promise<void> {
  const now = s.now();
  if (d.ns) {
    await tx.updateTable('namespace_sizes').set({ size_bytes: sql`size_bytes + ${sign * d.ns}`, updated_at: now }).where('namespace_id', '=', namespaceId).execute();
  }
  if (d.repo && sign > 0) {
    await tx.insertInto('repository_sizes').values({ repository_id: repoId, size_bytes: d.repo, updated_at: now })
      .onConflict((oc) => oc.column('repository_id').doUpdateSet({ size_bytes: sql`repository_sizes.size_bytes + ${d.repo}`, updated_at: now }))
      .execute();
  } else if (d.repo) {
    // A repository without figures yet is left to the recount its namespace is waiting for.
    await tx.updateTable('repository_sizes').set({ size_bytes: sql`size_bytes - ${d.repo}`, updated_at: now }).where('repository_id', '=', repoId).execute();
  }
}

/**
 * The namespace's figures from scratch, written under the caller's namespace lock; returns its
 * usage. `exclude`: manifests about to be deleted in this transaction.
 *
 * Holding the namespace lock, this must never wait for another repository's row: a push there holds
 * that row and waits for the namespace lock (a deadlock). Inserting a repository_sizes row takes a
 * foreign-key lock on its repository, so only `ownRepoId` (whose lock the caller holds) gets a new
 * row here; other repositories' existing rows are updated in place. A repository still lacking its
 * row leaves the namespace "waiting" for the recount job, which creates the rows first, unlocked.
 */
async function recountLocked(s: Services, tx: Tx, namespaceId: number, opts: { exclude?: number[]; ownRepoId?: number } = {}): Promise<number> {
  const exclude = opts.exclude ?? [];
  const used = tx.selectFrom('manifest_blobs as mb').innerJoin('repositories as r', 'r.id', 'mb.repository_id')
    .where('r.namespace_id', '=', namespaceId)
    .$if(exclude.length > 0, (q) => q.where('mb.manifest_id', 'not in', exclude));
  const total = await tx.selectFrom('blobs').select((eb) => eb.fn.sum<number | string | null>('blobs.size').as('total'))
    .where('blobs.id', 'in', used.select('mb.blob_id')).executeTakeFirst();
  const perRepo = await tx.selectFrom(used.select(['mb.repository_id', 'mb.blob_id']).distinct().as('u'))
    .innerJoin('blobs', 'blobs.id', 'u.blob_id')
    .select((eb) => ['u.repository_id', eb.fn.sum<number | string>('blobs.size').as('total')])
    .groupBy('u.repository_id').execute();
  const byRepo = new Map(perRepo.map((r) => [Number(r.repository_id), Number(r.total)]));
  const rows = await tx.selectFrom('repositories').leftJoin('repository_sizes', 'repository_sizes.repository_id', 'repositories.id')
    .select(['repositories.id', 'repository_sizes.size_bytes']).where('repositories.namespace_id', '=', namespaceId).execute();
  const now = s.now();
  let complete = true;
  for (const r of rows) {
    const want = byRepo.get(r.id) ?? 0;
    if (r.size_bytes !== null && Number(r.size_bytes) === want) continue;
    if (r.size_bytes !== null) {
      await tx.updateTable('repository_sizes').set({ size_bytes: want, updated_at: now }).where('repository_id', '=', r.id).execute();
    } else if (r.id === opts.ownRepoId) {
      await tx.insertInto('repository_sizes').values({ repository_id: r.id, size_bytes: want, updated_at: now }).execute();
    } else if (want !== 0) {
      complete = false;
    }
  }
  const size = Number(total?.total ?? 0);
  await tx.updateTable('namespace_sizes').set({ size_bytes: size, backfill_status: complete ? 'complete' : 'waiting', updated_at: now })
    .where('namespace_id', '=', namespaceId).execute();
  if (!complete) await enqueue(s, QUOTA_RECOUNT_QUEUE, { namespaceId }, { dedupeKey: `${QUOTA_RECOUNT_QUEUE}:${namespaceId}` }, tx);
  return size;
}

/**
 * Called by the manifest PUT inside its transaction, after the manifest's blob references are
 * written: adds the blobs new to the namespace and repository, then (when quotas are enforced)
 * refuses the push if the namespace ends up over a Reject limit — the transaction then rolls back
 * and nothing of the push remains. A namespace without a usage row is counted from scratch.
 */
export async function chargeManifest(
  s: Services, tx: Tx, repo: { id: number; namespace_id: number }, manifestId: number, created: boolean,
): Promise<QuotaVerdict | null> {
  const enforce = enforcing(s);
  if (!created && !enforce) return null;
  const usage = await lockUsage(s, tx, repo.namespace_id);
  let size = usage.size;
  if (usage.fresh) {
    size = await recountLocked(s, tx, repo.namespace_id, { ownRepoId: repo.id });
  } else if (created) {
    const d = await exclusiveBytes(tx, repo.namespace_id, repo.id, [manifestId]);
    await addUsage(s, tx, repo.namespace_id, repo.id, d, 1);
    size += d.ns;
  }
  if (!enforce) return null;
  const verdict = await evaluate(s, tx, repo.namespace_id, size);
  if (verdict.severity === 'Reject') throw new QuotaRejection(repo.namespace_id, verdict);
  return verdict;
}

/** The push refusal, carrying what the notification after the rollback needs. */
export class QuotaRejection extends DomainError {
  readonly namespaceId: number;
  readonly verdict: QuotaVerdict;
  constructor(namespaceId: number, verdict: QuotaVerdict) {
    super('quota_exceeded', QUOTA_EXCEEDED, {});
    this.name = 'QuotaRejection';
    this.namespaceId = namespaceId;
    this.verdict = verdict;
  }
}

/** Called by garbage collection inside its transaction, before it deletes `manifestIds` (all of
 * repository `repoId`): subtracts the blobs nothing else in the namespace / repository uses. */
export async function releaseManifests(s: Services, tx: Tx, repoId: number, manifestIds: number[]): Promise<void> {
  if (!manifestIds.length) return;
  const repo = await tx.selectFrom('repositories').select(['id', 'namespace_id']).where('id', '=', repoId).executeTakeFirst();
  if (!repo) return;
  const usage = await lockUsage(s, tx, repo.namespace_id);
  if (usage.fresh) {
    await recountLocked(s, tx, repo.namespace_id, { exclude: manifestIds, ownRepoId: repo.id });
    return;
  }
  await addUsage(s, tx, repo.namespace_id, repo.id, await exclusiveBytes(tx, repo.namespace_id, repo.id, manifestIds), -1);
}

/** After a manifest push was refused and rolled back: Quay notifies the admins (quota_error). */
export async function noteQuotaRejection(s: Services, err: unknown): Promise<void> {
  if (!(err instanceof QuotaRejection)) return;
  s.log.warn({ namespaceId: err.namespaceId, ...err.verdict }, 'push refused: namespace quota exceeded');
  await notifyAdmins(s, err.namespaceId, 'quota_error', {});
}

/** After a manifest push committed over a Warning limit: Quay notifies the admins (quota_warning). */
export async function noteQuotaWarning(s: Services, namespaceId: number, verdict: QuotaVerdict | null): Promise<void> {
  if (verdict?.severity !== 'Warning') return;
  s.log.info({ namespaceId, ...verdict }, 'namespace over its quota warning threshold');
  await notifyAdmins(s, namespaceId, 'quota_warning', {});
}

/**
 * Quay's checks on blob uploads: opening one (`session` null) is refused when the namespace is
 * already over a Reject limit; each chunk and the closing PUT when the namespace plus the
 * repository's uploads in progress is — and the session is then cancelled.
 */
export async function enforceUploadQuota(s: Services, repositoryId: number, session: UploadSession | null): Promise<void> {
  if (!enforcing(s)) return;
  const repo = await s.db.selectFrom('repositories').select(['id', 'namespace_id']).where('id', '=', repositoryId).executeTakeFirst();
  if (!repo) return;
  let size = await namespaceUsage(s, repo.namespace_id);
  if (session) {
    const up = await s.db.selectFrom('uploads').select((eb) => eb.fn.sum<number | string | null>('size').as('n')).where('repository_id', '=', repo.id).executeTakeFirst();
    size += Number(up?.n ?? 0);
  }
  const verdict = await evaluate(s, s.db, repo.namespace_id, size);
  if (verdict.severity !== 'Reject') return;
  s.log.warn({ namespaceId: repo.namespace_id, ...verdict }, 'upload refused: namespace quota exceeded');
  await notifyAdmins(s, repo.namespace_id, 'quota_error', { severity: 'Reject' });
  if (session) await cancelUpload(s, session);
  throw quotaExceeded();
}

/** Quay's notify_organization_admins: the organization's admins (or the user), once per
 * undismissed notification of the same kind and metadata. */
async function notifyAdmins(s: Services, namespaceId: number, kind: 'quota_warning' | 'quota_error', extra: Record<string, unknown>): Promise<void> {
  const ns = await s.db.selectFrom('users').select(['id', 'username', 'kind']).where('id', '=', namespaceId).executeTakeFirst();
  if (!ns) return;
  const metadata = { ...extra, namespace: ns.username };
  const targets = ns.kind === 'org'
    ? (await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id').innerJoin('users', 'users.id', 'team_members.user_id')
      .select('users.id').distinct().where('teams.org_id', '=', ns.id).where('teams.role', '=', 'admin').where('users.kind', '=', 'user').execute()).map((r) => r.id)
    : [ns.id];
  const key = canonical(metadata);
  for (const userId of targets) {
    const existing = await s.db.selectFrom('user_notifications').select('metadata')
      .where('user_id', '=', userId).where('kind', '=', kind).where('dismissed', '=', 0).execute();
    if (existing.some((n) => canonical(safeParse(n.metadata)) === key)) continue;
    await createUserNotification(s, userId, kind, metadata);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return JSON.stringify(v);
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** The namespace's usage in bytes (0 before its first push). */
export async function namespaceUsage(s: Services, namespaceId: number, db: Db = s.db): Promise<number> {
  const row = await db.selectFrom('namespace_sizes').select('size_bytes').where('namespace_id', '=', namespaceId).executeTakeFirst();
  return Number(row?.size_bytes ?? 0);
}

// ---- Recount job

export const QUOTA_RECOUNT_QUEUE = 'quota_recount';

export interface RecountPayload { namespaceId?: number }

/** Queues a recount of one namespace, or of every namespace with repositories or figures. */
export async function enqueueQuotaRecount(s: Services, namespaceId: number | null = null): Promise<boolean> {
  const payload: RecountPayload = namespaceId === null ? {} : { namespaceId };
  return enqueue(s, QUOTA_RECOUNT_QUEUE, payload, { dedupeKey: `${QUOTA_RECOUNT_QUEUE}:${namespaceId ?? 'all'}` });
}

/** Rebuilds one namespace's figures; returns the old and new usage. */
export async function recountNamespace(s: Services, namespaceId: number): Promise<{ before: number; after: number }> {
  // First, unlocked: a row for every repository, so the locked part only updates rows in place.
  await s.db.insertInto('repository_sizes')
    .columns(['repository_id', 'size_bytes', 'updated_at'])
    .expression((eb) => eb.selectFrom('repositories').select((e) => ['repositories.id', e.lit(0).as('size_bytes'), e.lit(s.now()).as('updated_at')])
      .where('repositories.namespace_id', '=', namespaceId))
    .onConflict((oc) => oc.column('repository_id').doNothing()).execute();
  return s.db.transaction().execute(async (tx) => {
    const exists = await tx.selectFrom('users').select('id').where('id', '=', namespaceId).executeTakeFirst();
    if (!exists) return { before: 0, after: 0 };
    const { size: before } = await lockUsage(s, tx, namespaceId);
    return { before, after: await recountLocked(s, tx, namespaceId) };
  });
}

/** The queue handler: each namespace in its own transaction, so the job holds no lock for long. */
export async function runQuotaRecount(s: Services, job: Pick<Job, 'payload'>, signal?: AbortSignal): Promise<{ namespaces: number; corrected: number }> {
  const p = (job.payload ?? {}) as RecountPayload;
  let ids: number[];
  if (typeof p.namespaceId === 'number') {
    ids = [p.namespaceId];
  } else {
    const withRepos = await s.db.selectFrom('repositories').select('namespace_id').distinct().execute();
    const withSizes = await s.db.selectFrom('namespace_sizes').select('namespace_id').execute();
    ids = [...new Set([...withRepos, ...withSizes].map((r) => Number(r.namespace_id)))].sort((a, b) => a - b);
  }
  let corrected = 0;
  let namespaces = 0;
  for (const id of ids) {
    if (signal?.aborted) break;
    const r = await recountNamespace(s, id);
    namespaces++;
    if (r.before !== r.after) {
      corrected++;
      s.log.warn({ namespaceId: id, before: r.before, after: r.after }, 'quota usage corrected by recount');
    }
  }
  return { namespaces, corrected };
}

// Storage quotas (Quay's namespacequota): at most one quota per namespace, with Warning and Reject
// limits at a percentage of it. Usage accounting, enforcement and the recount job are in
// quota-usage.ts.
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { DataModelError } from './data-errors.ts';
import { isUniqueViolation, type User } from './accounts.ts';
import { capOrgRole, orgAccess, type Actor } from './organizations.ts';
import { logAction } from './logs.ts';

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

// ---- Reading quotas

export interface QuotaRow { id: number; namespace_id: number; limit_bytes: number }

export async function limitsOf(db: Db, quotaId: number): Promise<QuotaLimit[]> {
  const rows = await db.selectFrom('quota_limits').select(['id', 'type', 'percent']).where('quota_id', '=', quotaId).orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, type: r.type, percent: r.percent }));
}

async function toQuota(db: Db, row: QuotaRow): Promise<Quota> {
  return { id: row.id, limitBytes: row.limit_bytes, limits: await limitsOf(db, row.id), isDefault: false };
}

export async function quotaRows(db: Db, namespaceId: number): Promise<QuotaRow[]> {
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


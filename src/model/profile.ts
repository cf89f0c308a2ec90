// What Quay shows about a user account beyond its own row: organization memberships, linked
// external logins and the namespace's quota.
import type { Services } from './context.ts';
import type { OrgRole } from './permissions.ts';
import type { User } from './accounts.ts';
import { systemDefaultQuota } from './quota.ts';

export interface OrgMembership {
  org: Pick<User, 'id' | 'username' | 'email' | 'kind'>;
  role: OrgRole;
}

const ROLE_RANK: Record<OrgRole, number> = { member: 1, creator: 2, admin: 3 };

/** Organizations the user belongs to through any team, with their strongest team role. */
export async function userOrganizations(s: Services, userId: number): Promise<OrgMembership[]> {
  const rows = await s.db.selectFrom('team_members')
    .innerJoin('teams', 'teams.id', 'team_members.team_id')
    .innerJoin('users', 'users.id', 'teams.org_id')
    .select(['users.id', 'users.username', 'users.email', 'users.kind', 'teams.role'])
    .where('team_members.user_id', '=', userId)
    .orderBy('users.username')
    .execute();
  const byOrg = new Map<number, OrgMembership>();
  for (const r of rows) {
    const cur = byOrg.get(r.id);
    if (!cur || ROLE_RANK[r.role] > ROLE_RANK[cur.role]) {
      byOrg.set(r.id, { org: { id: r.id, username: r.username, email: r.email, kind: r.kind }, role: r.role });
    }
  }
  return [...byOrg.values()];
}

/** PUBLIC_NAMESPACES that exist: Quay lists them among every user's organizations. */
export async function publicNamespaces(s: Services): Promise<Pick<User, 'id' | 'username' | 'email' | 'kind'>[]> {
  const raw = s.config.raw.PUBLIC_NAMESPACES;
  const names = Array.isArray(raw) ? raw.filter((x): x is string => typeof x === 'string') : [];
  if (names.length === 0) return [];
  return s.db.selectFrom('users').select(['id', 'username', 'email', 'kind']).where('username', 'in', names).execute();
}

export interface FederatedLogin { service: string; service_identifier: string; metadata: Record<string, unknown> }

export async function federatedLogins(s: Services, userId: number): Promise<FederatedLogin[]> {
  const rows = await s.db.selectFrom('federated_logins').selectAll().where('user_id', '=', userId).orderBy('id').execute();
  return rows.map((r) => {
    let metadata: Record<string, unknown> = {};
    try {
      const parsed = r.metadata ? JSON.parse(r.metadata) : {};
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) metadata = parsed;
    } catch {
      // Quay shows an empty map for unreadable metadata too.
    }
    return { service: r.service, service_identifier: r.service_ident, metadata };
  });
}

export interface QuotaView { id: number; limit_bytes: number; limits: { id: number; type: string; limit_percent: number }[] }

export async function namespaceQuotas(s: Services, namespaceId: number): Promise<QuotaView[]> {
  const quotas = await s.db.selectFrom('quotas').selectAll().where('namespace_id', '=', namespaceId).orderBy('id').execute();
  const out: QuotaView[] = [];
  for (const q of quotas) {
    const limits = await s.db.selectFrom('quota_limits').selectAll().where('quota_id', '=', q.id).orderBy('id').execute();
    out.push({ id: q.id, limit_bytes: q.limit_bytes, limits: limits.map((l) => ({ id: l.id, type: l.type, limit_percent: l.percent })) });
  }
  return out;
}

export interface QuotaReport { quota_bytes: number; configured_quota: number | null; running_backfill: string; backfill_status: string }

export async function quotaReport(s: Services, namespaceId: number): Promise<QuotaReport> {
  const size = await s.db.selectFrom('namespace_sizes').selectAll().where('namespace_id', '=', namespaceId).executeTakeFirst();
  const quota = await s.db.selectFrom('quotas').select('limit_bytes').where('namespace_id', '=', namespaceId).executeTakeFirst();
  // namespace_sizes is kept exact by src/model/quota.ts; no row yet is Quay's "waiting" (never pushed to).
  const status = size?.backfill_status ?? 'waiting';
  return {
    quota_bytes: Number(size?.size_bytes ?? 0),
    configured_quota: quota?.limit_bytes ?? systemDefaultQuota(s),
    running_backfill: status,
    backfill_status: status,
  };
}

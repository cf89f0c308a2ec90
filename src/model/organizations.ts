// Organizations: who may see and change one (the caller's team role, capped by OAuth scopes, plus
// the two kinds of superuser), their details, members, outside collaborators and deletion.
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { createOrganization, findUser, isUniqueViolation, type User } from './accounts.ts';
import { DomainError } from './errors.ts';
import { DataModelError } from './data-errors.ts';
import { logAction } from './logs.ts';
import { NAMESPACE_RE } from './names.ts';
import { orgRole, type OrgRole } from './permissions.ts';
import { isReadonlySuperuser } from './repository-api.ts';

type Db = Transaction<Database> | Services['db'];

/** Who performs a change, for the usage log. */
export interface Actor {
  principal: Principal;
  ip: string | null;
}

export async function findOrganization(s: Services, name: string, db: Db = s.db): Promise<User | undefined> {
  return db.selectFrom('users').selectAll().where('username', '=', name).where('kind', '=', 'org').executeTakeFirst();
}

export interface OrgAccess {
  /** The caller's strongest team role, capped by what their OAuth token's scopes allow. */
  role: OrgRole | null;
  /** Quay's AdministerOrganizationPermission. */
  admin: boolean;
  /** Quay's OrganizationMemberPermission. */
  member: boolean;
  /** A superuser (through OAuth only with super:user). */
  superuser: boolean;
  /** A superuser with FEATURE_SUPERUSERS_FULL_ACCESS: may act on any organization. */
  fullAccess: boolean;
  /** A GLOBAL_READONLY_SUPER_USERS member: may read any organization. */
  readonlySuper: boolean;
}

const ROLE_RANK: Record<OrgRole, number> = { member: 1, creator: 2, admin: 3 };

/** Quay's SCOPE_MAX_TEAM_ROLES: an OAuth token carries org roles only up to what its scopes allow. */
export function capOrgRole(p: Principal, role: OrgRole | null): OrgRole | null {
  if (!role || p.kind === 'anonymous' || p.scopes === null) return role;
  const cap: OrgRole | null = p.scopes.includes('org:admin') ? 'admin' : p.scopes.includes('repo:create') ? 'creator' : null;
  if (!cap) return null;
  return ROLE_RANK[role] <= ROLE_RANK[cap] ? role : cap;
}

export async function orgAccess(s: Services, p: Principal, orgId: number | null): Promise<OrgAccess> {
  const role = orgId === null ? null : capOrgRole(p, await orgRole(s, p, orgId));
  const superuser = p.kind === 'user' && p.superuser;
  return {
    role,
    admin: role === 'admin',
    member: role !== null,
    superuser,
    fullAccess: superuser && s.config.features.SUPERUSERS_FULL_ACCESS,
    readonlySuper: isReadonlySuperuser(s, p),
  };
}

export const denied = (): never => {
  throw new DomainError('denied', 'Unauthorized');
};
export const notFound = (): never => {
  throw new DomainError('not_found', 'Not Found');
};

/** What an organization-admin endpoint of Quay allows: admins, and superusers with full access
 * (or, for reads, global read-only superusers). Authorizes before revealing whether it exists. */
export async function requireOrgAdmin(s: Services, p: Principal, orgname: string, mode: 'read' | 'write'): Promise<{ org: User; access: OrgAccess }> {
  const org = await findOrganization(s, orgname);
  const access = await orgAccess(s, p, org?.id ?? null);
  const ok = access.admin || access.fullAccess || (mode === 'read' && access.readonlySuper);
  if (!ok) denied();
  if (!org) notFound();
  return { org: org!, access };
}

// ---- Creation

export interface NewOrgInput {
  name: string;
  email?: string | null;
  contactEmail?: string | null;
}

function namespaceIssue(name: string): string | null {
  if (!NAMESPACE_RE.test(name)) return `Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`;
  if (name.length < 2 || name.length > 255) return 'Namespace must be between 2 and 255 characters in length';
  return null;
}

/** Quay's OrganizationList.post: the caller becomes the only member of the new org's owners team. */
export async function createOrg(s: Services, actor: Actor, input: NewOrgInput): Promise<User> {
  const p = actor.principal;
  if (p.kind !== 'user') denied();
  if (s.config.features.SUPERUSERS_ORG_CREATION_ONLY && !(p as { superuser: boolean }).superuser) denied();
  const creator = await findUser(s, (p as { username: string }).username);
  if (!creator || creator.kind !== 'user') denied();
  if (await findUser(s, input.name)) throw new DomainError('invalid_request', 'A user or organization with this name already exists');
  if (s.config.features.MAILING && !input.email) throw new DomainError('invalid_request', 'Email address is required');
  const issue = namespaceIssue(input.name);
  if (issue) throw new DomainError('invalid_request', `Invalid namespace ${input.name}: ${issue}`);
  let org: User;
  try {
    org = await createOrganization(s, input.name, creator!, input.email ?? null);
  } catch (e) {
    if (isUniqueViolation(e)) throw new DomainError('invalid_request', 'A user or organization with this name already exists');
    throw e;
  }
  if (input.contactEmail) await setMetadataField(s, org.id, 'contact_email', input.contactEmail);
  await logAction(s, 'org_create', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { email: input.email ?? null, namespace: org.username } });
  return org;
}

async function setMetadataField(s: Services, userId: number, key: string, value: unknown, db: Db = s.db): Promise<void> {
  const row = await db.selectFrom('users').select('metadata').where('id', '=', userId).executeTakeFirst();
  let meta: Record<string, unknown> = {};
  try {
    const parsed = row?.metadata ? JSON.parse(row.metadata) : {};
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) meta = parsed;
  } catch {
    // unreadable metadata is replaced
  }
  meta[key] = value;
  await db.updateTable('users').set({ metadata: JSON.stringify(meta) }).where('id', '=', userId).execute();
}

// ---- The organization view

export interface TeamSummary {
  id: number;
  name: string;
  description: string;
  role: OrgRole;
  canView: boolean;
  repoCount: number;
  memberCount: number;
  isSynced: boolean;
}

export interface OrgDetails {
  org: User;
  access: OrgAccess;
  /** Shown to admins and to superusers allowed to read every organization. */
  showEmail: boolean;
  /** null when the caller may not see the teams. */
  teams: TeamSummary[] | null;
}

/** Teams with their repository and member counts; `viewable` null means every team is visible. */
async function teamSummaries(s: Services, orgId: number, viewable: Set<number> | null): Promise<TeamSummary[]> {
  const teams = await s.db.selectFrom('teams').selectAll().where('org_id', '=', orgId).orderBy('id').execute();
  if (teams.length === 0) return [];
  const ids = teams.map((t) => t.id);
  const repoCounts = await s.db.selectFrom('repo_permissions').select(['team_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('team_id', 'in', ids).groupBy('team_id').execute();
  const memberCounts = await s.db.selectFrom('team_members').select(['team_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('team_id', 'in', ids).groupBy('team_id').execute();
  const synced = s.config.features.TEAM_SYNCING
    ? new Set((await s.db.selectFrom('team_sync').select('team_id').where('team_id', 'in', ids).execute()).map((r) => r.team_id))
    : new Set<number>();
  const rc = new Map(repoCounts.map((r) => [r.team_id, Number(r.n)]));
  const mc = new Map(memberCounts.map((r) => [r.team_id, Number(r.n)]));
  return teams.map((t) => ({
    id: t.id, name: t.name, description: t.description, role: t.role,
    canView: viewable === null || viewable.has(t.id),
    repoCount: rc.get(t.id) ?? 0, memberCount: mc.get(t.id) ?? 0, isSynced: synced.has(t.id),
  }));
}

async function callerTeamIds(s: Services, p: Principal, orgId: number): Promise<Set<number>> {
  if (p.kind === 'anonymous') return new Set();
  const rows = await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .select('teams.id').where('teams.org_id', '=', orgId).where('team_members.user_id', '=', p.userId).execute();
  return new Set(rows.map((r) => r.id));
}

async function details(s: Services, p: Principal, org: User, access: OrgAccess, forceTeams: boolean): Promise<OrgDetails> {
  const superView = access.readonlySuper || access.fullAccess;
  let teams: TeamSummary[] | null = null;
  if (forceTeams || access.member || superView) {
    teams = await teamSummaries(s, org.id, access.admin || superView ? null : await callerTeamIds(s, p, org.id));
  }
  return { org, access, showEmail: access.admin || superView, teams };
}

/** Quay's Organization.get: anyone may look an organization up; members see its teams. */
export async function getOrganization(s: Services, p: Principal, orgname: string): Promise<OrgDetails> {
  const org = await findOrganization(s, orgname);
  if (!org) notFound();
  return details(s, p, org!, await orgAccess(s, p, org!.id), false);
}

// ---- Changes

export interface OrgUpdate {
  email?: string;
  contactEmail?: string | null;
  invoiceEmail?: boolean;
  invoiceEmailAddress?: string | null;
  tagExpirationS?: number;
}

/** TAG_EXPIRATION_OPTIONS in seconds (validated when the configuration is loaded). */
export function tagExpirationOptions(s: Services): number[] {
  return s.config.tagExpirationOptions;
}

function feature(s: Services, name: string, dflt: boolean): boolean {
  const v = s.config.features[name];
  return v === undefined ? dflt : v;
}

/** Quay's Organization.put. Everything is validated before anything changes. */
export async function updateOrganization(s: Services, actor: Actor, orgname: string, u: OrgUpdate): Promise<OrgDetails> {
  const p = actor.principal;
  const { org, access } = await requireOrgAdmin(s, p, orgname, 'write');
  const changeExpiration = feature(s, 'CHANGE_TAG_EXPIRATION', true) && u.tagExpirationS !== undefined;
  if (changeExpiration && !tagExpirationOptions(s).includes(u.tagExpirationS!)) throw new DataModelError('Invalid tag expiration option');
  const changeEmail = u.email !== undefined && u.email !== org.email;
  if (changeEmail) {
    const taken = await s.db.selectFrom('users').select('id').where('email', '=', u.email!).where('id', '!=', org.id).executeTakeFirst();
    if (taken) throw new DomainError('invalid_request', 'E-mail address already used');
  }
  const log = (kind: string, metadata: Record<string, unknown>, tx: Db) =>
    logAction(s, kind, { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { ...metadata, namespace: orgname } }, tx as Transaction<Database>);
  await s.db.transaction().execute(async (tx) => {
    if (u.invoiceEmail !== undefined) {
      await tx.updateTable('users').set({ invoice_email: u.invoiceEmail ? 1 : 0 }).where('id', '=', org.id).execute();
      await log('org_change_invoicing', { invoice_email: u.invoiceEmail }, tx);
    }
    if (u.invoiceEmailAddress !== undefined && u.invoiceEmailAddress !== org.invoice_email_address) {
      await tx.updateTable('users').set({ invoice_email_address: u.invoiceEmailAddress }).where('id', '=', org.id).execute();
      await log('org_change_invoicing', { invoice_email_address: u.invoiceEmailAddress }, tx);
    }
    if (changeEmail) {
      await tx.updateTable('users').set({ email: u.email! }).where('id', '=', org.id).execute();
      await log('org_change_email', { email: u.email, old_email: org.email }, tx);
    }
    if (u.contactEmail !== undefined) await setMetadataField(s, org.id, 'contact_email', u.contactEmail, tx);
    if (changeExpiration) {
      await tx.updateTable('users').set({ tag_expiration_s: u.tagExpirationS! }).where('id', '=', org.id).execute();
      await log('org_change_tag_expiration', { tag_expiration: u.tagExpirationS }, tx);
    }
  });
  const fresh = (await findOrganization(s, orgname))!;
  return details(s, p, fresh, access, true);
}

/**
 * Deletes the organization with everything it owns (teams, robots, repositories, permissions,
 * applications) in one transaction; the blobs its repositories referenced become unreferenced and
 * the garbage collector removes them from storage. Fresh-login is the HTTP layer's check.
 */
export async function deleteOrganization(s: Services, actor: Actor, orgname: string): Promise<void> {
  const { org } = await requireOrgAdmin(s, actor.principal, orgname, 'write');
  await s.db.transaction().execute(async (tx) => {
    // Logged first, as Quay does: the namespace is gone afterwards.
    await logAction(s, 'org_delete', { namespaceId: org.id, performer: actor.principal, ip: actor.ip, metadata: { namespace: orgname } }, tx);
    await tx.deleteFrom('repositories').where('namespace_id', '=', org.id).execute();
    await tx.deleteFrom('users').where('robot_owner_id', '=', org.id).execute();
    await tx.deleteFrom('users').where('id', '=', org.id).execute();
  });
}

// ---- Members and collaborators

export interface MemberSummary {
  user: User;
  teams: { id: number; name: string }[];
  repositories: string[];
}

/** Direct permissions on the organization's repositories, by user id. */
async function directRepoNames(s: Services, orgId: number, userIds?: number[]): Promise<Map<number, string[]>> {
  let q = s.db.selectFrom('repo_permissions').innerJoin('repositories', 'repositories.id', 'repo_permissions.repository_id')
    .select(['repo_permissions.user_id', 'repositories.name'])
    .where('repositories.namespace_id', '=', orgId).where('repo_permissions.user_id', 'is not', null);
  if (userIds) q = q.where('repo_permissions.user_id', 'in', userIds.length ? userIds : [-1]);
  const rows = await q.orderBy('repo_permissions.id').execute();
  const out = new Map<number, string[]>();
  for (const r of rows) {
    const list = out.get(r.user_id!) ?? [];
    list.push(r.name);
    out.set(r.user_id!, list);
  }
  return out;
}

/** Quay's OrganizationMemberList: the humans in any team, their teams and direct permissions. */
export async function listMembers(s: Services, p: Principal, orgname: string): Promise<MemberSummary[]> {
  const { org } = await requireOrgAdmin(s, p, orgname, 'read');
  const rows = await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .innerJoin('users', 'users.id', 'team_members.user_id')
    .selectAll('users').select(['teams.id as team_id', 'teams.name as team_name'])
    .where('teams.org_id', '=', org.id).where('users.kind', '=', 'user').orderBy('team_members.id').execute();
  const members = new Map<number, MemberSummary>();
  for (const r of rows) {
    const { team_id, team_name, ...user } = r;
    const m = members.get(user.id) ?? { user: user as User, teams: [], repositories: [] };
    m.teams.push({ id: team_id, name: team_name });
    members.set(user.id, m);
  }
  const repos = await directRepoNames(s, org.id, [...members.keys()]);
  for (const m of members.values()) m.repositories = repos.get(m.user.id) ?? [];
  return [...members.values()];
}

/** Quay's OrganizationMember.get: a user in a team of the org, or one of the org's robots. */
export async function getMember(s: Services, p: Principal, orgname: string, membername: string): Promise<MemberSummary> {
  const { org } = await requireOrgAdmin(s, p, orgname, 'read');
  const member = await findUser(s, membername);
  if (!member || member.kind === 'org') notFound();
  const teams = await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .select(['teams.id', 'teams.name']).where('teams.org_id', '=', org.id).where('team_members.user_id', '=', member!.id)
    .orderBy('teams.id').execute();
  if (teams.length === 0 && !(member!.kind === 'robot' && member!.robot_owner_id === org.id)) notFound();
  const repos = await directRepoNames(s, org.id, [member!.id]);
  return { user: member!, teams, repositories: repos.get(member!.id) ?? [] };
}

async function adminUserIds(s: Services, orgId: number, db: Db = s.db): Promise<number[]> {
  const rows = await db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .innerJoin('users', 'users.id', 'team_members.user_id')
    .select('users.id').distinct().where('teams.org_id', '=', orgId).where('teams.role', '=', 'admin').where('users.kind', '=', 'user').execute();
  return rows.map((r) => r.id);
}

/** True when removing these memberships would leave the organization without a human admin. */
export async function wouldOrphan(s: Services, orgId: number, removeUserFromTeams: { userId: number; teamIds: number[] } | null, removeTeamId: number | null, db: Db = s.db): Promise<boolean> {
  const rows = await db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .innerJoin('users', 'users.id', 'team_members.user_id')
    .select(['team_members.team_id', 'team_members.user_id'])
    .where('teams.org_id', '=', orgId).where('teams.role', '=', 'admin').where('users.kind', '=', 'user').execute();
  const left = rows.filter((r) => r.team_id !== removeTeamId
    && !(removeUserFromTeams && r.user_id === removeUserFromTeams.userId && removeUserFromTeams.teamIds.includes(r.team_id)));
  return rows.length > 0 && left.length === 0;
}

/** Quay's OrganizationMember.delete: out of every team and every repository of the org. */
export async function removeMember(s: Services, actor: Actor, orgname: string, membername: string): Promise<void> {
  const p = actor.principal;
  const org0 = await findOrganization(s, orgname);
  const access = await orgAccess(s, p, org0?.id ?? null);
  if (!access.admin && !access.fullAccess) denied();
  const user = await findUser(s, membername);
  if (!user || user.kind !== 'user') notFound();
  if (!org0) notFound();
  const org = org0!;
  await s.db.transaction().execute(async (tx) => {
    const admins = await adminUserIds(s, org.id, tx);
    if (admins.length === 1 && admins[0] === user!.id) throw new DataModelError('Cannot remove user as they are the only organization admin');
    await tx.deleteFrom('repo_permissions').where('user_id', '=', user!.id)
      .where('repository_id', 'in', tx.selectFrom('repositories').select('id').where('namespace_id', '=', org.id)).execute();
    await tx.deleteFrom('team_members').where('user_id', '=', user!.id)
      .where('team_id', 'in', tx.selectFrom('teams').select('id').where('org_id', '=', org.id)).execute();
  });
}

export interface Collaborator {
  user: User;
  repositories: string[];
}

/** Quay's OrganizationCollaboratorList: users with direct permissions who are in no team. */
export async function listCollaborators(s: Services, p: Principal, orgname: string): Promise<Collaborator[]> {
  const { org } = await requireOrgAdmin(s, p, orgname, 'read');
  const rows = await s.db.selectFrom('repo_permissions').innerJoin('repositories', 'repositories.id', 'repo_permissions.repository_id')
    .innerJoin('users', 'users.id', 'repo_permissions.user_id')
    .selectAll('users').select('repositories.name as repo_name')
    .where('repositories.namespace_id', '=', org.id).where('users.kind', '=', 'user')
    .where((eb) => eb.not(eb.exists(eb.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
      .select('team_members.id').whereRef('team_members.user_id', '=', 'users.id').where('teams.org_id', '=', org.id))))
    .orderBy('repo_permissions.id').execute();
  const out = new Map<number, Collaborator>();
  for (const r of rows) {
    const { repo_name, ...user } = r;
    const c = out.get(user.id) ?? { user: user as User, repositories: [] };
    c.repositories.push(repo_name);
    out.set(user.id, c);
  }
  return [...out.values()];
}

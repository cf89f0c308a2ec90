// Direct repository permissions of users, robots and teams, managed by repository admins.
import type { Principal, Services } from './context.ts';
import { findUser, type User } from './accounts.ts';
import { DataModelError } from './data-errors.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import type { Role } from './permissions.ts';
import type { Repo } from './repositories.ts';
import { accessRepo } from './repository-api.ts';
import type { Actor } from './organizations.ts';
import { findTeam, type Team } from './teams.ts';

export interface RepoRef {
  namespace: string;
  name: string;
}

/** Repository admins (and, for reads, global read-only superusers); strangers cannot probe names. */
async function adminRepo(s: Services, p: Principal, ref: RepoRef, mode: 'read' | 'write'): Promise<Repo> {
  return (await accessRepo(s, p, ref.namespace, ref.name, 'admin', { readonlySuperuser: mode === 'read' })).repo;
}

export interface UserPermission {
  user: User;
  role: Role;
  /** null outside organizations (Quay leaves the field out). */
  isOrgMember: boolean | null;
}

/** Usernames of the humans in any team of the organization. */
async function orgMemberIds(s: Services, orgId: number, userIds: number[]): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const rows = await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .select('team_members.user_id').where('teams.org_id', '=', orgId).where('team_members.user_id', 'in', userIds).execute();
  return new Set(rows.map((r) => r.user_id));
}

async function withMembership(s: Services, repo: Repo, rows: { user: User; role: Role }[]): Promise<UserPermission[]> {
  const isOrg = repo.namespace_kind === 'org';
  const members = isOrg ? await orgMemberIds(s, repo.namespace_id, rows.map((r) => r.user.id)) : new Set<number>();
  return rows.map((r) => ({ ...r, isOrgMember: isOrg ? r.user.kind === 'robot' || members.has(r.user.id) : null }));
}

async function directUserRows(s: Services, repoId: number, userId?: number): Promise<{ user: User; role: Role }[]> {
  let q = s.db.selectFrom('repo_permissions').innerJoin('users', 'users.id', 'repo_permissions.user_id')
    .selectAll('users').select('repo_permissions.role as perm_role').where('repo_permissions.repository_id', '=', repoId);
  if (userId !== undefined) q = q.where('repo_permissions.user_id', '=', userId);
  const rows = await q.orderBy('repo_permissions.id').execute();
  return rows.map(({ perm_role, ...user }) => ({ user: user as User, role: perm_role }));
}

export async function listUserPermissions(s: Services, p: Principal, ref: RepoRef): Promise<UserPermission[]> {
  const repo = await adminRepo(s, p, ref, 'read');
  return withMembership(s, repo, await directUserRows(s, repo.id));
}

export async function getUserPermission(s: Services, p: Principal, ref: RepoRef, username: string): Promise<UserPermission> {
  const repo = await adminRepo(s, p, ref, 'read');
  const user = await findUser(s, username);
  const rows = user ? await directUserRows(s, repo.id, user.id) : [];
  if (rows.length === 0) throw new DataModelError('User does not have permission for repo.');
  return (await withMembership(s, repo, rows))[0]!;
}

/** Quay's set_user_repo_permission: never the namespace owner, robots only of this namespace. */
export async function setUserPermission(s: Services, actor: Actor, ref: RepoRef, username: string, role: Role): Promise<UserPermission> {
  const repo = await adminRepo(s, actor.principal, ref, 'write');
  if (username === repo.namespace) throw new DomainError('invalid_request', 'Namespace owner must always be admin.');
  const user = await findUser(s, username);
  if (!user || user.kind === 'org') throw new DomainError('invalid_request', `Invalid username: ${username}`);
  if (user.kind === 'robot' && user.robot_owner_id !== repo.namespace_id) {
    throw new DomainError('invalid_request', `Cannot add robot ${username} under namespace ${repo.namespace}`);
  }
  await s.db.transaction().execute(async (tx) => {
    const existing = await tx.selectFrom('repo_permissions').select('id').where('repository_id', '=', repo.id).where('user_id', '=', user.id).executeTakeFirst();
    if (existing) await tx.updateTable('repo_permissions').set({ role }).where('id', '=', existing.id).execute();
    else await tx.insertInto('repo_permissions').values({ repository_id: repo.id, user_id: user.id, team_id: null, role }).execute();
    // Quay logs change_repo_permission whether the permission is new or changed.
    await logAction(s, 'change_repo_permission', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: actor.principal, ip: actor.ip,
      metadata: { username, repo: repo.name, namespace: repo.namespace, role },
    }, tx);
  });
  return (await withMembership(s, repo, [{ user, role }]))[0]!;
}

export async function deleteUserPermission(s: Services, actor: Actor, ref: RepoRef, username: string): Promise<void> {
  const repo = await adminRepo(s, actor.principal, ref, 'write');
  if (username === repo.namespace) throw new DomainError('invalid_request', 'Namespace owner must always be admin.');
  const user = await findUser(s, username);
  await s.db.transaction().execute(async (tx) => {
    const gone = user
      ? await tx.deleteFrom('repo_permissions').where('repository_id', '=', repo.id).where('user_id', '=', user.id).returning('id').execute()
      : [];
    if (gone.length === 0) throw new DomainError('invalid_request', 'User does not have permission for repo.');
    await logAction(s, 'delete_repo_permission', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: actor.principal, ip: actor.ip,
      metadata: { username, repo: repo.name, namespace: repo.namespace },
    }, tx);
  });
}

/** Quay's RepositoryUserTransitivePermission: the user's direct role and the roles of their teams. */
export async function transitivePermissions(s: Services, p: Principal, ref: RepoRef, username: string): Promise<Role[]> {
  const repo = await adminRepo(s, p, ref, 'read');
  const user = await findUser(s, username);
  if (!user || user.kind === 'org') throw new DomainError('not_found', 'Not Found');
  const rows = await s.db.selectFrom('repo_permissions').select('role').where('repository_id', '=', repo.id)
    .where((eb) => eb.or([
      eb('user_id', '=', user.id),
      eb('team_id', 'in', eb.selectFrom('team_members').select('team_id').where('user_id', '=', user.id)),
    ])).orderBy('id').execute();
  if (rows.length === 0) throw new DomainError('not_found', 'Not Found');
  return rows.map((r) => r.role);
}

// ---- Teams

export interface TeamPermission {
  team: Team;
  role: Role;
}

export async function listTeamPermissions(s: Services, p: Principal, ref: RepoRef): Promise<TeamPermission[]> {
  const repo = await adminRepo(s, p, ref, 'read');
  const rows = await s.db.selectFrom('repo_permissions').innerJoin('teams', 'teams.id', 'repo_permissions.team_id')
    .selectAll('teams').select('repo_permissions.role as perm_role').where('repo_permissions.repository_id', '=', repo.id)
    .orderBy('repo_permissions.id').execute();
  return rows.map(({ perm_role, ...team }) => ({ team: team as Team, role: perm_role }));
}

async function teamOfNamespace(s: Services, repo: Repo, teamname: string): Promise<Team | undefined> {
  return repo.namespace_kind === 'org' ? findTeam(s, repo.namespace_id, teamname) : undefined;
}

export async function getTeamPermission(s: Services, p: Principal, ref: RepoRef, teamname: string): Promise<Role> {
  const repo = await adminRepo(s, p, ref, 'read');
  const team = await teamOfNamespace(s, repo, teamname);
  const row = team
    ? await s.db.selectFrom('repo_permissions').select('role').where('repository_id', '=', repo.id).where('team_id', '=', team.id).executeTakeFirst()
    : undefined;
  if (!row) throw new DataModelError('Team does not have permission for repo.');
  return row.role;
}

/** A team of the repository's own organization (Quay: "No team … in organization …" otherwise). */
export async function setTeamPermission(s: Services, actor: Actor, ref: RepoRef, teamname: string, role: Role): Promise<TeamPermission> {
  const repo = await adminRepo(s, actor.principal, ref, 'write');
  const team = await teamOfNamespace(s, repo, teamname);
  if (!team) throw new DomainError('invalid_request', `No team ${teamname} in organization ${repo.namespace}`);
  await s.db.transaction().execute(async (tx) => {
    const existing = await tx.selectFrom('repo_permissions').select('id').where('repository_id', '=', repo.id).where('team_id', '=', team.id).executeTakeFirst();
    if (existing) await tx.updateTable('repo_permissions').set({ role }).where('id', '=', existing.id).execute();
    else await tx.insertInto('repo_permissions').values({ repository_id: repo.id, user_id: null, team_id: team.id, role }).execute();
    await logAction(s, 'change_repo_permission', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: actor.principal, ip: actor.ip,
      metadata: { team: teamname, repo: repo.name, role },
    }, tx);
  });
  return { team, role };
}

export async function deleteTeamPermission(s: Services, actor: Actor, ref: RepoRef, teamname: string): Promise<void> {
  const repo = await adminRepo(s, actor.principal, ref, 'write');
  const team = await teamOfNamespace(s, repo, teamname);
  await s.db.transaction().execute(async (tx) => {
    const gone = team
      ? await tx.deleteFrom('repo_permissions').where('repository_id', '=', repo.id).where('team_id', '=', team.id).returning('id').execute()
      : [];
    if (gone.length === 0) throw new DomainError('invalid_request', 'Team does not have permission for repo.');
    await logAction(s, 'delete_repo_permission', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: actor.principal, ip: actor.ip,
      metadata: { team: teamname, repo: repo.name },
    }, tx);
  });
}

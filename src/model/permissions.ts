// The one place that decides what a principal may do to a namespace or repository.
import type { Principal, Services } from './context.ts';

export type Role = 'read' | 'write' | 'admin';
export type OrgRole = 'admin' | 'creator' | 'member';
const RANK: Record<Role, number> = { read: 1, write: 2, admin: 3 };

export function maxRole(a: Role | null, b: Role | null): Role | null {
  if (!a) return b;
  if (!b) return a;
  return RANK[a] >= RANK[b] ? a : b;
}

export function roleAtLeast(have: Role | null, need: Role): boolean {
  return have !== null && RANK[have] >= RANK[need];
}

/** OAuth tokens carry scopes; every other credential acts with the user's full rights. */
function scopeCap(p: Principal): { role: Role | null; create: boolean } {
  if (p.kind === 'anonymous' || p.scopes === null) return { role: 'admin', create: true };
  const sc = new Set(p.scopes);
  const role: Role | null = sc.has('repo:admin') ? 'admin' : sc.has('repo:write') ? 'write' : sc.has('repo:read') ? 'read' : null;
  return { role, create: sc.has('repo:create') };
}

function capRole(role: Role | null, cap: Role | null): Role | null {
  if (!role || !cap) return null;
  return RANK[role] <= RANK[cap] ? role : cap;
}

/** The principal's strongest team role in an organization (admin > creator > member). */
export async function orgRole(s: Services, p: Principal, orgId: number): Promise<OrgRole | null> {
  if (p.kind === 'anonymous') return null;
  const rows = await s.db.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
    .select('teams.role').where('teams.org_id', '=', orgId).where('team_members.user_id', '=', p.userId).execute();
  const roles = new Set(rows.map((r) => r.role));
  return roles.has('admin') ? 'admin' : roles.has('creator') ? 'creator' : roles.has('member') ? 'member' : null;
}

function fullAccessSuperuser(s: Services, p: Principal): boolean {
  return p.kind === 'user' && p.superuser && s.config.features.SUPERUSERS_FULL_ACCESS;
}

export interface RepoForAccess {
  id: number;
  namespace_id: number;
  is_public: number;
  namespace_kind: string;
}

/** The principal's effective role on an existing repository, or null for none. */
export async function repoRole(s: Services, p: Principal, repo: RepoForAccess): Promise<Role | null> {
  let role: Role | null = null;
  if (p.kind !== 'anonymous') {
    if (repo.namespace_id === p.userId) role = 'admin';
    else if (fullAccessSuperuser(s, p)) role = 'admin';
    else {
      if (repo.namespace_kind === 'org' && (await orgRole(s, p, repo.namespace_id)) === 'admin') role = 'admin';
      if (role !== 'admin') {
        const perms = await s.db.selectFrom('repo_permissions').select('role')
          .where('repository_id', '=', repo.id)
          .where((eb) => eb.or([
            eb('user_id', '=', p.userId),
            eb('team_id', 'in', eb.selectFrom('team_members').select('team_id').where('user_id', '=', p.userId)),
          ])).execute();
        for (const r of perms) role = maxRole(role, r.role);
      }
    }
    role = capRole(role, scopeCap(p).role);
  }
  if (repo.is_public && (p.kind !== 'anonymous' || s.config.features.ANONYMOUS_ACCESS)) {
    // Public read survives any scope: Quay lets anyone pull a public repository.
    role = maxRole(role, 'read');
  }
  return role;
}

/** May the principal create repositories in this namespace (API create, or push-to-create)? */
export async function canCreateIn(s: Services, p: Principal, ns: { id: number; kind: string }): Promise<boolean> {
  if (p.kind === 'anonymous' || !scopeCap(p).create) return false;
  if (ns.kind === 'robot') return false;
  if (ns.id === p.userId) return p.kind === 'user';
  if (fullAccessSuperuser(s, p)) return true;
  if (ns.kind !== 'org') return false;
  const r = await orgRole(s, p, ns.id);
  return r === 'admin' || r === 'creator';
}

/** Grants (or changes) a user's, robot's or team's role on a repository. */
export async function setRepoPermission(
  s: Services, repoId: number, who: { userId: number } | { teamId: number }, role: Role,
): Promise<void> {
  const userId = 'userId' in who ? who.userId : null;
  const teamId = 'teamId' in who ? who.teamId : null;
  await s.db.transaction().execute(async (tx) => {
    let q = tx.deleteFrom('repo_permissions').where('repository_id', '=', repoId);
    q = userId !== null ? q.where('user_id', '=', userId) : q.where('team_id', '=', teamId);
    await q.execute();
    await tx.insertInto('repo_permissions').values({ repository_id: repoId, user_id: userId, team_id: teamId, role }).execute();
  });
}

// /v2/_catalog: the repositories a principal may see, in byte order of "namespace/name".
import { sql } from 'kysely';
import type { Principal, Services } from './context.ts';

export async function listVisibleRepositories(s: Services, p: Principal, limit: number, after: string | null): Promise<string[]> {
  const full = s.dialect === 'postgres'
    ? sql<string>`(users.username || '/' || repositories.name) collate "C"`
    : sql<string>`(users.username || '/' || repositories.name)`;
  let q = s.db.selectFrom('repositories').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select(full.as('full_name')).where('repositories.state', '!=', 'MARKED_FOR_DELETION');
  if (p.kind === 'anonymous') {
    q = q.where('repositories.is_public', '=', 1);
  } else if (!(p.superuser && s.config.features.SUPERUSERS_FULL_ACCESS)) {
    const uid = p.userId;
    q = q.where((eb) => eb.or([
      eb('repositories.is_public', '=', 1),
      eb('repositories.namespace_id', '=', uid),
      eb.exists(eb.selectFrom('repo_permissions').select('repo_permissions.id').whereRef('repo_permissions.repository_id', '=', 'repositories.id')
        .where((e2) => e2.or([
          e2('repo_permissions.user_id', '=', uid),
          e2('repo_permissions.team_id', 'in', e2.selectFrom('team_members').select('team_members.team_id').where('team_members.user_id', '=', uid)),
        ]))),
      eb('repositories.namespace_id', 'in', eb.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
        .select('teams.org_id').where('team_members.user_id', '=', uid).where('teams.role', '=', 'admin')),
    ]));
  }
  if (after !== null) q = q.where(full, '>', after);
  const rows = await q.orderBy(full).limit(limit).execute();
  return rows.map((r) => r.full_name);
}

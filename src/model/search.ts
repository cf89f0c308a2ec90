// Finding repositories, namespaces, teams and robots by name for the caller. Only what the caller
// may see is ever considered: public repositories, and for a user their own namespace, the orgs
// they administer and repositories granted to them or their teams. Repositories rank by how well
// the name matches (exact, prefix, substring, description only), then by popularity: Quay's
// action count of the last week (index-only counts on (repository_id, datetime)), then stars.
import { sql, type ExpressionBuilder } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';

/** Quay's ENTITY_SEARCH_SCORE, TEAM_SEARCH_SCORE and REPOSITORY_SEARCH_SCORE. */
export const SEARCH_SCORES = { entity: 1, team: 2, repository: 4 } as const;
/** Longer queries cannot match a name (255 chars); they are cut here to bound the work. */
const MAX_QUERY = 255;
const WEEK_MS = 7 * 24 * 60 * 60 * 1000;

export interface SearchAccount { id: number; username: string; email: string | null; kind: string }

export interface RepoHit {
  id: number;
  namespace: SearchAccount;
  name: string;
  description: string | null;
  isPublic: boolean;
  kind: string;
  /** Log entries of the last week (Quay's "popularity"). */
  popularity: number;
  stars: number;
}

export interface RepoUsage { lastModified: number | null }

export function searchSettings(s: Services): { perPage: number; maxPages: number } {
  const n = (k: string, d: number) => {
    const v = s.config.raw[k];
    return typeof v === 'number' && Number.isInteger(v) && v > 0 ? Math.min(v, 100) : d;
  };
  return { perPage: n('SEARCH_RESULTS_PER_PAGE', 10), maxPages: n('SEARCH_MAX_RESULT_PAGE_COUNT', 10) };
}

function escapeLike(v: string): string {
  return v.replace(/[!%_]/g, (c) => `!${c}`);
}

/** May this caller's credentials read private repositories at all (OAuth tokens need a repo scope)? */
function readsPrivate(p: Principal): p is Exclude<Principal, { kind: 'anonymous' }> {
  if (p.kind === 'anonymous') return false;
  return p.scopes === null || p.scopes.some((x) => x === 'repo:read' || x === 'repo:write' || x === 'repo:admin');
}

/** The repositories `p` may read, as a WHERE condition on `repositories`. */
function visibleTo(s: Services, p: Principal) {
  return (eb: ExpressionBuilder<Database, 'repositories'>) => {
    const alive = eb('repositories.state', '!=', 'MARKED_FOR_DELETION');
    const anonOk = p.kind !== 'anonymous' || s.config.features.ANONYMOUS_ACCESS;
    if (!readsPrivate(p)) return anonOk ? eb.and([alive, eb('repositories.is_public', '=', 1)]) : eb.lit(false);
    if (p.kind === 'user' && p.superuser && s.config.features.SUPERUSERS_FULL_ACCESS) return alive;
    const uid = p.userId;
    return eb.and([alive, eb.or([
      eb('repositories.is_public', '=', 1),
      eb('repositories.namespace_id', '=', uid),
      eb('repositories.namespace_id', 'in', eb.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
        .select('teams.org_id').where('team_members.user_id', '=', uid).where('teams.role', '=', 'admin')),
      eb('repositories.id', 'in', eb.selectFrom('repo_permissions').select('repo_permissions.repository_id').where('repo_permissions.user_id', '=', uid)),
      eb('repositories.id', 'in', eb.selectFrom('repo_permissions').innerJoin('team_members', 'team_members.team_id', 'repo_permissions.team_id')
        .select('repo_permissions.repository_id').where('team_members.user_id', '=', uid)),
    ])]);
  };
}

/** Repositories matching `query` in name or description, best first; an empty query lists all. */
export async function searchRepositories(
  s: Services, p: Principal, query: string, opts: { offset: number; limit: number },
): Promise<RepoHit[]> {
  const q = query.toLowerCase().slice(0, MAX_QUERY);
  const name = sql<string>`lower(${sql.ref('repositories.name')})`;
  const contains = `%${escapeLike(q)}%`;
  const relevance = q
    ? sql<number>`case when ${name} = ${q} then 4 when ${name} like ${`${escapeLike(q)}%`} escape '!' then 3 when ${name} like ${contains} escape '!' then 2 else 1 end`
    : sql<number>`1`;
  const since = s.now() - WEEK_MS;
  const popularity = sql<number>`(select count(*) from logs where logs.repository_id = repositories.id and logs.datetime >= ${since})`;
  const stars = sql<number>`(select count(*) from stars where stars.repository_id = repositories.id)`;
  let sel = s.db.selectFrom('repositories').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select([
      'repositories.id', 'repositories.name', 'repositories.description', 'repositories.is_public', 'repositories.kind',
      'users.id as ns_id', 'users.username as ns_name', 'users.email as ns_email', 'users.kind as ns_kind',
      relevance.as('relevance'), popularity.as('popularity'), stars.as('stars'),
    ])
    .where(visibleTo(s, p));
  if (q) {
    sel = sel.where((eb) => eb.or([
      eb(name, 'like', sql<string>`${contains} escape '!'`),
      eb(sql<string>`lower(coalesce(${sql.ref('repositories.description')}, ''))`, 'like', sql<string>`${contains} escape '!'`),
    ]));
  }
  const rows = await sel
    .orderBy('relevance', 'desc').orderBy('popularity', 'desc').orderBy('stars', 'desc').orderBy('repositories.id', 'asc')
    .offset(opts.offset).limit(opts.limit)
    .execute();
  return rows.map((r) => ({
    id: Number(r.id),
    namespace: { id: Number(r.ns_id), username: r.ns_name, email: r.ns_email, kind: r.ns_kind },
    name: r.name,
    description: r.description,
    isPublic: r.is_public === 1,
    kind: r.kind,
    popularity: Number(r.popularity),
    stars: Number(r.stars),
  }));
}

/** When each repository's newest live tag was pushed (Quay's last_modified), in unix seconds. */
export async function lastModified(s: Services, repoIds: number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (!repoIds.length) return out;
  const now = s.now();
  const rows = await s.db.selectFrom('tags').select(['repository_id', (eb) => eb.fn.max('lifetime_start').as('latest')])
    .where('repository_id', 'in', repoIds).where('hidden', '=', 0)
    .where((eb) => eb.or([eb('lifetime_end', 'is', null), eb('lifetime_end', '>', now)]))
    .groupBy('repository_id').execute();
  for (const r of rows) if (r.latest !== null) out.set(Number(r.repository_id), Math.floor(Number(r.latest) / 1000));
  return out;
}

export type SearchHit =
  | { kind: 'repository'; score: number; repo: RepoHit }
  | { kind: 'namespace'; score: number; account: SearchAccount }
  | { kind: 'robot'; score: number; account: SearchAccount; shortName: string }
  | { kind: 'team'; score: number; team: { id: number; name: string }; org: SearchAccount };

/** Quay's /find/all: teams, robots, repositories and namespaces, scored by how the name matches. */
export async function searchAll(s: Services, p: Principal, query: string): Promise<SearchHit[]> {
  const q = query.toLowerCase().slice(0, MAX_QUERY);
  if (!q) return [];
  const prefix = `${escapeLike(q)}%`;
  const hits: SearchHit[] = [];

  if (p.kind !== 'anonymous') {
    const adminOrgs = s.db.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
      .select('teams.org_id').where('team_members.user_id', '=', p.userId).where('teams.role', '=', 'admin');
    const teamCols = ['teams.id', 'teams.name', 'users.id as org_id', 'users.username as org_name', 'users.email as org_email', 'users.kind as org_kind'] as const;
    const memberTeams = await s.db.selectFrom('teams').innerJoin('users', 'users.id', 'teams.org_id')
      .innerJoin('team_members', 'team_members.team_id', 'teams.id').select([...teamCols])
      .where('team_members.user_id', '=', p.userId).where('teams.name', 'like', sql<string>`${prefix} escape '!'`)
      .orderBy('teams.id').limit(5).execute();
    const adminedTeams = await s.db.selectFrom('teams').innerJoin('users', 'users.id', 'teams.org_id').select([...teamCols])
      .where('teams.org_id', 'in', adminOrgs).where('teams.name', 'like', sql<string>`${prefix} escape '!'`)
      .orderBy('teams.id').limit(5).execute();
    const seen = new Set<number>();
    for (const t of [...memberTeams, ...adminedTeams]) {
      if (seen.has(Number(t.id))) continue;
      seen.add(Number(t.id));
      hits.push({
        kind: 'team', score: SEARCH_SCORES.team, team: { id: Number(t.id), name: t.name },
        org: { id: Number(t.org_id), username: t.org_name, email: t.org_email, kind: t.org_kind },
      });
    }

    // Robots of the caller's namespace and of the orgs they administer.
    const owners = await s.db.selectFrom('users').select('username')
      .where((eb) => eb.or([eb('id', '=', p.userId), eb('id', 'in', adminOrgs)])).execute();
    if (owners.length) {
      const robots = await s.db.selectFrom('users').select(['id', 'username', 'email', 'kind']).where('kind', '=', 'robot')
        .where((eb) => eb.or(owners.map((o) => eb('username', 'like', sql<string>`${`${escapeLike(o.username)}+${prefix}`} escape '!'`))))
        .orderBy('id').limit(5).execute();
      for (const r of robots) {
        hits.push({ kind: 'robot', score: SEARCH_SCORES.entity, account: { ...r, id: Number(r.id) }, shortName: r.username.slice(r.username.indexOf('+') + 1) });
      }
    }
  }

  for (const repo of await searchRepositories(s, p, q, { offset: 0, limit: 5 })) {
    hits.push({ kind: 'repository', score: SEARCH_SCORES.repository, repo });
  }

  // Users and organizations owning at least one repository the caller can see.
  const namespaces = await s.db.selectFrom('users').select(['id', 'username', 'email', 'kind'])
    .where('kind', 'in', ['user', 'org']).where('username', 'like', sql<string>`${prefix} escape '!'`)
    .where((eb) => eb.exists(eb.selectFrom('repositories').select('repositories.id')
      .whereRef('repositories.namespace_id', '=', 'users.id').where(visibleTo(s, p))))
    .orderBy('username').limit(5).execute();
  for (const n of namespaces) hits.push({ kind: 'namespace', score: SEARCH_SCORES.entity, account: { ...n, id: Number(n.id) } });

  // Quay: score × how closely the (short) name matches the query, 0.5 when it does not at all.
  for (const h of hits) {
    const label = h.kind === 'robot' ? h.shortName : h.kind === 'team' ? h.team.name : h.kind === 'repository' ? h.repo.name : h.account.username;
    h.score *= liquidMetal(label, q) || 0.5;
  }
  // Stable: equal scores keep the order above (teams, robots, repositories, namespaces).
  return hits.sort((a, b) => b.score - a.score);
}

/**
 * LiquidMetal's score (Quay uses the stringscore port): 1.0 for a perfect match, characters
 * matched at word starts and capitals weigh more, trailing characters a little. This is the
 * single-pass form, linear in the name, so a hostile query cannot make it explode.
 */
export function liquidMetal(str: string, abbr: string): number {
  if (abbr.length === 0) return 0.8;
  if (abbr.length > str.length) return 0;
  const scores = new Array<number>(str.length).fill(0);
  const fill = (v: number, from: number, to: number) => { for (let i = Math.max(0, from); i < to; i++) scores[i] = v; };
  const lower = str.toLowerCase();
  let last = -1;
  let started = false;
  for (const c of abbr.toLowerCase()) {
    const index = lower.indexOf(c, last + 1);
    if (index < 0) return 0;
    if (index === 0) started = true;
    if (index > 0 && ' \t_-'.includes(str[index - 1]!)) {
      scores[index - 1] = 1;
      fill(0.85, last + 1, index - 1);
    } else if (str[index]! >= 'A' && str[index]! <= 'Z') {
      fill(0.85, last + 1, index);
    } else {
      fill(0, last + 1, index);
    }
    scores[index] = 1;
    last = index;
  }
  fill(started ? 0.9 : 0.8, last + 1, str.length);
  return scores.reduce((a, b) => a + b, 0) / str.length;
}

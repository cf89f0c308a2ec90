// Repositories as the /api/v1 sees them: who may do what to one (including one that does not
// exist yet), the visible-repository listing with its opaque page token, the repository view with
// its permission flags, and the admin changes (description, state, trust, deletion).
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { canCreateIn, orgRole, repoRole, roleAtLeast, type Role } from './permissions.ts';
import { createRepository, findNamespace, findRepo, type Repo } from './repositories.ts';
import { aliveAt, lockRepository } from './tags.ts';
import { validRepoName } from './names.ts';
import { systemDefaultQuota } from './quota.ts';

export const REPOS_PER_PAGE = 100;
export const MAX_VIEW_TAGS = 500;
const DAY_MS = 86_400_000;
const STATS_DAYS = 92;
const POPULARITY_WINDOW_MS = 7 * DAY_MS;

/** Quay's GLOBAL_READONLY_SUPER_USERS: read access to every repository (through OAuth only with super:user). */
export function isReadonlySuperuser(s: Services, p: Principal): boolean {
  if (p.kind !== 'user' || !s.config.features.SUPER_USERS || !s.config.globalReadonlySuperUsers.includes(p.username)) return false;
  return p.scopes === null || p.scopes.includes('super:user');
}

function fullAccessSuperuser(s: Services, p: Principal): boolean {
  return p.kind === 'user' && p.superuser && s.config.features.SUPERUSERS_FULL_ACCESS;
}

export interface RepoAccess {
  repo: Repo;
  role: Role | null;
}

/**
 * Quay's require_repo_{read,write,admin}: checks the caller first and only then whether the
 * repository exists, so a stranger cannot probe names (403/401) while the namespace's owner and
 * organization admins learn that it does not (404).
 */
export async function accessRepo(
  s: Services, p: Principal, namespace: string, name: string, need: Role, opts: { readonlySuperuser?: boolean } = {},
): Promise<RepoAccess> {
  const repo = await findRepo(s, namespace, name);
  let role: Role | null;
  if (repo && repo.state !== 'MARKED_FOR_DELETION') {
    role = await repoRole(s, p, repo);
  } else {
    role = null;
    const ns = await findNamespace(s, namespace);
    if (ns && p.kind !== 'anonymous') {
      if (ns.id === p.userId || fullAccessSuperuser(s, p)) role = 'admin';
      else if (ns.kind === 'org' && (await orgRole(s, p, ns.id)) === 'admin') role = 'admin';
    }
  }
  const allowed = roleAtLeast(role, need) || ((need === 'read' || opts.readonlySuperuser) && isReadonlySuperuser(s, p));
  if (!allowed) throw new DomainError('denied', 'Unauthorized');
  if (!repo || repo.state === 'MARKED_FOR_DELETION') throw new DomainError('not_found', 'Not Found');
  return { repo, role };
}

// ---- Listing

export interface ListReposInput {
  namespace: string | null;
  starred: boolean;
  public: boolean;
  lastModified: boolean;
  popularity: boolean;
  repoKind: string;
  nextPage: string | null;
}

export interface RepoListItem {
  namespace: string;
  name: string;
  description: string | null;
  is_public: boolean;
  kind: string;
  state: string | null;
  last_modified?: number | null;
  popularity?: number;
  is_starred?: boolean;
  quota_report?: { quota_bytes: number; configured_quota: number | null };
}

/** An opaque, authenticated page token (Quay encrypts its page tokens too); junk reads as page one. */
function decodePageToken(s: Services, token: string | null): number | null {
  if (!token) return null;
  try {
    const v = JSON.parse(s.box.decrypt(token)) as { start_id?: unknown; k?: unknown };
    return v.k === 'repos' && typeof v.start_id === 'number' && Number.isSafeInteger(v.start_id) ? v.start_id : null;
  } catch {
    return null;
  }
}

function encodePageToken(s: Services, startId: number): string {
  return s.box.encrypt(JSON.stringify({ k: 'repos', start_id: startId }));
}

/** Quay's listRepos: repositories in a namespace, starred by the caller, and/or public, 100 per page. */
export async function listRepositories(s: Services, p: Principal, input: ListReposInput): Promise<{ repositories: RepoListItem[]; nextPage: string | null }> {
  if (!input.namespace && !input.starred && !input.public) {
    throw new DomainError('invalid_request', 'namespace, starred or public are required for this API call');
  }
  const uid = p.kind === 'anonymous' ? null : p.userId;
  if (input.starred && uid === null) throw new DomainError('invalid_request', 'starred requires a signed-in user');
  const startId = decodePageToken(s, input.nextPage);

  let q = s.db.selectFrom('repositories').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select(['repositories.id', 'users.username as namespace', 'users.kind as namespace_kind', 'repositories.namespace_id', 'repositories.name',
      'repositories.description', 'repositories.is_public', 'repositories.kind', 'repositories.state'])
    .where('repositories.state', '!=', 'MARKED_FOR_DELETION').where('repositories.kind', '=', input.repoKind);
  // As in Quay, `starred` takes precedence over `namespace`: the caller's stars, wherever they are.
  if (input.starred) {
    q = q.where((eb) => eb.exists(eb.selectFrom('stars').select('stars.id').whereRef('stars.repository_id', '=', 'repositories.id').where('stars.user_id', '=', uid!)));
  } else if (input.namespace) {
    q = q.where('users.username', '=', input.namespace);
  }
  // Starred repositories stay listed while public; otherwise only what the caller may read.
  const includePublic = input.public || input.starred;
  if (uid === null) {
    q = includePublic ? q.where('repositories.is_public', '=', 1) : q.where(sql<boolean>`1 = 0`);
  } else {
    q = q.where((eb) => eb.or([
      ...(includePublic ? [eb('repositories.is_public', '=', 1)] : []),
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
  if (startId !== null) q = q.where('repositories.id', '>=', startId);
  const rows = await q.orderBy('repositories.id').limit(REPOS_PER_PAGE + 1).execute();
  const page = rows.slice(0, REPOS_PER_PAGE);
  const nextPage = rows.length > REPOS_PER_PAGE ? encodePageToken(s, rows[REPOS_PER_PAGE]!.id) : null;
  const ids = page.map((r) => r.id);

  const starredIds = new Set<number>();
  if (uid !== null && ids.length) {
    for (const r of await s.db.selectFrom('stars').select('repository_id').where('user_id', '=', uid).where('repository_id', 'in', ids).execute()) starredIds.add(r.repository_id);
  }
  const lastModified = new Map<number, number>();
  if (input.lastModified && ids.length) {
    const rowsLm = await s.db.selectFrom('tags').select(['repository_id', (eb) => eb.fn.max('lifetime_start').as('ts')])
      .where('repository_id', 'in', ids).where('hidden', '=', 0).where(aliveAt(s.now())).groupBy('repository_id').execute();
    for (const r of rowsLm) if (r.ts !== null) lastModified.set(r.repository_id, Math.floor(Number(r.ts) / 1000));
  }
  const popularity = new Map<number, number>();
  if (input.popularity && ids.length) {
    // Quay sums the repository's action counts of the last week.
    const rowsPop = await s.db.selectFrom('logs').select(['repository_id', (eb) => eb.fn.countAll<number>().as('n')])
      .where('repository_id', 'in', ids).where('datetime', '>=', s.now() - POPULARITY_WINDOW_MS).groupBy('repository_id').execute();
    for (const r of rowsPop) if (r.repository_id !== null) popularity.set(r.repository_id, Number(r.n));
  }
  const quota = s.config.features.QUOTA_MANAGEMENT ? await quotaReports(s, page) : null;

  const repositories = page.map((r): RepoListItem => ({
    namespace: r.namespace, name: r.name, description: r.description, is_public: r.is_public === 1, kind: r.kind, state: r.state,
    ...(input.lastModified ? { last_modified: lastModified.get(r.id) ?? null } : {}),
    ...(input.popularity ? { popularity: popularity.get(r.id) ?? 0 } : {}),
    ...(uid !== null ? { is_starred: starredIds.has(r.id) } : {}),
    ...(quota ? { quota_report: quota.get(r.id)! } : {}),
  }));
  return { repositories, nextPage };
}

async function quotaReports(s: Services, repos: { id: number; namespace_id: number }[]): Promise<Map<number, { quota_bytes: number; configured_quota: number | null }>> {
  const out = new Map<number, { quota_bytes: number; configured_quota: number | null }>();
  if (!repos.length) return out;
  const sizes = new Map((await s.db.selectFrom('repository_sizes').select(['repository_id', 'size_bytes'])
    .where('repository_id', 'in', repos.map((r) => r.id)).execute()).map((r) => [r.repository_id, Number(r.size_bytes)]));
  const limits = new Map((await s.db.selectFrom('quotas').select(['namespace_id', 'limit_bytes'])
    .where('namespace_id', 'in', [...new Set(repos.map((r) => r.namespace_id))]).execute()).map((r) => [r.namespace_id, Number(r.limit_bytes)]));
  // Sizes are kept exact by src/model/quota.ts; without a quota Quay reports the system default.
  for (const r of repos) out.set(r.id, { quota_bytes: sizes.get(r.id) ?? 0, configured_quota: limits.get(r.namespace_id) ?? systemDefaultQuota(s) });
  return out;
}

// ---- Creation

export interface NewRepoInput {
  namespace: string | null;
  name: string;
  visibility: 'public' | 'private';
  description: string;
  kind: 'image' | 'application';
}

/** Quay's createRepo: the same createRepository as push-to-create, after Quay's API checks. */
export async function createRepositoryViaApi(s: Services, p: Principal, input: NewRepoInput, ip: string | null): Promise<Repo> {
  if (p.kind === 'anonymous') throw new DomainError('invalid_request', 'Must provide a namespace or must be logged in.');
  const nsName = input.namespace ?? p.username;
  const ns = await findNamespace(s, nsName);
  if (!ns || !ns.enabled || !(await canCreateIn(s, p, ns))) throw new DomainError('denied', 'Unauthorized');
  if (await findRepo(s, nsName, input.name)) throw new DomainError('invalid_request', 'Repository already exists');
  if (!validRepoName(input.name, s.config.features.EXTENDED_REPOSITORY_NAMES)) throw new DomainError('invalid_request', 'Invalid repository name');
  const { repo, created } = await createRepository(s, {
    namespace: ns, name: input.name, visibility: input.visibility, description: input.description, kind: input.kind, creator: p, ip,
  });
  if (!created) throw new DomainError('invalid_request', 'Repository already exists');
  return repo;
}

// ---- The repository view

export interface RepoViewTag {
  name: string;
  size: number | null;
  last_modified?: number;
  expiration?: number;
  manifest_digest: string;
}

export interface RepoView {
  repo: Repo;
  is_organization: boolean;
  is_starred: boolean;
  status_token: string;
  trust_enabled: boolean;
  tag_expiration_s: number;
  can_write: boolean;
  can_admin: boolean;
  tags: RepoViewTag[] | null;
  stats: { date: string; count: number }[] | null;
}

export async function repositoryView(s: Services, p: Principal, access: RepoAccess, opts: { includeTags: boolean; includeStats: boolean }): Promise<RepoView> {
  const { repo, role } = access;
  const row = await s.db.selectFrom('repositories').innerJoin('users', 'users.id', 'repositories.namespace_id')
    .select(['repositories.trust_enabled', 'repositories.badge_token', 'users.tag_expiration_s']).where('repositories.id', '=', repo.id).executeTakeFirstOrThrow();
  let badge = row.badge_token;
  if (!repo.is_public && badge === null) badge = await ensureBadgeToken(s, repo.id);
  const starred = p.kind !== 'anonymous'
    && !!(await s.db.selectFrom('stars').select('id').where('user_id', '=', p.userId).where('repository_id', '=', repo.id).executeTakeFirst());
  let tags: RepoViewTag[] | null = null;
  if (opts.includeTags) {
    const rows = await s.db.selectFrom('tags').innerJoin('manifests', 'manifests.id', 'tags.manifest_id')
      .select(['tags.name', 'tags.lifetime_start', 'tags.lifetime_end', 'manifests.digest', 'manifests.layers_size'])
      .where('tags.repository_id', '=', repo.id).where('tags.hidden', '=', 0).where(aliveAt(s.now()))
      .orderBy('tags.lifetime_start', 'desc').orderBy('tags.name').limit(MAX_VIEW_TAGS).execute();
    tags = rows.map((t) => ({
      name: t.name, size: t.layers_size === null ? null : Number(t.layers_size), manifest_digest: t.digest,
      ...(t.lifetime_start > 0 ? { last_modified: Number(t.lifetime_start) } : {}),
      ...(t.lifetime_end ? { expiration: Number(t.lifetime_end) } : {}),
    }));
  }
  const stats = opts.includeStats && repo.kind !== 'application' ? await repositoryStats(s, repo.id) : null;
  return {
    repo,
    is_organization: repo.namespace_kind === 'org',
    is_starred: starred,
    status_token: repo.is_public ? '' : badge ?? '',
    trust_enabled: !!s.config.features.SIGNING && row.trust_enabled === 1,
    tag_expiration_s: Number(row.tag_expiration_s),
    can_write: roleAtLeast(role, 'write') && repo.state === 'NORMAL',
    can_admin: roleAtLeast(role, 'admin'),
    tags,
    stats,
  };
}

/** Repositories created before badges existed get their token the first time it is shown. */
async function ensureBadgeToken(s: Services, repoId: number): Promise<string> {
  await s.db.updateTable('repositories').set({ badge_token: randomUUID() }).where('id', '=', repoId).where('badge_token', 'is', null).execute();
  const row = await s.db.selectFrom('repositories').select('badge_token').where('id', '=', repoId).executeTakeFirstOrThrow();
  return row.badge_token!;
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Quay's includeStats: action counts per day over about three months, missing days as zeros. */
export async function repositoryStats(s: Services, repoId: number): Promise<{ date: string; count: number }[]> {
  const now = s.now();
  // A literal, not a parameter: PostgreSQL must see the same expression in SELECT and GROUP BY.
  const day = sql<number>`floor(datetime / ${sql.lit(DAY_MS)})`;
  const rows = await s.db.selectFrom('logs').select([day.as('day'), (eb) => eb.fn.countAll<number>().as('n')])
    .where('repository_id', '=', repoId).where('datetime', '>=', now - STATS_DAYS * DAY_MS).groupBy(day).orderBy(day).execute();
  const stats = rows.map((r) => ({ date: isoDay(Number(r.day) * DAY_MS), count: Number(r.n) }));
  const found = new Set(stats.map((x) => x.date));
  for (let d = 1; d < STATS_DAYS; d++) {
    const date = isoDay(now - d * DAY_MS);
    if (!found.has(date)) stats.push({ date, count: 0 });
  }
  return stats;
}

// ---- Changes

type Meta = { performer: Principal; ip: string | null };

export async function setDescription(s: Services, repo: Repo, description: string, m: Meta): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await tx.updateTable('repositories').set({ description }).where('id', '=', repo.id).execute();
    await logAction(s, 'set_repo_description', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: m.performer, ip: m.ip, metadata: { repo: repo.name, namespace: repo.namespace, description },
    }, tx);
  });
}

export const REPO_STATES = ['NORMAL', 'READ_ONLY', 'MIRROR'] as const;
export type SettableRepoState = (typeof REPO_STATES)[number];

export async function setRepositoryState(s: Services, repo: Repo, state: SettableRepoState, m: Meta): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await tx.updateTable('repositories').set({ state }).where('id', '=', repo.id).execute();
    await logAction(s, 'change_repo_state', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: m.performer, ip: m.ip, metadata: { repo: repo.name, namespace: repo.namespace, state_changed: state },
    }, tx);
  });
}

export async function setTrust(s: Services, repo: Repo, enabled: boolean, m: Meta): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await tx.updateTable('repositories').set({ trust_enabled: enabled ? 1 : 0 }).where('id', '=', repo.id).execute();
    await logAction(s, 'change_repo_trust', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: m.performer, ip: m.ip, metadata: { repo: repo.name, namespace: repo.namespace, trust_enabled: enabled },
    }, tx);
  });
}

/**
 * Quay's mark_repository_for_deletion: the repository is renamed to a random name and marked
 * MARKED_FOR_DELETION in one transaction, so it vanishes from the API, the catalog and /v2 at
 * once and its name can be reused right away; stars go with it. Its live tags end too (under the
 * same lock as pushes), so nothing in it stays pullable even under the new name. The rows
 * themselves — tags, manifests, labels, blob links — are left for garbage collection.
 */
export async function markRepositoryForDeletion(s: Services, repo: Repo, m: Meta): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await lockRepository(s, tx, repo.id);
    const now = s.now();
    await tx.updateTable('tags').set({ lifetime_end: now }).where('repository_id', '=', repo.id).where(aliveAt(now)).execute();
    await tx.deleteFrom('stars').where('repository_id', '=', repo.id).execute();
    await tx.updateTable('repositories').set({ name: randomUUID(), state: 'MARKED_FOR_DELETION', last_modified: now })
      .where('id', '=', repo.id).execute();
    await logAction(s, 'delete_repo', {
      namespaceId: repo.namespace_id, repositoryId: repo.id, performer: m.performer, ip: m.ip, metadata: { repo: repo.name, namespace: repo.namespace },
    }, tx);
  });
}

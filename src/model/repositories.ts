// Repositories: one thing whether created by the API or by a push — same defaults, same
// default permissions (prototypes), same log entries.
import type { ExpressionBuilder, Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { validRepoName } from './names.ts';
import { logAction } from './logs.ts';
import { isUniqueViolation } from './accounts.ts';
import { prepared } from '../db/prepared.ts';

export interface Repo {
  id: number;
  namespace_id: number;
  namespace: string;
  namespace_kind: string;
  name: string;
  is_public: number;
  state: string;
  kind: string;
  description: string | null;
}

type Db = Transaction<Database> | Services['db'];

// Scalar subqueries, not a join: better-sqlite3's SQLite re-prepares a join with bound
// parameters on every run (3x the cost), and this lookup is on every /v2 request.
const findRepoQuery = prepared((db, namespace: string, name: string) => {
  const owner = (eb: ExpressionBuilder<Database, 'repositories'>) => eb.selectFrom('users').whereRef('users.id', '=', 'repositories.namespace_id');
  return db.selectFrom('repositories')
    .select((eb) => ['repositories.id', 'repositories.namespace_id',
      owner(eb).select('users.username').as('namespace'), owner(eb).select('users.kind').as('namespace_kind'),
      'repositories.name', 'repositories.is_public', 'repositories.state', 'repositories.kind', 'repositories.description'])
    .where('repositories.namespace_id', '=', (eb) => eb.selectFrom('users').select('users.id').where('users.username', '=', namespace))
    .where('repositories.name', '=', name);
});

export async function findRepo(s: Services, namespace: string, name: string, db: Db = s.db): Promise<Repo | undefined> {
  return (await findRepoQuery(db, namespace, name))[0] as Repo | undefined; // the owner exists (foreign key)
}

export async function findNamespace(s: Services, name: string): Promise<{ id: number; kind: string; username: string; enabled: number } | undefined> {
  return s.db.selectFrom('users').select(['id', 'kind', 'username', 'enabled']).where('username', '=', name).executeTakeFirst();
}

export interface CreateRepoInput {
  namespace: { id: number; username: string; kind: string };
  name: string;
  visibility: 'public' | 'private';
  description?: string | null;
  kind?: 'image' | 'application';
  creator: Principal;
  ip?: string | null;
}

/** Creates the repository, applies the namespace's default permissions and logs create_repo.
 * Returns the existing repository when a concurrent push created it first. */
export async function createRepository(s: Services, input: CreateRepoInput): Promise<{ repo: Repo; created: boolean }> {
  if (!validRepoName(input.name, s.config.features.EXTENDED_REPOSITORY_NAMES)) {
    throw new DomainError('name_invalid', 'Invalid repository name', { name: input.name });
  }
  try {
    await s.db.transaction().execute(async (tx) => {
      const now = s.now();
      const row = await tx.insertInto('repositories').values({
        namespace_id: input.namespace.id, name: input.name, is_public: input.visibility === 'public' ? 1 : 0,
        description: input.description ?? null, kind: input.kind ?? 'image', created_at: now, last_modified: now,
      }).returning('id').executeTakeFirstOrThrow();
      // Quay's create_repository: the creating user (or robot) is an explicit admin of the new
      // repository, and the organization's default permissions apply when they create it in a
      // namespace other than their own.
      const creator = input.creator;
      if (creator.kind !== 'anonymous') {
        await tx.insertInto('repo_permissions').values({ repository_id: row.id, user_id: creator.userId, team_id: null, role: 'admin' }).execute();
        if (creator.username !== input.namespace.username) await applyPrototypes(s, tx, input.namespace, row.id, creator);
      }
      await logAction(s, 'create_repo', {
        namespaceId: input.namespace.id, repositoryId: row.id, performer: input.creator, ip: input.ip,
        metadata: { repo: input.name, namespace: input.namespace.username },
      }, tx);
    });
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    const existing = await findRepo(s, input.namespace.username, input.name);
    if (!existing) throw e;
    return { repo: existing, created: false };
  }
  const repo = await findRepo(s, input.namespace.username, input.name);
  return { repo: repo!, created: true };
}

/** Default permissions: in an organization, prototypes whose activating user is the creator (or
 * anyone) grant their delegate a role on the new repository. A prototype naming the creator as
 * delegate is skipped: the creator is already admin. */
async function applyPrototypes(s: Services, tx: Transaction<Database>, ns: { id: number; kind: string }, repoId: number, creator: Principal): Promise<void> {
  if (ns.kind !== 'org') return;
  const creatorId = creator.kind === 'anonymous' ? null : creator.userId;
  const protos = await tx.selectFrom('permission_prototypes').selectAll().where('org_id', '=', ns.id)
    .where((eb) => eb.or([eb('activating_user_id', 'is', null), ...(creatorId !== null ? [eb('activating_user_id', '=', creatorId)] : [])]))
    .execute();
  // Several prototypes may name the same delegate: as in Quay, one written for this creator
  // overrides one for anyone; between equally specific ones the strongest role wins.
  const rank = { read: 1, write: 2, admin: 3 } as const;
  const best = new Map<string, { user_id: number | null; team_id: number | null; role: 'read' | 'write' | 'admin'; specific: boolean }>();
  for (const p of protos) {
    const key = p.delegate_user_id !== null ? `u${p.delegate_user_id}` : `t${p.delegate_team_id}`;
    const cur = best.get(key);
    const specific = p.activating_user_id !== null;
    if (!cur || (specific && !cur.specific) || (specific === cur.specific && rank[p.role] > rank[cur.role])) {
      best.set(key, { user_id: p.delegate_user_id, team_id: p.delegate_team_id, role: p.role, specific });
    }
  }
  for (const g of best.values()) {
    if (g.user_id !== null && g.user_id === creatorId) continue;
    await tx.insertInto('repo_permissions').values({ repository_id: repoId, user_id: g.user_id, team_id: g.team_id, role: g.role }).execute();
  }
}

export function assertWritable(s: Services, repo: Pick<Repo, 'state'>): void {
  if (s.config.registryState === 'readonly') throw new DomainError('readonly', 'Registry is in read-only mode');
  if (repo.state === 'READ_ONLY') throw new DomainError('readonly', 'Repository is in read-only mode');
  if (repo.state === 'MIRROR' || repo.state === 'ORG_MIRROR') throw new DomainError('readonly', 'Repository is a mirror; pushes are not allowed');
  if (repo.state === 'MARKED_FOR_DELETION') throw new DomainError('name_unknown', 'Repository is being deleted');
}

export async function touchRepository(s: Services, repoId: number, db: Db = s.db): Promise<void> {
  await db.updateTable('repositories').set({ last_modified: s.now() }).where('id', '=', repoId).execute();
}

export async function setVisibility(s: Services, repo: Repo, visibility: 'public' | 'private', performer: Principal, ip: string | null = null): Promise<void> {
  await s.db.transaction().execute(async (tx) => {
    await tx.updateTable('repositories').set({ is_public: visibility === 'public' ? 1 : 0 }).where('id', '=', repo.id).execute();
    await logAction(s, 'change_repo_visibility', { namespaceId: repo.namespace_id, repositoryId: repo.id, performer, ip, metadata: { repo: repo.name, namespace: repo.namespace, visibility } }, tx);
  });
}

// Starred repositories: a per-user bookmark list (Quay's Star). Starring needs read access to the
// repository; the list only shows repositories the user can still read.
import type { Principal, Services } from './context.ts';
import { isUniqueViolation } from './accounts.ts';
import { repoRole, roleAtLeast } from './permissions.ts';
import type { Repo } from './repositories.ts';

export const STARS_PER_PAGE = 100;

export interface StarredRepo { id: number; namespace: string; name: string; description: string | null; isPublic: boolean }

/** Idempotent, like Quay (a second star of the same repository is not an error). */
export async function starRepository(s: Services, userId: number, repo: Repo): Promise<void> {
  try {
    await s.db.insertInto('stars').values({ user_id: userId, repository_id: repo.id, created_at: s.now() }).execute();
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
  }
}

export async function unstarRepository(s: Services, userId: number, repoId: number): Promise<boolean> {
  const r = await s.db.deleteFrom('stars').where('user_id', '=', userId).where('repository_id', '=', repoId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

/** One page (by repository id) of the caller's starred repositories; `next` is the id to resume at. */
export async function listStarred(s: Services, p: Principal & { userId: number }, startId: number | null): Promise<{ repos: StarredRepo[]; next: number | null }> {
  const out: StarredRepo[] = [];
  let cursor = startId ?? 0;
  // Stars of repositories the user can no longer read are skipped, so a page may need more rows.
  for (;;) {
    const rows = await s.db.selectFrom('stars')
      .innerJoin('repositories', 'repositories.id', 'stars.repository_id')
      .innerJoin('users', 'users.id', 'repositories.namespace_id')
      .select(['repositories.id', 'repositories.namespace_id', 'repositories.name', 'repositories.description', 'repositories.is_public',
        'repositories.state', 'repositories.kind', 'users.username as namespace', 'users.kind as namespace_kind'])
      .where('stars.user_id', '=', p.userId).where('repositories.id', '>=', cursor)
      .where('repositories.state', '!=', 'MARKED_FOR_DELETION')
      .orderBy('repositories.id').limit(STARS_PER_PAGE + 1).execute();
    for (const r of rows) {
      if (out.length === STARS_PER_PAGE) return { repos: out, next: r.id };
      if (roleAtLeast(await repoRole(s, p, r), 'read')) {
        out.push({ id: r.id, namespace: r.namespace, name: r.name, description: r.description, isPublic: r.is_public === 1 });
      }
    }
    if (rows.length <= STARS_PER_PAGE) return { repos: out, next: null };
    cursor = rows[rows.length - 1]!.id;
  }
}

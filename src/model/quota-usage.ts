// Quota usage (Quay's check_limits and quota totals): the exact bytes each namespace and repository
// uses, enforcement on push, and a recount job that rebuilds the figures from scratch.
//
// Usage is the size of the unique blobs referenced by the namespace's manifest rows (config blobs
// included; a blob shared by two repositories of the namespace counts once). It changes only where
// manifest rows appear (push) or go (garbage collection), and both paths call in here inside their
// own transaction, after taking the namespace's namespace_sizes row lock (PostgreSQL; SQLite runs one
// writer at a time). Under that lock the "does anything else in the namespace still use this blob?"
// question sees every committed change, so two concurrent pushes sharing a new layer add it once.
// Lock order: repository row, then namespace_sizes row; holding the latter nothing here waits for
// another repository's row (see recountLocked).
import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Services } from './context.ts';
import { DomainError } from './errors.ts';
import { createUserNotification } from './user-notifications.ts';
import { notifyNamespaceEvent } from './notifications.ts';
import { cancelUpload, type UploadSession } from './uploads.ts';
import { enqueue, type Job } from './queue.ts';
import { limitsOf, quotaRows, systemDefaultQuota, type LimitType } from './quota.ts';

const QUOTA_EXCEEDED = 'Quota has been exceeded on namespace';

/** FEATURE_VERIFY_QUOTA is read as "not false": enforcement is on with quota management. */
function enforcing(s: Services): boolean {
  return s.config.features.QUOTA_MANAGEMENT === true && s.config.features.VERIFY_QUOTA !== false;
}

function quotaExceeded(): DomainError {
  return new DomainError('quota_exceeded', QUOTA_EXCEEDED, {});
}

type Tx = Transaction<Database>;
type Db = Tx | Services['db'];

// ---- Verdicts: Quay's check_limits

export interface QuotaVerdict {
  severity: LimitType | null;
  usageBytes: number;
  /** The quota's size (or the system default). */
  quotaBytes: number;
  thresholdPercent: number | null;
}

/** The highest limit the usage is over decides; with no quota, the system default rejects at >=. */
async function evaluate(s: Services, db: Db, namespaceId: number, size: number): Promise<QuotaVerdict> {
  const quota = (await quotaRows(db, namespaceId))[0];
  if (!quota) {
    const dflt = systemDefaultQuota(s) ?? 0;
    const over = dflt > 0 && size >= dflt;
    return { severity: over ? 'Reject' : null, usageBytes: size, quotaBytes: dflt, thresholdPercent: over ? 100 : null };
  }
  let best = 0;
  let severity: LimitType | null = null;
  let thresholdPercent: number | null = null;
  for (const l of await limitsOf(db, quota.id)) {
    const allowed = Math.trunc(quota.limit_bytes * l.percent / 100);
    if (size > allowed && best < allowed) {
      best = allowed;
      severity = l.type;
      thresholdPercent = l.percent;
    }
  }
  return { severity, usageBytes: size, quotaBytes: quota.limit_bytes, thresholdPercent };
}

// ---- Usage accounting

/** Locks the namespace's usage row for the rest of the transaction, creating it if missing. */
async function lockUsage(s: Services, tx: Tx, namespaceId: number): Promise<{ size: number; fresh: boolean }> {
  const created = await tx.insertInto('namespace_sizes')
    .values({ namespace_id: namespaceId, size_bytes: 0, backfill_status: 'complete', updated_at: s.now() })
    .onConflict((oc) => oc.column('namespace_id').doNothing()).returning('namespace_id').executeTakeFirst();
  let q = tx.selectFrom('namespace_sizes').select('size_bytes').where('namespace_id', '=', namespaceId);
  if (s.dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirstOrThrow();
  return { size: Number(row.size_bytes), fresh: created !== undefined };
}

/** What removing (or, for a new manifest, having added) `manifestIds` changes: the bytes of their
 * blobs that no other manifest of the namespace, and of the repository, references. */
async function exclusiveBytes(tx: Tx, namespaceId: number, repoId: number, manifestIds: number[]): Promise<{ ns: number; repo: number }> {
  const rows = await tx.selectFrom('blobs')
    .select((eb) => [
      'blobs.size',
      eb.exists(eb.selectFrom('manifest_blobs as o').innerJoin('repositories as r', 'r.id', 'o.repository_id').select('o.blob_id')
        .whereRef('o.blob_id', '=', 'blobs.id').where('r.namespace_id', '=', namespaceId).where('o.manifest_id', 'not in', manifestIds)).as('in_ns'),
      eb.exists(eb.selectFrom('manifest_blobs as o').select('o.blob_id')
        .whereRef('o.blob_id', '=', 'blobs.id').where('o.repository_id', '=', repoId).where('o.manifest_id', 'not in', manifestIds)).as('in_repo'),
    ])
    .where('blobs.id', 'in', (eb) => eb.selectFrom('manifest_blobs').select('manifest_blobs.blob_id').where('manifest_blobs.manifest_id', 'in', manifestIds))
    .execute();
  let ns = 0;
  let repo = 0;
  for (const r of rows) {
    if (!r.in_ns) ns += Number(r.size);
    if (!r.in_repo) repo += Number(r.size);
  }
  return { ns, repo };
}

async function addUsage(s: Services, tx: Tx, namespaceId: number, repoId: number, d: { ns: number; repo: number }, sign: 1 | -1): Promise<void> {
  const now = s.now();
  if (d.ns) {
    await tx.updateTable('namespace_sizes').set({ size_bytes: sql`size_bytes + ${sign * d.ns}`, updated_at: now }).where('namespace_id', '=', namespaceId).execute();
  }
  if (d.repo && sign > 0) {
    await tx.insertInto('repository_sizes').values({ repository_id: repoId, size_bytes: d.repo, updated_at: now })
      .onConflict((oc) => oc.column('repository_id').doUpdateSet({ size_bytes: sql`repository_sizes.size_bytes + ${d.repo}`, updated_at: now }))
      .execute();
  } else if (d.repo) {
    // A repository without figures yet is left to the recount its namespace is waiting for.
    await tx.updateTable('repository_sizes').set({ size_bytes: sql`size_bytes - ${d.repo}`, updated_at: now }).where('repository_id', '=', repoId).execute();
  }
}

/**
 * The namespace's figures from scratch, written under the caller's namespace lock; returns its
 * usage. `exclude`: manifests about to be deleted in this transaction.
 *
 * Holding the namespace lock, this must never wait for another repository's row: a push there holds
 * that row and waits for the namespace lock (a deadlock). Inserting a repository_sizes row takes a
 * foreign-key lock on its repository, so only `ownRepoId` (whose lock the caller holds) gets a new
 * row here; other repositories' existing rows are updated in place. A repository still lacking its
 * row leaves the namespace "waiting" for the recount job, which creates the rows first, unlocked.
 */
async function recountLocked(s: Services, tx: Tx, namespaceId: number, opts: { exclude?: number[]; ownRepoId?: number } = {}): Promise<number> {
  const exclude = opts.exclude ?? [];
  const used = tx.selectFrom('manifest_blobs as mb').innerJoin('repositories as r', 'r.id', 'mb.repository_id')
    .where('r.namespace_id', '=', namespaceId)
    .$if(exclude.length > 0, (q) => q.where('mb.manifest_id', 'not in', exclude));
  const total = await tx.selectFrom('blobs').select((eb) => eb.fn.sum<number | string | null>('blobs.size').as('total'))
    .where('blobs.id', 'in', used.select('mb.blob_id')).executeTakeFirst();
  const perRepo = await tx.selectFrom(used.select(['mb.repository_id', 'mb.blob_id']).distinct().as('u'))
    .innerJoin('blobs', 'blobs.id', 'u.blob_id')
    .select((eb) => ['u.repository_id', eb.fn.sum<number | string>('blobs.size').as('total')])
    .groupBy('u.repository_id').execute();
  const byRepo = new Map(perRepo.map((r) => [Number(r.repository_id), Number(r.total)]));
  const rows = await tx.selectFrom('repositories').leftJoin('repository_sizes', 'repository_sizes.repository_id', 'repositories.id')
    .select(['repositories.id', 'repository_sizes.size_bytes']).where('repositories.namespace_id', '=', namespaceId).execute();
  const now = s.now();
  let complete = true;
  for (const r of rows) {
    const want = byRepo.get(r.id) ?? 0;
    if (r.size_bytes !== null && Number(r.size_bytes) === want) continue;
    if (r.size_bytes !== null) {
      await tx.updateTable('repository_sizes').set({ size_bytes: want, updated_at: now }).where('repository_id', '=', r.id).execute();
    } else if (r.id === opts.ownRepoId) {
      await tx.insertInto('repository_sizes').values({ repository_id: r.id, size_bytes: want, updated_at: now }).execute();
    } else if (want !== 0) {
      complete = false;
    }
  }
  const size = Number(total?.total ?? 0);
  await tx.updateTable('namespace_sizes').set({ size_bytes: size, backfill_status: complete ? 'complete' : 'waiting', updated_at: now })
    .where('namespace_id', '=', namespaceId).execute();
  if (!complete) await enqueue(s, QUOTA_RECOUNT_QUEUE, { namespaceId }, { dedupeKey: `${QUOTA_RECOUNT_QUEUE}:${namespaceId}` }, tx);
  return size;
}

/**
 * Called by the manifest PUT inside its transaction, after the manifest's blob references are
 * written: adds the blobs new to the namespace and repository, then (when quotas are enforced)
 * refuses the push if the namespace ends up over a Reject limit — the transaction then rolls back
 * and nothing of the push remains. A namespace without a usage row is counted from scratch.
 */
export async function chargeManifest(
  s: Services, tx: Tx, repo: { id: number; namespace_id: number }, manifestId: number, created: boolean,
): Promise<QuotaVerdict | null> {
  const enforce = enforcing(s);
  if (!created && !enforce) return null;
  const usage = await lockUsage(s, tx, repo.namespace_id);
  let size = usage.size;
  if (usage.fresh) {
    size = await recountLocked(s, tx, repo.namespace_id, { ownRepoId: repo.id });
  } else if (created) {
    const d = await exclusiveBytes(tx, repo.namespace_id, repo.id, [manifestId]);
    await addUsage(s, tx, repo.namespace_id, repo.id, d, 1);
    size += d.ns;
  }
  if (!enforce) return null;
  const verdict = await evaluate(s, tx, repo.namespace_id, size);
  if (verdict.severity === 'Reject') throw new QuotaRejection(repo.namespace_id, verdict);
  return verdict;
}

/** The push refusal, carrying what the notification after the rollback needs. */
export class QuotaRejection extends DomainError {
  readonly namespaceId: number;
  readonly verdict: QuotaVerdict;
  constructor(namespaceId: number, verdict: QuotaVerdict) {
    super('quota_exceeded', QUOTA_EXCEEDED, {});
    this.name = 'QuotaRejection';
    this.namespaceId = namespaceId;
    this.verdict = verdict;
  }
}

/** Called by garbage collection inside its transaction, before it deletes `manifestIds` (all of
 * repository `repoId`): subtracts the blobs nothing else in the namespace / repository uses. */
export async function releaseManifests(s: Services, tx: Tx, repoId: number, manifestIds: number[]): Promise<void> {
  if (!manifestIds.length) return;
  const repo = await tx.selectFrom('repositories').select(['id', 'namespace_id']).where('id', '=', repoId).executeTakeFirst();
  if (!repo) return;
  const usage = await lockUsage(s, tx, repo.namespace_id);
  if (usage.fresh) {
    await recountLocked(s, tx, repo.namespace_id, { exclude: manifestIds, ownRepoId: repo.id });
    return;
  }
  await addUsage(s, tx, repo.namespace_id, repo.id, await exclusiveBytes(tx, repo.namespace_id, repo.id, manifestIds), -1);
}

/** After a manifest push was refused and rolled back: Quay notifies the admins (quota_error). */
export async function noteQuotaRejection(s: Services, err: unknown): Promise<void> {
  if (!(err instanceof QuotaRejection)) return;
  s.log.warn({ namespaceId: err.namespaceId, ...err.verdict }, 'push refused: namespace quota exceeded');
  await notifyAdmins(s, err.namespaceId, 'quota_error', {});
}

/** After a manifest push committed over a Warning limit: Quay notifies the admins (quota_warning). */
export async function noteQuotaWarning(s: Services, namespaceId: number, verdict: QuotaVerdict | null): Promise<void> {
  if (verdict?.severity !== 'Warning') return;
  s.log.info({ namespaceId, ...verdict }, 'namespace over its quota warning threshold');
  await notifyAdmins(s, namespaceId, 'quota_warning', {});
}

/**
 * Quay's checks on blob uploads: opening one (`session` null) is refused when the namespace is
 * already over a Reject limit; each chunk and the closing PUT when the namespace plus the
 * repository's uploads in progress is — and the session is then cancelled.
 */
export async function enforceUploadQuota(s: Services, repositoryId: number, session: UploadSession | null): Promise<void> {
  if (!enforcing(s)) return;
  const repo = await s.db.selectFrom('repositories').select(['id', 'namespace_id']).where('id', '=', repositoryId).executeTakeFirst();
  if (!repo) return;
  let size = await namespaceUsage(s, repo.namespace_id);
  if (session) {
    const up = await s.db.selectFrom('uploads').select((eb) => eb.fn.sum<number | string | null>('size').as('n')).where('repository_id', '=', repo.id).executeTakeFirst();
    size += Number(up?.n ?? 0);
  }
  const verdict = await evaluate(s, s.db, repo.namespace_id, size);
  if (verdict.severity !== 'Reject') return;
  s.log.warn({ namespaceId: repo.namespace_id, ...verdict }, 'upload refused: namespace quota exceeded');
  await notifyAdmins(s, repo.namespace_id, 'quota_error', { severity: 'Reject' });
  if (session) await cancelUpload(s, session);
  throw quotaExceeded();
}

/** Quay's notify_organization_admins: the organization's admins (or the user), once per
 * undismissed notification of the same kind and metadata. */
async function notifyAdmins(s: Services, namespaceId: number, kind: 'quota_warning' | 'quota_error', extra: Record<string, unknown>): Promise<void> {
  const ns = await s.db.selectFrom('users').select(['id', 'username', 'kind']).where('id', '=', namespaceId).executeTakeFirst();
  if (!ns) return;
  const metadata = { ...extra, namespace: ns.username };
  if (s.config.features.QUOTA_NOTIFICATIONS) await notifyNamespaceEvent(s, ns.id, kind, extra);
  const targets = ns.kind === 'org'
    ? (await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id').innerJoin('users', 'users.id', 'team_members.user_id')
      .select('users.id').distinct().where('teams.org_id', '=', ns.id).where('teams.role', '=', 'admin').where('users.kind', '=', 'user').execute()).map((r) => r.id)
    : [ns.id];
  const key = canonical(metadata);
  for (const userId of targets) {
    const existing = await s.db.selectFrom('user_notifications').select('metadata')
      .where('user_id', '=', userId).where('kind', '=', kind).where('dismissed', '=', 0).execute();
    if (existing.some((n) => canonical(safeParse(n.metadata)) === key)) continue;
    await createUserNotification(s, userId, kind, metadata);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function canonical(v: unknown): string {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return JSON.stringify(v);
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
}

/** The namespace's usage in bytes (0 before its first push). */
export async function namespaceUsage(s: Services, namespaceId: number, db: Db = s.db): Promise<number> {
  const row = await db.selectFrom('namespace_sizes').select('size_bytes').where('namespace_id', '=', namespaceId).executeTakeFirst();
  return Number(row?.size_bytes ?? 0);
}

// ---- Recount job

export const QUOTA_RECOUNT_QUEUE = 'quota_recount';

export interface RecountPayload { namespaceId?: number }

/** Queues a recount of one namespace, or of every namespace with repositories or figures. */
export async function enqueueQuotaRecount(s: Services, namespaceId: number | null = null): Promise<boolean> {
  const payload: RecountPayload = namespaceId === null ? {} : { namespaceId };
  return enqueue(s, QUOTA_RECOUNT_QUEUE, payload, { dedupeKey: `${QUOTA_RECOUNT_QUEUE}:${namespaceId ?? 'all'}` });
}

/** Rebuilds one namespace's figures; returns the old and new usage. */
export async function recountNamespace(s: Services, namespaceId: number): Promise<{ before: number; after: number }> {
  // First, unlocked: a row for every repository, so the locked part only updates rows in place.
  await s.db.insertInto('repository_sizes')
    .columns(['repository_id', 'size_bytes', 'updated_at'])
    .expression((eb) => eb.selectFrom('repositories').select((e) => ['repositories.id', e.lit(0).as('size_bytes'), e.lit(s.now()).as('updated_at')])
      .where('repositories.namespace_id', '=', namespaceId))
    .onConflict((oc) => oc.column('repository_id').doNothing()).execute();
  return s.db.transaction().execute(async (tx) => {
    const exists = await tx.selectFrom('users').select('id').where('id', '=', namespaceId).executeTakeFirst();
    if (!exists) return { before: 0, after: 0 };
    const { size: before } = await lockUsage(s, tx, namespaceId);
    return { before, after: await recountLocked(s, tx, namespaceId) };
  });
}

/** The queue handler: each namespace in its own transaction, so the job holds no lock for long. */
export async function runQuotaRecount(s: Services, job: Pick<Job, 'payload'>, signal?: AbortSignal): Promise<{ namespaces: number; corrected: number }> {
  const p = (job.payload ?? {}) as RecountPayload;
  let ids: number[];
  if (typeof p.namespaceId === 'number') {
    ids = [p.namespaceId];
  } else {
    const withRepos = await s.db.selectFrom('repositories').select('namespace_id').distinct().execute();
    const withSizes = await s.db.selectFrom('namespace_sizes').select('namespace_id').execute();
    ids = [...new Set([...withRepos, ...withSizes].map((r) => Number(r.namespace_id)))].sort((a, b) => a - b);
  }
  let corrected = 0;
  let namespaces = 0;
  for (const id of ids) {
    if (signal?.aborted) break;
    const r = await recountNamespace(s, id);
    namespaces++;
    if (r.before !== r.after) {
      corrected++;
      s.log.warn({ namespaceId: id, before: r.before, after: r.after }, 'quota usage corrected by recount');
    }
  }
  return { namespaces, corrected };
}

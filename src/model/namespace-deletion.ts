// Deleting a whole namespace (user or organization) with everything it owns. Quay marks the
// namespace for deletion and lets a worker purge it; here the rows go in one transaction through
// the schema's ON DELETE CASCADE chains (repositories → manifests, tags, labels, links; robots and
// their tokens; teams, OAuth applications and their tokens; quotas, policies, notifications), so
// the name is free at once. Blobs and storage objects are left to garbage collection, which finds
// them unreferenced (src/model/gc.ts), exactly as after a tag deletion.
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Services } from './context.ts';

export async function deleteNamespaceRows(s: Services, namespaceId: number, db: Transaction<Database> | Services['db'] = s.db): Promise<void> {
  // Repository rows first, one statement: pushes holding a repository row lock finish before the
  // rows go, and nothing can be written into them afterwards (their foreign keys are gone).
  await db.deleteFrom('repositories').where('namespace_id', '=', namespaceId).execute();
  await db.deleteFrom('users').where('id', '=', namespaceId).execute();
}

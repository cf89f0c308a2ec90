// Usage-log entries with Quay's kind names. Every mutation (and every push and pull) writes one.
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';

export interface LogInput {
  namespaceId?: number | null;
  repositoryId?: number | null;
  performer?: Principal | null;
  ip?: string | null;
  metadata?: Record<string, unknown>;
}

export async function logAction(
  s: Services,
  kind: string,
  input: LogInput,
  db: Transaction<Database> | Services['db'] = s.db,
): Promise<void> {
  const performer = input.performer && input.performer.kind !== 'anonymous' ? input.performer.userId : null;
  await db.insertInto('logs').values({
    kind,
    account_id: input.namespaceId ?? null,
    performer_id: performer,
    repository_id: input.repositoryId ?? null,
    ip: input.ip ?? null,
    metadata: JSON.stringify(input.metadata ?? {}),
    datetime: s.now(),
  }).execute();
}

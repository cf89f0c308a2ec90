// Log indexes that end in `kind`: the aggregated-logs query (entries per kind per day over a month)
// is then answered from the index alone, without visiting a million rows. They replace the
// (account_id, datetime) and (repository_id, datetime) indexes, which are their prefixes.
import type { Kysely } from 'kysely';

export function migration0005LogsKind() {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('logs_account_time_kind').on('logs').columns(['account_id', 'datetime', 'kind']).execute();
      await db.schema.createIndex('logs_repo_time_kind').on('logs').columns(['repository_id', 'datetime', 'kind']).execute();
      await db.schema.dropIndex('logs_account_time').execute();
      await db.schema.dropIndex('logs_repo_time').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('logs_account_time').on('logs').columns(['account_id', 'datetime']).execute();
      await db.schema.createIndex('logs_repo_time').on('logs').columns(['repository_id', 'datetime']).execute();
      await db.schema.dropIndex('logs_account_time_kind').execute();
      await db.schema.dropIndex('logs_repo_time_kind').execute();
    },
  };
}

// Pull statistics (FEATURE_IMAGE_PULL_STATS): one counter row per (repository, tag) and per
// (repository, manifest digest), as Quay's TagPullStatistics and ManifestPullStatistics. Rows are
// upserted in batches by the pull-log flush; they go with their repository.
import type { Kysely } from 'kysely';

export function migration0006PullStatistics() {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createTable('tag_pull_statistics')
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('tag_name', 'varchar(255)', (c) => c.notNull())
        .addColumn('pull_count', 'bigint', (c) => c.notNull())
        .addColumn('last_pull_at', 'bigint', (c) => c.notNull())
        // The digest served by the tag's most recent pull.
        .addColumn('current_manifest_digest', 'varchar(255)', (c) => c.notNull())
        .addPrimaryKeyConstraint('tag_pull_statistics_pk', ['repository_id', 'tag_name'])
        .execute();
      await db.schema.createTable('manifest_pull_statistics')
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('manifest_digest', 'varchar(255)', (c) => c.notNull())
        .addColumn('pull_count', 'bigint', (c) => c.notNull())
        .addColumn('last_pull_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('manifest_pull_statistics_pk', ['repository_id', 'manifest_digest'])
        .execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('manifest_pull_statistics').execute();
      await db.schema.dropTable('tag_pull_statistics').execute();
    },
  };
}

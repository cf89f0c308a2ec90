// Tag changes look up the immutability policies of the tag's namespace (and repository) and pushes
// the namespace's auto-prune policies: index both by owner instead of scanning every policy.
import type { Kysely } from 'kysely';

export function migration0008PolicyIndexes() {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.createIndex('immutability_policies_owner').on('immutability_policies').columns(['namespace_id', 'repository_id']).execute();
      await db.schema.createIndex('autoprune_policies_owner').on('autoprune_policies').columns(['namespace_id', 'repository_id']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropIndex('immutability_policies_owner').execute();
      await db.schema.dropIndex('autoprune_policies_owner').execute();
    },
  };
}

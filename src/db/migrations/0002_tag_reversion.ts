// Quay's Tag.reversion: a tag lifetime created by restoring (time machine) rather than by a push
// or an ordinary move. The tag history shows it, so it is stored rather than guessed.
import type { Kysely } from 'kysely';

export function migration0002() {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('tags').addColumn('reversion', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('tags').dropColumn('reversion').execute();
    },
  };
}

// An upload session's append claim: one request at a time may write to a session's storage,
// across replicas. Taken with a conditional UPDATE before any byte reaches storage, released
// when the append's size is recorded; a crashed holder's claim lapses at `claimed_until`.
import type { Kysely } from 'kysely';

export function migration0004() {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('uploads').addColumn('claimed_until', 'bigint').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('uploads').dropColumn('claimed_until').execute();
    },
  };
}

// Account access: OAuth tokens that organization admins mint for their applications carry a name,
// a last-use time and Quay's `data` marker (the programmatic bootstrap token is told apart by it);
// password-recovery codes are single-use rows keyed by the SHA-256 of their secret half.
import type { Kysely } from 'kysely';

export function migration0007AccountAccess(dialect: 'sqlite' | 'postgres') {
  return {
    async up(db: Kysely<any>): Promise<void> {
      await db.schema.alterTable('oauth_access_tokens').addColumn('name', 'varchar(255)').execute();
      await db.schema.alterTable('oauth_access_tokens').addColumn('last_accessed', 'bigint').execute();
      await db.schema.alterTable('oauth_access_tokens').addColumn('data', 'text').execute();
      await db.schema.createIndex('oauth_access_tokens_application').on('oauth_access_tokens').column('application_id').execute();

      let t = db.schema.createTable('recovery_codes');
      t = dialect === 'postgres'
        ? t.addColumn('id', 'bigserial', (c) => c.primaryKey())
        : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
      await t
        .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('code_prefix', 'varchar(20)', (c) => c.notNull().unique())
        .addColumn('code_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('recovery_codes_expires').on('recovery_codes').column('expires_at').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('recovery_codes').execute();
      await db.schema.dropIndex('oauth_access_tokens_application').execute();
      await db.schema.alterTable('oauth_access_tokens').dropColumn('data').execute();
      await db.schema.alterTable('oauth_access_tokens').dropColumn('last_accessed').execute();
      await db.schema.alterTable('oauth_access_tokens').dropColumn('name').execute();
    },
  };
}

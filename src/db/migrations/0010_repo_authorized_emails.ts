// Addresses authorized to receive a repository's e-mail notifications (Quay's
// RepositoryAuthorizedEmail). The confirmation code mailed to the address is stored only as its
// SHA-256; following the link sets `confirmed`.
import type { Kysely } from 'kysely';

export function migration0010RepoAuthorizedEmails(dialect: 'sqlite' | 'postgres') {
  return {
    async up(db: Kysely<any>): Promise<void> {
      let t = db.schema.createTable('repo_authorized_emails');
      t = dialect === 'postgres'
        ? t.addColumn('id', 'bigserial', (c) => c.primaryKey())
        : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
      await t
        .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
        .addColumn('email', 'varchar(255)', (c) => c.notNull())
        .addColumn('code_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('confirmed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('repo_authorized_emails_repo_email').unique().on('repo_authorized_emails').columns(['repository_id', 'email']).execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('repo_authorized_emails').execute();
    },
  };
}

// Web sessions (cookie login). The cookie carries a random session id; only its SHA-256 is stored,
// so a copy of the database cannot be replayed as a login. Server-side rows are what make signout,
// password changes and account deletion end every session of a user at once.
import type { Kysely } from 'kysely';

export function migration0003(dialect: 'sqlite' | 'postgres') {
  return {
    async up(db: Kysely<any>): Promise<void> {
      let t = db.schema.createTable('sessions');
      t = dialect === 'postgres'
        ? t.addColumn('id', 'bigserial', (c) => c.primaryKey())
        : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
      await t
        .addColumn('token_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('user_id', 'bigint', (c) => c.notNull().references('users.id').onDelete('cascade'))
        // When the password was last proven in this session (fresh-login checks).
        .addColumn('login_time', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      await db.schema.createIndex('sessions_expires').on('sessions').column('expires_at').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('sessions').execute();
    },
  };
}

// External login (GitHub, Google, OpenID Connect): one row per authorization URL handed out. The
// `state` parameter is stored only as its SHA-256 and bound to the browser that asked for it (the
// hash of its session cookie's CSRF token); the callback deletes the row as it reads it, so a state
// works once, in that browser, for ten minutes.
import type { Kysely } from 'kysely';

export function migration0009ExternalLoginStates(dialect: 'sqlite' | 'postgres') {
  return {
    async up(db: Kysely<any>): Promise<void> {
      let t = db.schema.createTable('external_login_states');
      t = dialect === 'postgres'
        ? t.addColumn('id', 'bigserial', (c) => c.primaryKey())
        : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
      await t
        .addColumn('state_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('browser_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('service', 'varchar(64)', (c) => c.notNull())
        .addColumn('kind', 'varchar(16)', (c) => c.notNull())
        // The signed-in user an `attach` is for; the callback must come from the same user.
        .addColumn('user_id', 'bigint', (c) => c.references('users.id').onDelete('cascade'))
        .addColumn('redirect_uri', 'text', (c) => c.notNull())
        .addColumn('nonce', 'varchar(128)', (c) => c.notNull())
        .addColumn('code_verifier', 'varchar(128)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('external_login_states_expires').on('external_login_states').column('expires_at').execute();
      await db.schema.createIndex('external_login_states_browser').on('external_login_states').column('browser_hash').execute();
    },
    async down(db: Kysely<any>): Promise<void> {
      await db.schema.dropTable('external_login_states').execute();
    },
  };
}

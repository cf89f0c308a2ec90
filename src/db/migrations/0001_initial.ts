// The whole Quay domain, designed up front so later features add endpoints, not tables.
// Portable across SQLite and PostgreSQL: times are epoch milliseconds (bigint), booleans are
// 0/1 integers (better-sqlite3 cannot bind JS booleans), JSON is text, manifest bytes are binary.
import { sql, type Kysely, type ColumnDefinitionBuilder, type CreateTableBuilder } from 'kysely';

type Dialect = 'sqlite' | 'postgres';
type Col = (c: ColumnDefinitionBuilder) => ColumnDefinitionBuilder;

export function migration0001(dialect: Dialect) {
  const binary = dialect === 'postgres' ? 'bytea' : 'blob';
  function table(db: Kysely<any>, name: string): CreateTableBuilder<string, 'id'> {
    const t = db.schema.createTable(name);
    return (dialect === 'postgres'
      ? t.addColumn('id', 'bigserial', (c) => c.primaryKey())
      : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())) as CreateTableBuilder<string, 'id'>;
  }
  const ref = (target: string, onDelete: 'cascade' | 'set null' = 'cascade'): Col => (c) => c.references(`${target}.id`).onDelete(onDelete);
  const notNullRef = (target: string): Col => (c) => c.notNull().references(`${target}.id`).onDelete('cascade');
  const bool = (dflt: 0 | 1): Col => (c) => c.notNull().defaultTo(dflt);

  return {
    async up(db: Kysely<any>): Promise<void> {
      // ---- Accounts: users, organizations and robots share one namespace space (like Quay).
      await table(db, 'users')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('username', 'varchar(255)', (c) => c.notNull().unique())
        .addColumn('email', 'varchar(255)')
        .addColumn('password_hash', 'varchar(255)')
        .addColumn('kind', 'varchar(8)', (c) => c.notNull()) // user | org | robot
        .addColumn('robot_owner_id', 'bigint', ref('users'))
        .addColumn('verified', 'integer', bool(1))
        .addColumn('enabled', 'integer', bool(1))
        .addColumn('superuser', 'integer', bool(0))
        .addColumn('description', 'text')
        .addColumn('given_name', 'varchar(255)')
        .addColumn('family_name', 'varchar(255)')
        .addColumn('company', 'varchar(255)')
        .addColumn('location', 'varchar(255)')
        .addColumn('invoice_email', 'integer', bool(0))
        .addColumn('invoice_email_address', 'varchar(255)')
        .addColumn('tag_expiration_s', 'bigint', (c) => c.notNull().defaultTo(1209600))
        .addColumn('maximum_queued_builds_count', 'integer')
        .addColumn('metadata', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_accessed', 'bigint')
        .execute();
      await db.schema.createIndex('users_email').on('users').column('email').execute();
      await db.schema.createIndex('users_robot_owner').on('users').column('robot_owner_id').execute();
      // Email is unique among humans only (orgs and robots may share or lack one).
      await db.schema.createIndex('users_kind').on('users').columns(['kind', 'username']).execute();

      await table(db, 'robot_tokens')
        .addColumn('robot_id', 'bigint', (c) => c.notNull().unique().references('users.id').onDelete('cascade'))
        .addColumn('token_enc', 'text', (c) => c.notNull()) // AES-GCM with DATABASE_SECRET_KEY: Quay shows it again
        .addColumn('token_hash', 'varchar(64)', (c) => c.notNull()) // sha256, for constant-time lookup
        .addColumn('fully_migrated', 'integer', bool(1))
        .execute();
      await table(db, 'robot_federation')
        .addColumn('robot_id', 'bigint', notNullRef('users'))
        .addColumn('issuer', 'varchar(512)', (c) => c.notNull())
        .addColumn('subject', 'varchar(512)', (c) => c.notNull())
        .execute();
      await table(db, 'federated_logins')
        .addColumn('user_id', 'bigint', notNullRef('users'))
        .addColumn('service', 'varchar(64)', (c) => c.notNull())
        .addColumn('service_ident', 'varchar(255)', (c) => c.notNull())
        .addColumn('metadata', 'text')
        .addUniqueConstraint('federated_logins_service_ident', ['service', 'service_ident'])
        .execute();

      await table(db, 'teams')
        .addColumn('org_id', 'bigint', notNullRef('users'))
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('role', 'varchar(16)', (c) => c.notNull()) // member | creator | admin
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addUniqueConstraint('teams_org_name', ['org_id', 'name'])
        .execute();
      await table(db, 'team_members')
        .addColumn('team_id', 'bigint', notNullRef('teams'))
        .addColumn('user_id', 'bigint', notNullRef('users'))
        .addUniqueConstraint('team_members_team_user', ['team_id', 'user_id'])
        .execute();
      await db.schema.createIndex('team_members_user').on('team_members').column('user_id').execute();
      await table(db, 'team_invites')
        .addColumn('team_id', 'bigint', notNullRef('teams'))
        .addColumn('user_id', 'bigint', ref('users'))
        .addColumn('email', 'varchar(255)')
        .addColumn('inviter_id', 'bigint', ref('users', 'set null'))
        .addColumn('code_hash', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await table(db, 'team_sync')
        .addColumn('team_id', 'bigint', (c) => c.notNull().unique().references('teams.id').onDelete('cascade'))
        .addColumn('service', 'varchar(64)', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('last_updated', 'bigint')
        .execute();

      // ---- Repositories and access.
      await table(db, 'repositories')
        .addColumn('namespace_id', 'bigint', notNullRef('users'))
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('is_public', 'integer', bool(0))
        .addColumn('description', 'text')
        .addColumn('kind', 'varchar(16)', (c) => c.notNull().defaultTo('image'))
        .addColumn('state', 'varchar(24)', (c) => c.notNull().defaultTo('NORMAL'))
        .addColumn('trust_enabled', 'integer', bool(0))
        .addColumn('badge_token', 'varchar(64)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_modified', 'bigint')
        .addUniqueConstraint('repositories_namespace_name', ['namespace_id', 'name'])
        .execute();
      await table(db, 'repo_permissions')
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('user_id', 'bigint', ref('users'))
        .addColumn('team_id', 'bigint', ref('teams'))
        .addColumn('role', 'varchar(8)', (c) => c.notNull()) // read | write | admin
        .execute();
      await db.schema.createIndex('repo_permissions_repo_user').on('repo_permissions').columns(['repository_id', 'user_id']).unique().where(sql.ref('user_id'), 'is not', null).execute();
      await db.schema.createIndex('repo_permissions_repo_team').on('repo_permissions').columns(['repository_id', 'team_id']).unique().where(sql.ref('team_id'), 'is not', null).execute();
      await db.schema.createIndex('repo_permissions_user').on('repo_permissions').column('user_id').execute();
      await db.schema.createIndex('repo_permissions_team').on('repo_permissions').column('team_id').execute();
      await table(db, 'permission_prototypes')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('org_id', 'bigint', notNullRef('users'))
        .addColumn('activating_user_id', 'bigint', ref('users'))
        .addColumn('delegate_user_id', 'bigint', ref('users'))
        .addColumn('delegate_team_id', 'bigint', ref('teams'))
        .addColumn('role', 'varchar(8)', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('permission_prototypes_org').on('permission_prototypes').column('org_id').execute();
      await table(db, 'stars')
        .addColumn('user_id', 'bigint', notNullRef('users'))
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('stars_user_repo', ['user_id', 'repository_id'])
        .execute();
      await db.schema.createIndex('stars_repo').on('stars').column('repository_id').execute();

      // ---- Tokens. Secrets are stored hashed (lookup prefix in clear) or encrypted where Quay shows them again.
      await table(db, 'oauth_applications')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('org_id', 'bigint', notNullRef('users'))
        .addColumn('client_id', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('client_secret_enc', 'text', (c) => c.notNull())
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('application_uri', 'varchar(1024)', (c) => c.notNull().defaultTo(''))
        .addColumn('redirect_uri', 'varchar(1024)', (c) => c.notNull().defaultTo(''))
        .addColumn('avatar_email', 'varchar(255)')
        .execute();
      await table(db, 'oauth_access_tokens')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('application_id', 'bigint', notNullRef('oauth_applications'))
        .addColumn('user_id', 'bigint', notNullRef('users'))
        .addColumn('token_prefix', 'varchar(20)', (c) => c.notNull().unique())
        .addColumn('token_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('scope', 'varchar(255)', (c) => c.notNull())
        .addColumn('token_type', 'varchar(16)', (c) => c.notNull().defaultTo('Bearer'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .execute();
      await db.schema.createIndex('oauth_access_tokens_user').on('oauth_access_tokens').column('user_id').execute();
      await table(db, 'oauth_auth_codes')
        .addColumn('application_id', 'bigint', notNullRef('oauth_applications'))
        .addColumn('code_prefix', 'varchar(20)', (c) => c.notNull().unique())
        .addColumn('code_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('scope', 'varchar(255)', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await table(db, 'oauth_assigned_tokens')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('assigned_user_id', 'bigint', notNullRef('users'))
        .addColumn('application_id', 'bigint', notNullRef('oauth_applications'))
        .addColumn('redirect_uri', 'varchar(1024)')
        .addColumn('scope', 'varchar(255)', (c) => c.notNull())
        .addColumn('response_type', 'varchar(16)')
        .execute();
      await table(db, 'app_tokens')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('user_id', 'bigint', notNullRef('users'))
        .addColumn('title', 'varchar(255)', (c) => c.notNull())
        .addColumn('token_prefix', 'varchar(60)', (c) => c.notNull().unique())
        .addColumn('token_secret_enc', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('last_accessed', 'bigint')
        .execute();
      await db.schema.createIndex('app_tokens_user').on('app_tokens').column('user_id').execute();

      // ---- Content: blobs are content-addressed and stored once; repositories link them.
      await table(db, 'blobs')
        .addColumn('digest', 'varchar(255)', (c) => c.notNull().unique())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createTable('repo_blobs')
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('blob_id', 'bigint', (c) => c.notNull().references('blobs.id'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        // Until a manifest references the blob, GC must leave it alone this long (PUSH_TEMP_TAG_EXPIRATION_SEC).
        .addColumn('expires_at', 'bigint')
        .addPrimaryKeyConstraint('repo_blobs_pk', ['repository_id', 'blob_id'])
        .execute();
      await db.schema.createIndex('repo_blobs_blob').on('repo_blobs').column('blob_id').execute();
      await db.schema.createTable('uploads')
        .addColumn('uuid', 'varchar(36)', (c) => c.primaryKey())
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('principal', 'varchar(300)', (c) => c.notNull()) // who opened it: only they may use it
        .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('uploads_updated').on('uploads').column('updated_at').execute();

      await table(db, 'manifests')
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('digest', 'varchar(255)', (c) => c.notNull())
        .addColumn('media_type', 'varchar(255)', (c) => c.notNull())
        .addColumn('bytes', binary, (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('config_digest', 'varchar(255)')
        .addColumn('config_media_type', 'varchar(255)')
        .addColumn('artifact_type', 'varchar(255)')
        .addColumn('subject_digest', 'varchar(255)')
        .addColumn('annotations', 'text')
        .addColumn('layers_size', 'bigint') // sum of layer sizes (Quay's manifest size)
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addUniqueConstraint('manifests_repo_digest', ['repository_id', 'digest'])
        .execute();
      await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();
      await db.schema.createIndex('manifests_digest').on('manifests').column('digest').execute();
      await db.schema.createTable('manifest_blobs')
        .addColumn('manifest_id', 'bigint', notNullRef('manifests'))
        .addColumn('blob_id', 'bigint', (c) => c.notNull().references('blobs.id'))
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addPrimaryKeyConstraint('manifest_blobs_pk', ['manifest_id', 'blob_id'])
        .execute();
      await db.schema.createIndex('manifest_blobs_blob').on('manifest_blobs').columns(['blob_id', 'repository_id']).execute();
      await db.schema.createTable('manifest_children')
        .addColumn('manifest_id', 'bigint', notNullRef('manifests'))
        .addColumn('child_id', 'bigint', (c) => c.notNull().references('manifests.id'))
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addPrimaryKeyConstraint('manifest_children_pk', ['manifest_id', 'child_id'])
        .execute();
      await db.schema.createIndex('manifest_children_child').on('manifest_children').column('child_id').execute();

      await table(db, 'tags')
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('name', 'varchar(255)', (c) => c.notNull())
        .addColumn('manifest_id', 'bigint', (c) => c.notNull().references('manifests.id'))
        .addColumn('lifetime_start', 'bigint', (c) => c.notNull())
        // Null: alive forever. In the future: alive until then (expiration). In the past: history.
        .addColumn('lifetime_end', 'bigint')
        .addColumn('hidden', 'integer', bool(0))
        .addColumn('immutable', 'integer', bool(0))
        .execute();
      await db.schema.createIndex('tags_repo_name_end').on('tags').columns(['repository_id', 'name', 'lifetime_end']).execute();
      await db.schema.createIndex('tags_repo_end').on('tags').columns(['repository_id', 'lifetime_end']).execute();
      await db.schema.createIndex('tags_manifest').on('tags').column('manifest_id').execute();
      await db.schema.createIndex('tags_end').on('tags').column('lifetime_end').execute();

      await table(db, 'labels')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('manifest_id', 'bigint', notNullRef('manifests'))
        .addColumn('key', 'varchar(255)', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('media_type', 'varchar(64)', (c) => c.notNull())
        .addColumn('source_type', 'varchar(16)', (c) => c.notNull()) // manifest | api | internal
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('labels_manifest').on('labels').column('manifest_id').execute();

      // ---- Usage logs.
      await table(db, 'logs')
        .addColumn('kind', 'varchar(64)', (c) => c.notNull())
        .addColumn('account_id', 'bigint') // namespace; no FK: logs outlive what they describe
        .addColumn('performer_id', 'bigint')
        .addColumn('repository_id', 'bigint')
        .addColumn('ip', 'varchar(64)')
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('datetime', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('logs_account_time').on('logs').columns(['account_id', 'datetime']).execute();
      await db.schema.createIndex('logs_repo_time').on('logs').columns(['repository_id', 'datetime']).execute();
      await db.schema.createIndex('logs_performer_time').on('logs').columns(['performer_id', 'datetime']).execute();
      await db.schema.createIndex('logs_time').on('logs').column('datetime').execute();

      // ---- Storage lifecycle.
      await table(db, 'quotas')
        .addColumn('namespace_id', 'bigint', (c) => c.notNull().unique().references('users.id').onDelete('cascade'))
        .addColumn('limit_bytes', 'bigint', (c) => c.notNull())
        .execute();
      await table(db, 'quota_limits')
        .addColumn('quota_id', 'bigint', notNullRef('quotas'))
        .addColumn('type', 'varchar(16)', (c) => c.notNull()) // Warning | Reject
        .addColumn('percent', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createTable('namespace_sizes')
        .addColumn('namespace_id', 'bigint', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
        .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('backfill_status', 'varchar(16)', (c) => c.notNull().defaultTo('complete'))
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createTable('repository_sizes')
        .addColumn('repository_id', 'bigint', (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
        .addColumn('size_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await table(db, 'autoprune_policies')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('namespace_id', 'bigint', notNullRef('users'))
        .addColumn('repository_id', 'bigint', ref('repositories'))
        .addColumn('policy', 'text', (c) => c.notNull())
        .execute();
      await table(db, 'immutability_policies')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('namespace_id', 'bigint', notNullRef('users'))
        .addColumn('repository_id', 'bigint', ref('repositories'))
        .addColumn('tag_pattern', 'varchar(512)', (c) => c.notNull())
        .addColumn('tag_pattern_matches', 'integer', bool(1))
        .execute();

      // ---- Mirroring, proxy cache, notifications, builds, scanning.
      await table(db, 'mirror_configs')
        .addColumn('repository_id', 'bigint', (c) => c.notNull().unique().references('repositories.id').onDelete('cascade'))
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('is_enabled', 'integer', bool(1))
        .addColumn('sync_status', 'varchar(16)', (c) => c.notNull().defaultTo('NEVER_RUN'))
        .addColumn('sync_start_date', 'bigint')
        .addColumn('sync_expiration_date', 'bigint')
        .addColumn('sync_retries_remaining', 'integer', (c) => c.notNull().defaultTo(3))
        .addColumn('external_password_enc', 'text')
        .execute();
      await table(db, 'org_mirror_configs')
        .addColumn('org_id', 'bigint', (c) => c.notNull().unique().references('users.id').onDelete('cascade'))
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('sync_status', 'varchar(16)', (c) => c.notNull().defaultTo('NEVER_RUN'))
        .addColumn('credentials_enc', 'text')
        .execute();
      await table(db, 'proxy_cache_configs')
        .addColumn('org_id', 'bigint', (c) => c.notNull().unique().references('users.id').onDelete('cascade'))
        .addColumn('upstream_registry', 'varchar(1024)', (c) => c.notNull())
        .addColumn('username_enc', 'text')
        .addColumn('password_enc', 'text')
        .addColumn('expiration_s', 'bigint', (c) => c.notNull().defaultTo(86400))
        .addColumn('insecure', 'integer', bool(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await table(db, 'repo_notifications')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('repository_id', 'bigint', ref('repositories'))
        .addColumn('namespace_id', 'bigint', ref('users'))
        .addColumn('event', 'varchar(64)', (c) => c.notNull())
        .addColumn('method', 'varchar(64)', (c) => c.notNull())
        .addColumn('title', 'varchar(255)')
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('event_config', 'text', (c) => c.notNull())
        .addColumn('number_of_failures', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('repo_notifications_repo_event').on('repo_notifications').columns(['repository_id', 'event']).execute();
      await table(db, 'user_notifications')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('user_id', 'bigint', notNullRef('users'))
        .addColumn('kind', 'varchar(64)', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('dismissed', 'integer', bool(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('user_notifications_user').on('user_notifications').columns(['user_id', 'created_at']).execute();
      await table(db, 'build_triggers')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('service', 'varchar(32)', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', bool(1))
        .addColumn('disabled_reason', 'varchar(64)')
        .addColumn('robot_id', 'bigint', ref('users', 'set null'))
        .addColumn('secret_enc', 'text')
        .execute();
      await table(db, 'builds')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('repository_id', 'bigint', notNullRef('repositories'))
        .addColumn('trigger_id', 'bigint', ref('build_triggers', 'set null'))
        .addColumn('phase', 'varchar(32)', (c) => c.notNull())
        .addColumn('display_name', 'varchar(255)')
        .addColumn('job_config', 'text', (c) => c.notNull())
        .addColumn('resource_key', 'varchar(255)')
        .addColumn('pull_robot_id', 'bigint', ref('users', 'set null'))
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('logs', 'text')
        .execute();
      await db.schema.createIndex('builds_repo_started').on('builds').columns(['repository_id', 'started_at']).execute();
      await table(db, 'security_scans')
        .addColumn('manifest_digest', 'varchar(255)', (c) => c.notNull().unique())
        .addColumn('status', 'varchar(32)', (c) => c.notNull())
        .addColumn('report', 'text')
        .addColumn('indexed_at', 'bigint')
        .execute();

      // ---- Superuser administration.
      await db.schema.createTable('service_keys')
        .addColumn('kid', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(255)')
        .addColumn('service', 'varchar(255)', (c) => c.notNull())
        .addColumn('jwk', 'text', (c) => c.notNull())
        .addColumn('private_jwk_enc', 'text') // only for keys this registry signs with
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('rotation_duration', 'bigint')
        .addColumn('approval', 'text')
        .execute();
      await table(db, 'messages')
        .addColumn('uuid', 'varchar(36)', (c) => c.notNull().unique())
        .addColumn('content', 'text', (c) => c.notNull())
        .addColumn('media_type', 'varchar(32)', (c) => c.notNull())
        .addColumn('severity', 'varchar(16)', (c) => c.notNull())
        .execute();
      await db.schema.createTable('settings')
        .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();

      // ---- Background work: one queue table, leased by workers on any replica.
      await table(db, 'jobs')
        .addColumn('queue', 'varchar(64)', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        // At most one pending job per dedupe key (e.g. "gc:repo:12"): re-queueing is idempotent.
        .addColumn('dedupe_key', 'varchar(255)')
        .addColumn('available_at', 'bigint', (c) => c.notNull())
        .addColumn('lease_expires_at', 'bigint')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(5))
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('jobs_queue_available').on('jobs').columns(['queue', 'available_at']).execute();
      await db.schema.createIndex('jobs_dedupe').on('jobs').column('dedupe_key').unique().where(sql.ref('dedupe_key'), 'is not', null).execute();
    },
  };
}

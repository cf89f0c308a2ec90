// Row types for every table created by the migrations. Times are epoch ms; flags are 0/1.
import type { Generated } from 'kysely';

type Id = Generated<number>;
type Flag = Generated<number>;

export interface UsersTable {
  id: Id; uuid: string; username: string; email: string | null; password_hash: string | null;
  kind: 'user' | 'org' | 'robot'; robot_owner_id: number | null; verified: Flag; enabled: Flag; superuser: Flag;
  description: string | null; given_name: string | null; family_name: string | null; company: string | null;
  location: string | null; invoice_email: Flag; invoice_email_address: string | null;
  tag_expiration_s: Generated<number>; maximum_queued_builds_count: number | null; metadata: string | null;
  created_at: number; last_accessed: number | null;
}
export interface RobotTokensTable { id: Id; robot_id: number; token_enc: string; token_hash: string; fully_migrated: Flag }
export interface RobotFederationTable { id: Id; robot_id: number; issuer: string; subject: string }
export interface FederatedLoginsTable { id: Id; user_id: number; service: string; service_ident: string; metadata: string | null }
export interface TeamsTable { id: Id; org_id: number; name: string; role: 'member' | 'creator' | 'admin'; description: Generated<string> }
export interface TeamMembersTable { id: Id; team_id: number; user_id: number }
export interface TeamInvitesTable { id: Id; team_id: number; user_id: number | null; email: string | null; inviter_id: number | null; code_hash: string; created_at: number }
export interface TeamSyncTable { id: Id; team_id: number; service: string; config: string; last_updated: number | null }
export interface RepositoriesTable {
  id: Id; namespace_id: number; name: string; is_public: Flag; description: string | null; kind: Generated<string>;
  state: Generated<string>; trust_enabled: Flag; badge_token: string | null; created_at: number; last_modified: number | null;
}
export interface RepoPermissionsTable { id: Id; repository_id: number; user_id: number | null; team_id: number | null; role: 'read' | 'write' | 'admin' }
export interface PermissionPrototypesTable {
  id: Id; uuid: string; org_id: number; activating_user_id: number | null; delegate_user_id: number | null;
  delegate_team_id: number | null; role: 'read' | 'write' | 'admin';
}
export interface StarsTable { id: Id; user_id: number; repository_id: number; created_at: number }
export interface OauthApplicationsTable {
  id: Id; uuid: string; org_id: number; client_id: string; client_secret_enc: string; name: string;
  description: Generated<string>; application_uri: Generated<string>; redirect_uri: Generated<string>; avatar_email: string | null;
}
export interface OauthAccessTokensTable {
  id: Id; uuid: string; application_id: number; user_id: number; token_prefix: string; token_hash: string; scope: string;
  token_type: Generated<string>; created_at: number; expires_at: number | null;
  name: string | null; last_accessed: number | null; data: string | null;
}
export interface OauthAuthCodesTable { id: Id; application_id: number; code_prefix: string; code_hash: string; scope: string; data: string; created_at: number }
export interface OauthAssignedTokensTable { id: Id; uuid: string; assigned_user_id: number; application_id: number; redirect_uri: string | null; scope: string; response_type: string | null }
export interface AppTokensTable {
  id: Id; uuid: string; user_id: number; title: string; token_prefix: string; token_secret_enc: string;
  created_at: number; expires_at: number | null; last_accessed: number | null;
}
export interface BlobsTable { id: Id; digest: string; size: number; created_at: number }
export interface RepoBlobsTable { repository_id: number; blob_id: number; created_at: number; expires_at: number | null }
export interface UploadsTable { uuid: string; repository_id: number; principal: string; size: Generated<number>; created_at: number; updated_at: number; claimed_until?: number | null }
export interface ManifestsTable {
  id: Id; repository_id: number; digest: string; media_type: string; bytes: Uint8Array; size: number;
  config_digest: string | null; config_media_type: string | null; artifact_type: string | null; subject_digest: string | null;
  annotations: string | null; layers_size: number | null; created_at: number;
}
export interface ManifestBlobsTable { manifest_id: number; blob_id: number; repository_id: number }
export interface ManifestChildrenTable { manifest_id: number; child_id: number; repository_id: number }
export interface TagsTable {
  id: Id; repository_id: number; name: string; manifest_id: number; lifetime_start: number; lifetime_end: number | null;
  hidden: Flag; immutable: Flag; reversion: Flag;
}
export interface LabelsTable { id: Id; uuid: string; manifest_id: number; key: string; value: string; media_type: string; source_type: string; created_at: number }
export interface LogsTable {
  id: Id; kind: string; account_id: number | null; performer_id: number | null; repository_id: number | null;
  ip: string | null; metadata: string; datetime: number;
}
export interface QuotasTable { id: Id; namespace_id: number; limit_bytes: number }
export interface QuotaLimitsTable { id: Id; quota_id: number; type: 'Warning' | 'Reject'; percent: number }
export interface NamespaceSizesTable { namespace_id: number; size_bytes: Generated<number>; backfill_status: Generated<string>; updated_at: number }
export interface RepositorySizesTable { repository_id: number; size_bytes: Generated<number>; updated_at: number }
export interface AutopruneTable { id: Id; uuid: string; namespace_id: number; repository_id: number | null; policy: string }
export interface ImmutabilityTable { id: Id; uuid: string; namespace_id: number; repository_id: number | null; tag_pattern: string; tag_pattern_matches: Flag }
export interface MirrorConfigsTable {
  id: Id; repository_id: number; config: string; is_enabled: Flag; sync_status: Generated<string>; sync_start_date: number | null;
  sync_expiration_date: number | null; sync_retries_remaining: Generated<number>; external_password_enc: string | null;
}
export interface OrgMirrorConfigsTable { id: Id; org_id: number; config: string; sync_status: Generated<string>; credentials_enc: string | null }
export interface ProxyCacheConfigsTable {
  id: Id; org_id: number; upstream_registry: string; username_enc: string | null; password_enc: string | null;
  expiration_s: Generated<number>; insecure: Flag; created_at: number;
}
export interface RepoNotificationsTable {
  id: Id; uuid: string; repository_id: number | null; namespace_id: number | null; event: string; method: string;
  title: string | null; config: string; event_config: string; number_of_failures: Generated<number>;
}
export interface RepoAuthorizedEmailsTable { id: Id; repository_id: number; email: string; code_hash: string; confirmed: Flag; created_at: number }
export interface UserNotificationsTable { id: Id; uuid: string; user_id: number; kind: string; metadata: string; dismissed: Flag; created_at: number }
export interface BuildTriggersTable {
  id: Id; uuid: string; repository_id: number; service: string; config: string; enabled: Flag; disabled_reason: string | null;
  robot_id: number | null; secret_enc: string | null;
}
export interface BuildsTable {
  id: Id; uuid: string; repository_id: number; trigger_id: number | null; phase: string; display_name: string | null;
  job_config: string; resource_key: string | null; pull_robot_id: number | null; started_at: number; logs: string | null;
}
export interface SecurityScansTable { id: Id; manifest_digest: string; status: string; report: string | null; indexed_at: number | null }
export interface ServiceKeysTable {
  kid: string; name: string | null; service: string; jwk: string; private_jwk_enc: string | null; metadata: string;
  created_at: number; expires_at: number | null; rotation_duration: number | null; approval: string | null;
}
export interface MessagesTable { id: Id; uuid: string; content: string; media_type: string; severity: string }
export interface SettingsTable { key: string; value: string }
export interface JobsTable {
  id: Id; queue: string; payload: string; dedupe_key: string | null; available_at: number; lease_expires_at: number | null;
  attempts: Generated<number>; max_attempts: Generated<number>; last_error: string | null; created_at: number;
}

export interface RecoveryCodesTable { id: Id; user_id: number; code_prefix: string; code_hash: string; created_at: number; expires_at: number }
export interface ExternalLoginStatesTable {
  id: Id; state_hash: string; browser_hash: string; service: string; kind: string; user_id: number | null; redirect_uri: string;
  nonce: string; code_verifier: string | null; created_at: number; expires_at: number;
}
export interface SessionsTable { id: Id; token_hash: string; user_id: number; login_time: number; created_at: number; expires_at: number }
export interface TagPullStatisticsTable {
  repository_id: number; tag_name: string; pull_count: number; last_pull_at: number; current_manifest_digest: string;
}
export interface ManifestPullStatisticsTable { repository_id: number; manifest_digest: string; pull_count: number; last_pull_at: number }

export interface Database {
  users: UsersTable; robot_tokens: RobotTokensTable; robot_federation: RobotFederationTable; federated_logins: FederatedLoginsTable;
  teams: TeamsTable; team_members: TeamMembersTable; team_invites: TeamInvitesTable; team_sync: TeamSyncTable;
  repositories: RepositoriesTable; repo_permissions: RepoPermissionsTable; permission_prototypes: PermissionPrototypesTable;
  stars: StarsTable; oauth_applications: OauthApplicationsTable; oauth_access_tokens: OauthAccessTokensTable;
  oauth_auth_codes: OauthAuthCodesTable; oauth_assigned_tokens: OauthAssignedTokensTable; app_tokens: AppTokensTable;
  blobs: BlobsTable; repo_blobs: RepoBlobsTable; uploads: UploadsTable; manifests: ManifestsTable;
  manifest_blobs: ManifestBlobsTable; manifest_children: ManifestChildrenTable; tags: TagsTable; labels: LabelsTable;
  logs: LogsTable; quotas: QuotasTable; quota_limits: QuotaLimitsTable; namespace_sizes: NamespaceSizesTable;
  repository_sizes: RepositorySizesTable; autoprune_policies: AutopruneTable; immutability_policies: ImmutabilityTable;
  mirror_configs: MirrorConfigsTable; org_mirror_configs: OrgMirrorConfigsTable; proxy_cache_configs: ProxyCacheConfigsTable;
  repo_notifications: RepoNotificationsTable; repo_authorized_emails: RepoAuthorizedEmailsTable; user_notifications: UserNotificationsTable; build_triggers: BuildTriggersTable;
  builds: BuildsTable; security_scans: SecurityScansTable; service_keys: ServiceKeysTable; messages: MessagesTable;
  settings: SettingsTable; jobs: JobsTable; sessions: SessionsTable; external_login_states: ExternalLoginStatesTable; recovery_codes: RecoveryCodesTable;
  tag_pull_statistics: TagPullStatisticsTable; manifest_pull_statistics: ManifestPullStatisticsTable;
}

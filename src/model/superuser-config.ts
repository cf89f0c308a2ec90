// Quay's configuration dump for superusers (GET /api/v1/superuser/config, FEATURE_SUPERUSER_CONFIGDUMP):
// `config` holds the effective value of every key Quayside knows (config.yaml or default),
// `warning` the config.yaml keys it does not know, `env` the process environment and `schema`
// the accepted keys. Secrets never leave: known sensitive keys are shown as Quay shows them
// ("******** (8)": stars and the length), and Quayside also masks anything named like a
// credential and the password inside any URL, in config and environment alike.
import type { Services } from './context.ts';
import { KNOWN_KEYS } from '../config/known-keys.ts';

// Quay's list (PROJQUAY-4559), matched on the key name in any case.
const SENSITIVE_KEYS = new Set([
  'password', 'db_uri', 'secret_key', 'access_key', 'enable_health_debug_secret', 'client_secret', 's3_access_key', 's3_secret_key',
  'cloudfront_key_id', 'sts_user_access_key', 'sts_user_secret_key', 'ldap_admin_passwd', 'page_token_key', 'security_scanner_v4_psk',
  'database_secret_key',
]);
// Beyond Quay's list: any name that says credential (MAIL_PASSWORD, AWS_SECRET_ACCESS_KEY, …).
const SENSITIVE_NAME = /passw|secret|private_?key|access_?key|api_?key|credential|salt|(^|_)key$|(^|_)psk$|(^|_)token$|(^|_)dsn$|(^|_)pass$|(^|_)pwd$/i;

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEYS.has(key.toLowerCase()) || SENSITIVE_NAME.test(key);
}

/** Quay's obfuscation: at most ten stars, then the original length in parentheses. */
export function obfuscate(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? '';
  return `${'*'.repeat(Math.min(text.length, 10))} (${text.length})`;
}

/** The password of a URL with credentials (scheme://user:password@host) is masked. */
function maskUrlPassword(v: string): string {
  return v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):([^@/?#]*)@/i, (_m, head: string, pw: string) => `${head}:${obfuscate(pw)}@`);
}

/** A copy of `value` with every secret obfuscated, at any depth. */
export function scrub(value: unknown, key = ''): unknown {
  if (key && isSensitiveKey(key) && value !== null && value !== undefined && typeof value !== 'boolean') {
    if (typeof value !== 'object') return obfuscate(value);
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, key));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, scrub(v, k)]));
  }
  if (typeof value === 'string') return maskUrlPassword(value);
  return value;
}

function inSchema(key: string): boolean {
  return KNOWN_KEYS.has(key) || key.startsWith('FEATURE_') || key.startsWith('QUAYSIDE_') || key.endsWith('_LOGIN_CONFIG');
}

/** The values Quayside runs with for the keys that have defaults (what the config loader resolved). */
function effectiveDefaults(s: Services): Record<string, unknown> {
  const c = s.config;
  const out: Record<string, unknown> = {
    PREFERRED_URL_SCHEME: c.preferredUrlScheme,
    DB_URI: c.dbUri,
    DISTRIBUTED_STORAGE_PREFERENCE: [c.storageId],
    SUPER_USERS: c.superUsers,
    GLOBAL_READONLY_SUPER_USERS: c.globalReadonlySuperUsers,
    AUTHENTICATION_TYPE: c.authenticationType,
    CREATE_PRIVATE_REPO_ON_PUSH: c.createPrivateRepoOnPush,
    CREATE_NAMESPACE_ON_PUSH: c.createNamespaceOnPush,
    REGISTRY_STATE: c.registryState,
    DATABASE_SECRET_KEY: c.databaseSecretKey,
    SECRET_KEY: c.secretKey,
    REGISTRY_TITLE: c.registryTitle,
    PUSH_TEMP_TAG_EXPIRATION_SEC: c.pushTempTagExpirationSeconds,
    GARBAGE_COLLECTION_FREQUENCY: c.gcIntervalSeconds,
  };
  if (c.serverHostname !== null) out.SERVER_HOSTNAME = c.serverHostname;
  if (c.storage.kind === 'local' && c.raw.DISTRIBUTED_STORAGE_CONFIG === undefined) {
    out.DISTRIBUTED_STORAGE_CONFIG = { [c.storageId]: ['LocalStorage', { storage_path: c.storage.path }] };
  }
  for (const [name, on] of Object.entries(c.features)) out[`FEATURE_${name}`] = on;
  return out;
}

const TYPES: Record<string, string> = {
  SERVER_HOSTNAME: 'string', PREFERRED_URL_SCHEME: 'string', DB_URI: 'string', DISTRIBUTED_STORAGE_CONFIG: 'object',
  DISTRIBUTED_STORAGE_PREFERENCE: 'array', SUPER_USERS: 'array', GLOBAL_READONLY_SUPER_USERS: 'array', AUTHENTICATION_TYPE: 'string',
  CREATE_PRIVATE_REPO_ON_PUSH: 'boolean', CREATE_NAMESPACE_ON_PUSH: 'boolean', REGISTRY_STATE: 'string', DATABASE_SECRET_KEY: 'string',
  SECRET_KEY: 'string', REGISTRY_TITLE: 'string', REGISTRY_TITLE_SHORT: 'string', TAG_EXPIRATION_OPTIONS: 'array',
  DEFAULT_TAG_EXPIRATION: 'string', PUSH_TEMP_TAG_EXPIRATION_SEC: 'number', GARBAGE_COLLECTION_FREQUENCY: 'number',
  MAIL_SERVER: 'string', MAIL_PORT: 'number', MAIL_USERNAME: 'string', MAIL_PASSWORD: 'string', MAIL_DEFAULT_SENDER: 'string',
  MAIL_USE_TLS: 'boolean', MAIL_USE_SSL: 'boolean', MAIL_USE_AUTH: 'boolean', USER_RECOVERY_TOKEN_LIFETIME: 'string',
  SESSION_TIMEOUT: 'string', FRESH_LOGIN_TIMEOUT: 'string', BOOTSTRAP_TOKEN_OWNER: 'string', BOOTSTRAP_TOKEN_SCOPE: 'string',
  BOOTSTRAP_TOKEN_EXPIRATION: 'number', BOOTSTRAP_TOKEN_PATH: 'string', BROWSER_API_CALLS_XHR_ONLY: 'boolean', DEBUGGING: 'boolean',
};

/** The accepted keys as a JSON schema (Quayside needs none of them: everything has a default). */
export function configSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const key of [...KNOWN_KEYS].sort()) properties[key] = TYPES[key] ? { type: TYPES[key] } : {};
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    description: 'Schema for Quayside configuration (Quay config.yaml keys; FEATURE_*, QUAYSIDE_* and <NAME>_LOGIN_CONFIG keys are accepted too)',
    required: [],
    properties,
    patternProperties: { '^FEATURE_': { type: 'boolean' }, '^QUAYSIDE_': {}, '_LOGIN_CONFIG$': { type: 'object' } },
  };
}

export interface ConfigDump { config: Record<string, unknown>; warning: Record<string, unknown>; env: Record<string, unknown>; schema: Record<string, unknown> }

export function configDump(s: Services, env: NodeJS.ProcessEnv = process.env): ConfigDump {
  const config: Record<string, unknown> = {};
  const warning: Record<string, unknown> = {};
  const merged = { ...effectiveDefaults(s), ...s.config.raw };
  // What the loader resolved wins over the raw text for these (e.g. a postgres+psycopg2 DB_URI).
  merged.DB_URI = s.config.dbUri;
  for (const key of Object.keys(merged).sort()) {
    const value = scrub(merged[key], key);
    if (inSchema(key)) config[key] = value;
    else warning[key] = value;
  }
  const envOut: Record<string, unknown> = {};
  for (const key of Object.keys(env).sort()) envOut[key] = scrub(env[key] ?? '', key);
  return { config, warning, env: envOut, schema: configSchema() };
}

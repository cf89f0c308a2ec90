// Quay-compatible configuration: reads a Quay `config.yaml`, applies defaults for the embedded
// mode, and fails with a message naming the key when something is wrong.
import { readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { resolve, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { StorageConfig } from '../storage/index.ts';
import { KNOWN_KEYS } from './known-keys.ts';

export interface Features {
  USER_CREATION: boolean;
  USER_INITIALIZE: boolean;
  ANONYMOUS_ACCESS: boolean;
  SUPER_USERS: boolean;
  DIRECT_LOGIN: boolean;
  EXTENDED_REPOSITORY_NAMES: boolean;
  APP_SPECIFIC_TOKENS: boolean;
  MAILING: boolean;
  QUOTA_MANAGEMENT: boolean;
  EDIT_QUOTA: boolean;
  AUTO_PRUNE: boolean;
  IMMUTABLE_TAGS: boolean;
  REPO_MIRROR: boolean;
  PROXY_CACHE: boolean;
  BUILD_SUPPORT: boolean;
  SECURITY_SCANNER: boolean;
  TEAM_SYNCING: boolean;
  SUPERUSERS_FULL_ACCESS: boolean;
  RESTRICTED_USERS: boolean;
  PARTIAL_USER_AUTOCOMPLETE: boolean;
  PUBLIC_CATALOG: boolean;
  GENERAL_OCI_SUPPORT: boolean;
  REFERRERS_API: boolean;
  USERNAME_CONFIRMATION: boolean;
  ASSIGN_OAUTH_TOKEN: boolean;
  [name: string]: boolean;
}

const FEATURE_DEFAULTS: Features = {
  USER_CREATION: true,
  USER_INITIALIZE: true,
  ANONYMOUS_ACCESS: true,
  SUPER_USERS: true,
  DIRECT_LOGIN: true,
  EXTENDED_REPOSITORY_NAMES: true,
  APP_SPECIFIC_TOKENS: true,
  MAILING: false,
  QUOTA_MANAGEMENT: false,
  EDIT_QUOTA: true,
  AUTO_PRUNE: false,
  IMMUTABLE_TAGS: false,
  REPO_MIRROR: false,
  PROXY_CACHE: false,
  BUILD_SUPPORT: false,
  SECURITY_SCANNER: false,
  TEAM_SYNCING: false,
  SUPERUSERS_FULL_ACCESS: false,
  RESTRICTED_USERS: false,
  PARTIAL_USER_AUTOCOMPLETE: true,
  PUBLIC_CATALOG: false,
  GENERAL_OCI_SUPPORT: true,
  REFERRERS_API: true,
  USERNAME_CONFIRMATION: true,
  ASSIGN_OAUTH_TOKEN: true,
  LOG_EXPORT: true,
  AGGREGATED_LOG_COUNT_RETRIEVAL: true,
  UI_MODELCARD: true,
};

export interface QuaysideConfig {
  port: number;
  host: string;
  dataDir: string;
  /** Explicit SERVER_HOSTNAME, or null to use the request's Host header. */
  serverHostname: string | null;
  preferredUrlScheme: 'http' | 'https';
  dbUri: string;
  storage: StorageConfig;
  storageId: string;
  superUsers: string[];
  globalReadonlySuperUsers: string[];
  authenticationType: 'Database';
  features: Features;
  createPrivateRepoOnPush: boolean;
  createNamespaceOnPush: boolean;
  registryState: 'normal' | 'readonly';
  databaseSecretKey: string;
  secretKey: string;
  registryTitle: string;
  maxManifestBytes: number;
  /** Abandoned upload sessions older than this are expired by the queue. */
  uploadExpirySeconds: number;
  /** Blobs uploaded but not referenced by a manifest are protected from GC this long. */
  pushTempTagExpirationSeconds: number;
  tagListMaxPageSize: number;
  catalogMaxPageSize: number;
  referrersMaxCount: number;
  /** Seconds between garbage-collection passes (and between orphan-object sweeps). */
  gcIntervalSeconds: number;
  gcSweepIntervalSeconds: number;
  /** TAG_EXPIRATION_OPTIONS in seconds: the time-machine windows a namespace may choose. */
  tagExpirationOptions: number[];
  /** DEFAULT_TAG_EXPIRATION in seconds: the time-machine window of new users and organizations. */
  defaultTagExpirationSeconds: number;
  /** PERMANENTLY_DELETE_TAGS: whether tags may be pushed out of the time machine by hand. */
  permanentlyDeleteTags: boolean;
  /** Background workers (queue consumers) in this process. */
  workersEnabled: boolean;
  logLevel: string;
  /** The raw YAML map, for keys that only GET /config echoes. */
  raw: Record<string, unknown>;
}

export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, problem: string) {
    super(`config: ${key}: ${problem}`);
    this.key = key;
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  file?: string;
  dataDir?: string;
  port?: number;
  host?: string;
  /** Overrides applied on top of the file (tests). */
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** When false, absent secrets are not written to the data dir (config check). */
  persistSecrets?: boolean;
  warn?: (msg: string) => void;
}

function bool(raw: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'True') return true;
  if (v === 'false' || v === 'False') return false;
  throw new ConfigError(key, `must be true or false, got ${JSON.stringify(v)}`);
}

function str(raw: Record<string, unknown>, key: string, dflt: string): string {
  const v = raw[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(key, `must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function int(raw: Record<string, unknown>, key: string, dflt: number, min = 0): number {
  const v = raw[key];
  if (v === undefined || v === null) return dflt;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) throw new ConfigError(key, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function strList(raw: Record<string, unknown>, key: string): string[] {
  const v = raw[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ConfigError(key, 'must be a list of strings');
  return v as string[];
}

const DURATION_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Quay's time-machine durations ("0s", "1d", "2w"): digits and one unit of s, m, h, d or w. */
function durationSeconds(value: unknown): number | null {
  const m = typeof value === 'string' ? /^(\d+)([smhdw])$/.exec(value) : null;
  return m ? Number(m[1]) * DURATION_SECONDS[m[2]!]! : null;
}

/** TAG_EXPIRATION_OPTIONS and DEFAULT_TAG_EXPIRATION, checked as Quay's time-machine validator does. */
function timeMachine(raw: Record<string, unknown>): { options: number[]; dflt: number } {
  const rawOptions = raw.TAG_EXPIRATION_OPTIONS ?? ['0s', '1d', '1w', '2w', '4w'];
  if (!Array.isArray(rawOptions)) throw new ConfigError('TAG_EXPIRATION_OPTIONS', 'must be a list of durations such as 1d or 2w');
  const options = rawOptions.map((o) => {
    const secs = durationSeconds(o);
    if (secs === null) throw new ConfigError('TAG_EXPIRATION_OPTIONS', `invalid tag expiration option: ${JSON.stringify(o)} (use digits and one of s, m, h, d, w)`);
    return secs;
  });
  const rawDefault = raw.DEFAULT_TAG_EXPIRATION ?? '2w';
  const dflt = durationSeconds(rawDefault);
  if (dflt === null) throw new ConfigError('DEFAULT_TAG_EXPIRATION', `invalid default expiration: ${JSON.stringify(rawDefault)} (use digits and one of s, m, h, d, w)`);
  // Quay compares the strings; only an explicit default is held to the list (its "old style
  // config" without one keeps the built-in two weeks).
  if (raw.DEFAULT_TAG_EXPIRATION !== undefined && raw.DEFAULT_TAG_EXPIRATION !== null && !rawOptions.includes(rawDefault)) {
    throw new ConfigError('DEFAULT_TAG_EXPIRATION', `default expiration must be in expiration options set (TAG_EXPIRATION_OPTIONS: ${rawOptions.join(', ')})`);
  }
  return { options, dflt };
}

/** Secrets absent from the config are generated once and kept in the data dir, so restarts and
 * the CLI agree on them. Replicas must set them in config.yaml (they share no data dir). */
function persistentSecret(dataDir: string, name: string, persist: boolean): string {
  const file = join(dataDir, 'secrets', name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = randomBytes(32).toString('base64url');
  if (persist) {
    mkdirSync(join(dataDir, 'secrets'), { recursive: true, mode: 0o700 });
    writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' });
  }
  return value;
}

function parseStorage(raw: Record<string, unknown>, dataDir: string): { storage: StorageConfig; storageId: string } {
  const dsc = raw.DISTRIBUTED_STORAGE_CONFIG;
  if (dsc === undefined || dsc === null) return { storage: { kind: 'local', path: join(dataDir, 'storage') }, storageId: 'default' };
  if (typeof dsc !== 'object' || Array.isArray(dsc)) throw new ConfigError('DISTRIBUTED_STORAGE_CONFIG', 'must be a map of location name to [driver, params]');
  const locations = dsc as Record<string, unknown>;
  const pref = raw.DISTRIBUTED_STORAGE_PREFERENCE;
  let id: string;
  if (pref === undefined || pref === null) id = Object.keys(locations)[0]!;
  else if (Array.isArray(pref) && typeof pref[0] === 'string') id = pref[0];
  else throw new ConfigError('DISTRIBUTED_STORAGE_PREFERENCE', 'must be a list of location names');
  const entry = locations[id];
  if (!Array.isArray(entry) || typeof entry[0] !== 'string') throw new ConfigError(`DISTRIBUTED_STORAGE_CONFIG.${id}`, 'must be [DriverName, {params}]');
  const [driver, params = {}] = entry as [string, Record<string, unknown>];
  const key = `DISTRIBUTED_STORAGE_CONFIG.${id}`;
  const p = params as Record<string, unknown>;
  switch (driver) {
    case 'LocalStorage': {
      const path = p.storage_path;
      if (typeof path !== 'string' || !path) throw new ConfigError(key, 'LocalStorage needs storage_path');
      return { storage: { kind: 'local', path: resolve(dataDir, path) }, storageId: id };
    }
    case 'S3Storage':
    case 'RadosGWStorage':
    case 'RHOCSStorage':
    case 'IBMCloudStorage':
    case 'CloudFrontedS3Storage': {
      const bucket = (p.s3_bucket ?? p.bucket_name) as unknown;
      if (typeof bucket !== 'string' || !bucket) throw new ConfigError(key, `${driver} needs s3_bucket (or bucket_name)`);
      const host = (p.host ?? p.hostname) as string | undefined;
      let endpoint: string | undefined;
      if (host) {
        const secure = p.is_secure === undefined ? true : Boolean(p.is_secure);
        endpoint = `${secure ? 'https' : 'http'}://${host}${p.port ? `:${p.port}` : ''}`;
      } else if (typeof p.endpoint_url === 'string') endpoint = p.endpoint_url;
      return {
        storage: {
          kind: 's3',
          bucket,
          endpoint,
          region: (p.s3_region ?? p.region ?? 'us-east-1') as string,
          accessKeyId: (p.s3_access_key ?? p.access_key) as string | undefined,
          secretAccessKey: (p.s3_secret_key ?? p.secret_key) as string | undefined,
          prefix: typeof p.storage_path === 'string' ? p.storage_path.replace(/^\/+|\/+$/g, '') : undefined,
          forcePathStyle: endpoint !== undefined,
          redirect: raw.FEATURE_PROXY_STORAGE === true ? false : p.redirect !== false,
        },
        storageId: id,
      };
    }
    default:
      throw new ConfigError(key, `unsupported storage driver ${JSON.stringify(driver)} (supported: LocalStorage, S3Storage, RadosGWStorage, RHOCSStorage, IBMCloudStorage)`);
  }
}

export function loadConfig(opts: LoadOptions = {}): QuaysideConfig {
  const env = opts.env ?? process.env;
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`quayside: warning: ${m}\n`));
  const file = opts.file ?? env.QUAYSIDE_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError('QUAYSIDE_CONFIG', `cannot read ${file}: ${(e as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = parseYaml(text);
    } catch (e) {
      throw new ConfigError(file, `invalid YAML: ${(e as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined) {
      if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(file, 'must be a YAML map of KEY: value');
      raw = parsed as Record<string, unknown>;
    }
  }
  raw = { ...raw, ...(opts.overrides ?? {}) };
  for (const k of Object.keys(raw)) {
    // <NAME>_LOGIN_CONFIG: an OpenID Connect login service of any name (src/model/external-login.ts).
    if (!KNOWN_KEYS.has(k) && !k.startsWith('FEATURE_') && !k.startsWith('QUAYSIDE_') && !k.endsWith('_LOGIN_CONFIG')) warn(`unknown config key ${k} (ignored)`);
  }

  const dataDir = resolve(opts.dataDir ?? env.QUAYSIDE_DATA_DIR ?? (raw.QUAYSIDE_DATA_DIR as string | undefined) ?? './data');
  const port = opts.port ?? (env.PORT ? Number(env.PORT) : int(raw, 'QUAYSIDE_PORT', 8080));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('PORT', `must be a TCP port, got ${env.PORT}`);
  const persist = opts.persistSecrets ?? true;
  if (persist) mkdirSync(dataDir, { recursive: true });

  const features = { ...FEATURE_DEFAULTS };
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('FEATURE_')) features[k.slice(8)] = bool(raw, k, false);
    void v;
  }

  let dbUri = str(raw, 'DB_URI', `sqlite:///${join(dataDir, 'quayside.db')}`);
  if (!/^(sqlite:\/\/|postgres(ql)?(\+\w+)?:\/\/)/.test(dbUri)) throw new ConfigError('DB_URI', `must be sqlite:///path or postgresql://user@host/db, got ${JSON.stringify(dbUri)}`);
  dbUri = dbUri.replace(/^postgres(ql)?\+\w+:/, 'postgresql:');

  const scheme = str(raw, 'PREFERRED_URL_SCHEME', 'http');
  if (scheme !== 'http' && scheme !== 'https') throw new ConfigError('PREFERRED_URL_SCHEME', 'must be http or https');
  const registryState = str(raw, 'REGISTRY_STATE', 'normal');
  if (registryState !== 'normal' && registryState !== 'readonly') throw new ConfigError('REGISTRY_STATE', 'must be normal or readonly');
  const authType = str(raw, 'AUTHENTICATION_TYPE', 'Database');
  if (authType !== 'Database') throw new ConfigError('AUTHENTICATION_TYPE', `only Database is supported, got ${authType}`);
  const hostname = raw.SERVER_HOSTNAME === undefined || raw.SERVER_HOSTNAME === null ? null : str(raw, 'SERVER_HOSTNAME', '');

  const { storage, storageId } = parseStorage(raw, dataDir);
  const tagExpiration = timeMachine(raw);
  return {
    port,
    host: opts.host ?? env.HOST ?? '0.0.0.0',
    dataDir,
    serverHostname: hostname,
    preferredUrlScheme: scheme,
    dbUri,
    storage,
    storageId,
    superUsers: strList(raw, 'SUPER_USERS'),
    globalReadonlySuperUsers: strList(raw, 'GLOBAL_READONLY_SUPER_USERS'),
    authenticationType: 'Database',
    features,
    createPrivateRepoOnPush: bool(raw, 'CREATE_PRIVATE_REPO_ON_PUSH', true),
    createNamespaceOnPush: bool(raw, 'CREATE_NAMESPACE_ON_PUSH', false),
    registryState,
    databaseSecretKey: raw.DATABASE_SECRET_KEY !== undefined ? str(raw, 'DATABASE_SECRET_KEY', '') : persistentSecret(dataDir, 'database_secret_key', persist),
    secretKey: raw.SECRET_KEY !== undefined ? str(raw, 'SECRET_KEY', '') : persistentSecret(dataDir, 'secret_key', persist),
    registryTitle: str(raw, 'REGISTRY_TITLE', 'Quayside'),
    maxManifestBytes: int(raw, 'QUAYSIDE_MAX_MANIFEST_BYTES', 4 * 1024 * 1024, 1024),
    uploadExpirySeconds: int(raw, 'QUAYSIDE_UPLOAD_EXPIRY_SECONDS', 24 * 3600, 1),
    pushTempTagExpirationSeconds: int(raw, 'PUSH_TEMP_TAG_EXPIRATION_SEC', 3600, 0),
    tagListMaxPageSize: int(raw, 'QUAYSIDE_TAG_LIST_MAX', 10000, 1),
    catalogMaxPageSize: int(raw, 'QUAYSIDE_CATALOG_MAX', 1000, 1),
    referrersMaxCount: int(raw, 'QUAYSIDE_REFERRERS_MAX', 1000, 1),
    gcIntervalSeconds: int(raw, 'GARBAGE_COLLECTION_FREQUENCY', 300, 1),
    gcSweepIntervalSeconds: int(raw, 'QUAYSIDE_GC_SWEEP_SECONDS', 6 * 3600, 1),
    tagExpirationOptions: tagExpiration.options,
    defaultTagExpirationSeconds: tagExpiration.dflt,
    permanentlyDeleteTags: bool(raw, 'PERMANENTLY_DELETE_TAGS', true),
    workersEnabled: bool(raw, 'QUAYSIDE_WORKERS', true),
    logLevel: str(raw, 'QUAYSIDE_LOG_LEVEL', env.LOG_LEVEL ?? 'info'),
    raw,
  };
}

// Proxy-cache (pull-through) configurations of organizations (FEATURE_PROXY_CACHE, Quay's
// endpoints/api/organization.py proxy cache resources and data/model/proxy_cache.py). An
// organization with a configuration serves images of one upstream registry (optionally one of its
// namespaces, "quay.io/projectquay"), fetched on first pull. Credentials are stored encrypted.
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { denied, findOrganization, orgAccess, requireOrgAdmin, type Actor } from './organizations.ts';
import { checkOutboundUrl, OutboundBlockedError, outboundPolicy } from './outbound.ts';
import { UpstreamAuthError, UpstreamRegistry, upstreamTarget, type UpstreamTarget } from './upstream-registry.ts';

/** Quay's DEFAULT_PROXY_CACHE_EXPIRATION: one day. */
export const DEFAULT_PROXY_CACHE_EXPIRATION = 86400;

export interface ProxyCacheConfig {
  orgId: number;
  orgname: string;
  upstreamRegistry: string;
  username: string | null;
  password: string | null;
  expirationS: number;
  insecure: boolean;
}

export interface ProxyCacheView {
  upstream_registry: string;
  expiration_s: number | '';
  insecure: boolean | '';
}

export interface ProxyCacheInput {
  upstream_registry: string;
  upstream_registry_username?: string | null;
  upstream_registry_password?: string | null;
  expiration_s?: number | null;
  insecure?: boolean | null;
}

const invalid = (message: string): never => {
  throw new DomainError('invalid_request', message);
};

/** The configuration of an organization (by id), credentials decrypted; null when it has none. */
export async function proxyCacheConfigFor(s: Services, orgId: number): Promise<ProxyCacheConfig | null> {
  const row = await s.db.selectFrom('proxy_cache_configs').innerJoin('users', 'users.id', 'proxy_cache_configs.org_id')
    .select(['proxy_cache_configs.org_id', 'users.username', 'proxy_cache_configs.upstream_registry', 'proxy_cache_configs.username_enc',
      'proxy_cache_configs.password_enc', 'proxy_cache_configs.expiration_s', 'proxy_cache_configs.insecure'])
    .where('proxy_cache_configs.org_id', '=', orgId).executeTakeFirst();
  if (!row) return null;
  return {
    orgId: row.org_id, orgname: row.username, upstreamRegistry: row.upstream_registry,
    username: row.username_enc ? s.box.decrypt(row.username_enc) : null,
    password: row.password_enc ? s.box.decrypt(row.password_enc) : null,
    expirationS: Number(row.expiration_s), insecure: row.insecure === 1,
  };
}

// /v2 asks on every request of a namespace whether it is a proxy cache: answers are kept briefly,
// so a plain registry pays nothing per request beyond the first in each window. A change made on
// another replica is seen within this window.
const CACHE_MS = 5_000;
const cache = new Map<string, { at: number; config: ProxyCacheConfig | null }>();

/** The proxy-cache configuration of the namespace, or null (always null with the feature off). */
export async function proxyCacheForNamespace(s: Services, namespace: string): Promise<ProxyCacheConfig | null> {
  if (!s.config.features.PROXY_CACHE) return null;
  const now = Date.now();
  const hit = cache.get(namespace);
  if (hit && now - hit.at < CACHE_MS) return hit.config;
  const org = await findOrganization(s, namespace);
  const config = org ? await proxyCacheConfigFor(s, org.id) : null;
  if (cache.size > 10_000) cache.clear();
  cache.set(namespace, { at: now, config });
  return config;
}

function forget(orgname: string): void {
  cache.delete(orgname);
}

function view(c: ProxyCacheConfig | null): ProxyCacheView {
  return { upstream_registry: c ? c.upstreamRegistry : '', expiration_s: c ? c.expirationS : '', insecure: c ? c.insecure : '' };
}

/** GET: organization members, global read-only superusers and full-access superusers. An
 * organization without a configuration answers empty strings, as Quay does. */
export async function getProxyCacheConfig(s: Services, p: Principal, orgname: string): Promise<ProxyCacheView> {
  const org = await findOrganization(s, orgname);
  const access = await orgAccess(s, p, org?.id ?? null);
  if (!access.member && !access.readonlySuper && !access.fullAccess) denied();
  if (!org) return view(null);
  return view(await proxyCacheConfigFor(s, org.id));
}

/** "host[:port][/namespace…]": the registry host, and the namespace prefix inside it. */
function checkUpstreamForm(upstream: string): void {
  if (!upstream || upstream.length > 1024) invalid('Invalid upstream registry');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(upstream) || /[\s@?#\\]/.test(upstream)) invalid(`Invalid upstream registry: ${upstream}`);
  const [host] = upstream.split('/');
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host!) && !/^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(host!)) invalid(`Invalid upstream registry: ${upstream}`);
}

function normalize(input: ProxyCacheInput): Omit<ProxyCacheConfig, 'orgId' | 'orgname'> {
  const upstream = input.upstream_registry.trim().replace(/\/+$/, '');
  checkUpstreamForm(upstream);
  const exp = input.expiration_s ?? DEFAULT_PROXY_CACHE_EXPIRATION;
  if (!Number.isInteger(exp) || exp < 0) invalid('expiration_s must be a non-negative integer');
  const username = input.upstream_registry_username || null;
  const password = input.upstream_registry_password || null;
  return { upstreamRegistry: upstream, username, password, expirationS: exp, insecure: input.insecure === true };
}

/** The SSRF check with DNS, before anything is stored or contacted. A name that does not resolve
 * (yet) may still be configured; every connection is checked again when it is made. */
async function checkReachable(s: Services, target: UpstreamTarget, unresolvedOk: boolean): Promise<void> {
  try {
    await checkOutboundUrl(outboundPolicy(s.config), `${target.baseUrl}/v2/`);
  } catch (e) {
    if (!(e instanceof OutboundBlockedError)) throw e;
    if (/cannot resolve/.test(e.message)) {
      if (unresolvedOk) return;
      invalid('Failed login to remote registry. Please verify entered details and try again.');
    }
    invalid(`Invalid upstream registry: ${e.message}`);
  }
}

export async function createProxyCacheConfig(s: Services, actor: Actor, orgname: string, input: ProxyCacheInput): Promise<void> {
  const { org } = await requireOrgAdmin(s, actor.principal, orgname, 'write');
  if (await proxyCacheConfigFor(s, org.id)) invalid('Proxy Cache Configuration already exists');
  if (s.config.features.IMMUTABLE_TAGS) {
    const immutable = await s.db.selectFrom('tags').innerJoin('repositories', 'repositories.id', 'tags.repository_id').select('tags.id')
      .where('repositories.namespace_id', '=', org.id).where('tags.immutable', '=', 1).where('tags.hidden', '=', 0)
      .where((eb) => eb.or([eb('tags.lifetime_end', 'is', null), eb('tags.lifetime_end', '>', s.now())])).executeTakeFirst();
    if (immutable) invalid('Cannot convert organization to proxy cache: immutable tags exist');
  }
  const cfg = normalize(input);
  if (await s.db.selectFrom('org_mirror_configs').select('id').where('org_id', '=', org.id).executeTakeFirst()) {
    invalid('Cannot create proxy cache: the organization is managed by organization-level mirroring. Remove the org mirror configuration first.');
  }
  await checkReachable(s, upstreamTarget(cfg), true);
  await s.db.transaction().execute(async (tx) => {
    await tx.insertInto('proxy_cache_configs').values({
      org_id: org.id, upstream_registry: cfg.upstreamRegistry,
      username_enc: cfg.username !== null ? s.box.encrypt(cfg.username) : null,
      password_enc: cfg.password !== null ? s.box.encrypt(cfg.password) : null,
      expiration_s: cfg.expirationS, insecure: cfg.insecure ? 1 : 0, created_at: s.now(),
    }).execute();
    await logAction(s, 'create_proxy_cache_config', {
      namespaceId: org.id, performer: actor.principal, ip: actor.ip, metadata: { upstream_registry: cfg.upstreamRegistry, namespace: orgname },
    }, tx);
  }).catch((e: unknown) => {
    if (e instanceof Error && /unique|duplicate/i.test(e.message)) invalid('Proxy Cache Configuration already exists');
    throw e;
  });
  forget(orgname);
}

export async function deleteProxyCacheConfig(s: Services, actor: Actor, orgname: string): Promise<void> {
  const { org } = await requireOrgAdmin(s, actor.principal, orgname, 'write');
  await s.db.transaction().execute(async (tx) => {
    const res = await tx.deleteFrom('proxy_cache_configs').where('org_id', '=', org.id).executeTakeFirst();
    if (Number(res.numDeletedRows) === 0) throw new DomainError('not_found', 'Not Found');
    await logAction(s, 'delete_proxy_cache_config', { namespaceId: org.id, performer: actor.principal, ip: actor.ip, metadata: { namespace: orgname } }, tx);
  });
  forget(orgname);
}

export type ValidationResult = 'Valid' | 'Anonymous';

/** Contacts the upstream's /v2/ with the given credentials, as Quay's validateproxycache does:
 * "Valid" when it answers 200, "Anonymous" when it still asks for credentials that were not given. */
export async function validateProxyCacheConfig(s: Services, p: Principal, orgname: string, input: ProxyCacheInput, signal?: AbortSignal): Promise<ValidationResult> {
  await requireOrgAdmin(s, p, orgname, 'write');
  const cfg = normalize(input);
  const target = upstreamTarget(cfg);
  await checkReachable(s, target, false);
  const client = new UpstreamRegistry(outboundPolicy(s.config), target, null, orgname, true);
  let status: number;
  try {
    status = await client.ping(signal);
  } catch (e) {
    if (e instanceof UpstreamAuthError || e instanceof OutboundBlockedError || isNetworkError(e)) {
      s.log.info({ err: e, orgname, upstream: cfg.upstreamRegistry }, 'proxy cache validation failed');
      invalid('Failed login to remote registry. Please verify entered details and try again.');
    }
    throw e;
  }
  if (status === 200) return 'Valid';
  // Credentials were given and are still refused: a login failure, not an anonymous registry.
  if (status === 401 && cfg.username === null) return 'Anonymous';
  if (status === 401) invalid('Failed login to remote registry. Please verify entered details and try again.');
  return invalid('Failed to validate Proxy cache configuration');
}

function isNetworkError(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return typeof code === 'string' || (e as Error).name === 'AbortError' || (e as Error).name === 'TimeoutError';
}

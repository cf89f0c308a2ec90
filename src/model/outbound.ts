// The one guard for every request Quayside makes to a URL someone else chose: log-export
// callbacks today, webhooks, mirroring and proxy-cache upstreams later. A URL must be http(s)
// without credentials, and every address it reaches must be public unicast (or explicitly
// allowlisted). The address check runs inside the socket's DNS lookup, so the address that is
// checked is the address that is connected to (no DNS-rebinding window), and again for every
// redirect hop.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import type { QuaysideConfig } from '../config/config.ts';

export class OutboundBlockedError extends Error {
  readonly url: string;
  constructor(url: string, reason: string) {
    super(`outbound request to ${url} refused: ${reason}`);
    this.url = url;
    this.name = 'OutboundBlockedError';
  }
}

// Everything that is not globally routable unicast (IANA special-purpose registries), plus the
// translation ranges that would smuggle such an address inside a public-looking one.
const BLOCKED = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) BLOCKED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32],
  ['2002::', 16], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) BLOCKED.addSubnet(net, prefix, 'ipv6');
// IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) addresses are judged as the IPv4
// address they carry: BlockList matches the mapped form against the IPv4 rules above itself.

const METADATA_HOSTNAMES = new Set([
  'metadata', 'metadata.google.internal', 'metadata.azure.internal',
  'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local',
]);

/** True when an address is not public unicast (loopback, private, link-local, metadata, …). */
export function isBlockedAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

type AllowRule =
  | { kind: 'net'; list: BlockList; port: number | null }
  | { kind: 'host'; host: string; port: number | null };

export type Lookup = (hostname: string) => Promise<LookupAddress[]>;

export interface OutboundPolicy {
  allow: AllowRule[];
  /** Name resolution (tests inject one to simulate DNS answers). */
  lookup: Lookup;
}

const systemLookup: Lookup = (hostname) => new Promise((resolve, reject) => {
  dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
});

function parseRule(entry: string): AllowRule {
  const e = entry.trim().toLowerCase();
  const cidr = /^(.+)\/(\d{1,3})$/.exec(e);
  if (cidr) {
    const addr = cidr[1]!.replace(/^\[|\]$/g, '');
    const family = isIP(addr);
    const prefix = Number(cidr[2]);
    if (!family || prefix > (family === 4 ? 32 : 128)) throw new Error(`invalid CIDR ${JSON.stringify(entry)}`);
    const list = new BlockList();
    list.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'net', list, port: null };
  }
  // [v6]:port, v4:port, name:port, or a bare v6 / v4 / name.
  let host = e;
  let port: number | null = null;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(e);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] ? Number(bracketed[2]) : null;
  } else if (isIP(e) !== 6) {
    const m = /^(.+):(\d+)$/.exec(e);
    if (m) {
      host = m[1]!;
      port = Number(m[2]);
    }
  }
  if (!host || (port !== null && (port < 1 || port > 65535))) throw new Error(`invalid allowlist entry ${JSON.stringify(entry)}`);
  const family = isIP(host);
  if (family) {
    const list = new BlockList();
    list.addAddress(host, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'net', list, port };
  }
  return { kind: 'host', host, port };
}

/** A policy from explicit allowlist entries: `host`, `host:port`, `[v6]:port`, an IP or a CIDR. */
export function makeOutboundPolicy(allow: readonly string[] = [], lookup: Lookup = systemLookup): OutboundPolicy {
  return { allow: allow.map(parseRule), lookup };
}

/** The configured policy: QUAYSIDE_OUTBOUND_ALLOWLIST plus Quay's SSRF_ALLOWED_HOSTS (names, CIDRs). */
export function outboundPolicy(config: Pick<QuaysideConfig, 'raw'>): OutboundPolicy {
  const entries: string[] = [];
  for (const key of ['QUAYSIDE_OUTBOUND_ALLOWLIST', 'SSRF_ALLOWED_HOSTS']) {
    const v = config.raw[key];
    if (Array.isArray(v)) entries.push(...v.filter((x): x is string => typeof x === 'string'));
  }
  return makeOutboundPolicy(entries);
}

function defaultPort(u: URL): number {
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

function hostnameOf(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '').toLowerCase().replace(/\.$/, '');
}

function nameAllowed(policy: OutboundPolicy, host: string, port: number): boolean {
  return policy.allow.some((r) => r.kind === 'host' && r.host === host && (r.port === null || r.port === port));
}

function addressAllowed(policy: OutboundPolicy, address: string, port: number): boolean {
  const family = isIP(address);
  if (!family) return false;
  if (policy.allow.some((r) => r.kind === 'net' && (r.port === null || r.port === port) && r.list.check(address, family === 4 ? 'ipv4' : 'ipv6'))) return true;
  return !isBlockedAddress(address);
}

/** Checks the URL's form (scheme, credentials, host) and whether its host may be reached. */
function checkForm(policy: OutboundPolicy, raw: string | URL): URL {
  let u: URL;
  try {
    u = new URL(String(raw).trim());
  } catch {
    throw new OutboundBlockedError(String(raw), 'not a valid URL');
  }
  const shown = `${u.protocol}//${u.host}${u.pathname}`;
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OutboundBlockedError(shown, 'only http and https URLs are allowed');
  if (u.username || u.password) throw new OutboundBlockedError(shown, 'URLs with embedded credentials are not allowed');
  const host = hostnameOf(u);
  if (!host) throw new OutboundBlockedError(shown, 'the URL has no host');
  const port = defaultPort(u);
  if (isIP(host)) {
    if (!addressAllowed(policy, host, port)) throw new OutboundBlockedError(shown, `${host} is not a public address`);
  } else if (!nameAllowed(policy, host, port) && (host === 'localhost' || host.endsWith('.localhost') || METADATA_HOSTNAMES.has(host)
    || host.endsWith('.internal') || host.endsWith('.local'))) {
    throw new OutboundBlockedError(shown, `host ${host} is not allowed`);
  }
  return u;
}

/** Resolves a host name and returns the addresses to connect to, refusing if any is blocked. */
async function resolveChecked(policy: OutboundPolicy, u: URL): Promise<LookupAddress[]> {
  const host = hostnameOf(u);
  const port = defaultPort(u);
  const family = isIP(host);
  if (family) return [{ address: host, family }];
  let addresses: LookupAddress[];
  try {
    addresses = await policy.lookup(host);
  } catch {
    throw new OutboundBlockedError(`${u.protocol}//${u.host}`, `cannot resolve ${host}`);
  }
  if (addresses.length === 0) throw new OutboundBlockedError(`${u.protocol}//${u.host}`, `cannot resolve ${host}`);
  if (nameAllowed(policy, host, port)) return addresses;
  // All of them: a name answering with one public and one private address would otherwise let the
  // client pick the private one.
  const bad = addresses.find((a) => !addressAllowed(policy, a.address, port));
  if (bad) throw new OutboundBlockedError(`${u.protocol}//${u.host}`, `${host} resolves to ${bad.address}, which is not a public address`);
  return addresses;
}

/**
 * Validates a URL for later use (e.g. when a webhook or mirror is configured): its form, and the
 * addresses its host resolves to now. Requests must still go through outboundRequest, which
 * checks again at connect time.
 */
export async function checkOutboundUrl(policy: OutboundPolicy, url: string | URL): Promise<URL> {
  const u = checkForm(policy, url);
  await resolveChecked(policy, u);
  return u;
}

/** The socket-level lookup: resolution and the address check in one step, for this URL only. */
function guardedLookup(policy: OutboundPolicy, u: URL, onBlocked: (e: OutboundBlockedError) => void): LookupFunction {
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    const target = new URL(u.href);
    target.hostname = hostname.includes(':') ? `[${hostname}]` : hostname;
    resolveChecked(policy, target).then(
      (addresses) => (options?.all ? callback(null, addresses) : callback(null, addresses[0]!.address, addresses[0]!.family)),
      (err: unknown) => {
        if (err instanceof OutboundBlockedError) onBlocked(err);
        callback(err);
      },
    );
  }) as unknown as LookupFunction;
}

export interface OutboundRequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  /** Redirects to follow, each re-checked (default 5; 0 returns the 3xx response itself). */
  maxRedirects?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered (after redirects). */
  url: string;
  body: IncomingMessage;
  /** Reads the body as text, at most maxBytes (default 1 MiB). */
  text(maxBytes?: number): Promise<string>;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const SENSITIVE_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

function once(policy: OutboundPolicy, u: URL, headers: Record<string, string>, method: string, body: string | Uint8Array | undefined, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let blocked = null as OutboundBlockedError | null;
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(u, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
      lookup: guardedLookup(policy, u, (e) => { blocked = e; }),
      signal,
      // Each hop gets a fresh connection: a pooled socket could belong to an earlier, different check.
      agent: false,
    }, resolve);
    req.on('error', (e) => reject(blocked ?? e));
    req.end(body);
  });
}

async function readText(res: IncomingMessage, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      res.destroy();
      throw new Error(`response body exceeds ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An HTTP(S) request to a URL someone else chose, through the guard, following redirects safely. */
export async function outboundRequest(policy: OutboundPolicy, url: string | URL, init: OutboundRequestInit = {}): Promise<OutboundResponse> {
  const signals = [AbortSignal.timeout(init.timeoutMs ?? 30_000), ...(init.signal ? [init.signal] : [])];
  const signal = AbortSignal.any(signals);
  let u = checkForm(policy, url);
  let method = (init.method ?? 'GET').toUpperCase();
  let body = init.body;
  let headers = { ...(init.headers ?? {}) };
  let left = init.maxRedirects ?? 5;
  for (;;) {
    const res = await once(policy, u, headers, method, body, signal);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode ?? 0) || !location || left <= 0) {
      const status = res.statusCode ?? 0;
      return { status, headers: res.headers, url: u.href, body: res, text: (max = 1024 * 1024) => readText(res, max) };
    }
    res.resume();
    left--;
    let next: URL;
    try {
      next = new URL(location, u);
    } catch {
      throw new OutboundBlockedError(u.href, `invalid redirect location ${JSON.stringify(location)}`);
    }
    next = checkForm(policy, next);
    if (next.origin !== u.origin) {
      // Credentials meant for one host are not handed to whichever host it redirects to.
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !SENSITIVE_HEADERS.has(k.toLowerCase())));
    }
    u = next;
    // Like browsers and curl: 303 (and 301/302 for a POST) continue as a GET without the body.
    if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !/^content-/i.test(k)));
    }
  }
}

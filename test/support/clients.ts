// Runs the real registry clients (skopeo, podman, buildah from Debian 12) against test registries.
// Every ClientContext is a temp dir holding its own HOME, auth file, policy, registries.conf,
// containers.conf, storage.conf and image store, so tests never read or write ~/.docker,
// /etc/containers, /var/lib/containers or each other's credentials.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Tool = 'skopeo' | 'podman' | 'buildah';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  /** The command as run, for failure messages. */
  argv: string[];
}

export interface RunOptions {
  authFile?: string;
  /** Image store (podman/buildah --root) and state dir (--runroot). */
  root?: string;
  runroot?: string;
  /** Isolated HOME / XDG dirs; the ClientContext's by default. */
  home?: string;
  timeoutMs?: number;
  /** Adds the tool's debug flag (its HTTP requests then appear in stderr). */
  debug?: boolean;
  stdin?: string;
  env?: Record<string, string>;
  /**
   * Use root's system-wide blob info cache (/var/lib/containers/cache). By default each HOME gets
   * its own, because that cache decides which cross-repo mounts and blob reuses a client attempts:
   * sharing it across tests (and across registries that reused a port) makes request patterns vary.
   */
  sharedBlobCache?: boolean;
}

export interface ClientContext extends Required<Pick<RunOptions, 'authFile' | 'root' | 'runroot' | 'home'>> {
  dir: string;
  policy: string;
  registriesConf: string;
  containersConf: string;
  storageConf: string;
  tmp: string;
  cleanup(): Promise<void>;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** Creates an isolated client environment; pass it (or fields of it) as RunOptions. */
export async function createClientContext(prefix = 'clients-'): Promise<ClientContext> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const home = join(dir, 'home');
  const tmp = join(dir, 'tmp');
  const root = join(dir, 'storage');
  const runroot = join(dir, 'run');
  for (const d of [home, tmp, root, runroot, join(home, '.config', 'containers'), join(dir, 'libpod-tmp'), join(dir, 'networks')]) {
    await mkdir(d, { recursive: true });
  }
  const authFile = join(dir, 'auth.json');
  await writeFile(authFile, '{"auths":{}}\n');
  const policy = join(dir, 'policy.json');
  await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  // containers/image also looks for a per-user policy under HOME before /etc.
  await writeFile(join(home, '.config', 'containers', 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  const registriesConf = join(dir, 'registries.conf');
  // No search registries: a short name must never resolve to a public registry.
  await writeFile(registriesConf, 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n');
  const storageConf = join(dir, 'storage.conf');
  await writeFile(storageConf, `[storage]\ndriver = "vfs"\ngraphroot = "${root}"\nrunroot = "${runroot}"\n`);
  const containersConf = join(dir, 'containers.conf');
  await writeFile(
    containersConf,
    [
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = "${join(dir, 'events.log')}"`,
      `tmp_dir = "${join(dir, 'libpod-tmp')}"`,
      `volume_path = "${join(root, 'volumes')}"`,
      '[network]',
      `network_config_dir = "${join(dir, 'networks')}"`,
      '',
    ].join('\n'),
  );
  return {
    dir,
    home,
    tmp,
    root,
    runroot,
    authFile,
    policy,
    registriesConf,
    containersConf,
    storageConf,
    async cleanup() {
      // vfs layers are plain dirs owned by root; nothing is mounted unless a test runs containers.
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function isolatedEnv(o: RunOptions & Partial<ClientContext>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin:/usr/sbin:/sbin',
    LANG: 'C.UTF-8',
  };
  if (o.home) {
    Object.assign(env, {
      HOME: o.home,
      XDG_CONFIG_HOME: join(o.home, '.config'),
      XDG_DATA_HOME: join(o.home, '.local', 'share'),
      XDG_RUNTIME_DIR: join(o.home, 'run'),
      DOCKER_CONFIG: join(o.home, '.docker'),
    });
    // containers/image puts root's blob info cache in /var/lib/containers/cache but a non-root
    // user's under XDG_DATA_HOME, deciding "root" from this variable when set. Only the cache path
    // (and default config paths, all overridden here) follow it; user namespaces are not entered.
    if (!o.sharedBlobCache) env._CONTAINERS_ROOTLESS_UID = String(process.getuid?.() || 1000);
  }
  if (o.tmp) env.TMPDIR = o.tmp;
  if (o.authFile) env.REGISTRY_AUTH_FILE = o.authFile;
  if (o.registriesConf) env.CONTAINERS_REGISTRIES_CONF = o.registriesConf;
  if (o.containersConf) env.CONTAINERS_CONF = o.containersConf;
  if (o.storageConf) env.CONTAINERS_STORAGE_CONF = o.storageConf;
  return { ...env, ...o.env };
}

/** Spawns `bin args`, collecting output; kills the whole process group on timeout. */
export function run(bin: string, args: string[], o: RunOptions & Partial<ClientContext> = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: isolatedEnv(o), detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    // A tool that exits without reading stdin makes this write fail with EPIPE; that is no error.
    child.stdin.on('error', () => {});
    child.stdin.end(o.stdin ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, durationMs: Math.round(performance.now() - started), timedOut, argv: [bin, ...args] });
    });
  });
}

export function skopeo(args: string[], o: RunOptions & Partial<ClientContext> = {}): Promise<RunResult> {
  const global: string[] = [];
  if (o.debug) global.push('--debug');
  if (o.policy) global.push('--policy', o.policy);
  if (o.tmp) global.push('--tmpdir', o.tmp);
  return run('skopeo', [...global, ...args], o);
}

function storageFlags(o: RunOptions): string[] {
  const flags = ['--storage-driver', 'vfs'];
  if (o.root) flags.push('--root', o.root);
  if (o.runroot) flags.push('--runroot', o.runroot);
  return flags;
}

export function podman(args: string[], o: RunOptions & Partial<ClientContext> = {}): Promise<RunResult> {
  const global = [...storageFlags(o), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  if (o.dir) global.push('--tmpdir', join(o.dir, 'libpod-tmp'), '--network-config-dir', join(o.dir, 'networks'));
  if (o.debug) global.push('--log-level', 'debug');
  return run('podman', [...global, ...args], o);
}

export function buildah(args: string[], o: RunOptions & Partial<ClientContext> = {}): Promise<RunResult> {
  const global = storageFlags(o);
  if (o.registriesConf) global.push('--registries-conf', o.registriesConf);
  if (o.debug) global.push('--log-level', 'debug');
  return run('buildah', [...global, ...args], o);
}

const TOOLS = { skopeo, podman, buildah } as const;

// ---------------------------------------------------------------------------------------------
// Helpers. They throw ClientError on a non-zero exit unless `allowFailure` is set.

export class ClientError extends Error {
  result: RunResult;
  constructor(result: RunResult) {
    super(
      `${result.argv.join(' ')} -> ${result.timedOut ? 'timed out' : `exit ${result.code}`} after ${result.durationMs} ms\n` +
        `${result.stderr.slice(-4000)}${result.stdout ? `\nstdout: ${result.stdout.slice(-2000)}` : ''}`,
    );
    this.name = 'ClientError';
    this.result = result;
  }
}

export interface HelperOptions extends RunOptions, Partial<Omit<ClientContext, keyof RunOptions>> {
  allowFailure?: boolean;
  /** Force TLS verification on/off; default off for loopback registries only. */
  tlsVerify?: boolean;
}

function checked(r: RunResult, o: HelperOptions): RunResult {
  if (r.code !== 0 && !o.allowFailure) throw new ClientError(r);
  return r;
}

/** Host part of `docker://host/repo:tag`, `host/repo:tag` or `host`. */
export function registryHost(ref: string): string | undefined {
  const rest = ref.replace(/^docker:\/\//, '').replace(/^https?:\/\//, '');
  if (/^(oci|dir|containers-storage|docker-archive|oci-archive):/.test(ref)) return undefined;
  return rest.split('/')[0];
}

export function isLoopback(host: string | undefined): boolean {
  if (!host) return false;
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name.startsWith('127.') || name === '::1';
}

function tlsFlag(flag: string, ref: string, o: HelperOptions): string[] {
  const verify = o.tlsVerify ?? !isLoopback(registryHost(ref));
  return registryHost(ref) !== undefined || ref.startsWith('docker://') ? [`${flag}=${verify}`] : [];
}

/** `TOOL login`, password via stdin (never in argv). */
export async function login(tool: Tool, registry: string, user: string, pass: string, o: HelperOptions = {}): Promise<RunResult> {
  const args = ['login', ...tlsFlag('--tls-verify', registry, o), '--username', user, '--password-stdin'];
  if (o.authFile) args.push('--authfile', o.authFile);
  args.push(registry);
  return checked(await TOOLS[tool](args, { ...o, stdin: pass + '\n' }), o);
}

export async function logout(tool: Tool, registry: string, o: HelperOptions = {}): Promise<RunResult> {
  const args = ['logout'];
  if (o.authFile) args.push('--authfile', o.authFile);
  args.push(registry);
  return checked(await TOOLS[tool](args, o), o);
}

export interface CopyOptions extends HelperOptions {
  /** --all: copy every instance of an index/manifest list. */
  all?: boolean;
  /** --format: 'oci' | 'v2s2' (converts manifests when they differ). */
  format?: 'oci' | 'v2s1' | 'v2s2';
  preserveDigests?: boolean;
  /** e.g. ['--src-creds', 'u:p'] or ['--dest-compress-format', 'zstd']. */
  extraArgs?: string[];
}

/** `skopeo copy SRC DEST`; references are skopeo transports (docker://, oci:, dir:, ...). */
export async function copy(src: string, dest: string, o: CopyOptions = {}): Promise<RunResult> {
  const args = ['copy', '--retry-times', '0'];
  if (o.all) args.push('--all');
  if (o.format) args.push('--format', o.format);
  if (o.preserveDigests) args.push('--preserve-digests');
  if (o.authFile) args.push('--src-authfile', o.authFile, '--dest-authfile', o.authFile);
  args.push(...tlsFlag('--src-tls-verify', src, o), ...tlsFlag('--dest-tls-verify', dest, o));
  args.push(...(o.extraArgs ?? []), src, dest);
  return checked(await skopeo(args, o), o);
}

export interface InspectOptions extends HelperOptions {
  /** --raw: the manifest bytes exactly as served. */
  raw?: boolean;
  /** --config: the image config blob. */
  config?: boolean;
}

/** `skopeo inspect`; returns parsed JSON (and the exact stdout for --raw byte comparisons). */
export async function inspect<T = Record<string, unknown>>(ref: string, o: InspectOptions = {}): Promise<{ json: T; result: RunResult }> {
  const args = ['inspect', '--retry-times', '0'];
  if (o.raw) args.push('--raw');
  if (o.config) args.push('--config');
  if (o.authFile) args.push('--authfile', o.authFile);
  args.push(...tlsFlag('--tls-verify', ref, o), ref);
  const result = checked(await skopeo(args, o), o);
  return { json: (result.code === 0 ? JSON.parse(result.stdout) : undefined) as T, result };
}

/** `skopeo list-tags docker://host/repo` -> tag names. */
export async function listTags(repoRef: string, o: HelperOptions = {}): Promise<{ tags: string[]; result: RunResult }> {
  const ref = repoRef.startsWith('docker://') ? repoRef : `docker://${repoRef}`;
  const args = ['list-tags', '--retry-times', '0'];
  if (o.authFile) args.push('--authfile', o.authFile);
  args.push(...tlsFlag('--tls-verify', ref, o), ref);
  const result = checked(await skopeo(args, o), o);
  const tags = result.code === 0 ? ((JSON.parse(result.stdout) as { Tags: string[] | null }).Tags ?? []) : [];
  return { tags, result };
}

/** `skopeo delete docker://...`: deletes the manifest the tag/digest points at (all its tags). */
export async function deleteImage(ref: string, o: HelperOptions = {}): Promise<RunResult> {
  const full = ref.startsWith('docker://') ? ref : `docker://${ref}`;
  const args = ['delete', '--retry-times', '0'];
  if (o.authFile) args.push('--authfile', o.authFile);
  args.push(...tlsFlag('--tls-verify', full, o), full);
  return checked(await skopeo(args, o), o);
}

/** `podman|buildah pull` of `host/repo:tag` (no transport prefix needed). */
export async function pull(tool: 'podman' | 'buildah', ref: string, o: HelperOptions = {}): Promise<RunResult> {
  const args = ['pull', ...tlsFlag('--tls-verify', ref, o)];
  if (o.authFile) args.push('--authfile', o.authFile);
  if (tool === 'podman') args.push('--quiet');
  args.push(ref);
  return checked(await TOOLS[tool](args, o), o);
}

/** `podman|buildah push LOCAL [DEST]`; DEST defaults to LOCAL's name. */
export async function push(tool: 'podman' | 'buildah', local: string, dest?: string, o: HelperOptions & { format?: 'oci' | 'v2s2' } = {}): Promise<RunResult> {
  const target = dest ?? local;
  const args = ['push', ...tlsFlag('--tls-verify', target, o)];
  if (o.authFile) args.push('--authfile', o.authFile);
  if (o.format) args.push('--format', o.format);
  args.push(local);
  if (dest) args.push(dest.startsWith('docker://') ? dest : `docker://${dest}`);
  return checked(await TOOLS[tool](args, o), o);
}

// Quay's health endpoints. Body: {"data": {"services": {name: bool}}, "status_code": 200|503},
// HTTP status = status_code. Superusers also get the expanded per-check detail, as in Quay.
//
// /health/instance answers "should this replica receive traffic": database, signing key,
// service key, disk. /health/endtoend also proves storage round-trips (Quay's instance check
// skips storage too, so a storage outage does not take every replica out of rotation).
import { statfs } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import type { HttpContext } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import { resolvePrincipal } from '../api/auth.ts';

interface CheckResult { ok: boolean; message?: string }
type Check = () => Promise<CheckResult>;

const CHECK_TIMEOUT_MS = 5000;

async function withTimeout(name: string, check: Check): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, message: `${name} check timed out after ${CHECK_TIMEOUT_MS} ms` }), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check().catch((e: Error) => ({ ok: false, message: `${name} check failed: ${e.message}` })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function threshold(ctx: HttpContext, key: string, dflt: number): number {
  const v = ctx.services.config.raw[key];
  return typeof v === 'number' && v >= 0 && v <= 1 ? v : dflt;
}

/** Free share of each volume we write to, computed like psutil's disk_usage().percent. */
async function diskCheck(ctx: HttpContext, min: number): Promise<CheckResult> {
  const cfg = ctx.services.config;
  const dirs = new Set([cfg.dataDir, tmpdir()]);
  if (cfg.storage.kind === 'local') dirs.add(cfg.storage.path);
  for (const dir of dirs) {
    let st;
    try {
      st = await statfs(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && dir !== cfg.dataDir) continue; // storage dir not created yet
      throw e;
    }
    const total = st.blocks - st.bfree + st.bavail;
    const free = total > 0 ? st.bavail / total : 1;
    if (free < min) return { ok: false, message: `Disk space has gone below threshold on ${dir}: ${(free * 100).toFixed(1)}% free` };
  }
  return { ok: true };
}

export function healthChecks(ctx: HttpContext): Record<string, Check> {
  const s = ctx.services;
  const probe = `health/${hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'host'}-${randomUUID()}`;
  return {
    database: async () => {
      await sql`select 1`.execute(s.db);
      return { ok: true };
    },
    storage: async () => {
      if (s.config.registryState === 'readonly') return { ok: true, message: 'Storage check disabled for readonly mode' };
      const nonce = randomBytes(16).toString('hex');
      await s.storage.write(probe, Buffer.from(nonce));
      const chunks: Buffer[] = [];
      for await (const c of await s.storage.read(probe)) chunks.push(Buffer.from(c as Uint8Array));
      await s.storage.delete(probe);
      const back = Buffer.concat(chunks).toString();
      return back === nonce ? { ok: true } : { ok: false, message: 'Storage returned different bytes than were written' };
    },
    auth: async () => {
      // The instance signing key must be loaded, or no registry token can be issued.
      return ctx.keys.kid ? { ok: true } : { ok: false, message: 'Instance signing key is not loaded' };
    },
    service_key: async () => {
      let kid: string;
      try {
        kid = ctx.keys.kid;
      } catch {
        return { ok: false, message: 'Instance signing key is not loaded' };
      }
      try {
        const row = await s.db.selectFrom('service_keys').select(['expires_at', 'approval']).where('kid', '=', kid).executeTakeFirst();
        const valid = !!row && row.approval !== null && (row.expires_at === null || row.expires_at > s.now());
        return valid ? { ok: true } : { ok: false, message: `Could not find valid instance service key ${kid}` };
      } catch {
        // A database outage is the database check's failure, not this one's (as in Quay).
        return { ok: true, message: 'Failed to get instance key due to a database issue; skipping check' };
      }
    },
    disk_space: () => diskCheck(ctx, threshold(ctx, 'DISKSPACE_HEALTH_THRESHOLD', 0.01)),
    disk_space_warning: () => diskCheck(ctx, threshold(ctx, 'DISKSPACE_HEALTH_WARNING_THRESHOLD', 0.1)),
  };
}

const SETS = {
  instance: ['service_key', 'disk_space', 'database', 'auth'],
  endtoend: ['database', 'storage', 'auth'],
  warning: ['disk_space_warning'],
} as const;

export function registerHealth(app: AppInstance, ctx: HttpContext): void {
  const checks = healthChecks(ctx);

  async function answer(set: keyof typeof SETS, req: FastifyRequest, reply: FastifyReply) {
    const names = SETS[set];
    const results = await Promise.all(names.map((n) => withTimeout(n, checks[n]!)));
    const services: Record<string, boolean> = {};
    const expanded: Record<string, Record<string, unknown>> = {};
    names.forEach((n, i) => {
      const r = results[i]!;
      services[n] = r.ok;
      expanded[n] = { status: r.ok, ...(r.message ? { [r.ok ? 'message' : 'failure']: r.message } : {}) };
    });
    const healthy = results.every((r) => r.ok);
    const data: Record<string, unknown> = { services };
    if (!healthy) req.log.warn({ services: expanded }, '[FAILED HEALTH CHECK]');
    const principal = await resolvePrincipal(ctx, req).catch(() => null);
    if (principal?.kind === 'user' && principal.superuser) {
      let kid: string | null = null;
      try { kid = ctx.keys.kid; } catch { /* reported by the auth check */ }
      Object.assign(data, {
        services_expanded: expanded, notes: [], is_testing: false, config_provider: 'file',
        local_service_key_id: kid, hostname: hostname(),
      });
    }
    const status = healthy ? 200 : 503;
    return reply.code(status).header('Cache-Control', 'no-cache, no-store, must-revalidate').send({ data, status_code: status });
  }

  for (const [path, set] of [
    ['/health/instance', 'instance'], ['/health', 'instance'],
    ['/health/endtoend', 'endtoend'], ['/status', 'endtoend'],
    ['/health/warning', 'warning'],
  ] as const) {
    app.get(path, async (req, reply) => answer(set, req, reply));
  }
}

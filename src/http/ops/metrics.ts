// Prometheus metrics. One registry per app instance: tests run several apps in one process and
// each must report only its own traffic.
//
// Route labels must stay bounded: they are the route pattern (request.routeOptions.url), never
// the raw URL. /v2 routes are wildcards, so the registry sets `req.metricsRoute` to its operation
// name (e.g. 'manifest_get'); a route may instead declare `config: { metricsName }`.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpContext } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import { queueDepths } from '../../model/queue-stats.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Bounded route label for metrics, set by handlers of wildcard routes (e.g. /v2). */
    metricsRoute: string | null;
  }
  interface FastifyContextConfig {
    metricsName?: string;
  }
}

interface Tracking {
  start: bigint;
  bytesIn: number;
  bytesOut: number;
}

const tracking = new WeakMap<FastifyRequest, Tracking>();

function routeLabel(req: FastifyRequest): string {
  if (req.metricsRoute) return req.metricsRoute;
  const cfg = req.routeOptions?.config as { metricsName?: string } | undefined;
  if (cfg?.metricsName) return cfg.metricsName;
  return req.routeOptions?.url ?? '(unmatched)';
}

function chunkLength(chunk: unknown, encoding?: unknown): number {
  if (chunk === null || chunk === undefined || typeof chunk === 'function') return 0;
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/** Counts body bytes as Node's HTTP parser delivers them (also for streamed and unread bodies)
 * and bytes handed to the socket for the response, without changing how either stream flows. */
function instrument(req: FastifyRequest, reply: FastifyReply, t: Tracking): void {
  const raw = req.raw as typeof req.raw & { push: (chunk: unknown, encoding?: BufferEncoding) => boolean };
  const push = raw.push;
  raw.push = function countingPush(chunk: unknown, encoding?: BufferEncoding) {
    t.bytesIn += chunkLength(chunk);
    return push.call(this, chunk, encoding);
  };
  const res = reply.raw;
  const write = res.write;
  const end = res.end;
  res.write = function countingWrite(this: typeof res, chunk: unknown, ...rest: unknown[]) {
    t.bytesOut += chunkLength(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function countingEnd(this: typeof res, chunk?: unknown, ...rest: unknown[]) {
    t.bytesOut += chunkLength(chunk, rest[0]);
    return (end as (...a: unknown[]) => typeof res).call(this, chunk, ...rest);
  } as typeof res.end;
}

export interface Metrics {
  registry: Registry;
}

export function registerMetrics(app: AppInstance, ctx: HttpContext): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'quayside_' });
  const labelNames = ['route', 'method', 'status'] as const;
  const requests = new Counter({ name: 'quayside_http_requests_total', help: 'HTTP requests by route pattern, method and status class', labelNames, registers: [registry] });
  const duration = new Histogram({
    name: 'quayside_http_request_duration_seconds', help: 'HTTP request latency by route pattern, method and status class', labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const bytesIn = new Counter({ name: 'quayside_http_request_bytes_total', help: 'Request body bytes received', labelNames: ['route', 'method'], registers: [registry] });
  const bytesOut = new Counter({ name: 'quayside_http_response_bytes_total', help: 'Response body bytes sent', labelNames: ['route', 'method'], registers: [registry] });
  const s = ctx.services;
  const depthOpts = (name: string, help: string, pick: (d: { total: number; available: number; running: number }) => number) => new Gauge({
    name, help, labelNames: ['queue'], registers: [registry],
    async collect() {
      this.reset();
      let depths;
      try {
        depths = await queueDepths(s);
      } catch (e) {
        // /metrics must keep answering during a database outage; the gauge is just absent.
        s.log.warn({ err: e }, 'queue depth unavailable for /metrics');
        return;
      }
      for (const d of depths) this.set({ queue: d.queue }, pick(d));
    },
  });
  depthOpts('quayside_queue_depth', 'Jobs in each queue (pending, leased or waiting for retry)', (d) => d.total);
  depthOpts('quayside_queue_items_available', 'Jobs ready to run now', (d) => d.available);
  depthOpts('quayside_queue_items_running', 'Jobs leased by a live worker', (d) => d.running);

  if (!app.hasRequestDecorator('metricsRoute')) app.decorateRequest('metricsRoute', null, []);

  app.addHook('onRequest', async (req, reply) => {
    const t: Tracking = { start: process.hrtime.bigint(), bytesIn: 0, bytesOut: 0 };
    tracking.set(req, t);
    instrument(req, reply, t);
  });

  app.addHook('onResponse', async (req, reply) => {
    const t = tracking.get(req);
    if (!t) return;
    const route = routeLabel(req);
    const method = req.method;
    const status = `${Math.floor(reply.statusCode / 100)}xx`;
    const seconds = Number(process.hrtime.bigint() - t.start) / 1e9;
    requests.inc({ route, method, status });
    duration.observe({ route, method, status }, seconds);
    // A body the handler never read may still be in flight: fall back to what the client declared.
    const declared = Number(req.headers['content-length'] ?? 0);
    const received = t.bytesIn > 0 ? t.bytesIn : Number.isFinite(declared) ? declared : 0;
    if (received > 0) bytesIn.inc({ route, method }, received);
    if (t.bytesOut > 0) bytesOut.inc({ route, method }, t.bytesOut);
  });

  app.get('/metrics', { config: { metricsName: '/metrics' } }, async (_req, reply) => {
    const body = await registry.metrics();
    return reply.type(registry.contentType).send(body);
  });

  return { registry };
}

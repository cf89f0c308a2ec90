// Assembles Quayside: configuration → database → storage → model services → HTTP faces → workers.
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import pino, { type Logger } from 'pino';
import type { QuaysideConfig } from '../config/config.ts';
import { openDatabase, migrate, type Db } from '../db/db.ts';
import { createStorage } from '../storage/index.ts';
import { SecretBox } from '../model/crypto.ts';
import type { Services } from '../model/context.ts';
import { RegistryKeys } from '../model/registry-tokens.ts';
import type { HttpContext } from '../http/context.ts';
import { registerRegistry } from '../http/registry/index.ts';
import { registerApi } from '../http/api/index.ts';
import { registerOps } from '../http/ops/index.ts';
import { registerWebOAuth } from '../http/web/oauth.ts';
import { registerWebRecovery } from '../http/web/recovery.ts';
import { registerWebAuthorizedEmail } from '../http/web/authorized-email.ts';
import { registerWebExternalLogin } from '../http/web/external-login.ts';
import { setupBootstrapToken } from '../model/bootstrap-token.ts';
import { startWorkers, type Workers } from '../workers/index.ts';
import { flushPullLogs } from '../model/pull-log.ts';
import { OciError, sendOciError } from '../http/registry/errors.ts';

export interface App {
  fastify: FastifyInstance;
  services: Services;
  ctx: HttpContext;
  /** Starts listening; resolves to the bound address. */
  listen(): Promise<string>;
  /** Graceful: stops accepting, lets in-flight requests finish, stops workers, closes the database. */
  close(): Promise<void>;
}

export interface BuildOptions {
  logger?: Logger;
  /** Start queue workers in this process (default: config.workersEnabled). */
  workers?: boolean;
}

export async function openServices(config: QuaysideConfig, log: Logger): Promise<{ services: Services; handle: Db }> {
  const handle = openDatabase(config.dbUri);
  try {
    const applied = await migrate(handle);
    if (applied.length) log.info({ applied }, 'database migrations applied');
  } catch (e) {
    await handle.close();
    throw new Error(`cannot open database ${redactUri(config.dbUri)}: ${(e as Error).message}`);
  }
  const storage = await createStorage(config.storage);
  const services: Services = {
    db: handle.db, dialect: handle.dialect, storage, config, log, box: new SecretBox(config.databaseSecretKey), now: () => Date.now(),
  };
  return { services, handle };
}

/** Fastify logs two lines per request (stdout is written synchronously: a write each); one
 * access line with the request in it is enough. Error logs stay as Fastify writes them. */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

export function redactUri(uri: string): string {
  return uri.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

export async function buildApp(config: QuaysideConfig, opts: BuildOptions = {}): Promise<App> {
  const log = opts.logger ?? pino({ level: config.logLevel });
  const { services, handle } = await openServices(config, log);
  const keys = new RegistryKeys(services);
  await keys.init();
  // Quay's boot step: provision (or revoke) the programmatic-bootstrap token before serving.
  await setupBootstrapToken(services);
  const ctx: HttpContext = { services, keys };

  const fastify: FastifyInstance = Fastify({
    loggerInstance: log,
    genReqId: (req) => (typeof req.headers['x-request-id'] === 'string' && req.headers['x-request-id'].length <= 128 ? req.headers['x-request-id'] : randomUUID()),
    requestIdHeader: false,
    bodyLimit: 1024 * 1024,
    trustProxy: true,
    return503OnClosing: true,
    logController: new AccessLog(),
    // Errors Fastify raises before routing (a path that is not valid percent-encoding): /v2 answers
    // in the OCI envelope like every other /v2 error.
    frameworkErrors: (error, req, rawReply) => {
      const reply = rawReply as unknown as FastifyReply;
      if (req.url.startsWith('/v2/')) {
        void sendOciError(reply, new OciError('NAME_INVALID', 'invalid repository name or path encoding'));
        return;
      }
      void reply.code(400).send({ error: 'Bad Request', message: error.message });
    },
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, maxParamLength: 2048 },
  }) as unknown as FastifyInstance;
  // Once closing, answers in flight end their connection: a kept-alive socket would otherwise hold
  // fastify.close() open until the client drops it (up to the keep-alive timeout).
  let closing = false;
  fastify.addHook('onSend', async (req, reply) => {
    reply.header('X-Request-Id', req.id);
    if (closing) reply.header('Connection', 'close');
  });

  await registerOps(fastify, ctx);
  await registerRegistry(fastify, ctx);
  await registerApi(fastify, ctx);
  await registerWebOAuth(fastify, ctx);
  await registerWebRecovery(fastify, ctx);
  await registerWebAuthorizedEmail(fastify, ctx);
  await registerWebExternalLogin(fastify, ctx);

  let workers: Workers | null = null;
  const runWorkers = opts.workers ?? config.workersEnabled;
  return {
    fastify, services, ctx,
    async listen() {
      const addr = await fastify.listen({ port: config.port, host: config.host });
      if (runWorkers) workers = startWorkers(services);
      return addr;
    },
    async close() {
      closing = true;
      await fastify.close();
      if (workers) await workers.stop();
      await flushPullLogs(services);
      await services.storage.close?.();
      await handle.close();
    },
  };
}

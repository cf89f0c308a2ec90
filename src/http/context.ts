// What every HTTP face receives from src/server: the model services plus request helpers.
import type { FastifyRequest } from 'fastify';
import type { Services } from '../model/context.ts';
import type { RegistryKeys } from '../model/registry-tokens.ts';

export interface HttpContext {
  services: Services;
  keys: RegistryKeys;
}

/** SERVER_HOSTNAME when configured, else the Host the client used (zero-config embedded mode). */
export function serverHost(ctx: HttpContext, req: FastifyRequest): string {
  return ctx.services.config.serverHostname ?? req.headers.host ?? `localhost:${ctx.services.config.port}`;
}

export function baseUrl(ctx: HttpContext, req: FastifyRequest): string {
  return `${ctx.services.config.preferredUrlScheme}://${serverHost(ctx, req)}`;
}

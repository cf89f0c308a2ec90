// Declarative /api/v1 routes: one TypeBox schema validates the input, serializes the output and
// describes the operation in /api/v1/discovery. Paths are written as Quay writes them
// ('/user/robots/{robot_shortname}', relative to /api/v1), nicknames are Quay's operationIds.
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods, RawServerDefault } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Type, type Static, type TSchema, type TUnsafe } from 'typebox';
import type { HttpContext } from '../context.ts';
import { PlainError, READONLY_MESSAGE } from './abort.ts';
import { hasScope, requireScope } from './auth.ts';
import { joinRepositoryParam, repositoryVariants } from './repo-path.ts';

/** The Fastify instance type as seen by the HTTP faces. */
// The logger parameter is left open: the root instance carries pino's Logger, encapsulated
// plugin instances the base logger type, and the two are not mutually assignable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AppInstance = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, any>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Quay's nickname of the operation served by the route (null: kept out of discovery). */
    nickname?: string | null;
  }
}

type StaticOr<T, D> = T extends TSchema ? Static<T> : D;

export type ApiRequest<B, Q, P> = FastifyRequest<{
  Body: StaticOr<B, unknown>;
  Querystring: StaticOr<Q, Record<string, string | undefined>>;
  Params: StaticOr<P, Record<string, string>>;
}>;

export interface ApiEnv {
  ctx: HttpContext;
  /** Every route registered in this app (after feature-flag filtering), for discovery. */
  routes: readonly AnyRoute[];
}

export interface RouteSpec<B extends TSchema | undefined, Q extends TSchema | undefined, P extends TSchema | undefined, R extends TSchema | undefined> {
  method: Exclude<HTTPMethods, 'HEAD' | 'OPTIONS'>;
  /** Quay's path below /api/v1, with {param} placeholders. */
  path: string;
  /** Quay's nickname (swagger operationId); null for routes Quay keeps out of discovery. */
  nickname: string | null;
  description?: string;
  /** Swagger tag (Quay's module name); defaults to the first path segment. */
  tag?: string;
  /** OAuth scopes Quay tags the operation with; an OAuth token must hold all of them. */
  scopes?: readonly string[];
  /** FEATURE_ flags (without the prefix) that must all be on for the route to exist at all. */
  features?: readonly string[];
  /** Quay's @show_if on a plain config key: the route exists only when this holds. */
  showIf?: (config: HttpContext['services']['config']) => boolean;
  /** Quay's @internal_only: listed in discovery only with ?internal=true. */
  internal?: boolean;
  /** Quay's @anon_allowed: callable anonymously even when FEATURE_ANONYMOUS_ACCESS is off. */
  anonAllowed?: boolean;
  /** Quay's @readonly_call_allowed: works while REGISTRY_STATE is readonly. */
  readonlyAllowed?: boolean;
  /** Descriptions of path parameters, for discovery. */
  paramDocs?: Record<string, string>;
  body?: B;
  /** Definition name of the request schema in discovery (Quay's schema name, e.g. NewUser). */
  bodyName?: string;
  querystring?: Q;
  params?: P;
  /** Response body schema of the success status (also used to serialize it). */
  response?: R;
  responseName?: string;
  /** Success status (default 200). */
  status?: number;
  /** Returns the success body (serialized with `response`), or the reply when it sent one itself. */
  handler(req: ApiRequest<B, Q, P>, reply: FastifyReply, env: ApiEnv): Promise<unknown>;
}

// The registry stores routes with their generics erased; defineRoute keeps handlers typed.
export type AnyRoute = RouteSpec<any, any, any, any>;

export function defineRoute<
  B extends TSchema | undefined = undefined,
  Q extends TSchema | undefined = undefined,
  P extends TSchema | undefined = undefined,
  R extends TSchema | undefined = undefined,
>(spec: RouteSpec<B, Q, P, R>): AnyRoute {
  return spec as AnyRoute;
}

/** A nullable field the way Quay's schemas write it: {"type": ["string", "null"]}. */
export function Nullable<T extends TSchema>(schema: T): TUnsafe<Static<T> | null> {
  const s = schema as unknown as { type?: string };
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [s.type ?? 'string', 'null'] } as unknown as TSchema);
}

/** Quay's truthy_bool query parameter: anything but false/False/FALSE/0/''/null is true. */
export function TruthyBool(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({ type: 'string', description, 'x-swagger-type': 'boolean' } as unknown as TSchema);
}

export function truthy(v: string | undefined, dflt = false): boolean {
  if (v === undefined) return dflt;
  return !['false', 'False', 'FALSE', '0', '', 'null'].includes(v);
}

export function toFastifyPath(path: string): string {
  return path.replace(/\{(\w+)\}/g, ':$1');
}

export function featuresOn(ctx: HttpContext, flags: readonly string[] | undefined): boolean {
  return (flags ?? []).every((f) => ctx.services.config.features[f] === true);
}

/** Registers routes inside the API plugin (whose prefix is /api/v1) and remembers them for discovery. */
export class ApiRouter {
  readonly routes: AnyRoute[] = [];
  private readonly app: AppInstance;
  private readonly env: ApiEnv;

  constructor(app: AppInstance, ctx: HttpContext) {
    this.app = app;
    this.env = { ctx, routes: this.routes };
  }

  mount(specs: readonly AnyRoute[]): void {
    for (const spec of specs) this.add(spec);
  }

  add(spec: AnyRoute): void {
    const { ctx } = this.env;
    // Quay's @show_if: a route whose feature is off does not exist (404), and is not discovered.
    if (!featuresOn(ctx, spec.features) || (spec.showIf && !spec.showIf(ctx.services.config))) return;
    this.routes.push(spec);
    const status = spec.status ?? 200;
    const env = this.env;
    for (const variant of repositoryVariants(spec.path)) this.app.route({
      method: spec.method,
      url: toFastifyPath(variant.path),
      ...(variant.segments ? { preValidation: async (req: FastifyRequest) => joinRepositoryParam(req, variant.segments) } : {}),
      schema: {
        ...(spec.body ? { body: spec.body } : {}),
        ...(spec.querystring ? { querystring: spec.querystring } : {}),
        ...(spec.params ? { params: spec.params } : {}),
        ...(spec.response ? { response: { [status]: spec.response } } : {}),
      },
      config: { nickname: spec.nickname },
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        guard(ctx, spec, req);
        const result = await spec.handler(req as ApiRequest<unknown, unknown, unknown>, reply, env);
        if (reply.sent || result === reply) return reply;
        reply.code(status);
        if (status === 204 || result === undefined) return reply.send();
        return result;
      },
    });
  }
}

/** The checks Quay's ApiResource applies to every method, in Quay's order. */
function guard(ctx: HttpContext, spec: AnyRoute, req: FastifyRequest): void {
  const s = ctx.services;
  const p = req.principal;
  if (!s.config.features.ANONYMOUS_ACCESS && !spec.anonAllowed && p.kind === 'anonymous') {
    throw new PlainError(401, 'Anonymous access is not allowed');
  }
  if (s.config.registryState === 'readonly' && spec.method !== 'GET' && !spec.readonlyAllowed) {
    throw new PlainError(503, READONLY_MESSAGE, { is_readonly: true });
  }
  for (const scope of spec.scopes ?? []) {
    if (p.kind !== 'anonymous' && !hasScope(p, scope)) requireScope(req, scope);
  }
}

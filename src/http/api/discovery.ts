// GET /api/v1/discovery (a Swagger 2.0 document built from the registered routes, shaped like
// Quay's) and GET /api/v1/error/{error_type}.
import type { FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { baseUrl, serverHost, type HttpContext } from '../context.ts';
import { API_ERROR_TYPES, ApiError } from './errors.ts';
import { defineRoute, TruthyBool, truthy, type AnyRoute } from './route.ts';

// Quay's module docstrings, used as swagger tag descriptions.
const TAG_DESCRIPTIONS: Record<string, string> = {
  discovery: 'API discovery information.',
  error: 'Error details API',
  user: 'Manage the current user.',
  organization: 'Manage organizations, members and OAuth applications.',
  repository: 'List, create and manage repositories.',
  robot: 'Manage user and organization robot accounts.',
  team: 'Create, list and manage an organization\'s teams.',
  tag: 'Manage the tags of a repository.',
  superuser: 'Superuser API.',
};

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  'repo:read': 'This application will be able to view and pull all repositories visible to the granting user or robot account',
  'repo:write': 'This application will be able to view, push and pull to all repositories to which the granting user or robot account has write access',
  'repo:admin': 'This application will have administrator access to all repositories to which the granting user or robot account has access',
  'repo:create': 'This application will be able to create repositories in to any namespaces that the granting user or robot account is allowed to create repositories',
  'user:read': 'This application will be able to read user information such as username and email address.',
  'org:admin': 'This application will be able to administer your organizations including creating robots, creating teams, adjusting team membership, and changing billing settings. You should have absolute trust in the requesting application before granting this permission.',
  'super:user': 'This application will be able to administer your installation including managing users, managing organizations and other features found in the superuser panel. You should have absolute trust in the requesting application before granting this permission.',
  'user:admin': 'This application will be able to administer your account including creating robots and granting them permissions to your repositories. You should have absolute trust in the requesting application before granting this permission.',
};

// Quay's ERROR_DESCRIPTION (endpoints/exception.py); types Quay lacks fall back to errors.ts.
const ERROR_DESCRIPTIONS: Record<string, string> = {
  external_service_timeout: 'An external service timed out. Retrying the request may resolve the issue.',
  invalid_request: 'The request was invalid. It may have contained invalid values or was improperly formatted.',
  invalid_response: 'The response was invalid.',
  invalid_token: 'The access token provided was invalid.',
  expired_token: 'The access token provided has expired.',
  insufficient_scope: 'The access token did not have sufficient scope to access the requested resource.',
  fresh_login_required: 'The action requires a fresh login to succeed.',
  exceeds_license: 'The action was refused because the current license does not allow it.',
  not_found: 'The resource was not found.',
  downstream_issue: 'An error occurred in a downstream service.',
};

export function errorDescription(type: string): string | undefined {
  if (Object.hasOwn(ERROR_DESCRIPTIONS, type)) return ERROR_DESCRIPTIONS[type];
  if (Object.hasOwn(API_ERROR_TYPES, type)) return API_ERROR_TYPES[type as keyof typeof API_ERROR_TYPES].description;
  return undefined;
}

const API_ERROR_DEFINITION = {
  type: 'object',
  properties: {
    status: { type: 'integer', description: 'Status code of the response.' },
    type: { type: 'string', description: 'Reference to the type of the error.' },
    detail: { type: 'string', description: 'Details about the specific instance of the error.' },
    title: { type: 'string', description: 'Unique error code to identify the type of error.' },
    error_message: { type: 'string', description: 'Deprecated; alias for detail' },
    error_type: { type: 'string', description: 'Deprecated; alias for detail' },
  },
  required: ['status', 'type', 'title'],
};

type Json = Record<string, unknown>;

function schemaProps(schema: TSchema | undefined): [string, Json, boolean][] {
  const s = schema as unknown as { properties?: Record<string, Json>; required?: string[] } | undefined;
  if (!s?.properties) return [];
  return Object.entries(s.properties).map(([name, prop]) => [name, prop, s.required?.includes(name) ?? false]);
}

function paramType(prop: Json): string {
  if (typeof prop['x-swagger-type'] === 'string') return prop['x-swagger-type'];
  const t = Array.isArray(prop.type) ? prop.type.find((x) => x !== 'null') : prop.type;
  return typeof t === 'string' ? t : 'string';
}

/** Strips TypeBox/Ajv-only keys so definitions are plain JSON Schema. */
function plain(schema: TSchema): Json {
  return JSON.parse(JSON.stringify(schema)) as Json;
}

export function swaggerDocument(ctx: HttpContext, req: FastifyRequest, routes: readonly AnyRoute[], includeInternal: boolean): Json {
  const cfg = ctx.services.config;
  const host = serverHost(ctx, req);
  const paths: Record<string, Json> = {};
  const definitions: Record<string, Json> = {};
  const tagNames = new Set<string>();

  for (const r of routes) {
    if (r.nickname === null) continue;
    const swaggerPath = `/api/v1${r.path}`;
    const tag = r.tag ?? r.path.split('/').filter(Boolean)[0] ?? 'api';
    const pathParams = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const paramDoc = (name: string) => r.paramDocs?.[name] ?? '';
    let entry = paths[swaggerPath];
    if (!entry) {
      entry = { 'x-name': `endpoints.api.${tag}`, 'x-path': swaggerPath, 'x-tag': tag };
      if (pathParams.length) entry.parameters = pathParams.map((n) => ({ name: n, in: 'path', required: true, description: paramDoc(n), type: 'string' }));
      paths[swaggerPath] = entry;
    }
    tagNames.add(tag);
    if (r.internal && !includeInternal) continue;

    const parameters: Json[] = pathParams.map((n) => ({ name: n, in: 'path', required: true, description: paramDoc(n), type: 'string' }));
    for (const [name, prop, required] of schemaProps(r.querystring)) {
      const p: Json = { name, in: 'query', required, description: typeof prop.description === 'string' ? prop.description : '', type: paramType(prop) };
      if (Array.isArray(prop.enum)) p.enum = prop.enum;
      parameters.push(p);
    }
    if (r.body && r.bodyName) {
      definitions[r.bodyName] = plain(r.body);
      parameters.push({ name: 'body', in: 'body', required: true, description: 'Request body contents.', schema: { $ref: `#/definitions/${r.bodyName}` } });
    }
    const responses: Record<string, Json> = {
      400: { description: 'Bad Request', schema: { $ref: '#/definitions/ApiError' } },
      401: { description: 'Session required', schema: { $ref: '#/definitions/ApiError' } },
      403: { description: 'Unauthorized access', schema: { $ref: '#/definitions/ApiError' } },
      404: { description: 'Not found', schema: { $ref: '#/definitions/ApiError' } },
    };
    if (r.method === 'DELETE') responses[204] = { description: 'Deleted' };
    else if (r.method === 'POST') responses[201] = { description: 'Successful creation' };
    else {
      responses[200] = { description: 'Successful invocation' };
      if (r.response && r.responseName) {
        definitions[r.responseName] = plain(r.response);
        responses[200].schema = { $ref: `#/definitions/${r.responseName}` };
      }
    }
    definitions.ApiError = API_ERROR_DEFINITION;
    const op: Json = { operationId: r.nickname, parameters, description: r.description ?? '', tags: [tag], responses };
    if (r.internal) op['x-internal'] = true;
    if (r.scopes?.length) op.security = [{ oauth2_implicit: [...r.scopes] }];
    entry[r.method.toLowerCase()] = op;
  }

  const scopes = Object.fromEntries(Object.entries(SCOPE_DESCRIPTIONS).filter(([k]) => k !== 'super:user' || cfg.features.SUPER_USERS));
  const sortedPaths = Object.fromEntries(Object.entries(paths).sort((a, b) => String(a[1]['x-tag']).localeCompare(String(b[1]['x-tag']))));
  return {
    swagger: '2.0',
    host,
    basePath: '/',
    schemes: [cfg.preferredUrlScheme],
    info: {
      version: 'v1',
      title: 'Quay Frontend',
      description: 'This API allows you to perform many of the operations required to work with Quay repositories, users, and organizations.',
      termsOfService: 'https://quay.io/tos',
      contact: { email: 'support@quay.io' },
    },
    securityDefinitions: {
      oauth2_implicit: { type: 'oauth2', flow: 'implicit', authorizationUrl: `${cfg.preferredUrlScheme}://${host}/oauth/authorize`, scopes },
    },
    paths: sortedPaths,
    definitions,
    tags: [...tagNames].sort().map((name) => ({ name, description: TAG_DESCRIPTIONS[name] ?? '' })),
  };
}

const ErrorView = Type.Object({
  type: Type.String({ description: 'A reference to the error type resource' }),
  title: Type.String({ description: 'The title of the error. Can be used to uniquely identify the kind of error.' }),
  description: Type.String({ description: 'A more detailed description of the error that may include help for fixing the issue.' }),
});

export const discoveryRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/discovery', nickname: 'discovery', anonAllowed: true,
    description: 'List all of the API endpoints available in the swagger API format.',
    querystring: Type.Object({ internal: Type.Optional(TruthyBool('Whether to include internal APIs.')) }),
    async handler(req, _reply, env) {
      return swaggerDocument(env.ctx, req, env.routes, truthy(req.query.internal));
    },
  }),
  defineRoute({
    method: 'GET', path: '/error/{error_type}', nickname: 'getErrorDescription',
    description: 'Get a detailed description of the error.',
    paramDocs: { error_type: 'The error code identifying the type of error.' },
    params: Type.Object({ error_type: Type.String() }),
    response: ErrorView, responseName: 'ApiErrorDescription',
    async handler(req, _reply, env) {
      const t = req.params.error_type;
      const description = errorDescription(t);
      if (description === undefined) throw new ApiError('not_found', 'Not Found');
      return { type: `${baseUrl(env.ctx, req)}/api/v1/error/${t}`, title: t, description };
    },
  }),
];

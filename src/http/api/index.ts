// /api/v1: Quay's REST API, as one encapsulated Fastify plugin with its own body parsing,
// validation and a single error handler that speaks Quay's ApiError envelope. Each area
// contributes its routes from its own file.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { baseUrl, type HttpContext } from '../context.ts';
import { DomainError } from '../../model/errors.ts';
import { PlainError, READONLY_MESSAGE } from './abort.ts';
import { resolvePrincipal, unauthorized } from './auth.ts';
import { ApiError, apiFromDomain, sendApiError } from './errors.ts';
import { ApiRouter, type AppInstance } from './route.ts';
import { apiValidatorCompiler, MISSING_BODY } from './validation.ts';
import { discoveryRoutes } from './discovery.ts';
import { userRoutes } from './user.ts';
import { logsRoutes } from './logs.ts';
import { searchRoutes } from './search.ts';
import { adminRoutes } from './superuser.ts';
import { superuserConfigRoutes } from './superuser-config.ts';
import { registrySizeRoutes } from './registry-size.ts';
import { repositoryAreaRoutes } from './repository-area.ts';
import { organizationAreaRoutes } from './organization-area.ts';
import { accountAreaRoutes, registerApiGuards } from './account-area.ts';
import { quotaRoutes } from './quota.ts';
import { autopruneRoutes } from './autoprune.ts';
import { immutabilityRoutes } from './immutability.ts';

export const API_PREFIX = '/api/v1';

export async function registerApi(app: AppInstance, ctx: HttpContext): Promise<void> {
  await app.register(async (api) => {
    api.setValidatorCompiler(apiValidatorCompiler);

    // Like Flask's request.get_json(): only JSON media types are bodies; anything else (or an
    // empty body) is "no JSON body", which routes with a body schema answer with 400.
    api.removeAllContentTypeParsers();
    const parseJson = api.getDefaultJsonParser('error', 'error');
    for (const type of ['application/json', /^application\/[\w.+-]+\+json$/]) {
      api.addContentTypeParser<string>(type, { parseAs: 'string' }, (req, body, done) => {
        if (body.trim() === '') return done(null, undefined);
        parseJson(req, body, done);
      });
    }
    api.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, _body, done) => done(null, undefined));

    if (!api.hasRequestDecorator('principal')) api.decorateRequest('principal', null, []);
    api.addHook('onRequest', async (req) => {
      req.principal = await resolvePrincipal(ctx, req);
    });
    registerApiGuards(api, ctx);

    api.setErrorHandler(async (err: FastifyError | Error, req, reply) => handleError(ctx, err, req, reply));
    api.setNotFoundHandler(async (req, reply) => sendApiError(reply, new ApiError('not_found', 'Not Found'), baseUrl(ctx, req)));

    const router = new ApiRouter(api, ctx);
    router.mount(discoveryRoutes);
    router.mount(userRoutes);
    router.mount(logsRoutes);
    router.mount(searchRoutes);
    router.mount(adminRoutes);
    router.mount(superuserConfigRoutes);
    router.mount(registrySizeRoutes);
    router.mount(repositoryAreaRoutes);
    router.mount(organizationAreaRoutes);
    router.mount(accountAreaRoutes);
    router.mount(quotaRoutes);
    router.mount(autopruneRoutes);
    router.mount(immutabilityRoutes);
  }, { prefix: API_PREFIX });
}

function handleError(ctx: HttpContext, err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const base = baseUrl(ctx, req);
  if (err instanceof PlainError) return reply.code(err.status).type('application/json').send(err.body);
  if (err instanceof ApiError) return sendApiError(reply, err, base);
  if (err instanceof DomainError) {
    switch (err.code) {
      case 'readonly':
        return reply.code(503).type('application/json').send({ message: ctx.services.config.registryState === 'readonly' ? READONLY_MESSAGE : err.message });
      case 'denied':
      case 'unauthorized':
        return sendApiError(reply, unauthorized(req), base);
      case 'too_many_requests':
        return reply.code(429).type('application/json').send({ message: err.message });
      default:
        return sendApiError(reply, apiFromDomain(err.code, err.message), base);
    }
  }
  const fe = err as FastifyError;
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    let message = err.message;
    if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) message = 'Failed to decode JSON object';
    else if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = 'Request body is too large';
    else if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') message = MISSING_BODY;
    return sendApiError(reply, new ApiError('invalid_request', message, status), base);
  }
  // Internals (SQL, stack traces, paths) stay in the log; the request id ties the two together.
  req.log.error({ err }, 'unhandled error in /api/v1');
  return reply.code(status >= 500 && status < 600 ? status : 500).type('application/json').send({ message: 'Internal Server Error' });
}

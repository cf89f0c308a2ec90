// /api/v1 proxy-cache configuration of organizations (FEATURE_PROXY_CACHE; Quay's
// OrganizationProxyCacheConfig and ProxyCacheConfigValidation in endpoints/api/organization.py).
import { Type } from 'typebox';
import {
  createProxyCacheConfig, deleteProxyCacheConfig, getProxyCacheConfig, validateProxyCacheConfig, type ProxyCacheInput,
} from '../../model/proxy-cache.ts';
import { actorOf } from './data-model.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';

const Params = Type.Object({ orgname: Type.String() });
const DOCS = { orgname: 'The name of the organization' };

const NewProxyCacheConfig = Type.Object({
  upstream_registry: Type.String({ description: 'Name of the upstream registry that is to be cached' }),
  upstream_registry_username: Type.Optional(Nullable(Type.String())),
  upstream_registry_password: Type.Optional(Nullable(Type.String())),
  expiration_s: Type.Optional(Nullable(Type.Integer())),
  insecure: Type.Optional(Nullable(Type.Boolean())),
}, { description: 'Proxy cache configuration for an organization' });

const View = Type.Object({
  upstream_registry: Type.String(),
  expiration_s: Type.Union([Type.Integer(), Type.Literal('')]),
  insecure: Type.Union([Type.Boolean(), Type.Literal('')]),
});

const common = { tag: 'organization', features: ['PROXY_CACHE'], params: Params, paramDocs: DOCS };

export const proxyCacheRoutes: AnyRoute[] = [
  defineRoute({
    ...common, method: 'GET', path: '/organization/{orgname}/proxycache', nickname: 'getProxyCacheConfig',
    description: 'Retrieves the proxy cache configuration of the organization.', response: View,
    async handler(req, _reply, env) {
      return getProxyCacheConfig(env.ctx.services, req.principal, req.params.orgname);
    },
  }),
  defineRoute({
    ...common, method: 'POST', path: '/organization/{orgname}/proxycache', nickname: 'createProxyCacheConfig',
    description: 'Creates proxy cache configuration for the organization.', body: NewProxyCacheConfig, bodyName: 'NewProxyCacheConfig',
    async handler(req, reply, env) {
      await createProxyCacheConfig(env.ctx.services, actorOf(req), req.params.orgname, req.body as ProxyCacheInput);
      return reply.code(201).type('application/json').send(JSON.stringify('Created'));
    },
  }),
  defineRoute({
    ...common, method: 'DELETE', path: '/organization/{orgname}/proxycache', nickname: 'deleteProxyCacheConfig',
    description: 'Delete proxy cache configuration for the organization.',
    async handler(req, reply, env) {
      await deleteProxyCacheConfig(env.ctx.services, actorOf(req), req.params.orgname);
      // Quay answers a deletion with 201 "Deleted".
      return reply.code(201).type('application/json').send(JSON.stringify('Deleted'));
    },
  }),
  defineRoute({
    ...common, paramDocs: { orgname: '' }, method: 'POST', path: '/organization/{orgname}/validateproxycache', nickname: 'validateProxyCacheConfig',
    description: 'Validates the upstream registry and credentials of a proxy cache configuration.', body: NewProxyCacheConfig, bodyName: 'NewProxyCacheConfig',
    async handler(req, reply, env) {
      const ac = new AbortController();
      req.raw.on('close', () => ac.abort());
      const result = await validateProxyCacheConfig(env.ctx.services, req.principal, req.params.orgname, req.body as ProxyCacheInput, ac.signal);
      return reply.code(202).type('application/json').send(JSON.stringify(result));
    },
  }),
];

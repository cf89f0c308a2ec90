// /api/v1/superuser/registrysize/: the last computed total size of the registry, and queueing a
// new computation (run by the registry_size worker).
import { Type } from 'typebox';
import { getRegistrySize, queueRegistrySize } from '../../model/registry-size.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { requireSuperuser } from './superuser-access.ts';

const SU = ['super:user'];
const FEATURES = ['SUPER_USERS'];

export const registrySizeRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/superuser/registrysize/', nickname: 'getRegistrySize', tag: 'superuser', scopes: SU, features: FEATURES, internal: true,
    description: 'Returns size of the registry',
    response: Type.Object({ size_bytes: Type.Integer(), last_ran: Nullable(Type.Integer()), queued: Type.Boolean(), running: Type.Boolean() }),
    async handler(req, _reply, env) {
      await requireSuperuser(req, env.ctx, 'read');
      const r = await getRegistrySize(env.ctx.services);
      return { size_bytes: r.sizeBytes, last_ran: r.completedAt, queued: r.queued, running: r.running };
    },
  }),
  defineRoute({
    method: 'POST', path: '/superuser/registrysize/', nickname: 'queueRegistrySizeCalculation', tag: 'superuser', scopes: SU, features: FEATURES,
    internal: true, status: 201,
    description: 'Queues registry size calculation',
    response: Type.String(),
    async handler(req, reply, env) {
      await requireSuperuser(req, env.ctx, 'write');
      // Quay answers a JSON "" with 201 when it queued a run, 202 when one was already queued or running.
      const queued = await queueRegistrySize(env.ctx.services);
      return reply.code(queued === 'queued' ? 201 : 202).type('application/json').send('""');
    },
  }),
];

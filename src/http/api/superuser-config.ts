// GET /api/v1/superuser/config (Quay's SuperUserDumpConfig): the running configuration for
// compliance evidence, secrets obfuscated. Superusers only, with a fresh login, and only when
// FEATURE_SUPERUSER_CONFIGDUMP is on (Quay checks the flag at call time).
import { Type } from 'typebox';
import { configDump } from '../../model/superuser-config.ts';
import { unauthorized } from './auth.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { requireSuperuser } from './superuser-access.ts';

const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });

export const superuserConfigRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/superuser/config', nickname: null, tag: 'superuser', scopes: ['super:user'], features: ['SUPER_USERS'],
    description: 'Returns the full configuration dump of the Quay instance.',
    response: Type.Object({ config: AnyObject, warning: AnyObject, env: AnyObject, schema: AnyObject }),
    async handler(req, _reply, env) {
      await requireSuperuser(req, env.ctx, 'write');
      if (!env.ctx.services.config.features.SUPERUSER_CONFIGDUMP) throw unauthorized(req);
      return configDump(env.ctx.services);
    },
  }),
];

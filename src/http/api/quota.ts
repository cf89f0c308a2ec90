// Storage quotas: /organization/{orgname}/quota…, /user/quota… and the superuser's
// /superuser/{users|organization}/{namespace}/quota… (Quay's namespacequota.py and superuser.py).
import type { FastifyReply } from 'fastify';
import { Type, type TSchema } from 'typebox';
import type { Services } from '../../model/context.ts';
import {
  changeNamespaceQuota, changeOrgQuota, changeOrgQuotaLimit, createNamespaceQuota, createOrgQuota, createOrgQuotaLimit, deleteNamespaceQuota,
  deleteOrgQuota, deleteOrgQuotaLimit, getOrgQuota, getOrgQuotaLimit, getUserQuota, getUserQuotaLimit, humanSize, listNamespaceQuotas,
  listOrgQuotaLimits, listOrgQuotas, listUserQuotaLimits, listUserQuotas, systemDefaultQuota, type LimitInput, type Quota, type QuotaLimit,
} from '../../model/quota.ts';
import { requireUser } from './auth.ts';
import { actorOf, dataModel } from './data-model.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { requireSuperuser } from './superuser-access.ts';

const FEATURES = ['SUPER_USERS', 'QUOTA_MANAGEMENT', 'EDIT_QUOTA'];
const SU = ['super:user'];
const USER_ADMIN = ['user:admin'];

const LimitView = Type.Object({ id: Type.Integer(), type: Type.String(), limit_percent: Type.Integer() });
const QuotaView = Type.Object({
  id: Nullable(Type.Integer()),
  limit_bytes: Type.Integer(),
  limit: Type.String(),
  default_config: Type.Boolean(),
  limits: Type.Array(LimitView),
  default_config_exists: Type.Boolean(),
});

function limitView(l: QuotaLimit) {
  return { id: l.id, type: l.type, limit_percent: l.percent };
}

/** Quay's quota_view. */
function quotaView(s: Services, q: Quota) {
  return {
    id: q.id, limit_bytes: q.limitBytes, limit: humanSize(q.limitBytes), default_config: q.isDefault,
    limits: q.limits.map(limitView), default_config_exists: systemDefaultQuota(s) !== null,
  };
}

const LIMIT_PATTERN = '^(\\d+\\s?(B|KiB|MiB|GiB|TiB|PiB|EiB|ZiB|YiB|Ki|Mi|Gi|Ti|Pi|Ei|Zi|Yi|KB|MB|GB|TB|PB|EB|ZB|YB|K|M|G|T|P|E|Z|Y)?)$';
const LIMIT_BYTES = { type: 'integer', description: 'Number of bytes the organization is allowed' };
const LIMIT_HUMAN = { type: 'string', description: 'Human readable storage capacity of the organization', pattern: LIMIT_PATTERN };

type LimitBody = { limit_bytes?: number; limit?: string };

// Quay's schemas use oneOf, which TypeBox does not build; written out as Quay writes them.
const NewQuota = Type.Unsafe<LimitBody>({
  type: 'object', description: 'Description of a new organization quota',
  oneOf: [
    { required: ['limit_bytes'], properties: { limit_bytes: LIMIT_BYTES } },
    { required: ['limit'], properties: { limit: LIMIT_HUMAN } },
  ],
} as unknown as TSchema);

const UpdateQuota = Type.Unsafe<LimitBody>({
  type: 'object', description: 'Description of a new organization quota',
  oneOf: [
    { properties: { limit_bytes: LIMIT_BYTES }, required: ['limit_bytes'], additionalProperties: false },
    { properties: { limit: LIMIT_HUMAN }, required: ['limit'], additionalProperties: false },
    { properties: { limit_bytes: { not: {} }, limit: { not: {} } }, additionalProperties: false },
  ],
} as unknown as TSchema);

const NewLimit = Type.Object({
  type: Type.String({ description: 'Type of quota limit: "Warning" or "Reject"' }),
  threshold_percent: Type.Integer({ description: 'Quota threshold, in percent of quota' }),
}, { description: 'Description of a new organization quota limit' });

const UpdateLimit = Type.Object({
  type: Type.Optional(Type.String({ description: 'Type of quota limit: "Warning" or "Reject"' })),
  threshold_percent: Type.Optional(Type.Integer({ description: 'Quota threshold, in percent of quota' })),
}, { description: 'Description of changing organization quota limit' });

function limitInput(b: LimitBody): LimitInput {
  return { ...(b.limit !== undefined ? { limit: b.limit } : {}), ...(b.limit_bytes !== undefined ? { limitBytes: b.limit_bytes } : {}) };
}

const OrgParams = Type.Object({ orgname: Type.String() });
const OrgQuotaParams = Type.Object({ orgname: Type.String(), quota_id: Type.String() });
const OrgLimitParams = Type.Object({ orgname: Type.String(), quota_id: Type.String(), limit_id: Type.String() });
const UserQuotaParams = Type.Object({ quota_id: Type.String() });
const UserLimitParams = Type.Object({ quota_id: Type.String(), limit_id: Type.String() });
const NsParams = Type.Object({ namespace: Type.String() });
const NsQuotaParams = Type.Object({ namespace: Type.String(), quota_id: Type.String() });

const Created = Type.String();

/** Quay's body is the JSON string "Created"; Fastify would send a bare string as text/plain. */
function created(reply: FastifyReply): FastifyReply {
  return reply.code(201).type('application/json').send(JSON.stringify('Created'));
}
const common = { tag: 'namespacequota', features: FEATURES };

const orgRoutes: AnyRoute[] = [
  defineRoute({
    ...common, method: 'GET', path: '/organization/{orgname}/quota', nickname: 'listOrganizationQuota',
    params: OrgParams, response: Type.Array(QuotaView),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return (await listOrgQuotas(s, req.principal, req.params.orgname)).map((q) => quotaView(s, q));
    },
  }),
  defineRoute({
    ...common, method: 'POST', path: '/organization/{orgname}/quota', nickname: 'createOrganizationQuota', scopes: SU, status: 201,
    description: 'Create a new organization quota.',
    params: OrgParams, body: NewQuota, bodyName: 'NewOrgQuota', response: Created,
    async handler(req, reply, env) {
      await createOrgQuota(env.ctx.services, actorOf(req), req.params.orgname, limitInput(req.body));
      return created(reply);
    },
  }),
  defineRoute({
    ...common, method: 'GET', path: '/organization/{orgname}/quota/{quota_id}', nickname: 'getOrganizationQuota',
    params: OrgQuotaParams, response: QuotaView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return quotaView(s, await getOrgQuota(s, req.principal, req.params.orgname, req.params.quota_id));
    },
  }),
  defineRoute({
    ...common, method: 'PUT', path: '/organization/{orgname}/quota/{quota_id}', nickname: 'changeOrganizationQuota', scopes: SU,
    params: OrgQuotaParams, body: UpdateQuota, bodyName: 'UpdateOrgQuota', response: QuotaView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return quotaView(s, await changeOrgQuota(s, actorOf(req), req.params.orgname, req.params.quota_id, limitInput(req.body)));
    },
  }),
  defineRoute({
    ...common, method: 'DELETE', path: '/organization/{orgname}/quota/{quota_id}', nickname: 'deleteOrganizationQuota', scopes: SU, status: 204,
    params: OrgQuotaParams,
    async handler(req, _reply, env) {
      await deleteOrgQuota(env.ctx.services, actorOf(req), req.params.orgname, req.params.quota_id);
    },
  }),
  defineRoute({
    ...common, method: 'GET', path: '/organization/{orgname}/quota/{quota_id}/limit', nickname: 'listOrganizationQuotaLimit',
    params: OrgQuotaParams, response: Type.Array(LimitView),
    async handler(req, _reply, env) {
      return (await listOrgQuotaLimits(env.ctx.services, req.principal, req.params.orgname, req.params.quota_id)).map(limitView);
    },
  }),
  defineRoute({
    ...common, method: 'POST', path: '/organization/{orgname}/quota/{quota_id}/limit', nickname: 'createOrganizationQuotaLimit', scopes: SU, status: 201,
    params: OrgQuotaParams, body: NewLimit, bodyName: 'NewOrgQuotaLimit', response: Created,
    async handler(req, reply, env) {
      await dataModel(createOrgQuotaLimit(env.ctx.services, actorOf(req), req.params.orgname, req.params.quota_id,
        { type: req.body.type, percent: req.body.threshold_percent }));
      return created(reply);
    },
  }),
  defineRoute({
    ...common, method: 'GET', path: '/organization/{orgname}/quota/{quota_id}/limit/{limit_id}', nickname: 'getOrganizationQuotaLimit',
    params: OrgLimitParams, response: LimitView,
    async handler(req, _reply, env) {
      const p = req.params;
      return limitView(await dataModel(getOrgQuotaLimit(env.ctx.services, req.principal, p.orgname, p.quota_id, p.limit_id)));
    },
  }),
  defineRoute({
    ...common, method: 'PUT', path: '/organization/{orgname}/quota/{quota_id}/limit/{limit_id}', nickname: 'changeOrganizationQuotaLimit', scopes: SU,
    params: OrgLimitParams, body: UpdateLimit, bodyName: 'UpdateOrgQuotaLimit', response: QuotaView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = req.params;
      const q = await dataModel(changeOrgQuotaLimit(s, actorOf(req), p.orgname, p.quota_id, p.limit_id, {
        ...(req.body.type !== undefined ? { type: req.body.type } : {}),
        ...(req.body.threshold_percent !== undefined ? { percent: req.body.threshold_percent } : {}),
      }));
      return quotaView(s, q);
    },
  }),
  defineRoute({
    ...common, method: 'DELETE', path: '/organization/{orgname}/quota/{quota_id}/limit/{limit_id}', nickname: 'deleteOrganizationQuotaLimit', scopes: SU, status: 204,
    params: OrgLimitParams,
    async handler(req, _reply, env) {
      const p = req.params;
      await dataModel(deleteOrgQuotaLimit(env.ctx.services, actorOf(req), p.orgname, p.quota_id, p.limit_id));
    },
  }),
];

const userRoutes: AnyRoute[] = [
  defineRoute({
    ...common, method: 'GET', path: '/user/quota', nickname: 'listUserQuota', scopes: USER_ADMIN,
    response: Type.Array(QuotaView),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return (await listUserQuotas(s, requireUser(req))).map((q) => quotaView(s, q));
    },
  }),
  defineRoute({
    ...common, method: 'GET', path: '/user/quota/{quota_id}', nickname: 'getUserQuota', scopes: USER_ADMIN,
    params: UserQuotaParams, response: QuotaView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return quotaView(s, await getUserQuota(s, requireUser(req), req.params.quota_id));
    },
  }),
  defineRoute({
    ...common, method: 'GET', path: '/user/quota/{quota_id}/limit', nickname: 'listUserQuotaLimit', scopes: USER_ADMIN,
    params: UserQuotaParams, response: Type.Array(LimitView),
    async handler(req, _reply, env) {
      return (await listUserQuotaLimits(env.ctx.services, requireUser(req), req.params.quota_id)).map(limitView);
    },
  }),
  defineRoute({
    ...common, method: 'GET', path: '/user/quota/{quota_id}/limit/{limit_id}', nickname: 'getUserQuotaLimit', scopes: USER_ADMIN,
    params: UserLimitParams, response: QuotaView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      return quotaView(s, await dataModel(getUserQuotaLimit(s, requireUser(req), req.params.quota_id, req.params.limit_id)));
    },
  }),
];

/** Quay serves both paths with one resource (SuperUserUserQuotaList / SuperUserUserQuota). */
function superuserRoutes(kind: 'users' | 'organization', names: { list: string; create: string; change: string; del: string }): AnyRoute[] {
  const base = `/superuser/${kind}/{namespace}/quota`;
  const su = { tag: 'superuser', features: FEATURES, scopes: SU };
  return [
    defineRoute({
      ...su, method: 'GET', path: base, nickname: names.list,
      params: NsParams, response: Type.Array(QuotaView),
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        await requireSuperuser(req, env.ctx, 'read');
        return (await listNamespaceQuotas(s, req.params.namespace)).map((q) => quotaView(s, q));
      },
    }),
    defineRoute({
      ...su, method: 'POST', path: base, nickname: names.create, status: 201,
      params: NsParams, body: NewQuota, bodyName: 'NewNamespaceQuota', response: Created,
      async handler(req, reply, env) {
        await requireSuperuser(req, env.ctx, 'write');
        await createNamespaceQuota(env.ctx.services, actorOf(req), req.params.namespace, limitInput(req.body));
        return created(reply);
      },
    }),
    defineRoute({
      ...su, method: 'PUT', path: `${base}/{quota_id}`, nickname: names.change,
      params: NsQuotaParams, body: UpdateQuota, bodyName: 'UpdateNamespaceQuota', response: QuotaView,
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        await requireSuperuser(req, env.ctx, 'write');
        return quotaView(s, await changeNamespaceQuota(s, actorOf(req), req.params.namespace, req.params.quota_id, limitInput(req.body)));
      },
    }),
    defineRoute({
      ...su, method: 'DELETE', path: `${base}/{quota_id}`, nickname: names.del, status: 204,
      params: NsQuotaParams,
      async handler(req, _reply, env) {
        // Quay's delete is the one superuser quota call without @require_fresh_login.
        await requireSuperuser(req, env.ctx, 'write', { fresh: false });
        await deleteNamespaceQuota(env.ctx.services, actorOf(req), req.params.namespace, req.params.quota_id);
      },
    }),
  ];
}

export const quotaRoutes: AnyRoute[] = [
  ...orgRoutes,
  ...userRoutes,
  ...superuserRoutes('users', { list: 'listUserQuotaSuperUser', create: 'createUserQuotaSuperUser', change: 'changeUserQuotaSuperUser', del: 'deleteUserQuotaSuperUser' }),
  ...superuserRoutes('organization', {
    list: 'listOrganizationQuotaSuperUser', create: 'createOrganizationQuotaSuperUser', change: 'changeOrganizationQuotaSuperUser', del: 'deleteOrganizationQuotaSuperUser',
  }),
];

// /api/v1/superuser/keys and /api/v1/superuser/approvedkeys: service key management. Quay sends
// these through Flask's jsonify, so dates are HTTP-dates ("Wed, 08 Jan 2025 19:32:48 GMT").
import { Type, type TSchema } from 'typebox';
import type { Services } from '../../model/context.ts';
import { findUserById } from '../../model/accounts.ts';
import {
  approveServiceKey, createServiceKey, deleteServiceKey, getServiceKey, listServiceKeys, updateServiceKey, type ServiceKey,
} from '../../model/service-keys.ts';
import { ApiError } from './errors.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { requireSuperuser } from './superuser-access.ts';
import { SuperuserUserView, superuserUserView } from './superuser-views.ts';

const SU = ['super:user'];
const FEATURES = ['SUPER_USERS'];

const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true } as unknown as TSchema);
const Expiration = Type.Union([Type.Number(), Type.Null()], { description: 'The expiration date as a unix timestamp' });

const httpDate = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toUTCString());

const ServiceKeyView = Type.Object({
  name: Nullable(Type.String()),
  kid: Type.String(),
  service: Type.String(),
  jwk: AnyObject,
  metadata: AnyObject,
  created_date: Type.String(),
  expiration_date: Nullable(Type.String()),
  rotation_duration: Nullable(Type.Integer()),
  approval: Nullable(Type.Object({
    approver: Nullable(SuperuserUserView),
    approval_type: Type.String(),
    approved_date: Nullable(Type.String()),
    notes: Type.String(),
  })),
}, { description: 'A service key' });

async function keyView(s: Services, k: ServiceKey): Promise<Record<string, unknown>> {
  return {
    name: k.name, kid: k.kid, service: k.service, jwk: k.jwk, metadata: k.metadata,
    created_date: httpDate(k.createdAt), expiration_date: httpDate(k.expiresAt), rotation_duration: k.rotationDuration,
    approval: k.approval === null ? null : {
      approver: k.approval.approver ? await superuserUserView(s, k.approval.approver) : null,
      approval_type: k.approval.approvalType,
      approved_date: httpDate(k.approval.approvedAt),
      notes: k.approval.notes,
    },
  };
}

const KidParams = Type.Object({ kid: Type.String() });
const KID_DOC = { kid: 'The unique identifier for a service key' };

const CreateServiceKey = Type.Object({
  service: Type.String({ minLength: 1, description: 'The service authenticating with this key' }),
  name: Type.Optional(Type.String({ description: 'The friendly name of a service key' })),
  metadata: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object', description: "The key/value pairs of this key's metadata" } as unknown as TSchema)),
  notes: Type.Optional(Type.String({ description: 'If specified, the extra notes for the key' })),
  expiration: Expiration,
}, { description: 'Description of creation of a service key' });

const PutServiceKey = Type.Object({
  name: Type.Optional(Type.String({ description: 'The friendly name of a service key' })),
  metadata: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object', description: "The key/value pairs of this key's metadata" } as unknown as TSchema)),
  expiration: Type.Optional(Expiration),
}, { description: 'Description of updates for a service key' });

const ApproveServiceKey = Type.Object({
  notes: Type.Optional(Type.String({ description: 'Optional approval notes' })),
}, { description: 'Information for approving service keys' });

export const serviceKeyRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/superuser/keys', nickname: 'listServiceKeys', scopes: SU, features: FEATURES, tag: 'superuser',
    response: Type.Object({ keys: Type.Array(ServiceKeyView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireSuperuser(req, env.ctx, 'read', { fresh: false });
      const keys = [];
      for (const k of await listServiceKeys(s)) keys.push(await keyView(s, k));
      return { keys };
    },
  }),
  defineRoute({
    method: 'POST', path: '/superuser/keys', nickname: 'createServiceKey', scopes: SU, features: FEATURES, tag: 'superuser',
    body: CreateServiceKey, bodyName: 'CreateServiceKey',
    response: Type.Object({ kid: Type.String(), name: Type.String(), service: Type.String(), public_key: Type.String(), private_key: Type.String() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      const approver = await findUserById(s, p.userId);
      const b = req.body;
      // Keys made in the superuser panel are approved by their creator at once (Quay does the same).
      const k = await createServiceKey(s, {
        service: b.service, name: b.name, metadata: b.metadata, notes: b.notes, expiration: b.expiration, approver: approver ?? null,
      }, { performer: p, ip: req.ip, keys: env.ctx.keys });
      return { kid: k.kid, name: k.name, service: k.service, public_key: k.publicKeyPem, private_key: k.privateKeyPem };
    },
  }),
  defineRoute({
    method: 'GET', path: '/superuser/keys/{kid}', nickname: 'getServiceKey', scopes: SU, features: FEATURES, tag: 'superuser',
    paramDocs: KID_DOC, params: KidParams, response: ServiceKeyView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireSuperuser(req, env.ctx, 'read', { fresh: false });
      const k = await getServiceKey(s, req.params.kid);
      if (!k) throw new ApiError('not_found', 'Not Found');
      return keyView(s, k);
    },
  }),
  defineRoute({
    method: 'PUT', path: '/superuser/keys/{kid}', nickname: 'updateServiceKey', scopes: SU, features: FEATURES, tag: 'superuser',
    paramDocs: KID_DOC, params: KidParams, body: PutServiceKey, bodyName: 'PutServiceKey', response: ServiceKeyView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      const k = await updateServiceKey(s, req.params.kid, req.body, { performer: p, ip: req.ip, keys: env.ctx.keys });
      return keyView(s, k);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/superuser/keys/{kid}', nickname: 'deleteServiceKey', scopes: SU, features: FEATURES, tag: 'superuser', status: 204,
    paramDocs: KID_DOC, params: KidParams,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      await deleteServiceKey(s, req.params.kid, { performer: p, ip: req.ip, keys: env.ctx.keys });
    },
  }),
  defineRoute({
    method: 'POST', path: '/superuser/approvedkeys/{kid}', nickname: 'approveServiceKey', scopes: SU, features: FEATURES, tag: 'superuser', status: 201,
    paramDocs: KID_DOC, params: KidParams, body: ApproveServiceKey, bodyName: 'ApproveServiceKey',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = await requireSuperuser(req, env.ctx, 'write');
      const approver = await findUserById(s, p.userId);
      if (!approver) throw new ApiError('invalid_token', 'Requires authentication');
      await approveServiceKey(s, req.params.kid, approver, req.body.notes ?? '', { performer: p, ip: req.ip, keys: env.ctx.keys });
    },
  }),
];

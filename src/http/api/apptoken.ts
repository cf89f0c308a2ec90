// /api/v1/user/apptoken: the caller's app-specific tokens (Quay's endpoints/api/appspecifictokens.py).
import { Type } from 'typebox';
import { fullTokenCode, getAppToken, issueAppToken, listAppTokens, revokeAppToken, type AppToken } from '../../model/app-tokens.ts';
import type { Services } from '../../model/context.ts';
import { requireFreshLogin, requireScope, requireUser } from './auth.ts';
import { ApiError } from './errors.ts';
import { defineRoute, Nullable, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { formatDate } from './shapes.ts';

const TokenView = Type.Object({
  uuid: Type.String(),
  title: Type.String(),
  last_accessed: Nullable(Type.String()),
  created: Nullable(Type.String()),
  expiration: Nullable(Type.String()),
});
const TokenWithCode = Type.Object({ ...TokenView.properties, token_code: Type.String() });

function tokenView(t: AppToken): Record<string, unknown> {
  return {
    uuid: t.uuid, title: t.title,
    last_accessed: formatDate(t.last_accessed), created: formatDate(t.created_at), expiration: formatDate(t.expires_at),
  };
}

function withCode(s: Services, t: AppToken): Record<string, unknown> {
  return { ...tokenView(t), token_code: fullTokenCode(s, t) };
}

const TokenParams = Type.Object({ token_uuid: Type.String() });
const paramDocs = { token_uuid: 'The uuid of the app specific token' };

export const apptokenRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/user/apptoken', nickname: 'listAppTokens', tag: 'appspecifictokens', scopes: ['user:admin'], features: ['APP_SPECIFIC_TOKENS'],
    description: 'Lists the app specific tokens for the user.',
    querystring: Type.Object({ expiring: Type.Optional(TruthyBool('If true, only returns those tokens expiring soon')) }),
    response: Type.Object({ tokens: Type.Array(TokenView), only_expiring: Nullable(Type.Boolean()) }),
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      const expiring = req.query.expiring === undefined ? null : truthy(req.query.expiring);
      const tokens = await listAppTokens(env.ctx.services, p.userId, expiring === true);
      return { tokens: tokens.map(tokenView), only_expiring: expiring };
    },
  }),
  defineRoute({
    method: 'POST', path: '/user/apptoken', nickname: 'createAppToken', tag: 'appspecifictokens', scopes: ['user:admin'], features: ['APP_SPECIFIC_TOKENS'],
    description: 'Create a new app specific token for user.',
    body: Type.Object({ title: Type.String({ description: 'The user-defined title for the token' }) }), bodyName: 'NewToken',
    response: Type.Object({ token: TokenWithCode }),
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      await requireFreshLogin(env.ctx, req);
      const t = await issueAppToken(env.ctx.services, p, req.body.title, req.ip);
      return { token: withCode(env.ctx.services, t) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/apptoken/{token_uuid}', nickname: 'getAppToken', tag: 'appspecifictokens', scopes: ['user:admin'], features: ['APP_SPECIFIC_TOKENS'],
    description: 'Returns a specific app token for the user.',
    params: TokenParams, paramDocs, response: Type.Object({ token: TokenWithCode }),
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      await requireFreshLogin(env.ctx, req);
      const t = await getAppToken(env.ctx.services, p.userId, req.params.token_uuid);
      if (!t) throw new ApiError('not_found', 'Not Found');
      return { token: withCode(env.ctx.services, t) };
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/user/apptoken/{token_uuid}', nickname: 'revokeAppToken', tag: 'appspecifictokens', scopes: ['user:admin'], features: ['APP_SPECIFIC_TOKENS'],
    description: 'Revokes a specific app token for the user.',
    params: TokenParams, paramDocs, status: 204,
    async handler(req, _reply, env) {
      const p = requireUser(req);
      requireScope(req, 'user:admin');
      await requireFreshLogin(env.ctx, req);
      const t = await revokeAppToken(env.ctx.services, p, req.params.token_uuid, req.ip);
      if (!t) throw new ApiError('not_found', 'Not Found');
      return undefined;
    },
  }),
];

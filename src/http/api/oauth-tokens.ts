// Tokens organization admins mint for their OAuth applications (Quay's
// endpoints/api/organization_application_tokens.py). The secret is in the creation response only.
import { Type } from 'typebox';
import {
  createApplicationToken, deleteApplicationToken, listApplicationTokens, MAX_TOKEN_NAME_LENGTH, type AppTokenRow,
} from '../../model/oauth-tokens.ts';
import { requireUser } from './auth.ts';
import { actorOf, dataModel } from './data-model.ts';
import { encodePageToken, startIdFrom } from './page-token.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';

const TokenView = Type.Object({
  uuid: Type.String(),
  name: Nullable(Type.String({ description: 'User-facing token name. Null indicates a legacy unnamed token.' })),
  scope: Type.String(),
  expires_at: Nullable(Type.String()),
  created: Nullable(Type.String()),
  created_by: Nullable(Type.String()),
  last_accessed: Nullable(Type.String()),
  token: Type.Optional(Type.String({ description: 'Bearer token secret, present only in create responses.' })),
}, { description: 'OAuth API token metadata. The bearer token secret is only returned when the token is created.' });

const NewToken = Type.Object({
  name: Type.String({ description: 'User-facing token name. Leading and trailing whitespace is trimmed before storage.', minLength: 1, maxLength: MAX_TOKEN_NAME_LENGTH }),
  scope: Type.String({ description: 'Space- or comma-separated scope string' }),
  expiration: Type.Optional(Type.Number({ description: 'Token lifetime in seconds. Must be positive and is capped at the maximum supported lifetime.', minimum: 1 })),
}, { description: 'Description of a new OAuth API token. Duplicate names are allowed within an application.' });

const AppParams = Type.Object({ orgname: Type.String(), client_id: Type.String() });
const TokenParams = Type.Object({ orgname: Type.String(), client_id: Type.String(), token_uuid: Type.String() });
const paramDocs = { orgname: 'The name of the organization', client_id: 'The OAuth client ID', token_uuid: 'The UUID of the token' };

/** Python's naive datetime.isoformat() + "Z": microseconds only when there are any. */
export function isoZ(ms: number | null): string | null {
  if (ms === null) return null;
  const d = new Date(ms);
  const base = d.toISOString().slice(0, 19);
  const frac = d.getUTCMilliseconds();
  return frac ? `${base}.${String(frac * 1000).padStart(6, '0')}Z` : `${base}Z`;
}

function tokenView(r: AppTokenRow, secret?: string): Record<string, unknown> {
  return {
    uuid: r.token.uuid,
    name: r.token.name,
    scope: r.token.scope,
    expires_at: isoZ(r.token.expires_at),
    created: isoZ(r.token.created_at),
    created_by: r.createdBy,
    last_accessed: isoZ(r.token.last_accessed),
    ...(secret !== undefined ? { token: secret } : {}),
  };
}

export const oauthTokenRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/organization/{orgname}/applications/{client_id}/tokens', nickname: 'listOrganizationApplicationTokens',
    tag: 'organization', scopes: ['org:admin'],
    description: 'List all tokens for the specified application.',
    params: AppParams, paramDocs,
    querystring: Type.Object({ next_page: Type.Optional(Type.String({ description: 'The page token for the next page' })) }),
    response: Type.Object({ tokens: Type.Array(TokenView), next_page: Type.Optional(Type.String()) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      requireUser(req);
      const page = await listApplicationTokens(s, req.principal, req.params.orgname, req.params.client_id, startIdFrom(s, req.query.next_page));
      return {
        tokens: page.tokens.map((t) => tokenView(t)),
        ...(page.nextStartId !== null ? { next_page: encodePageToken(s, { start_id: page.nextStartId }) } : {}),
      };
    },
  }),
  defineRoute({
    method: 'POST', path: '/organization/{orgname}/applications/{client_id}/tokens', nickname: 'createOrganizationApplicationToken',
    tag: 'organization', scopes: ['org:admin'],
    description: 'Create a new token for the specified application.',
    params: AppParams, paramDocs, body: NewToken, bodyName: 'NewToken', response: TokenView, responseName: 'OAuthApplicationToken',
    async handler(req, _reply, env) {
      requireUser(req);
      const { principal, ip } = actorOf(req);
      const r = await dataModel(createApplicationToken(env.ctx.services, principal, req.params.orgname, req.params.client_id, req.body, ip));
      return tokenView(r.row, r.token);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/organization/{orgname}/applications/{client_id}/tokens/{token_uuid}', nickname: 'deleteOrganizationApplicationToken',
    tag: 'organization', scopes: ['org:admin'], status: 204,
    description: 'Revoke a specific token for the specified application.',
    params: TokenParams, paramDocs,
    async handler(req, _reply, env) {
      requireUser(req);
      const { principal, ip } = actorOf(req);
      await deleteApplicationToken(env.ctx.services, principal, req.params.orgname, req.params.client_id, req.params.token_uuid, ip);
      return undefined;
    },
  }),
];

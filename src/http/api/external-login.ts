// POST /api/v1/externallogin/{service_id} (Quay's ExternalLoginInformation): the authorization URL
// of an external login service configured with a `<NAME>_LOGIN_CONFIG` block. Its `state` is
// stored for this browser (bound to the session cookie, which is minted here when missing) and
// completes at /oauth2/<service>/callback (src/http/web/external-login.ts).
import { Type } from 'typebox';
import { baseUrl } from '../context.ts';
import { beginExternalLogin } from '../../model/external-login.ts';
import { DiscoveryFailure, findLoginService } from '../../model/login-providers.ts';
import { ensureCsrfToken, readSession } from '../session-cookie.ts';
import { ApiError } from './errors.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { StringEnum } from './string-enum.ts';

const GetLogin = Type.Object({
  kind: StringEnum(['login', 'attach', 'cli'] as const, 'The kind of URL'),
}, { description: 'Information required to an retrieve external login URL.' });

export const externalLoginRoutes: AnyRoute[] = [
  defineRoute({
    method: 'POST', path: '/externallogin/{service_id}', nickname: 'retrieveExternalLoginAuthorizationUrl', tag: 'user', internal: true,
    anonAllowed: true, readonlyAllowed: true,
    description: 'Generates the auth URL and CSRF token explicitly for OIDC/OAuth-associated login.',
    params: Type.Object({ service_id: Type.String() }), body: GetLogin, bodyName: 'GetLogin',
    response: Type.Object({ auth_url: Type.String({ description: 'The authorization URL for external login' }) }),
    async handler(req, reply, env) {
      const s = env.ctx.services;
      const service = findLoginService(s, req.params.service_id);
      if (!service) throw new ApiError('invalid_request', 'Unknown login service');
      // Quay's `cli` kind yields an id_token to use as a password with AUTHENTICATION_TYPE OIDC,
      // which Quayside does not offer: no URL that could not complete is handed out.
      if (req.body.kind === 'cli') throw new ApiError('invalid_request', 'CLI tokens are only available with OIDC authentication');
      const browserSecret = await ensureCsrfToken(env.ctx, req, reply);
      const { user } = await readSession(env.ctx, req);
      try {
        return {
          auth_url: await beginExternalLogin(s, service, { baseUrl: baseUrl(env.ctx, req), kind: req.body.kind, browserSecret, userId: user?.id ?? null }),
        };
      } catch (e) {
        if (e instanceof DiscoveryFailure) throw new ApiError('downstream_issue', e.message);
        throw e;
      }
    },
  }),
];

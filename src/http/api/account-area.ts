// The signed-in user's account area: cookie sessions, app-specific tokens, OAuth applications and
// authorizations, and the rest of Quay's user endpoints, plus the request guards (CSRF,
// browser XHR-only) that the session cookie needs on every /api/v1 route.
import type { AnyRoute } from './route.ts';
import { sessionRoutes } from './session.ts';
import { apptokenRoutes } from './apptoken.ts';
import { oauthRoutes } from './oauth.ts';
import { userExtraRoutes } from './user-extra.ts';
import { bootstrapRoutes } from './bootstrap.ts';
import { externalLoginRoutes } from './external-login.ts';
import { recoveryRoutes } from './recovery.ts';

export { registerApiGuards } from './csrf.ts';

export const accountAreaRoutes: AnyRoute[] = [
  ...sessionRoutes, ...apptokenRoutes, ...oauthRoutes, ...userExtraRoutes, ...bootstrapRoutes, ...externalLoginRoutes, ...recoveryRoutes,
];

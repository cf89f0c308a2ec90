// Quay API v1 organizations, teams, robots, repository permissions, default permissions and
// entity search, mounted together.
import type { AnyRoute } from './route.ts';
import { organizationRoutes } from './organization.ts';
import { teamRoutes } from './team.ts';
import { robotRoutes } from './robot.ts';
import { permissionRoutes } from './permission.ts';
import { prototypeRoutes } from './prototype.ts';
import { entitiesRoutes } from './entities.ts';
import { oauthTokenRoutes } from './oauth-tokens.ts';
import { proxyCacheRoutes } from './proxycache.ts';

export const organizationAreaRoutes: AnyRoute[] = [
  ...organizationRoutes, ...teamRoutes, ...robotRoutes, ...permissionRoutes, ...prototypeRoutes, ...entitiesRoutes, ...oauthTokenRoutes,
  ...proxyCacheRoutes,
];

// Quay API v1 repositories, tags, manifests, labels and notifications (repository and namespace), mounted together.
import type { AnyRoute } from './route.ts';
import { repositoryRoutes } from './repository.ts';
import { tagRoutes } from './tag.ts';
import { manifestRoutes } from './manifest.ts';
import { labelRoutes } from './label.ts';
import { pullStatsRoutes } from './pull-stats.ts';
import { signingRoutes } from './signing.ts';
import { notificationRoutes } from './notification.ts';

export const repositoryAreaRoutes: AnyRoute[] = [...repositoryRoutes, ...tagRoutes, ...manifestRoutes, ...labelRoutes, ...pullStatsRoutes, ...signingRoutes, ...notificationRoutes];

// Operational endpoints: health, metrics, public config. Registered on the root instance before
// the registry and API plugins, so the metrics hooks see every route.
import type { HttpContext } from '../context.ts';
import type { AppInstance } from '../api/route.ts';
import { registerHealth } from './health.ts';
import { registerMetrics } from './metrics.ts';
import { registerPublicConfig } from './public-config.ts';

export async function registerOps(app: AppInstance, ctx: HttpContext): Promise<void> {
  registerMetrics(app, ctx);
  registerHealth(app, ctx);
  registerPublicConfig(app, ctx);
}

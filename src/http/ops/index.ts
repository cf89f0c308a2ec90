// Operational endpoints: health, metrics, public config.
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../context.ts';

export async function registerOps(app: FastifyInstance, ctx: HttpContext): Promise<void> {
  void app; void ctx;
}

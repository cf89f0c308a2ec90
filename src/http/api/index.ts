// /api/v1: Quay's REST API. Each area registers its routes from its own file.
import type { FastifyInstance } from 'fastify';
import type { HttpContext } from '../context.ts';

export async function registerApi(app: FastifyInstance, ctx: HttpContext): Promise<void> {
  void app; void ctx;
}

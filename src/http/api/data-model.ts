// Calls into the model from /api/v1 handlers: the actor for the usage log, and Quay's bare
// {"message": …} 400 for DataModelError (src/model/data-errors.ts), which Quay never wraps in
// its ApiError envelope.
import type { FastifyRequest } from 'fastify';
import { DataModelError } from '../../model/data-errors.ts';
import type { Actor } from '../../model/organizations.ts';
import { PlainError } from './abort.ts';

export function actorOf(req: FastifyRequest): Actor {
  return { principal: req.principal, ip: req.ip ?? null };
}

export async function dataModel<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    if (e instanceof DataModelError) throw new PlainError(400, e.message);
    throw e;
  }
}

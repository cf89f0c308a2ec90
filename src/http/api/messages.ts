// /api/v1/messages and /api/v1/message/{uuid}: global banner messages. Anyone may read them;
// superusers create and delete them. Quay answers a signed-in non-superuser with a bare
// abort(403), and a create while superusers are disabled with abort(404).
import { Type } from 'typebox';
import { createMessage, deleteMessage, listMessages, MESSAGE_MEDIA_TYPES, MESSAGE_SEVERITIES } from '../../model/messages.ts';
import { superuserAccess } from '../../model/superuser.ts';
import type { FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { NOT_FOUND_MESSAGE, PlainError } from './abort.ts';
import { requireFreshLogin } from './auth.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { FORBIDDEN_MESSAGE } from './superuser-access.ts';


const MessageView = Type.Object({
  uuid: Type.String({ description: 'The message id' }),
  content: Type.String({ description: 'The actual message' }),
  media_type: Type.String({ description: 'The media type of the message', enum: [...MESSAGE_MEDIA_TYPES] }),
  severity: Type.String({ description: 'The severity of the message', enum: [...MESSAGE_SEVERITIES] }),
});

const CreateMessage = Type.Object({
  message: Type.Object({
    content: Type.String({ description: 'The actual message' }),
    media_type: Type.String({ description: 'The media type of the message', enum: [...MESSAGE_MEDIA_TYPES] }),
    severity: Type.String({ description: 'The severity of the message', enum: [...MESSAGE_SEVERITIES] }),
  }, { description: 'A single message' }),
}, { description: 'Create a new message' });

/** Quay's require_fresh_login (anonymous → 401) followed by allow_if_superuser (else abort(403)). */
async function requireMessageAdmin(req: FastifyRequest, ctx: HttpContext): Promise<void> {
  await requireFreshLogin(ctx, req);
  if (superuserAccess(ctx.services, req.principal) !== 'full') throw new PlainError(403, FORBIDDEN_MESSAGE);
}

export const messageRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/messages', nickname: 'getGlobalMessages', tag: 'globalmessages',
    description: 'Return a super users messages.',
    response: Type.Object({ messages: Type.Array(MessageView) }),
    async handler(_req, _reply, env) {
      return { messages: await listMessages(env.ctx.services) };
    },
  }),
  defineRoute({
    method: 'POST', path: '/messages', nickname: 'createGlobalMessage', scopes: ['super:user'], tag: 'globalmessages', status: 201,
    description: 'Create a message.',
    body: CreateMessage, bodyName: 'CreateMessage',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      await requireFreshLogin(env.ctx, req);
      if (!s.config.features.SUPER_USERS) throw new PlainError(404, NOT_FOUND_MESSAGE);
      await requireMessageAdmin(req, env.ctx);
      const m = req.body.message;
      await createMessage(s, { content: m.content, severity: m.severity, mediaType: m.media_type });
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/message/{uuid}', nickname: 'deleteGlobalMessage', scopes: ['super:user'], features: ['SUPER_USERS'],
    tag: 'globalmessages', status: 204,
    description: 'Delete a message.',
    params: Type.Object({ uuid: Type.String() }),
    async handler(req, _reply, env) {
      await requireMessageAdmin(req, env.ctx);
      await deleteMessage(env.ctx.services, req.params.uuid);
    },
  }),
];

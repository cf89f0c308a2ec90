// Global messages: the banners a superuser shows to everyone using the registry (Quay's
// `messages` table). Quay keeps no audit-log kind for them, so none is written.
import { randomUUID } from 'node:crypto';
import type { Services } from './context.ts';
import { DomainError } from './errors.ts';

export const MESSAGE_SEVERITIES = ['info', 'warning', 'error'] as const;
export const MESSAGE_MEDIA_TYPES = ['text/plain', 'text/markdown'] as const;
export type Severity = (typeof MESSAGE_SEVERITIES)[number];
export type MessageMediaType = (typeof MESSAGE_MEDIA_TYPES)[number];

export interface GlobalMessage {
  uuid: string;
  content: string;
  severity: string;
  media_type: string;
}

export async function listMessages(s: Services): Promise<GlobalMessage[]> {
  return s.db.selectFrom('messages').select(['uuid', 'content', 'severity', 'media_type']).orderBy('id').execute();
}

export async function createMessage(s: Services, input: { content: string; severity: string; mediaType: string }): Promise<GlobalMessage> {
  if (!(MESSAGE_SEVERITIES as readonly string[]).includes(input.severity)) {
    throw new DomainError('invalid_request', `Invalid message severity: ${input.severity}`);
  }
  if (!(MESSAGE_MEDIA_TYPES as readonly string[]).includes(input.mediaType)) {
    throw new DomainError('invalid_request', `Invalid message media type: ${input.mediaType}`);
  }
  const row = { uuid: randomUUID(), content: input.content, severity: input.severity, media_type: input.mediaType };
  await s.db.insertInto('messages').values(row).execute();
  return row;
}

/** Deleting an unknown message is not an error (Quay deletes by uuid list and answers 204). */
export async function deleteMessage(s: Services, uuid: string): Promise<boolean> {
  const res = await s.db.deleteFrom('messages').where('uuid', '=', uuid).executeTakeFirst();
  return Number(res.numDeletedRows) > 0;
}

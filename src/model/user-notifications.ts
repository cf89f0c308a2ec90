// In-app notifications for users (Quay's Notification): a user sees their own and those targeted at
// organizations they administer. Other areas create them with createUserNotification.
import { randomUUID } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { UserNotificationsTable } from '../db/schema.ts';
import type { Services } from './context.ts';

export type UserNotification = Selectable<UserNotificationsTable> & { target_username: string; target_kind: string };

export async function createUserNotification(s: Services, targetId: number, kind: string, metadata: Record<string, unknown> = {}): Promise<string> {
  const uuid = randomUUID();
  await s.db.insertInto('user_notifications').values({
    uuid, user_id: targetId, kind, metadata: JSON.stringify(metadata), dismissed: 0, created_at: s.now(),
  }).execute();
  return uuid;
}

function visibleTo(s: Services, userId: number) {
  return s.db.selectFrom('user_notifications')
    .innerJoin('users', 'users.id', 'user_notifications.user_id')
    .selectAll('user_notifications').select(['users.username as target_username', 'users.kind as target_kind'])
    .where((eb) => eb.or([
      eb('user_notifications.user_id', '=', userId),
      eb('user_notifications.user_id', 'in', eb.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id')
        .select('teams.org_id').where('teams.role', '=', 'admin').where('team_members.user_id', '=', userId)),
    ]));
}

/**
 * Quay's list_notifications: undismissed, newest first. `page` follows peewee's paginate (pages 0 and
 * 1 are both the first) over pages of limit+1 rows, because Quay fetches one extra row to know
 * whether there are more.
 */
export async function listUserNotifications(s: Services, userId: number, page: number, limit: number): Promise<{ items: UserNotification[]; additional: boolean }> {
  const size = limit + 1;
  const offset = page > 1 ? (page - 1) * size : 0;
  const rows = await visibleTo(s, userId).where('user_notifications.dismissed', '=', 0)
    .orderBy('user_notifications.created_at', 'desc').orderBy('user_notifications.id', 'desc')
    .limit(size).offset(offset).execute();
  return { items: rows.slice(0, limit), additional: rows.length > limit };
}

export async function getUserNotification(s: Services, userId: number, uuid: string): Promise<UserNotification | undefined> {
  return visibleTo(s, userId).where('user_notifications.uuid', '=', uuid).executeTakeFirst();
}

export async function setNotificationDismissed(s: Services, userId: number, uuid: string, dismissed: boolean): Promise<UserNotification | undefined> {
  const n = await getUserNotification(s, userId, uuid);
  if (!n) return undefined;
  await s.db.updateTable('user_notifications').set({ dismissed: dismissed ? 1 : 0 }).where('id', '=', n.id).execute();
  return { ...n, dismissed: dismissed ? 1 : 0 };
}

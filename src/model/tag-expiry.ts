// Tag expiration rules shared by pushes, the tag API and the time machine.
//
// A tag expires when its lifetime_end passes: every read asks for tags alive at `now`, so an
// expired tag leaves /v2 and the API's active list at that instant, with no job involved. It then
// sits in the time machine (restorable) for the namespace's window, users.tag_expiration_s, and
// garbage collection's tag step (src/model/gc.ts) deletes it once the window has passed. Quay
// writes no audit-log entry when a tag expires, so neither does Quayside.
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** The label that makes the tags of a manifest expire (`docker build --label quay.expires-after=2w`). */
export const EXPIRES_AFTER_LABEL = 'quay.expires-after';

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Quay's convert_to_timedelta: "90" (seconds), "30s", "5m", "2h", "1d", "2w"; null when invalid. */
export function parseDuration(value: string): number | null {
  const m = /^\s*([+-]?\d+)([smhdw]?)\s*$/.exec(value);
  if (!m) return null;
  return Number(m[1]) * UNIT_SECONDS[m[2] || 's']!;
}

/**
 * Seconds after which a new tag on this manifest expires, from its `quay.expires-after` label (as
 * Quay's retarget_tag applies it to every tag pointed at the manifest); null without a usable label.
 */
export async function labelExpirySeconds(db: Db, manifestId: number): Promise<number | null> {
  const label = await db.selectFrom('labels').select('value').where('manifest_id', '=', manifestId)
    .where('key', '=', EXPIRES_AFTER_LABEL).orderBy('id').executeTakeFirst();
  const seconds = label ? parseDuration(label.value) : null;
  return seconds !== null && seconds > 0 ? seconds : null;
}

/** The namespace's time-machine window in ms (Quay's removed_tag_expiration_s). */
export async function timeMachineWindowMs(db: Db, namespaceId: number): Promise<number> {
  const ns = await db.selectFrom('users').select('tag_expiration_s').where('id', '=', namespaceId).executeTakeFirstOrThrow();
  return Number(ns.tag_expiration_s) * 1000;
}

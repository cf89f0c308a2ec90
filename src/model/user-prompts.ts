// Quay's user prompts: things the web UI asks a user right after sign-in (GET /api/v1/user/
// `prompts`). Accounts created by an external login get `confirm_username` (FEATURE_USERNAME_CONFIRMATION,
// their name was derived from the provider's) and, with FEATURE_USER_METADATA, `enter_name` and
// `enter_company`. They live in the user row's JSON `metadata` under `prompts`.
import type { Transaction } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Services } from './context.ts';
import type { User } from './accounts.ts';

export type UserPromptKind = 'confirm_username' | 'enter_name' | 'enter_company';
type Db = Transaction<Database> | Services['db'];

function readMetadata(raw: string | null): Record<string, unknown> {
  try {
    const parsed = raw ? JSON.parse(raw) : {};
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {};
  } catch {
    return {};
  }
}

export function userPrompts(user: Pick<User, 'metadata'>): string[] {
  const p = readMetadata(user.metadata).prompts;
  return Array.isArray(p) ? p.filter((x): x is string => typeof x === 'string') : [];
}

export function hasUserPrompt(user: Pick<User, 'metadata'>, kind: UserPromptKind): boolean {
  return userPrompts(user).includes(kind);
}

/** The prompts a new federated account starts with (Quay's create_federated_user). */
export function defaultFederatedPrompts(s: Services): UserPromptKind[] {
  const out: UserPromptKind[] = [];
  if (s.config.features.USERNAME_CONFIRMATION !== false) out.push('confirm_username');
  if (s.config.features.USER_METADATA === true) out.push('enter_name', 'enter_company');
  return out;
}

async function writePrompts(db: Db, userId: number, change: (current: string[]) => string[]): Promise<void> {
  const row = await db.selectFrom('users').select('metadata').where('id', '=', userId).executeTakeFirst();
  if (!row) return;
  const meta = readMetadata(row.metadata);
  const current = userPrompts(row);
  const next = [...new Set(change(current))];
  if (next.length === current.length && next.every((p, i) => p === current[i])) return;
  if (next.length) meta.prompts = next;
  else delete meta.prompts;
  await db.updateTable('users').set({ metadata: Object.keys(meta).length ? JSON.stringify(meta) : null }).where('id', '=', userId).execute();
}

export async function addUserPrompts(s: Services, userId: number, kinds: readonly UserPromptKind[], db: Db = s.db): Promise<void> {
  await writePrompts(db, userId, (current) => [...current, ...kinds]);
}

export async function removeUserPrompts(s: Services, userId: number, kinds: readonly UserPromptKind[], db: Db = s.db): Promise<void> {
  await writePrompts(db, userId, (current) => current.filter((p) => !(kinds as readonly string[]).includes(p)));
}

// Tiny HTTP client for /api/v1 tests: real requests against a running test app.
import type { TestApp } from '../../support/app.ts';
import type { User } from '../../../src/model/accounts.ts';
import { createOAuthApplication, createOAuthToken, createUser, findUser } from '../../../src/model/accounts.ts';

export interface Res<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export async function call<T = any>(
  t: TestApp,
  method: string,
  path: string,
  opts: { json?: unknown; raw?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<Res<T>> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.raw !== undefined) body = opts.raw;
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  const r = await fetch(t.url + path, { method, headers, body });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  return { status: r.status, body: parsed as T, text, headers: r.headers };
}

/** A user and an OAuth token for them with exactly `scopes`. */
export async function userWithToken(t: TestApp, username: string, scopes: string[], opts: { superuser?: boolean; email?: string; expiresIn?: number } = {}): Promise<{ user: User; token: string }> {
  const s = t.app.services;
  const user = (await findUser(s, username)) ?? await createUser(s, { username, password: 'password123', email: opts.email ?? `${username}@example.com`, superuser: opts.superuser });
  const appId = await createOAuthApplication(s, user, `app-${scopes.join('-') || 'none'}-${Math.random().toString(36).slice(2)}`);
  const { token } = await createOAuthToken(s, appId, user, scopes.join(' '), opts.expiresIn ?? null);
  return { user, token };
}

export async function countUsers(t: TestApp): Promise<number> {
  const r = await t.app.services.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(r.n);
}

export async function logKinds(t: TestApp): Promise<{ kind: string; account_id: number | null; performer_id: number | null; metadata: Record<string, unknown> }[]> {
  const rows = await t.app.services.db.selectFrom('logs').select(['kind', 'account_id', 'performer_id', 'metadata']).orderBy('id').execute();
  return rows.map((r) => ({ ...r, metadata: JSON.parse(r.metadata) as Record<string, unknown> }));
}

/** Checks an ApiError envelope the way Quay builds it. */
export function isApiError(body: any, status: number, type: string, base: string): boolean {
  return body?.status === status && body.error_type === type && body.title === type
    && typeof body.detail === 'string' && body.detail === body.error_message
    && body.type === `${base}/api/v1/error/${type}`;
}

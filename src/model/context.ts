// Everything a model function needs, assembled once by src/server and passed down explicitly.
import type { Logger } from 'pino';
import type { DB, Dialect } from '../db/db.ts';
import type { StorageDriver } from '../storage/driver.ts';
import type { QuaysideConfig } from '../config/config.ts';
import type { SecretBox } from './crypto.ts';

export interface Services {
  db: DB;
  dialect: Dialect;
  storage: StorageDriver;
  config: QuaysideConfig;
  log: Logger;
  box: SecretBox;
  now(): number;
}

/** Who is acting. `key` identifies the principal for ownership checks (upload sessions). */
export type Principal =
  | { kind: 'anonymous'; key: '(anonymous)' }
  | {
      kind: 'user' | 'robot';
      key: string;
      userId: number;
      username: string;
      /** How they authenticated; OAuth tokens carry scopes that narrow what they may do. */
      via: 'password' | 'apptoken' | 'oauth' | 'robot' | 'session' | 'jwt';
      scopes: string[] | null;
      superuser: boolean;
    };

export const ANONYMOUS: Principal = { kind: 'anonymous', key: '(anonymous)' };

export function principalFor(
  user: { id: number; username: string; kind: string },
  via: Exclude<Principal, { kind: 'anonymous' }>['via'],
  opts: { scopes?: string[] | null; superuser?: boolean } = {},
): Principal {
  const kind = user.kind === 'robot' ? 'robot' : 'user';
  return { kind, key: `${kind}:${user.id}`, userId: user.id, username: user.username, via, scopes: opts.scopes ?? null, superuser: opts.superuser ?? false };
}

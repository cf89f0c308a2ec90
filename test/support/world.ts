// A standard cast of callers for /api/v1 tests and the permission matrix: one organization with an
// owner, a creator, a member, an outsider, a robot, superusers, and OAuth tokens for each human.
import type { TestApp } from './app.ts';
import { startTestApp } from './app.ts';
import {
  ALL_OAUTH_SCOPES, createAppToken, createOAuthApplication, createOAuthToken, createOrganization, createRobot, createUser, type User,
} from '../../src/model/accounts.ts';
import { createRepository } from '../../src/model/repositories.ts';
import { principalFor } from '../../src/model/context.ts';
import { setRepoPermission } from '../../src/model/permissions.ts';

export type Caller =
  | 'anonymous' | 'outsider' | 'member' | 'creator' | 'orgadmin' | 'robot'
  | 'oauthScoped' | 'oauthNoScope' | 'appToken' | 'superuser' | 'readonlySuperuser';

export const CALLERS: Caller[] = ['anonymous', 'outsider', 'member', 'creator', 'orgadmin', 'robot', 'oauthScoped', 'oauthNoScope', 'appToken', 'superuser', 'readonlySuperuser'];

export const PASSWORD = 'password123';

export interface World {
  t: TestApp;
  users: Record<'root' | 'auditor' | 'orgadmin' | 'creator' | 'member' | 'outsider', User>;
  robot: { name: string; token: string };
  org: User;
  appId: number;
  /** orgadmin's app-specific token (not an /api/v1 credential in Quay: calls are anonymous). */
  appToken: string;
  /** All-scope OAuth tokens per human. */
  tokens: Record<'root' | 'auditor' | 'orgadmin' | 'creator' | 'member' | 'outsider', string>;
  /** An OAuth token for orgadmin holding exactly `scopes` (cached). */
  tokenWith(scopes: string[]): Promise<string>;
  /** Authorization header for a caller, given the scopes the endpoint needs. */
  authFor(caller: Caller, neededScopes: readonly string[]): Promise<Record<string, string>>;
  api(method: string, path: string, opts?: { caller?: Caller; scopes?: readonly string[]; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  close(): Promise<void>;
}

/** Names used by the world: organization `acme`, teams `builders` (creator) and `readers` (member),
 * repository `acme/repo` readable by `readers`, robot `acme+bot` in `readers`. */
export async function createWorld(overrides: Record<string, unknown> = {}): Promise<World> {
  const t = await startTestApp({ GLOBAL_READONLY_SUPER_USERS: ['auditor'], SUPER_USERS: ['root'], ...overrides });
  const s = t.app.services;
  const mk = (username: string) => createUser(s, { username, password: PASSWORD, email: `${username}@example.com` });
  const users = {
    root: await mk('root'), auditor: await mk('auditor'), orgadmin: await mk('orgadmin'),
    creator: await mk('creator'), member: await mk('member'), outsider: await mk('outsider'),
  };
  const org = await createOrganization(s, 'acme', users.orgadmin, 'acme@example.com');
  const builders = await s.db.insertInto('teams').values({ org_id: org.id, name: 'builders', role: 'creator', description: 'Build people' }).returning('id').executeTakeFirstOrThrow();
  const readers = await s.db.insertInto('teams').values({ org_id: org.id, name: 'readers', role: 'member', description: '' }).returning('id').executeTakeFirstOrThrow();
  await s.db.insertInto('team_members').values([{ team_id: builders.id, user_id: users.creator.id }, { team_id: readers.id, user_id: users.member.id }]).execute();
  const bot = await createRobot(s, org, 'bot', 'matrix robot');
  await s.db.insertInto('team_members').values({ team_id: readers.id, user_id: bot.robot.id }).execute();
  const { repo } = await createRepository(s, { namespace: org, name: 'repo', visibility: 'private', creator: principalFor(users.orgadmin, 'password') });
  await setRepoPermission(s, repo.id, { teamId: readers.id }, 'read');
  const appId = await createOAuthApplication(s, org, 'matrix-app');
  const tokens = {} as World['tokens'];
  for (const [name, u] of Object.entries(users)) tokens[name as keyof World['tokens']] = (await createOAuthToken(s, appId, u, ALL_OAUTH_SCOPES.join(' '))).token;
  const appToken = (await createAppToken(s, users.orgadmin, 'matrix')).token;
  const scoped = new Map<string, string>();

  const world: World = {
    t, users, robot: { name: bot.robot.username, token: bot.token }, org, appId, appToken, tokens,
    async tokenWith(scopes) {
      const key = [...scopes].sort().join(' ');
      let tok = scoped.get(key);
      if (!tok) {
        tok = (await createOAuthToken(s, appId, users.orgadmin, key)).token;
        scoped.set(key, tok);
      }
      return tok;
    },
    async authFor(caller, needed) {
      const bearer = (tok: string) => ({ authorization: `Bearer ${tok}` });
      switch (caller) {
        case 'anonymous': return {};
        case 'outsider': case 'member': case 'creator': case 'orgadmin': return bearer(tokens[caller]);
        case 'superuser': return bearer(tokens.root);
        case 'readonlySuperuser': return bearer(tokens.auditor);
        case 'robot': return { authorization: `Basic ${Buffer.from(`${bot.robot.username}:${bot.token}`).toString('base64')}` };
        case 'appToken': return { authorization: `Basic ${Buffer.from(`$app:${appToken}`).toString('base64')}` };
        case 'oauthScoped': return bearer(await world.tokenWith(needed.length ? [...needed] : ['user:read']));
        case 'oauthNoScope': {
          // Every scope except the needed ones (and those implying them).
          const implies: Record<string, string[]> = { 'repo:read': ['repo:write', 'repo:admin'], 'repo:write': ['repo:admin'], 'user:read': ['user:admin'] };
          const drop = new Set(needed.flatMap((n) => [n, ...(implies[n] ?? [])]));
          const rest = ALL_OAUTH_SCOPES.filter((x) => !drop.has(x));
          return bearer(await world.tokenWith(rest.length ? rest : ['user:read']));
        }
      }
    },
    async api(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(await world.authFor(opts.caller ?? 'orgadmin', opts.scopes ?? [])), ...(opts.headers ?? {}) };
      let body: string | undefined;
      if (opts.body !== undefined) {
        body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      return fetch(`${t.url}${path.startsWith('/api/') ? path : `/api/v1${path}`}`, { method, headers, body });
    },
    close: () => t.close(),
  };
  return world;
}

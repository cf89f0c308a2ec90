// /v2/auth: who is asking (every Quay credential form) and which of the requested actions they get.
import type { Principal, Services } from './context.ts';
import { ANONYMOUS, principalFor } from './context.ts';
import { findUser, isSuperuser, touchLastAccessed, verifyAppToken, verifyOAuthToken, verifyPassword, verifyRobotToken } from './accounts.ts';
import { canCreateIn, orgRole, repoRole, roleAtLeast } from './permissions.ts';
import { findRepo } from './repositories.ts';
import { capOrgRole } from './organizations.ts';
import { proxyCacheForNamespace } from './proxy-cache.ts';
import { splitRepoPath } from './names.ts';
import type { AccessEntry } from './registry-tokens.ts';

/** Basic credentials in every Quay form; null when they are wrong. */
export async function authenticateBasic(s: Services, username: string, password: string): Promise<Principal | null> {
  if (username === '$app') {
    if (!s.config.features.APP_SPECIFIC_TOKENS) return null;
    const u = await verifyAppToken(s, password);
    return u ? principalFor(u, 'apptoken', { superuser: isSuperuser(s, u) }) : null;
  }
  if (username === '$oauthtoken') {
    const r = await verifyOAuthToken(s, password);
    return r ? principalFor(r.user, 'oauth', { scopes: r.scopes, superuser: isSuperuser(s, r.user) && r.scopes.includes('super:user') }) : null;
  }
  if (username.includes('+')) {
    const robot = await verifyRobotToken(s, username, password);
    if (!robot) return null;
    await touchLastAccessed(s, robot.id);
    return principalFor(robot, 'robot');
  }
  const u = await verifyPassword(s, username, password);
  if (u) {
    await touchLastAccessed(s, u.id);
    return principalFor(u, 'password', { superuser: isSuperuser(s, u) });
  }
  // Quay also accepts an app token as the password of its own user.
  if (s.config.features.APP_SPECIFIC_TOKENS && password.length === 120) {
    const t = await verifyAppToken(s, password);
    if (t && t.username === username) return principalFor(t, 'apptoken', { superuser: isSuperuser(s, t) });
  }
  return null;
}

export interface ScopeRequest {
  type: string;
  name: string;
  actions: string[];
}

/** "repository:ns/repo:pull,push" — names may not contain ':' but the type may carry "(class)". */
export function parseScope(scope: string): ScopeRequest | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return null;
  const type = scope.slice(0, first).replace(/\(.*\)$/, '');
  const name = scope.slice(first + 1, last);
  const actions = scope.slice(last + 1).split(',').map((a) => a.trim()).filter(Boolean);
  if (!name || actions.length === 0) return null;
  return { type, name, actions };
}

/** The subset of requested actions the principal holds. Unknown or invalid names grant nothing. */
export async function grantAccess(s: Services, p: Principal, req: ScopeRequest): Promise<AccessEntry> {
  const granted = new Set<string>();
  if (req.type === 'registry' && req.name === 'catalog') {
    if (req.actions.includes('*') && p.kind !== 'anonymous') granted.add('*');
    return { type: 'registry', name: 'catalog', actions: [...granted] };
  }
  if (req.type !== 'repository') return { type: req.type, name: req.name, actions: [] };
  let ns: string, name: string;
  try {
    ({ namespace: ns, repo: name } = splitRepoPath(req.name, s.config.features.EXTENDED_REPOSITORY_NAMES));
  } catch {
    return { type: 'repository', name: req.name, actions: [] };
  }
  const readonly = s.config.registryState === 'readonly';
  const proxy = await proxyCacheForNamespace(s, ns);
  if (proxy) {
    // Proxy-cache organizations (Quay's can_pullthru): members may pull any repository, existing
    // or not (it is created on pull); nobody may push, delete or administer through /v2.
    const pull = req.actions.includes('pull') && p.kind !== 'anonymous'
      && (capOrgRole(p, await orgRole(s, p, proxy.orgId)) !== null || await canRead(s, p, ns, name));
    return { type: 'repository', name: req.name, actions: pull ? ['pull'] : [] };
  }
  const repo = await findRepo(s, ns, name);
  if (repo) {
    const role = await repoRole(s, p, repo);
    const writable = !readonly && repo.state === 'NORMAL';
    for (const a of req.actions) {
      if (a === 'pull' && roleAtLeast(role, 'read')) granted.add('pull');
      if (a === 'push' && writable && roleAtLeast(role, 'write')) granted.add('push');
      if ((a === '*' || a === 'delete') && roleAtLeast(role, 'admin')) granted.add(a);
    }
  } else {
    const nsRow = await findUser(s, ns);
    // Like Quay's ReadRepositoryPermission: the namespace owner and organization admins may read
    // any repository of the namespace, even one not pushed yet (they then get NAME_UNKNOWN).
    if (nsRow && req.actions.includes('pull') && p.kind !== 'anonymous'
      && (nsRow.id === p.userId || (nsRow.kind === 'org' && (await orgRole(s, p, nsRow.id)) === 'admin'))) {
      granted.add('pull');
    }
    if (!readonly && req.actions.some((a) => a === 'push' || a === '*')) {
      let mayCreate = false;
      if (nsRow) mayCreate = nsRow.enabled === 1 && (await canCreateIn(s, p, nsRow));
      else mayCreate = s.config.createNamespaceOnPush && p.kind === 'user' && p.scopes === null;
      if (mayCreate) {
        // Creating on push makes the pusher an admin of the new repository, so every action holds.
        for (const a of req.actions) if (a === 'pull' || a === 'push' || a === '*' || a === 'delete') granted.add(a);
      }
    }
  }
  return { type: 'repository', name: req.name, actions: [...granted].sort() };
}

async function canRead(s: Services, p: Principal, ns: string, name: string): Promise<boolean> {
  const repo = await findRepo(s, ns, name);
  return repo ? roleAtLeast(await repoRole(s, p, repo), 'read') : false;
}

export { ANONYMOUS };

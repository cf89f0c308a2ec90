// Robot accounts of a user or an organization: "<namespace>+<shortname>", a 64-character token
// Quay shows again (stored encrypted), a description and free-form metadata, the repository
// permissions they hold, and OIDC federation bindings (issuer + subject).
import type { Principal, Services } from './context.ts';
import { createRobot, findUser, findUserById, robotToken, type User } from './accounts.ts';
import { randomCode, sha256Hex } from './crypto.ts';
import { DataModelError } from './data-errors.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { denied, findOrganization, notFound, orgAccess, type Actor } from './organizations.ts';

/** Whose robots: the calling user's own, or an organization's. */
export type RobotOwnerRef = { kind: 'user' } | { kind: 'org'; orgname: string };

type Need = 'list' | 'read' | 'write';

interface OwnerAccess {
  owner: User;
  /** May see tokens. */
  token: boolean;
  /** May see the teams and repositories of listed robots. */
  permissions: boolean;
}

/**
 * Resolves the namespace and checks the caller against it — the robot is then looked up under
 * that namespace only, so a robot of another namespace is never reachable by name.
 */
async function ownerAccess(s: Services, p: Principal, ref: RobotOwnerRef, need: Need): Promise<OwnerAccess> {
  if (ref.kind === 'user') {
    if (p.kind !== 'user') denied();
    const owner = await findUserById(s, (p as { userId: number }).userId);
    if (!owner || owner.kind !== 'user') denied();
    return { owner: owner!, token: true, permissions: true };
  }
  const org = await findOrganization(s, ref.orgname);
  const a = await orgAccess(s, p, org?.id ?? null);
  const manage = a.admin || a.fullAccess;
  const ok = need === 'write' ? manage : need === 'read' ? manage || a.readonlySuper : a.member || manage || a.readonlySuper;
  if (!ok) denied();
  if (!org) notFound();
  return { owner: org!, token: manage, permissions: manage || a.readonlySuper };
}

export interface RobotRecord {
  robot: User;
  /** null when the caller may not see it (or it was not asked for). */
  token: string | null;
  description: string;
  metadata: Record<string, unknown>;
  lastAccessed: number | null;
}

function parseMetadata(raw: string | null): Record<string, unknown> {
  try {
    const v = raw ? JSON.parse(raw) : {};
    return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
  } catch {
    return {};
  }
}

function lastAccessed(s: Services, robot: User): number | null {
  return s.config.features.USER_LAST_ACCESSED === false ? null : robot.last_accessed;
}

async function record(s: Services, robot: User, withToken: boolean): Promise<RobotRecord> {
  return {
    robot, token: withToken ? await robotToken(s, robot.id) : null, description: robot.description ?? '',
    metadata: parseMetadata(robot.metadata), lastAccessed: lastAccessed(s, robot),
  };
}

async function lookupRobot(s: Services, owner: User, shortname: string): Promise<User> {
  const robot = await findUser(s, `${owner.username}+${shortname}`);
  if (!robot || robot.kind !== 'robot' || robot.robot_owner_id !== owner.id) throw new DataModelError('Could not find robot with specified username');
  return robot;
}

export interface RobotListItem extends RobotRecord {
  teams: string[] | null;
  repositories: string[] | null;
}

/** Quay's robots_list: most recently used first; tokens and permissions only where allowed. */
export async function listRobots(
  s: Services, p: Principal, ref: RobotOwnerRef, opts: { token: boolean; permissions: boolean; limit: number | null },
): Promise<{ robots: RobotListItem[]; includeToken: boolean; includePermissions: boolean }> {
  const a = await ownerAccess(s, p, ref, 'list');
  const includeToken = a.token && opts.token;
  const includePermissions = a.permissions && opts.permissions;
  let q = s.db.selectFrom('users').selectAll().where('kind', '=', 'robot').where('robot_owner_id', '=', a.owner.id)
    .orderBy((eb) => eb.case().when('last_accessed', 'is', null).then(1).else(0).end())
    .orderBy('last_accessed', 'desc').orderBy('id');
  if (opts.limit !== null) q = q.limit(opts.limit);
  const robots = await q.execute();
  const out: RobotListItem[] = [];
  for (const robot of robots) {
    const item: RobotListItem = { ...(await record(s, robot, includeToken)), teams: null, repositories: null };
    if (includePermissions) {
      item.teams = (await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id').select('teams.name')
        .where('team_members.user_id', '=', robot.id).orderBy('team_members.id').execute()).map((r) => r.name);
      item.repositories = [...new Set((await s.db.selectFrom('repo_permissions').innerJoin('repositories', 'repositories.id', 'repo_permissions.repository_id')
        .select('repositories.name').where('repo_permissions.user_id', '=', robot.id).orderBy('repo_permissions.id').execute()).map((r) => r.name))];
    }
    out.push(item);
  }
  return { robots: out, includeToken, includePermissions };
}

export async function getRobot(s: Services, p: Principal, ref: RobotOwnerRef, shortname: string): Promise<{ record: RobotRecord; includeToken: boolean }> {
  const a = await ownerAccess(s, p, ref, 'read');
  const robot = await lookupRobot(s, a.owner, shortname);
  return { record: await record(s, robot, a.token), includeToken: a.token };
}

export async function createRobotAccount(
  s: Services, actor: Actor, ref: RobotOwnerRef, shortname: string, input: { description?: string; unstructuredMetadata?: Record<string, unknown> },
): Promise<RobotRecord> {
  const a = await ownerAccess(s, actor.principal, ref, 'write');
  const { robot, token } = await createRobot(s, a.owner, shortname, input.description ?? '', input.unstructuredMetadata ?? null);
  await logAction(s, 'create_robot', {
    namespaceId: a.owner.id, performer: actor.principal, ip: actor.ip,
    metadata: { robot: shortname, description: input.description ?? null, unstructured_metadata: input.unstructuredMetadata ?? null },
  });
  return { robot, token, description: robot.description ?? '', metadata: parseMetadata(robot.metadata), lastAccessed: lastAccessed(s, robot) };
}

/** Repository mirrors pull with a robot; such a robot cannot be deleted from under them. */
async function robotUsedByMirror(s: Services, owner: User, robotName: string): Promise<boolean> {
  const rows = await s.db.selectFrom('mirror_configs').innerJoin('repositories', 'repositories.id', 'mirror_configs.repository_id')
    .select('mirror_configs.config').where('repositories.namespace_id', '=', owner.id).execute();
  return rows.some((r) => {
    const c = parseMetadata(r.config);
    return c.robot_username === robotName || c.internal_robot === robotName;
  });
}

export async function deleteRobot(s: Services, actor: Actor, ref: RobotOwnerRef, shortname: string): Promise<void> {
  const a = await ownerAccess(s, actor.principal, ref, 'write');
  const name = `${a.owner.username}+${shortname}`;
  if (await robotUsedByMirror(s, a.owner, name)) throw new DomainError('invalid_request', 'Robot is being used by a mirror');
  const robot = await findUser(s, name);
  if (!robot || robot.kind !== 'robot' || robot.robot_owner_id !== a.owner.id) throw new DataModelError(`Could not find robot with username: ${name}`);
  await s.db.transaction().execute(async (tx) => {
    // Team memberships, permissions, prototypes naming it, its token and federation go with it.
    await tx.deleteFrom('users').where('id', '=', robot.id).execute();
    await logAction(s, 'delete_robot', { namespaceId: a.owner.id, performer: actor.principal, ip: actor.ip, metadata: { robot: shortname } }, tx);
  });
}

/** A new token; the old one stops working at once. */
export async function regenerateRobotToken(s: Services, actor: Actor, ref: RobotOwnerRef, shortname: string): Promise<RobotRecord> {
  const a = await ownerAccess(s, actor.principal, ref, 'write');
  const robot = await lookupRobot(s, a.owner, shortname);
  const token = randomCode(64);
  await s.db.transaction().execute(async (tx) => {
    const updated = await tx.updateTable('robot_tokens').set({ token_enc: s.box.encrypt(token), token_hash: sha256Hex(token) })
      .where('robot_id', '=', robot.id).returning('id').execute();
    if (updated.length === 0) await tx.insertInto('robot_tokens').values({ robot_id: robot.id, token_enc: s.box.encrypt(token), token_hash: sha256Hex(token) }).execute();
    await logAction(s, 'regenerate_robot_token', { namespaceId: a.owner.id, performer: actor.principal, ip: actor.ip, metadata: { robot: shortname } }, tx);
  });
  return { ...(await record(s, robot, false)), token };
}

export interface RobotRepoPermission {
  repository: string;
  isPublic: boolean;
  role: string;
}

export async function robotPermissions(s: Services, p: Principal, ref: RobotOwnerRef, shortname: string): Promise<RobotRepoPermission[]> {
  const a = await ownerAccess(s, p, ref, 'read');
  const robot = await lookupRobot(s, a.owner, shortname);
  const rows = await s.db.selectFrom('repo_permissions').innerJoin('repositories', 'repositories.id', 'repo_permissions.repository_id')
    .select(['repositories.name', 'repositories.is_public', 'repo_permissions.role'])
    .where('repo_permissions.user_id', '=', robot.id).orderBy('repo_permissions.id').execute();
  return rows.map((r) => ({ repository: r.name, isPublic: r.is_public === 1, role: r.role }));
}

// ---- OIDC federation: which external workload identities may exchange their tokens for this robot.

export interface FederationBinding {
  issuer: string;
  subject: string;
}

export const MAX_FEDERATION_BINDINGS = 100;

export async function getFederation(s: Services, p: Principal, ref: RobotOwnerRef, shortname: string): Promise<FederationBinding[]> {
  const a = await ownerAccess(s, p, ref, 'read');
  const robot = await lookupRobot(s, a.owner, shortname);
  return s.db.selectFrom('robot_federation').select(['issuer', 'subject']).where('robot_id', '=', robot.id).orderBy('id').execute();
}

/** Quay's _parse_federation_config: every binding has both fields, the issuer is a URL, no repeats. */
function parseFederation(config: { issuer?: unknown; subject?: unknown }[]): FederationBinding[] {
  if (config.length > MAX_FEDERATION_BINDINGS) throw new DomainError('invalid_request', `At most ${MAX_FEDERATION_BINDINGS} federation config entries are allowed`);
  const seen = new Set<string>();
  const out: FederationBinding[] = [];
  for (const item of config) {
    const { issuer, subject } = item;
    if (typeof issuer !== 'string' || typeof subject !== 'string' || !issuer || !subject) {
      throw new DomainError('invalid_request', 'Missing one or more required fields (issuer, subject)');
    }
    if (!issuer.startsWith('http://') && !issuer.startsWith('https://')) throw new DomainError('invalid_request', 'Issuer must be a URL (http:// or https://)');
    const key = JSON.stringify([issuer, subject]);
    if (seen.has(key)) throw new DomainError('invalid_request', 'Duplicate federation config entry');
    seen.add(key);
    out.push({ issuer, subject });
  }
  return out;
}

/** Replaces the robot's bindings with `config`. */
export async function setFederation(s: Services, actor: Actor, ref: RobotOwnerRef, shortname: string, config: { issuer?: unknown; subject?: unknown }[]): Promise<FederationBinding[]> {
  const a = await ownerAccess(s, actor.principal, ref, 'write');
  const bindings = parseFederation(config);
  const robot = await lookupRobot(s, a.owner, shortname);
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('robot_federation').where('robot_id', '=', robot.id).execute();
    if (bindings.length) await tx.insertInto('robot_federation').values(bindings.map((b) => ({ robot_id: robot.id, ...b }))).execute();
    await logAction(s, 'create_robot_federation', { namespaceId: a.owner.id, performer: actor.principal, ip: actor.ip, metadata: { config: bindings, robot: shortname } }, tx);
  });
  return bindings;
}

export async function deleteFederation(s: Services, actor: Actor, ref: RobotOwnerRef, shortname: string): Promise<void> {
  const a = await ownerAccess(s, actor.principal, ref, 'write');
  const robot = await lookupRobot(s, a.owner, shortname);
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('robot_federation').where('robot_id', '=', robot.id).execute();
    await logAction(s, 'delete_robot_federation', { namespaceId: a.owner.id, performer: actor.principal, ip: actor.ip, metadata: { robot: shortname } }, tx);
  });
}

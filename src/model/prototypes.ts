// Default permissions ("prototypes") of an organization: when a repository is created in the org
// (by the activating user, or by anyone when none is set), the delegate user, robot or team gets
// the role. They are applied by repositories.ts createRepository, for API and push creation alike.
import { randomUUID } from 'node:crypto';
import type { Principal, Services } from './context.ts';
import { findUser, findUserById, type User } from './accounts.ts';
import { DataModelError } from './data-errors.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { denied, findOrganization, notFound, orgAccess, type Actor } from './organizations.ts';
import type { Role } from './permissions.ts';
import { findTeam, type Team } from './teams.ts';

export interface PrototypeUser {
  user: User;
  isOrgMember: boolean;
}

export interface Prototype {
  uuid: string;
  role: Role;
  activatingUser: PrototypeUser | null;
  delegate: { kind: 'user'; user: PrototypeUser } | { kind: 'team'; team: Team };
}

/** Admins; superusers with full access; global read-only superusers may list. */
async function requireAdmin(s: Services, p: Principal, orgname: string, mode: 'read' | 'write'): Promise<User> {
  const org = await findOrganization(s, orgname);
  const a = await orgAccess(s, p, org?.id ?? null);
  if (!(a.admin || a.fullAccess || (mode === 'read' && a.readonlySuper))) denied();
  if (!org) notFound();
  return org!;
}

async function memberIds(s: Services, orgId: number): Promise<Set<number>> {
  const rows = await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id')
    .select('team_members.user_id').where('teams.org_id', '=', orgId).execute();
  return new Set(rows.map((r) => r.user_id));
}

type Row = { uuid: string; role: Role; activating_user_id: number | null; delegate_user_id: number | null; delegate_team_id: number | null };

async function view(s: Services, orgId: number, row: Row, members: Set<number>): Promise<Prototype> {
  const pu = async (id: number): Promise<PrototypeUser> => {
    const user = (await findUserById(s, id))!;
    return { user, isOrgMember: user.kind === 'robot' || members.has(user.id) };
  };
  let delegate: Prototype['delegate'];
  if (row.delegate_user_id !== null) delegate = { kind: 'user', user: await pu(row.delegate_user_id) };
  else {
    const team = await s.db.selectFrom('teams').selectAll().where('id', '=', row.delegate_team_id!).where('org_id', '=', orgId).executeTakeFirstOrThrow();
    delegate = { kind: 'team', team };
  }
  return { uuid: row.uuid, role: row.role, activatingUser: row.activating_user_id !== null ? await pu(row.activating_user_id) : null, delegate };
}

export async function listPrototypes(s: Services, p: Principal, orgname: string): Promise<Prototype[]> {
  const org = await requireAdmin(s, p, orgname, 'read');
  const rows = await s.db.selectFrom('permission_prototypes').selectAll().where('org_id', '=', org.id).orderBy('id').execute();
  const members = await memberIds(s, org.id);
  const out: Prototype[] = [];
  for (const r of rows) out.push(await view(s, org.id, r, members));
  return out;
}

function logMetadata(actorName: string, row: Row, names: { activating: string | null; delegateUser: string | null; delegateTeam: string | null }, extra: Record<string, unknown> = {}) {
  return {
    prototypeid: row.uuid, username: actorName, activating_username: names.activating, role: row.role, ...extra,
    ...(names.delegateUser !== null ? { delegate_user: names.delegateUser } : { delegate_team: names.delegateTeam }),
  };
}

async function namesOf(s: Services, row: Row): Promise<{ activating: string | null; delegateUser: string | null; delegateTeam: string | null }> {
  const name = async (id: number | null) => (id === null ? null : (await findUserById(s, id))?.username ?? null);
  const team = row.delegate_team_id === null ? null
    : (await s.db.selectFrom('teams').select('name').where('id', '=', row.delegate_team_id).executeTakeFirst())?.name ?? null;
  return { activating: await name(row.activating_user_id), delegateUser: await name(row.delegate_user_id), delegateTeam: team };
}

const actorName = (p: Principal): string => (p.kind === 'anonymous' ? '(anonymous)' : p.username);

export interface NewPrototype {
  role: Role;
  activatingUser?: string | null;
  delegate: { kind: 'user' | 'team'; name: string };
}

export async function createPrototype(s: Services, actor: Actor, orgname: string, input: NewPrototype): Promise<Prototype> {
  const org = await requireAdmin(s, actor.principal, orgname, 'write');
  let activating: User | undefined;
  if (input.activatingUser) {
    activating = await findUser(s, input.activatingUser);
    if (!activating || activating.kind === 'org') throw new DomainError('invalid_request', 'Unknown activating user');
  }
  let delegateUser: User | undefined;
  let delegateTeam: Team | undefined;
  if (input.delegate.kind === 'user') {
    delegateUser = await findUser(s, input.delegate.name);
    if (delegateUser?.kind === 'org') delegateUser = undefined;
    // The same rule as direct permissions: only robots of this organization may be delegates.
    if (delegateUser?.kind === 'robot' && delegateUser.robot_owner_id !== org.id) {
      throw new DomainError('invalid_request', `Cannot add robot ${delegateUser.username} under namespace ${orgname}`);
    }
  } else {
    delegateTeam = await findTeam(s, org.id, input.delegate.name);
    if (!delegateTeam) throw new DataModelError(`Team does not exist: ${orgname}/${input.delegate.name}`);
  }
  if (!delegateUser && !delegateTeam) throw new DomainError('invalid_request', 'Missing delegate user or team');
  const row: Row = {
    uuid: randomUUID(), role: input.role, activating_user_id: activating?.id ?? null,
    delegate_user_id: delegateUser?.id ?? null, delegate_team_id: delegateTeam?.id ?? null,
  };
  // Names are read before the transaction: SQLite has one connection, which the transaction holds.
  const names = await namesOf(s, row);
  await s.db.transaction().execute(async (tx) => {
    await tx.insertInto('permission_prototypes').values({ ...row, org_id: org.id }).execute();
    await logAction(s, 'create_prototype_permission', {
      namespaceId: org.id, performer: actor.principal, ip: actor.ip, metadata: logMetadata(actorName(actor.principal), row, names),
    }, tx);
  });
  return view(s, org.id, row, await memberIds(s, org.id));
}

async function findPrototype(s: Services, orgId: number, uuid: string): Promise<Row & { id: number }> {
  const row = await s.db.selectFrom('permission_prototypes').selectAll().where('org_id', '=', orgId).where('uuid', '=', uuid).executeTakeFirst();
  if (!row) notFound();
  return row!;
}

export async function updatePrototype(s: Services, actor: Actor, orgname: string, uuid: string, role: Role): Promise<Prototype> {
  const org = await requireAdmin(s, actor.principal, orgname, 'write');
  const existing = await findPrototype(s, org.id, uuid);
  const row: Row = { ...existing, role };
  const names = await namesOf(s, row);
  await s.db.transaction().execute(async (tx) => {
    await tx.updateTable('permission_prototypes').set({ role }).where('id', '=', existing.id).execute();
    await logAction(s, 'modify_prototype_permission', {
      namespaceId: org.id, performer: actor.principal, ip: actor.ip,
      metadata: logMetadata(actorName(actor.principal), row, names, { original_role: existing.role }),
    }, tx);
  });
  return view(s, org.id, row, await memberIds(s, org.id));
}

export async function deletePrototype(s: Services, actor: Actor, orgname: string, uuid: string): Promise<void> {
  const org = await requireAdmin(s, actor.principal, orgname, 'write');
  const existing = await findPrototype(s, org.id, uuid);
  const names = await namesOf(s, existing);
  await s.db.transaction().execute(async (tx) => {
    await tx.deleteFrom('permission_prototypes').where('id', '=', existing.id).execute();
    await logAction(s, 'delete_prototype_permission', {
      namespaceId: org.id, performer: actor.principal, ip: actor.ip, metadata: logMetadata(actorName(actor.principal), existing, names),
    }, tx);
  });
}

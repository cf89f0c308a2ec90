// Teams of an organization: their org-wide role, members (users and the org's own robots), e-mail
// and user invites, and the repository permissions they hold.
import { randomUUID } from 'node:crypto';
import type { Selectable, Transaction } from 'kysely';
import type { Database, TeamsTable } from '../db/schema.ts';
import type { Principal, Services } from './context.ts';
import { findUser, findUserById, type User } from './accounts.ts';
import { randomCode, sha256Hex } from './crypto.ts';
import { DataModelError } from './data-errors.ts';
import { DomainError } from './errors.ts';
import { logAction } from './logs.ts';
import { TEAM_RE } from './names.ts';
import type { OrgRole } from './permissions.ts';
import { denied, findOrganization, notFound, orgAccess, wouldOrphan, type Actor, type OrgAccess } from './organizations.ts';

export type Team = Selectable<TeamsTable>;
type Db = Transaction<Database> | Services['db'];

export async function findTeam(s: Services, orgId: number, name: string, db: Db = s.db): Promise<Team | undefined> {
  return db.selectFrom('teams').selectAll().where('org_id', '=', orgId).where('name', '=', name).executeTakeFirst();
}

function feature(s: Services, name: string, dflt: boolean): boolean {
  const v = s.config.features[name];
  return v === undefined ? dflt : v;
}

/** Team changes: organization admins, and superusers with full access. Checked before the org is looked up. */
async function requireTeamAdmin(s: Services, p: Principal, orgname: string): Promise<{ org: User; access: OrgAccess }> {
  const org = await findOrganization(s, orgname);
  const access = await orgAccess(s, p, org?.id ?? null);
  if (!access.admin && !access.fullAccess) denied();
  if (!org) notFound();
  return { org: org!, access };
}

async function isTeamMember(s: Services, p: Principal, teamId: number, db: Db = s.db): Promise<boolean> {
  if (p.kind === 'anonymous') return false;
  return !!(await db.selectFrom('team_members').select('id').where('team_id', '=', teamId).where('user_id', '=', p.userId).executeTakeFirst());
}

/** Quay's ViewTeamPermission: the team's own members (as far as the token's scopes reach) and org admins. */
export async function canViewTeam(s: Services, p: Principal, access: OrgAccess, teamId: number): Promise<boolean> {
  return access.admin || (access.role !== null && (await isTeamMember(s, p, teamId)));
}

/** Names of the admin teams of the org the user is in (Quay's __get_user_admin_teams). */
async function userAdminTeams(s: Services, orgId: number, userId: number | null, db: Db): Promise<Team[]> {
  if (userId === null) return [];
  return db.selectFrom('teams').innerJoin('team_members', 'team_members.team_id', 'teams.id').selectAll('teams')
    .where('teams.org_id', '=', orgId).where('teams.role', '=', 'admin').where('team_members.user_id', '=', userId).execute();
}

const userIdOf = (p: Principal): number | null => (p.kind === 'anonymous' ? null : p.userId);
const usernameOf = (p: Principal): string => (p.kind === 'anonymous' ? '(anonymous)' : p.username);

export interface TeamResult {
  team: Team;
  created: boolean;
  canView: boolean;
}

/** Quay's OrganizationTeam.put: creates the team, or changes its description and role. */
export async function upsertTeam(
  s: Services, actor: Actor, orgname: string, teamname: string, input: { role: OrgRole; description?: string },
): Promise<TeamResult> {
  const p = actor.principal;
  const { org, access } = await requireTeamAdmin(s, p, orgname);
  const log = (kind: string, metadata: Record<string, unknown>, tx: Db) =>
    logAction(s, kind, { namespaceId: org.id, performer: p, ip: actor.ip, metadata }, tx as Transaction<Database>);
  const result = await s.db.transaction().execute(async (tx) => {
    const existing = await findTeam(s, org.id, teamname, tx);
    if (!existing) {
      if (!TEAM_RE.test(teamname)) {
        throw new DataModelError(`Invalid team name ${teamname}: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`);
      }
      if (teamname.length < 2 || teamname.length > 255) {
        throw new DataModelError(`Invalid team name ${teamname}: Team must be between 2 and 255 characters in length`);
      }
      const team = await tx.insertInto('teams').values({ org_id: org.id, name: teamname, role: input.role, description: input.description ?? '' })
        .returningAll().executeTakeFirstOrThrow();
      await log('org_create_team', { team: teamname }, tx);
      return { team, created: true };
    }
    let team = existing;
    if (input.description !== undefined && input.description !== team.description) {
      await tx.updateTable('teams').set({ description: input.description }).where('id', '=', team.id).execute();
      team = { ...team, description: input.description };
      await log('org_set_team_description', { team: teamname, description: input.description }, tx);
    }
    if (input.role !== team.role) {
      if (team.role === 'admin') {
        const mine = await userAdminTeams(s, org.id, userIdOf(p), tx);
        if (mine.some((t) => t.id === team.id) && mine.length <= 1) {
          throw new DataModelError(`Cannot remove admin from team '${teamname}' because calling user would no longer have admin on org '${orgname}'`);
        }
        // A superuser acting from outside could otherwise leave the organization without any admin.
        if (await wouldOrphan(s, org.id, null, team.id, tx)) {
          throw new DataModelError(`Cannot remove admin from team '${teamname}' because organization '${orgname}' would have no admin left`);
        }
      }
      await tx.updateTable('teams').set({ role: input.role }).where('id', '=', team.id).execute();
      team = { ...team, role: input.role };
      await log('org_set_team_role', { team: teamname, role: input.role }, tx);
    }
    return { team, created: false };
  });
  return { ...result, canView: await canViewTeam(s, p, access, result.team.id) };
}

/** Quay's OrganizationTeam.delete, which refuses to take the caller's last admin team away. */
export async function deleteTeam(s: Services, actor: Actor, orgname: string, teamname: string): Promise<void> {
  const p = actor.principal;
  const { org } = await requireTeamAdmin(s, p, orgname);
  await s.db.transaction().execute(async (tx) => {
    const team = await findTeam(s, org.id, teamname, tx);
    if (!team) throw new DataModelError(`Team '${teamname}' is not a team in org '${orgname}'`);
    if (team.role === 'admin') {
      const mine = await userAdminTeams(s, org.id, userIdOf(p), tx);
      const orphan = await wouldOrphan(s, org.id, null, team.id, tx);
      if ((mine.length <= 1 && mine[0]?.id === team.id) || orphan) {
        throw new DataModelError(`Deleting team '${teamname}' would remove admin ability for user '${usernameOf(p)}' in organization '${orgname}'`);
      }
    }
    await tx.deleteFrom('teams').where('id', '=', team.id).execute();
    await logAction(s, 'org_delete_team', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { team: teamname } }, tx);
  });
}

// ---- Members

export interface TeamInvite {
  id: number;
  user: User | null;
  email: string | null;
}

export interface TeamMembers {
  team: Team;
  members: User[];
  invites: TeamInvite[];
  canEdit: boolean;
}

/** Quay's TeamMemberList.get: the team's members, org admins and superusers may list it. */
export async function listTeamMembers(s: Services, p: Principal, orgname: string, teamname: string, includePending: boolean): Promise<TeamMembers> {
  const org = await findOrganization(s, orgname);
  const access = await orgAccess(s, p, org?.id ?? null);
  const team = org ? await findTeam(s, org.id, teamname) : undefined;
  const viewer = team ? await canViewTeam(s, p, access, team.id) : access.admin;
  if (!viewer && !access.fullAccess && !access.readonlySuper) denied();
  if (!team) notFound();
  const members = await s.db.selectFrom('team_members').innerJoin('users', 'users.id', 'team_members.user_id')
    .selectAll('users').where('team_members.team_id', '=', team!.id).orderBy('team_members.id').execute();
  const invites: TeamInvite[] = [];
  if (includePending && access.admin) {
    const rows = await s.db.selectFrom('team_invites').selectAll().where('team_id', '=', team!.id).orderBy('id').execute();
    for (const r of rows) invites.push({ id: r.id, email: r.email, user: r.user_id !== null ? (await findUserById(s, r.user_id)) ?? null : null });
  }
  return { team: team!, members, invites, canEdit: access.admin };
}

/** Quay's TeamMember.put: adds a user or one of the org's robots, or invites a user who is not yet
 * in the organization when mailing with REQUIRE_TEAM_INVITE is on. */
export async function addTeamMember(s: Services, actor: Actor, orgname: string, teamname: string, membername: string): Promise<{ user: User; invited: boolean }> {
  const p = actor.principal;
  const { org } = await requireTeamAdmin(s, p, orgname);
  const team = await findTeam(s, org.id, teamname);
  if (!team) notFound();
  const user = await findUser(s, membername);
  if (!user || user.kind === 'org') throw new DomainError('invalid_request', 'Unknown user');
  // A robot only ever joins teams of the namespace that owns it (checked whether or not invites
  // are required, unlike Quay, so a robot of another organization can never be granted access).
  if (user!.kind === 'robot' && user!.robot_owner_id !== org.id) {
    throw new DataModelError('Cannot add the specified robot to this team, as it is not a member of the organization');
  }
  const requiresInvite = s.config.features.MAILING && feature(s, 'REQUIRE_TEAM_INVITE', true) && user!.kind === 'user'
    && !(await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id').select('team_members.id')
      .where('teams.org_id', '=', org.id).where('team_members.user_id', '=', user!.id).executeTakeFirst());
  return s.db.transaction().execute(async (tx) => {
    if (requiresInvite) {
      const code = await createInvite(s, tx, team!, userIdOf(p), { user: user! });
      await tx.insertInto('user_notifications').values({
        uuid: randomUUID(), user_id: user!.id, kind: 'org_team_invite', dismissed: 0, created_at: s.now(),
        metadata: JSON.stringify({ code, inviter: usernameOf(p), org: orgname, team: teamname }),
      }).execute();
      await logAction(s, 'org_invite_team_member', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { user: membername, member: membername, team: teamname } }, tx);
      return { user: user!, invited: true };
    }
    const already = await tx.selectFrom('team_members').select('id').where('team_id', '=', team!.id).where('user_id', '=', user!.id).executeTakeFirst();
    if (already) throw new DataModelError(`User ${membername} is already a member of team ${teamname}`);
    await tx.insertInto('team_members').values({ team_id: team!.id, user_id: user!.id }).execute();
    await logAction(s, 'org_add_team_member', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { member: membername, team: teamname } }, tx);
    return { user: user!, invited: false };
  });
}

/** Quay's TeamMember.delete: cancels the user's pending invite, or takes them out of the team. */
export async function removeTeamMember(s: Services, actor: Actor, orgname: string, teamname: string, membername: string): Promise<void> {
  const p = actor.principal;
  const { org } = await requireTeamAdmin(s, p, orgname);
  const team = await findTeam(s, org.id, teamname);
  if (!team) notFound();
  const member = await findUser(s, membername);
  if (!member || member.kind === 'org') notFound();
  await s.db.transaction().execute(async (tx) => {
    const invite = await tx.deleteFrom('team_invites').where('team_id', '=', team!.id).where('user_id', '=', member!.id).returning('id').execute();
    if (invite.length > 0) {
      await logAction(s, 'org_delete_team_member_invite', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { user: membername, team: teamname, member: membername } }, tx);
      return;
    }
    const row = await tx.selectFrom('team_members').select('id').where('team_id', '=', team!.id).where('user_id', '=', member!.id).executeTakeFirst();
    if (!row) throw new DataModelError(`User ${membername} does not belong to team ${teamname}`);
    if (team!.role === 'admin' && member!.id === userIdOf(p)) {
      const mine = await userAdminTeams(s, org.id, member!.id, tx);
      if (mine.length <= 1) throw new DataModelError('User cannot remove themselves from their only admin team.');
    }
    if (team!.role === 'admin' && (await wouldOrphan(s, org.id, { userId: member!.id, teamIds: [team!.id] }, null, tx))) {
      throw new DataModelError('Cannot remove user as they are the only organization admin');
    }
    await tx.deleteFrom('team_members').where('id', '=', row.id).execute();
    await logAction(s, 'org_remove_team_member', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { member: membername, team: teamname } }, tx);
  });
}

// ---- Invites (FEATURE_MAILING)

/** Stores an invite and returns its code; only the code's hash is kept. */
async function createInvite(s: Services, tx: Db, team: Team, inviterId: number | null, who: { user: User } | { email: string }): Promise<string> {
  const code = randomCode(48);
  await tx.insertInto('team_invites').values({
    team_id: team.id, user_id: 'user' in who ? who.user.id : null, email: 'email' in who ? who.email : null,
    inviter_id: inviterId, code_hash: sha256Hex(code), created_at: s.now(),
  }).execute();
  return code;
}

/**
 * Quay's InviteTeamMember.put. The invite e-mail carries the code; Quayside has no mail sender
 * yet, so the code is only stored (hashed) — wire the sender here when mailing arrives.
 */
export async function inviteEmail(s: Services, actor: Actor, orgname: string, teamname: string, email: string): Promise<TeamInvite> {
  const p = actor.principal;
  const { org } = await requireTeamAdmin(s, p, orgname);
  const team = await findTeam(s, org.id, teamname);
  if (!team) notFound();
  return s.db.transaction().execute(async (tx) => {
    await createInvite(s, tx, team!, userIdOf(p), { email });
    const row = await tx.selectFrom('team_invites').select('id').where('team_id', '=', team!.id).where('email', '=', email).orderBy('id', 'desc').executeTakeFirstOrThrow();
    await logAction(s, 'org_invite_team_member', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { email, team: teamname, member: email } }, tx);
    return { id: row.id, user: null, email };
  });
}

export async function deleteEmailInvite(s: Services, actor: Actor, orgname: string, teamname: string, email: string): Promise<void> {
  const p = actor.principal;
  const { org } = await requireTeamAdmin(s, p, orgname);
  const team = await findTeam(s, org.id, teamname);
  if (!team) notFound();
  const gone = await s.db.deleteFrom('team_invites').where('team_id', '=', team!.id).where('email', '=', email).returning('id').execute();
  if (gone.length === 0) notFound();
  await logAction(s, 'org_delete_team_member_invite', { namespaceId: org.id, performer: p, ip: actor.ip, metadata: { email, team: teamname, member: email } });
}

async function lookupInvite(s: Services, code: string, db: Db) {
  const invite = await db.selectFrom('team_invites').innerJoin('teams', 'teams.id', 'team_invites.team_id')
    .innerJoin('users as org', 'org.id', 'teams.org_id')
    .selectAll('team_invites').select(['teams.name as team_name', 'teams.org_id', 'org.username as org_name'])
    .where('team_invites.code_hash', '=', sha256Hex(code)).executeTakeFirst();
  if (!invite) throw new DataModelError('Invalid confirmation code.');
  return invite;
}

async function usernameById(db: Db, id: number | null): Promise<string | null> {
  if (id === null) return null;
  return (await db.selectFrom('users').select('username').where('id', '=', id).executeTakeFirst())?.username ?? null;
}

/** Quay's TeamMemberInvite.put: joins every team of that organization the user was invited to. */
export async function acceptInvite(s: Services, actor: Actor, code: string): Promise<{ org: string; team: string }> {
  const p = actor.principal;
  if (p.kind !== 'user') denied();
  const user = (await findUserById(s, (p as { userId: number }).userId))!;
  return s.db.transaction().execute(async (tx) => {
    const found = await lookupInvite(s, code, tx);
    if (found.user_id !== null && found.user_id !== user.id) {
      throw new DataModelError(`This invite is intended for user "${await usernameById(tx, found.user_id)}".\n                 Please login to that account and try again.`);
    }
    const mine = await tx.selectFrom('team_invites').innerJoin('teams', 'teams.id', 'team_invites.team_id').select(['team_invites.id', 'team_invites.team_id'])
      .where('teams.org_id', '=', found.org_id)
      .where((eb) => eb.or([
        eb('team_invites.user_id', '=', user.id),
        ...(user.verified && user.email ? [eb('team_invites.email', '=', user.email)] : []),
      ])).execute();
    if (!mine.some((i) => i.id === found.id)) {
      throw new DataModelError(`This invite is intended for email "${found.email}".\n                   Please login to that account and try again.`);
    }
    for (const i of mine) {
      const already = await tx.selectFrom('team_members').select('id').where('team_id', '=', i.team_id).where('user_id', '=', user.id).executeTakeFirst();
      if (!already) await tx.insertInto('team_members').values({ team_id: i.team_id, user_id: user.id }).execute();
      await tx.deleteFrom('team_invites').where('id', '=', i.id).execute();
    }
    await tx.deleteFrom('user_notifications').where('user_id', '=', user.id).where('kind', '=', 'org_team_invite')
      .where('metadata', 'like', `%"org":${JSON.stringify(found.org_name)}%`).execute();
    await logAction(s, 'org_team_member_invite_accepted', {
      namespaceId: found.org_id, performer: p, ip: actor.ip,
      metadata: { member: user.username, team: found.team_name, inviter: await usernameById(tx, found.inviter_id) },
    }, tx);
    return { org: found.org_name, team: found.team_name };
  });
}

/** Quay's TeamMemberInvite.delete: the invited user declines. */
export async function declineInvite(s: Services, actor: Actor, code: string): Promise<void> {
  const p = actor.principal;
  if (p.kind !== 'user') denied();
  const user = (await findUserById(s, (p as { userId: number }).userId))!;
  await s.db.transaction().execute(async (tx) => {
    const found = await lookupInvite(s, code, tx);
    const mine = found.user_id === user.id || (found.user_id === null && !!user.verified && found.email === user.email);
    if (!mine) throw new DataModelError('Invalid confirmation code.');
    await tx.deleteFrom('team_invites').where('id', '=', found.id).execute();
    await tx.deleteFrom('user_notifications').where('user_id', '=', user.id).where('kind', '=', 'org_team_invite')
      .where('metadata', 'like', `%${JSON.stringify(code)}%`).execute();
    await logAction(s, 'org_team_member_invite_declined', {
      namespaceId: found.org_id, performer: p, ip: actor.ip,
      metadata: { member: user.username, team: found.team_name, inviter: await usernameById(tx, found.inviter_id) },
    }, tx);
  });
}

// ---- Repository permissions of a team, and directory syncing

export interface TeamRepoPermission {
  repository: string;
  isPublic: boolean;
  role: string;
}

/** Quay's TeamPermissions.get (admins and superusers). */
export async function listTeamPermissions(s: Services, p: Principal, orgname: string, teamname: string): Promise<TeamRepoPermission[]> {
  const org = await findOrganization(s, orgname);
  const access = await orgAccess(s, p, org?.id ?? null);
  if (!access.admin && !access.fullAccess && !access.readonlySuper) denied();
  if (!org) notFound();
  const team = await findTeam(s, org!.id, teamname);
  if (!team) notFound();
  const rows = await s.db.selectFrom('repo_permissions').innerJoin('repositories', 'repositories.id', 'repo_permissions.repository_id')
    .select(['repositories.name', 'repositories.is_public', 'repo_permissions.role'])
    .where('repo_permissions.team_id', '=', team!.id).orderBy('repo_permissions.id').execute();
  return rows.map((r) => ({ repository: r.name, isPublic: r.is_public === 1, role: r.role }));
}

/** Team syncing setup (FEATURE_TEAM_SYNCING): superusers, or org admins with NONSUPERUSER_TEAM_SYNCING_SETUP. */
async function requireSyncSetup(s: Services, p: Principal, orgname: string, teamname: string): Promise<{ org: User; team: Team; access: OrgAccess }> {
  const org = await findOrganization(s, orgname);
  const access = await orgAccess(s, p, org?.id ?? null);
  const allowed = (s.config.features.NONSUPERUSER_TEAM_SYNCING_SETUP || access.superuser) && access.admin;
  if (!allowed) denied();
  const team = org ? await findTeam(s, org.id, teamname) : undefined;
  if (!team) notFound();
  return { org: org!, team: team!, access };
}

/** Quayside authenticates against its own database only: there is no directory group to sync
 * a team to, so enabling is refused the way Quay refuses a group lookup that fails. */
export async function enableTeamSync(s: Services, p: Principal, orgname: string, teamname: string): Promise<never> {
  await requireSyncSetup(s, p, orgname, teamname);
  throw new DomainError('invalid_request', 'Could not sync to group: team syncing requires an external authentication service');
}

export async function disableTeamSync(s: Services, p: Principal, orgname: string, teamname: string): Promise<TeamResult> {
  const { team, access } = await requireSyncSetup(s, p, orgname, teamname);
  await s.db.deleteFrom('team_sync').where('team_id', '=', team.id).execute();
  return { team, created: false, canView: await canViewTeam(s, p, access, team.id) };
}

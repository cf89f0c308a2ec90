// Entity autocomplete (Quay's EntitySearch): users by prefix, plus — for members of the namespace
// — its robots, teams and the organization itself. What is returned depends on who asks.
import { sql } from 'kysely';
import type { Principal, Services } from './context.ts';
import type { User } from './accounts.ts';
import { findOrganization, orgAccess } from './organizations.ts';
import type { Team } from './teams.ts';

export const ENTITY_LIMIT = 10;

export interface EntityUser {
  user: User;
  /** null outside an organization search (Quay leaves the field out). */
  isOrgMember: boolean | null;
}

export interface EntityResults {
  teams: Team[];
  users: EntityUser[];
  org: User | null;
}

/** Quay's `unidecode(prefix).replace(" ", "").lower()`: names are ASCII, so anything else is dropped. */
export function normalizePrefix(prefix: string): string {
  return prefix.normalize('NFKD').replace(/[^\x20-\x7e]/g, '').replace(/ /g, '').toLowerCase();
}

const startsWith = (column: string, prefix: string) => sql<boolean>`substr(${sql.ref(column)}, 1, ${prefix.length}) = ${prefix}`;

export async function searchEntities(
  s: Services, p: Principal, rawPrefix: string, opts: { namespace: string; includeTeams: boolean; includeOrgs: boolean },
): Promise<EntityResults> {
  const prefix = normalizePrefix(rawPrefix);
  let robotNamespace: { id: number; name: string } | null = null;
  let teams: Team[] = [];
  let orgResult: User | null = null;
  const org = opts.namespace ? await findOrganization(s, opts.namespace) : undefined;
  if (org) {
    const access = await orgAccess(s, p, org.id);
    if (access.member) {
      robotNamespace = { id: org.id, name: org.username };
      if (opts.includeTeams && prefix) {
        teams = await s.db.selectFrom('teams').selectAll().where('org_id', '=', org.id).where(startsWith('name', prefix))
          .orderBy('name').limit(ENTITY_LIMIT).execute();
      }
      if (opts.includeOrgs && org.username.startsWith(prefix)) orgResult = org;
    }
  } else if (p.kind === 'user' && p.username === opts.namespace && (p.scopes === null || p.scopes.includes('user:admin'))) {
    robotNamespace = { id: p.userId, name: p.username };
  }

  const users: User[] = [];
  if (prefix) {
    const partial = s.config.features.PARTIAL_USER_AUTOCOMPLETE !== false;
    // The exact match first, so the limit never cuts it off.
    const exact = await s.db.selectFrom('users').selectAll().where('username', '=', prefix).where('kind', '=', 'user').executeTakeFirst();
    if (exact) users.push(exact);
    const rest = await s.db.selectFrom('users').selectAll()
      .where((eb) => {
        const humans = eb.and([eb('kind', '=', 'user'), partial ? startsWith('username', prefix) : eb('username', '=', prefix)]);
        if (!robotNamespace) return humans;
        return eb.or([humans, eb.and([eb('kind', '=', 'robot'), eb('robot_owner_id', '=', robotNamespace.id), startsWith('username', `${robotNamespace.name}+${prefix}`)])]);
      })
      .where('id', '!=', exact?.id ?? -1)
      .orderBy((eb) => eb.case().when('kind', '=', 'robot').then(0).else(1).end())
      .orderBy('username').limit(ENTITY_LIMIT - users.length).execute();
    users.push(...rest);
  }

  let members = new Set<number>();
  if (org && users.length) {
    const rows = await s.db.selectFrom('team_members').innerJoin('teams', 'teams.id', 'team_members.team_id').select('team_members.user_id')
      .where('teams.org_id', '=', org.id).where('team_members.user_id', 'in', users.map((u) => u.id)).execute();
    members = new Set(rows.map((r) => r.user_id));
  }
  return {
    teams,
    users: users.map((user) => ({ user, isOrgMember: org ? user.kind === 'robot' || members.has(user.id) : null })),
    org: orgResult,
  };
}

/** Quay's LinkExternalEntity answer; federated backends would add `linked` and `refused`. */
export type ExternalLink = { linked: false; reason: 'not_federated' };

/**
 * Links a user of a federated authentication backend (LDAP, Keystone, …) to a local account.
 * Quayside authenticates against its own database only (AUTHENTICATION_TYPE: Database), which has
 * no external directory, so there is never anyone to link.
 */
export function linkExternalUser(_s: Services, _username: string): ExternalLink {
  return { linked: false, reason: 'not_federated' };
}

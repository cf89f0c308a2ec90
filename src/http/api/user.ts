// The calling user: first-user bootstrap, self-registration and GET /api/v1/user/.
import { Type } from 'typebox';
import type { Principal, Services } from '../../model/context.ts';
import { principalFor } from '../../model/context.ts';
import { createUser, findUser, isGlobalReadonlySuperuser, isSuperuser, type User } from '../../model/accounts.ts';
import { initializeFirstUser } from '../../model/bootstrap.ts';
import { DomainError } from '../../model/errors.ts';
import { logAction } from '../../model/logs.ts';
import { canCreateIn } from '../../model/permissions.ts';
import { userPrompts } from '../../model/user-prompts.ts';
import { federatedLogins, namespaceQuotas, publicNamespaces, quotaReport, userOrganizations, type OrgMembership } from '../../model/profile.ts';
import { PlainError } from './abort.ts';
import { createSession } from '../../model/sessions.ts';
import { issueLoginCookie } from '../session-cookie.ts';
import { hasScope, requireUser } from './auth.ts';
import { ApiError } from './errors.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { AvatarSchema, avatar, userAvatar } from './shapes.ts';

const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });

const OrgView = Type.Object({
  name: Type.String(),
  avatar: AvatarSchema,
  can_create_repo: Type.Boolean(),
  public: Type.Boolean(),
  is_org_admin: Type.Optional(Type.Boolean()),
  preferred_namespace: Type.Optional(Type.Boolean()),
});

const QuotaView = Type.Object({
  id: Type.Integer(),
  limit_bytes: Type.Integer(),
  limits: Type.Array(Type.Object({ id: Type.Integer(), type: Type.String(), limit_percent: Type.Integer() })),
});

export const UserView = Type.Object({
  anonymous: Type.Boolean({ description: 'true if this user data represents a guest user' }),
  username: Type.String(),
  avatar: AvatarSchema,
  can_create_repo: Type.Optional(Type.Boolean({ description: 'Whether the user has permission to create repositories' })),
  is_me: Type.Optional(Type.Boolean()),
  verified: Type.Optional(Type.Boolean({ description: "Whether the user's email address has been verified" })),
  email: Type.Optional(Nullable(Type.String({ description: "The user's email address" }))),
  logins: Type.Optional(Type.Array(Type.Object({ service: Type.String(), service_identifier: Type.String(), metadata: AnyObject }), {
    description: 'The list of external login providers against which the user has authenticated',
  })),
  invoice_email: Type.Optional(Type.Boolean()),
  invoice_email_address: Type.Optional(Nullable(Type.String())),
  preferred_namespace: Type.Optional(Type.Boolean({ description: "If true, the user's namespace is the preferred namespace to display" })),
  tag_expiration_s: Type.Optional(Type.Integer()),
  prompts: Type.Optional(Type.Array(Type.String())),
  company: Type.Optional(Nullable(Type.String())),
  family_name: Type.Optional(Nullable(Type.String())),
  given_name: Type.Optional(Nullable(Type.String())),
  location: Type.Optional(Nullable(Type.String())),
  is_free_account: Type.Optional(Type.Boolean()),
  has_password_set: Type.Optional(Type.Boolean()),
  quotas: Type.Optional(Type.Array(QuotaView)),
  quota_report: Type.Optional(Type.Object({
    quota_bytes: Type.Integer(), configured_quota: Nullable(Type.Integer()), running_backfill: Type.String(), backfill_status: Type.String(),
  })),
  organizations: Type.Optional(Type.Array(OrgView, { description: 'Information about the organizations in which the user is a member' })),
  super_user: Type.Optional(Type.Boolean()),
  global_readonly_super_user: Type.Optional(Type.Boolean()),
}, { description: 'Describes a user' });

/** Quay's user_view: what `viewer` may see of `user` (all of it when it is themselves with user:admin). */
export async function userView(s: Services, user: User, viewer: Principal): Promise<Record<string, unknown>> {
  const view: Record<string, unknown> = { anonymous: false, username: user.username, avatar: userAvatar(s, user) };
  const isMe = viewer.kind !== 'anonymous' && viewer.userId === user.id;
  const isAdmin = isMe && hasScope(viewer, 'user:admin');
  if (isAdmin) {
    Object.assign(view, {
      can_create_repo: true,
      is_me: true,
      verified: user.verified === 1,
      email: user.email,
      logins: await federatedLogins(s, user.id),
      invoice_email: user.invoice_email === 1,
      invoice_email_address: user.invoice_email_address,
      preferred_namespace: false,
      tag_expiration_s: user.tag_expiration_s,
      prompts: userPrompts(user),
      company: user.company,
      family_name: user.family_name,
      given_name: user.given_name,
      location: user.location,
      is_free_account: true,
      has_password_set: user.password_hash !== null,
    });
    if (s.config.features.QUOTA_MANAGEMENT && s.config.features.EDIT_QUOTA) {
      view.quotas = await namespaceQuotas(s, user.id);
      view.quota_report = await quotaReport(s, user.id);
    }
  }
  if (isMe && hasScope(viewer, 'user:read')) {
    const memberships = await userOrganizations(s, user.id);
    const publicNs = new Set((Array.isArray(s.config.raw.PUBLIC_NAMESPACES) ? s.config.raw.PUBLIC_NAMESPACES : []) as unknown[]);
    const orgs = new Map<string, { org: OrgMembership['org']; role: OrgMembership['role'] | null }>(memberships.map((m) => [m.org.username, m]));
    for (const ns of await publicNamespaces(s)) if (!orgs.has(ns.username)) orgs.set(ns.username, { org: ns, role: null });
    const organizations = [];
    for (const { org, role } of orgs.values()) {
      const o: Record<string, unknown> = {
        name: org.username,
        avatar: avatar(s, org.username, org.email, 'org'),
        can_create_repo: await canCreateIn(s, viewer, org),
        public: publicNs.has(org.username),
      };
      if (isAdmin) Object.assign(o, { is_org_admin: role === 'admin' && hasScope(viewer, 'org:admin'), preferred_namespace: false });
      organizations.push(o);
    }
    view.organizations = organizations;
  }
  if (isMe && viewer.kind === 'user' && viewer.superuser) view.super_user = true;
  if (isMe && isGlobalReadonlySuperuser(s, user)) view.global_readonly_super_user = true;
  return view;
}

const NewUser = Type.Object({
  username: Type.String({ description: "The user's username" }),
  password: Type.String({ description: "The user's password" }),
  email: Type.Optional(Type.String({ description: "The user's email address" })),
  invite_code: Type.Optional(Type.String({ description: 'The optional invite code' })),
  recaptcha_response: Type.Optional(Type.String({ description: 'The (may be disabled) recaptcha response code for verification' })),
}, { description: 'Fields which must be specified for a new user.' });

const InitializeBody = Type.Object({
  username: Type.String(),
  password: Type.String(),
  email: Type.Optional(Nullable(Type.String())),
  access_token: Type.Optional(Type.Boolean({ description: 'when truthy, create OAuth app "automation" and return an access token with all scopes' })),
});

const InitializeResult = Type.Object({
  username: Type.String(),
  email: Nullable(Type.String()),
  encrypted_password: Type.String(),
  access_token: Type.Optional(Type.String()),
});

export const userRoutes: AnyRoute[] = [
  // Quay registers this on its web blueprint: no CSRF, no anonymous protection, not discoverable,
  // and its failures are plain {"message": …} bodies.
  defineRoute({
    method: 'POST', path: '/user/initialize', nickname: null, features: ['USER_INITIALIZE'], anonAllowed: true,
    body: InitializeBody, response: InitializeResult,
    async handler(req, reply, env) {
      const s = env.ctx.services;
      if (s.config.authenticationType !== 'Database') throw new PlainError(400, 'Cannot initialize user in a non-database auth system');
      const body = req.body;
      try {
        const r = await initializeFirstUser(s, {
          username: body.username, password: body.password, email: body.email ?? null, accessToken: body.access_token === true, ip: req.ip,
        });
        // Quay also signs the new superuser in (session cookie).
        const { sid, row } = await createSession(s, r.user);
        issueLoginCookie(env.ctx, req, reply, sid, row, r.user);
        // The encrypted_password is an app-specific token of the new user: like Quay's encrypted
        // password it works as the docker login password, but it is listed and revocable.
        return {
          username: r.user.username,
          email: r.user.email,
          encrypted_password: r.encryptedPassword,
          ...(r.accessToken !== null ? { access_token: r.accessToken } : {}),
        };
      } catch (e) {
        if (e instanceof DomainError && e.code === 'conflict') throw new PlainError(400, e.message);
        if (e instanceof DomainError) throw new PlainError(400, `Failed to initialize user: ${e.message}`);
        throw e;
      }
    },
  }),
  defineRoute({
    method: 'GET', path: '/user/', nickname: 'getLoggedInUser', scopes: ['user:read'], anonAllowed: true,
    description: 'Get user information for the authenticated user.',
    response: UserView, responseName: 'UserView',
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const p = requireUser(req, { session_required: false });
      const user = await findUser(s, p.username);
      if (!user || user.kind !== 'user' || !hasScope(p, 'user:read')) {
        throw new ApiError('invalid_token', 'Requires authentication', 401, { session_required: false });
      }
      return userView(s, user, p);
    },
  }),
  defineRoute({
    method: 'POST', path: '/user/', nickname: 'createNewUser', features: ['USER_CREATION', 'DIRECT_LOGIN'], internal: true,
    description: 'Create a new user.',
    body: NewUser, bodyName: 'NewUser', response: UserView, responseName: 'UserView',
    async handler(req, reply, env) {
      const s = env.ctx.services;
      const body = req.body;
      const existing = await findUser(s, body.username);
      if (existing && existing.kind !== 'robot') throw new ApiError('invalid_request', 'The username already exists');
      if (s.config.features.MAILING && !body.email) throw new ApiError('invalid_request', 'Email address is required');
      let user: User;
      try {
        user = await createUser(s, { username: body.username, password: body.password, email: body.email ?? null, verified: true });
      } catch (e) {
        if (e instanceof DomainError) throw new ApiError('invalid_request', e.message);
        throw e;
      }
      await logAction(s, 'user_create', {
        namespaceId: user.id, performer: req.principal, ip: req.ip, metadata: { email: body.email ?? null, username: user.username },
      });
      // Quay signs the new user in (session cookie) and answers with their own view.
      const { sid, row } = await createSession(s, user);
      issueLoginCookie(env.ctx, req, reply, sid, row, user);
      return userView(s, user, principalFor(user, 'session', { superuser: isSuperuser(s, user) }));
    },
  }),
];

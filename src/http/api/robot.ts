// /api/v1/user/robots and /api/v1/organization/{orgname}/robots: robot accounts, their tokens,
// permissions and OIDC federation. Each route exists twice, once per kind of owner.
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Services } from '../../model/context.ts';
import {
  createRobotAccount, deleteFederation, deleteRobot, getFederation, getRobot, listRobots, regenerateRobotToken, robotPermissions,
  setFederation, type RobotListItem, type RobotOwnerRef, type RobotRecord,
} from '../../model/robots.ts';
import { actorOf, dataModel } from './data-model.ts';
import { teamAvatar } from './organization.ts';
import { defineRoute, Nullable, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { AvatarSchema, formatDate } from './shapes.ts';
import { apiValidatorCompiler } from './validation.ts';

const AnyObject = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });
const DOCS = { orgname: 'The name of the organization', robot_shortname: 'The short name for the robot, without any user or organization prefix' };

const RobotView = Type.Object({
  name: Type.String(),
  created: Nullable(Type.String()),
  last_accessed: Nullable(Type.String()),
  description: Type.String(),
  token: Type.Optional(Nullable(Type.String())),
  unstructured_metadata: Type.Optional(Nullable(AnyObject)),
});

const RobotWithPermissions = Type.Object({
  name: Type.String(),
  created: Nullable(Type.String()),
  last_accessed: Nullable(Type.String()),
  teams: Type.Array(Type.Object({ name: Type.String(), avatar: AvatarSchema })),
  repositories: Type.Array(Type.String()),
  description: Type.String(),
  token: Type.Optional(Nullable(Type.String())),
});
const RobotPlain = Type.Object({
  name: Type.String(),
  created: Nullable(Type.String()),
  last_accessed: Nullable(Type.String()),
  description: Type.String(),
  token: Type.Optional(Nullable(Type.String())),
});
// With permissions first: a plain entry fails it (no teams) and falls through to the second.
const RobotListEntry = Type.Union([RobotWithPermissions, RobotPlain]);

/** Quay's Robot.to_dict. */
function robotView(r: RobotRecord, opts: { token: boolean; metadata: boolean | Record<string, unknown> | null }) {
  const view: Record<string, unknown> = {
    name: r.robot.username, created: formatDate(r.robot.created_at), last_accessed: formatDate(r.lastAccessed), description: r.description,
  };
  if (opts.token) view.token = r.token;
  // On creation Quay echoes the metadata it was given (null when none); reads show what is stored.
  if (opts.metadata === true) view.unstructured_metadata = r.metadata;
  else if (opts.metadata !== false) view.unstructured_metadata = opts.metadata;
  return view;
}

function listEntry(s: Services, r: RobotListItem, includeToken: boolean, includePermissions: boolean) {
  const view: Record<string, unknown> = { name: r.robot.username, created: formatDate(r.robot.created_at), last_accessed: formatDate(r.lastAccessed) };
  if (includePermissions) {
    view.teams = (r.teams ?? []).map((name) => ({ name, avatar: teamAvatar(s, name) }));
    view.repositories = r.repositories ?? [];
  }
  view.description = r.description;
  if (includeToken) view.token = r.token;
  return view;
}

const ListQuery = Type.Object({
  permissions: Type.Optional(TruthyBool('Whether to include repositories and teams in which the robots have permission.')),
  token: Type.Optional(TruthyBool("If false, the robot's token is not returned.")),
  limit: Type.Optional(Type.Integer({ minimum: 0, description: 'If specified, the number of robots to return.' })),
});

const CreateRobot = Type.Object({
  description: Type.Optional(Type.String({ maxLength: 255, description: 'Optional text description for the robot' })),
  unstructured_metadata: Type.Optional(Type.Unsafe<Record<string, unknown>>({ type: 'object', description: 'Optional unstructured metadata for the robot' })),
}, { description: 'Optional data for creating a robot' });

const checkCreateRobot = apiValidatorCompiler({ schema: CreateRobot, httpPart: 'body', method: 'PUT', url: '' }) as (data: unknown) => { error?: Error };

function validateCreateRobot(body: unknown): { description?: string; unstructured_metadata?: Record<string, unknown> } {
  if (body === undefined || body === null) return {};
  const r = checkCreateRobot(body);
  if (r.error) throw r.error;
  return body as { description?: string; unstructured_metadata?: Record<string, unknown> };
}

const CreateRobotFederation = Type.Array(Type.Object({
  issuer: Type.String({ description: 'The issuer of the token' }),
  subject: Type.String({ description: 'The subject of the token' }),
}), { description: 'Federation configuration for the robot' });
const FederationView = Type.Array(Type.Object({ issuer: Type.String(), subject: Type.String() }));

const PermissionsView = Type.Object({
  permissions: Type.Array(Type.Object({ repository: Type.Object({ name: Type.String(), is_public: Type.Boolean() }), role: Type.String() })),
});

type Params = { orgname?: string; robot_shortname?: string };

function routesFor(kind: 'user' | 'org'): AnyRoute[] {
  const base = kind === 'user' ? '/user/robots' : '/organization/{orgname}/robots';
  const scope = kind === 'user' ? 'user:admin' : 'org:admin';
  const nick = (user: string, org: string) => (kind === 'user' ? user : org);
  const ref = (req: FastifyRequest): RobotOwnerRef => {
    const p = req.params as Params;
    return kind === 'user' ? { kind: 'user' } : { kind: 'org', orgname: p.orgname! };
  };
  const short = (req: FastifyRequest) => (req.params as Params).robot_shortname!;
  const OwnerParams = kind === 'user' ? Type.Object({}) : Type.Object({ orgname: Type.String() });
  const RobotParams = kind === 'user'
    ? Type.Object({ robot_shortname: Type.String() })
    : Type.Object({ orgname: Type.String(), robot_shortname: Type.String() });
  const one = `${base}/{robot_shortname}`;
  return [
    defineRoute({
      method: 'GET', path: base, nickname: nick('getUserRobots', 'getOrgRobots'), scopes: [scope], paramDocs: DOCS,
      description: kind === 'user' ? 'List the available robots for the user.' : "List the organization's robots.",
      params: OwnerParams, querystring: ListQuery, response: Type.Object({ robots: Type.Array(RobotListEntry) }),
      async handler(req, _reply, env) {
        const s = env.ctx.services;
        const q = req.query;
        const r = await listRobots(s, req.principal, ref(req), { token: truthy(q.token, true), permissions: truthy(q.permissions), limit: q.limit ?? null });
        return { robots: r.robots.map((x) => listEntry(s, x, r.includeToken, r.includePermissions)) };
      },
    }),
    defineRoute({
      method: 'GET', path: one, nickname: nick('getUserRobot', 'getOrgRobot'), scopes: [scope], paramDocs: DOCS,
      description: kind === 'user' ? "Returns the user's robot with the specified name." : "Returns the organization's robot with the specified name.",
      params: RobotParams, response: RobotView,
      async handler(req, _reply, env) {
        const r = await dataModel(getRobot(env.ctx.services, req.principal, ref(req), short(req)));
        return robotView(r.record, { token: r.includeToken, metadata: true });
      },
    }),
    defineRoute({
      method: 'PUT', path: one, nickname: nick('createUserRobot', 'createOrgRobot'), scopes: [scope], paramDocs: DOCS,
      description: kind === 'user' ? 'Create a new user robot with the specified name.' : 'Create a new robot in the organization.',
      // The body is optional (Quay's validate_json_request(optional=True)), which the route's own
      // body validation cannot express: it is checked here when present.
      params: RobotParams, response: RobotView, status: 201,
      async handler(req, _reply, env) {
        const b = validateCreateRobot(req.body);
        const r = await createRobotAccount(env.ctx.services, actorOf(req), ref(req), short(req), {
          description: b.description, unstructuredMetadata: b.unstructured_metadata,
        });
        return robotView(r, { token: true, metadata: b.unstructured_metadata ?? null });
      },
    }),
    defineRoute({
      method: 'DELETE', path: one, nickname: nick('deleteUserRobot', 'deleteOrgRobot'), scopes: [scope], paramDocs: DOCS,
      description: kind === 'user' ? 'Delete an existing robot.' : 'Delete an existing organization robot.',
      params: RobotParams, status: 204,
      async handler(req, _reply, env) {
        await dataModel(deleteRobot(env.ctx.services, actorOf(req), ref(req), short(req)));
      },
    }),
    defineRoute({
      // Quay tags both permission listings with user:admin, the org one included.
      method: 'GET', path: `${one}/permissions`, nickname: nick('getUserRobotPermissions', 'getOrgRobotPermissions'), scopes: ['user:admin'], paramDocs: DOCS,
      description: 'Returns the list of repository permissions for the robot.',
      params: RobotParams, response: PermissionsView,
      async handler(req, _reply, env) {
        const perms = await dataModel(robotPermissions(env.ctx.services, req.principal, ref(req), short(req)));
        return { permissions: perms.map((p) => ({ repository: { name: p.repository, is_public: p.isPublic }, role: p.role })) };
      },
    }),
    defineRoute({
      method: 'POST', path: `${one}/regenerate`, nickname: nick('regenerateUserRobotToken', 'regenerateOrgRobotToken'), scopes: [scope], paramDocs: DOCS,
      description: "Regenerates the token for the robot.",
      params: RobotParams, response: RobotView,
      async handler(req, _reply, env) {
        const r = await dataModel(regenerateRobotToken(env.ctx.services, actorOf(req), ref(req), short(req)));
        return robotView(r, { token: true, metadata: false });
      },
    }),
    defineRoute({
      method: 'GET', path: `${one}/federation`, nickname: nick('getUserRobotFederation', 'getOrgRobotFederation'), scopes: [scope], paramDocs: DOCS,
      description: 'Returns the federation configuration for the robot.',
      params: RobotParams, response: FederationView,
      async handler(req, _reply, env) {
        return dataModel(getFederation(env.ctx.services, req.principal, ref(req), short(req)));
      },
    }),
    defineRoute({
      method: 'POST', path: `${one}/federation`, nickname: nick('createUserRobotFederation', 'createOrgRobotFederation'), scopes: [scope], paramDocs: DOCS,
      description: 'Create or update federation configuration for the robot.',
      params: RobotParams, body: CreateRobotFederation, bodyName: 'CreateRobotFederation', response: FederationView,
      async handler(req, _reply, env) {
        return dataModel(setFederation(env.ctx.services, actorOf(req), ref(req), short(req), req.body));
      },
    }),
    defineRoute({
      method: 'DELETE', path: `${one}/federation`, nickname: nick('deleteUserRobotFederation', 'deleteOrgRobotFederation'), scopes: [scope], paramDocs: DOCS,
      description: 'Delete federation configuration for the robot.',
      params: RobotParams, status: 204,
      async handler(req, _reply, env) {
        await dataModel(deleteFederation(env.ctx.services, actorOf(req), ref(req), short(req)));
      },
    }),
  ];
}

export const robotRoutes: AnyRoute[] = [...routesFor('user'), ...routesFor('org')];

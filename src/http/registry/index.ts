// /v2: the OCI distribution API. Routes parse the path against the distribution-spec grammar,
// check the bearer token's access for the repository, and call one model function.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { DomainError } from '../../model/errors.ts';
import { OciError, ociFromDomain, sendOciError } from './errors.ts';
import { bearer, challenge, granted, tokenEndpoint } from './auth.ts';
import type { Principal } from '../../model/context.ts';
import { ANONYMOUS } from '../../model/context.ts';
import type { VerifiedToken } from '../../model/registry-tokens.ts';
import { splitRepoPath } from '../../model/names.ts';
import { assertWritable, createRepository, findNamespace, findRepo, type Repo } from '../../model/repositories.ts';
import { createOrganization, findUserById } from '../../model/accounts.ts';
import { proxyCacheForNamespace } from '../../model/proxy-cache.ts';
import * as blobs from './blobs.ts';
import * as uploads from './uploads.ts';
import * as manifests from './manifests.ts';
import * as listing from './listing.ts';

const C = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = `${C}(?:/${C})*`;

export interface RegistryRequest {
  ctx: HttpContext;
  req: FastifyRequest;
  reply: FastifyReply;
  /** Full repository path as in the URL: "ns/repo[/more]". */
  name: string;
  /** Capture after the resource keyword (reference, digest or upload id). */
  arg: string;
  token: VerifiedToken | null;
  principal: Principal;
}

type Handler = (rr: RegistryRequest) => Promise<FastifyReply>;
type Route = { re: RegExp; methods: Partial<Record<string, [Handler, string]>> };

const ROUTES: Route[] = [
  { re: new RegExp(`^/v2/(${NAME})/manifests/([^/]+)$`), methods: { GET: [manifests.get, 'manifest_get'], HEAD: [manifests.get, 'manifest_head'], PUT: [manifests.put, 'manifest_put'], DELETE: [manifests.del, 'manifest_delete'] } },
  { re: new RegExp(`^/v2/(${NAME})/blobs/uploads/?()$`), methods: { POST: [uploads.start, 'upload_start'] } },
  { re: new RegExp(`^/v2/(${NAME})/blobs/uploads/([^/]+)$`), methods: { GET: [uploads.status, 'upload_status'], PATCH: [uploads.patch, 'upload_patch'], PUT: [uploads.finish, 'upload_finish'], DELETE: [uploads.cancel, 'upload_cancel'] } },
  { re: new RegExp(`^/v2/(${NAME})/blobs/([^/]+)$`), methods: { GET: [blobs.get, 'blob_get'], HEAD: [blobs.get, 'blob_head'], DELETE: [blobs.del, 'blob_delete'] } },
  { re: new RegExp(`^/v2/(${NAME})/tags/list()$`), methods: { GET: [listing.tags, 'tags_list'] } },
  { re: new RegExp(`^/v2/(${NAME})/referrers/([^/]+)$`), methods: { GET: [listing.referrers, 'referrers'] } },
];
// Same shapes with any name: used to answer NAME_INVALID instead of a bare 404.
const LOOSE = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\//;

function path(req: FastifyRequest): string {
  const q = req.url.indexOf('?');
  return q < 0 ? req.url : req.url.slice(0, q);
}

export async function registerRegistry(app: FastifyInstance, ctx: HttpContext): Promise<void> {
  await app.register(async (v2) => {
    // Bodies are streams handed to the model untouched; the form parser serves POST /v2/auth.
    v2.removeAllContentTypeParsers();
    v2.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    v2.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));

    v2.setErrorHandler((err, req, reply) => {
      releaseBody(req);
      if (err instanceof OciError) {
        if (err.status === 401 && !reply.hasHeader('WWW-Authenticate')) reply.header('WWW-Authenticate', challenge(ctx, req));
        return sendOciError(reply, err);
      }
      if (err instanceof DomainError) {
        const oci = ociFromDomain(err.code, err.message, err.detail);
        return sendOciError(reply, oci);
      }
      const e = err as { statusCode?: number; code?: string; message: string };
      if (e.statusCode && e.statusCode < 500) {
        return sendOciError(reply, new OciError(e.statusCode === 413 ? 'SIZE_INVALID' : 'BLOB_UPLOAD_INVALID', e.message, undefined, e.statusCode));
      }
      // A request whose body was read to the end is `destroyed` too: only an incomplete body or a
      // closed socket means the client left (else a server error would be answered as a bare 400).
      const gone = (req.raw.destroyed && !req.raw.complete) || req.raw.socket?.destroyed === true;
      if (gone || e.code === 'ERR_STREAM_PREMATURE_CLOSE' || e.code === 'ECONNRESET' || (err as Error).name === 'AbortError') {
        req.log.info({ err }, 'client went away');
        return reply.code(400).send();
      }
      req.log.error({ err }, 'registry request failed');
      return sendOciError(reply, new OciError('UNSUPPORTED', 'internal server error', undefined, 500));
    });

    v2.route({
      method: ['GET', 'HEAD'], url: '/v2/', exposeHeadRoute: false,
      handler: async (req, reply) => {
        req.metricsRoute = 'base';
        reply.header('Docker-Distribution-API-Version', 'registry/2.0');
        const token = await bearer(ctx, req);
        if (!token) {
          reply.header('WWW-Authenticate', challenge(ctx, req));
          throw new OciError('UNAUTHORIZED');
        }
        return reply.type('application/json').send('{}');
      },
    });
    v2.route({
      method: ['GET', 'POST'], url: '/v2/auth',
      handler: (req, reply) => {
        req.metricsRoute = 'auth';
        return tokenEndpoint(ctx, req, reply);
      },
    });
    v2.get('/v2/_catalog', async (req, reply) => {
      req.metricsRoute = 'catalog';
      const token = await bearer(ctx, req);
      return listing.catalog(ctx, req, reply, token);
    });
    v2.route({
      method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'], url: '/v2/*', exposeHeadRoute: false,
      handler: async (req, reply) => {
        reply.header('Docker-Distribution-API-Version', 'registry/2.0');
        const p = path(req);
        for (const r of ROUTES) {
          const m = r.re.exec(p);
          if (!m) continue;
          const entry = r.methods[req.method];
          if (!entry) throw new OciError('UNSUPPORTED', `method ${req.method} not allowed here`);
          const [handler, metricsName] = entry;
          req.metricsRoute = metricsName;
          let arg: string;
          try {
            arg = decodeURIComponent(m[2] ?? '');
          } catch {
            throw new OciError('NAME_INVALID', 'invalid path encoding');
          }
          const token = await bearer(ctx, req);
          const principal = token?.principal ?? ANONYMOUS;
          return handler({ ctx, req, reply, name: m[1]!, arg, token, principal });
        }
        if (LOOSE.test(p)) throw new OciError('NAME_INVALID', 'invalid repository name', { name: LOOSE.exec(p)![1] });
        throw new OciError('NOT_FOUND', 'no such endpoint');
      },
    });
  });
}

// Past this much, a refused body is not worth reading: the connection is closed instead.
const DRAIN_LIMIT = 64 * 1024 * 1024;

/** A request refused while its body was half read (a PATCH longer than its Content-Range, a
 * session found inconsistent) leaves that body paused: the client's next request on the same
 * keep-alive connection would wait behind it until the server's timeout. Discard the rest. */
function releaseBody(req: FastifyRequest): void {
  const raw = req.raw;
  if (raw.complete || raw.destroyed || raw.readableEnded) return;
  raw.unpipe();
  let drained = 0;
  raw.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT) raw.destroy();
  });
  raw.resume();
}

export type Need = 'pull' | 'push' | 'delete';
// '*' is the admin grant (what `skopeo delete` asks for); as in Quay it covers pull and push too.
const ACTIONS: Record<Need, string[]> = { pull: ['pull', '*'], push: ['push', '*'], delete: ['push', '*', 'delete'] };
const SCOPE_ACTIONS: Record<Need, string> = { pull: 'pull', push: 'pull,push', delete: '*' };

/** Aborted when the client's request closes: long reads (blob streams, upstream fetches) stop then. */
export function requestClosedSignal(rr: RegistryRequest): AbortSignal {
  const ac = new AbortController();
  rr.req.raw.on('close', () => ac.abort());
  return ac.signal;
}

/** Checks the token's access for the repository, then loads it — creating it on a first push
 * when the token allows that. Visibility is re-checked here, not only when the token was issued. */
export async function resolveRepo(rr: RegistryRequest, need: Need): Promise<Repo> {
  const s = rr.ctx.services;
  const { namespace, repo } = checkAccess(rr, need);
  // Proxy-cache organizations are read-only to clients (a token issued before the organization
  // became one may still carry push).
  if (need !== 'pull' && (await proxyCacheForNamespace(s, namespace))) denyAccess(rr, need);
  let found = await findRepo(s, namespace, repo);
  if (found && rr.principal.kind === 'anonymous' && need === 'pull' && !found.is_public) {
    throw new OciError('UNAUTHORIZED', 'access to the requested resource is not authorized');
  }
  if (!found) {
    if (need !== 'push') throw new OciError('NAME_UNKNOWN', 'repository name not known to registry', { name: rr.name });
    found = await createOnPush(rr, namespace, repo);
  }
  if (need !== 'pull') assertWritable(s, found);
  return found;
}

function denyAccess(rr: RegistryRequest, need: Need): never {
  // Quay answers 401 with a scoped challenge to everyone, signed in or not, so clients retry
  // the token request for exactly this scope and then report the refusal.
  rr.reply.header('WWW-Authenticate', challenge(rr.ctx, rr.req, `repository:${rr.name}:${SCOPE_ACTIONS[need]}`));
  throw new OciError('UNAUTHORIZED', 'access to the requested resource is not authorized', [{ Type: 'repository', Name: rr.name, Action: SCOPE_ACTIONS[need] }]);
}

/** Checks the token's access for the repository path (which may not exist yet) and splits it. */
export function checkAccess(rr: RegistryRequest, need: Need): { namespace: string; repo: string } {
  const parts = splitRepoPath(rr.name, rr.ctx.services.config.features.EXTENDED_REPOSITORY_NAMES);
  if (!granted(rr.token, 'repository', rr.name, ACTIONS[need])) denyAccess(rr, need);
  return parts;
}

async function createOnPush(rr: RegistryRequest, namespace: string, repo: string): Promise<Repo> {
  const s = rr.ctx.services;
  const p = rr.principal;
  if (p.kind === 'anonymous') throw new OciError('DENIED');
  let ns = await findNamespace(s, namespace);
  if (!ns) {
    if (!s.config.createNamespaceOnPush || p.kind !== 'user') throw new OciError('NAME_UNKNOWN', `namespace ${namespace} does not exist`);
    const owner = await findUserById(s, p.userId);
    if (!owner) throw new OciError('DENIED');
    try {
      await createOrganization(s, namespace, owner);
    } catch (e) {
      if (!(e instanceof DomainError)) throw e; // a concurrent push created it
    }
    ns = await findNamespace(s, namespace);
    if (!ns) throw new OciError('NAME_UNKNOWN');
  }
  const { repo: created } = await createRepository(s, {
    namespace: ns, name: repo, visibility: s.config.createPrivateRepoOnPush ? 'private' : 'public', creator: p, ip: rr.req.ip,
  });
  return created;
}

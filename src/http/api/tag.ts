// /api/v1/repository/{repository}/tag: the tag history, moving, expiring and deleting tags, and
// the time machine (restore, permanent expiry).
import { Type } from 'typebox';
import { DomainError } from '../../model/errors.ts';
import { TAG_RE } from '../../model/names.ts';
import {
  assertNormalState, changeTag, deleteTagViaApi, expireFromTimeMachine, listTagHistory, restoreTag, type ChangeTagInput, type TagHistoryItem,
} from '../../model/tag-history.ts';
import { PlainError } from './abort.ts';
import { ApiError } from './errors.ts';
import { defineRoute, Nullable, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { BAD_REQUEST_MESSAGE, plain400, REPOSITORY_DOC, RepoParams, repoFor } from './repository.ts';
import { formatDate } from './shapes.ts';
import type { Services } from '../../model/context.ts';

export const TAG_ERROR = 'Invalid tag: must match [A-Za-z0-9_.-], NOT start with "." or "-", and can contain 1-128 characters';

const TagParams = Type.Object({ repository: Type.String(), tag: Type.String() });
const paramDocs = { repository: REPOSITORY_DOC, tag: 'The name of the tag' };

export const TagView = Type.Object({
  name: Type.String(),
  reversion: Type.Boolean(),
  immutable: Type.Optional(Type.Boolean()),
  start_ts: Type.Optional(Type.Integer()),
  end_ts: Type.Optional(Type.Integer()),
  manifest_digest: Type.String(),
  is_manifest_list: Type.Boolean(),
  size: Nullable(Type.Integer()),
  last_modified: Type.Optional(Type.String()),
  expiration: Type.Optional(Type.String()),
});

/** Quay's _tag_dict: unix seconds for start/end, RFC 2822 dates for last_modified/expiration. */
export function tagView(s: Services, t: TagHistoryItem): Record<string, unknown> {
  const start = Math.floor(t.lifetimeStart / 1000);
  const end = t.lifetimeEnd === null ? null : Math.floor(t.lifetimeEnd / 1000);
  return {
    name: t.name,
    reversion: t.reversion,
    ...(s.config.features.IMMUTABLE_TAGS ? { immutable: t.immutable } : {}),
    ...(start > 0 ? { start_ts: start } : {}),
    ...(end !== null && end > 0 ? { end_ts: end } : {}),
    manifest_digest: t.manifestDigest,
    is_manifest_list: t.isManifestList,
    size: t.size,
    ...(start > 0 ? { last_modified: formatDate(start * 1000) } : {}),
    ...(end !== null ? { expiration: formatDate(end * 1000) } : {}),
  };
}

function checkTagName(tag: string): void {
  if (!TAG_RE.test(tag)) throw new PlainError(400, TAG_ERROR);
}

export const tagRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository/{repository}/tag/', nickname: 'listRepoTags', tag: 'tag', scopes: ['repo:read'],
    description: 'List the tag history of a repository, alive and dead.',
    paramDocs: { repository: REPOSITORY_DOC },
    params: RepoParams,
    querystring: Type.Object({
      specificTag: Type.Optional(Type.String({ description: 'Filters the tags to the specific tag.', default: '' })),
      filter_tag_name: Type.Optional(Type.String({ description: "Syntax: <op>:<name> Filters the tag names based on the operation.<op> can be 'like' or 'eq'.", default: '' })),
      limit: Type.Optional(Type.Integer({ description: 'Limit to the number of results to return per page. Max 100.', default: 50 })),
      page: Type.Optional(Type.Integer({ description: 'Page index for the results. Default 1.', default: 1 })),
      onlyActiveTags: Type.Optional(TruthyBool('Filter to only active tags.')),
    }),
    response: Type.Object({ tags: Type.Array(TagView), page: Type.Integer(), has_additional: Type.Boolean() }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const q = req.query;
      const page = Math.max(1, q.page ?? 1);
      const limit = Math.min(100, Math.max(1, q.limit ?? 50));
      const { repo } = await repoFor(s, req, 'read');
      const r = await plain400(() => listTagHistory(s, repo.id, {
        page, limit, specificTag: q.specificTag || null, filterTagName: q.filter_tag_name || null, onlyActive: truthy(q.onlyActiveTags),
      }));
      return { tags: r.tags.map((t) => tagView(s, t)), page, has_additional: r.hasAdditional };
    },
  }),
  defineRoute({
    method: 'PUT', path: '/repository/{repository}/tag/{tag}', nickname: 'changeTag', tag: 'tag', scopes: ['repo:write'], status: 201,
    description: 'Change which image a tag points to or create a new tag.',
    paramDocs, params: TagParams,
    body: Type.Object({
      manifest_digest: Type.Optional(Nullable(Type.String({ description: '(If specified) The manifest digest to which the tag should point' }))),
      expiration: Type.Optional(Nullable(Type.Number({ description: '(If specified) The expiration for the image' }))),
      immutable: Type.Optional(Type.Boolean({
        description: '(If specified) Whether the tag should be immutable. Write permission required to set, admin permission required to unset.',
      })),
    }, { description: 'Makes changes to a specific tag' }),
    bodyName: 'ChangeTag',
    response: Type.String(),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo, role } = await repoFor(s, req, 'write');
      assertNormalState(repo);
      const tag = req.params.tag;
      checkTagName(tag);
      const b = req.body;
      const input: ChangeTagInput = {};
      if ('expiration' in b) {
        const exp = b.expiration ?? null;
        // Quay's bare abort(400): an expiration that is not a date, or not in the future.
        if (exp !== null && (!Number.isFinite(exp) || exp > 253402300799 || exp < -62135596800 || exp * 1000 <= s.now())) {
          throw new PlainError(400, BAD_REQUEST_MESSAGE);
        }
        input.expiration = exp;
      }
      if ('manifest_digest' in b) input.manifestDigest = b.manifest_digest ?? null;
      if (b.immutable !== undefined) input.immutable = b.immutable;
      await changeTag(s, repo, tag, input, { performer: req.principal, ip: req.ip, canAdmin: role === 'admin' });
      return 'Updated';
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/repository/{repository}/tag/{tag}', nickname: 'deleteFullTag', tag: 'tag', scopes: ['repo:write'], status: 204,
    description: 'Delete the specified repository tag.',
    paramDocs, params: TagParams,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'write');
      assertNormalState(repo);
      await deleteTagViaApi(s, repo, req.params.tag, req.principal, req.ip);
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository/{repository}/tag/{tag}/restore', nickname: 'restoreTag', tag: 'tag', scopes: ['repo:write'],
    description: 'Restores a repository tag back to a previous image in the repository.',
    paramDocs, params: TagParams,
    body: Type.Object({
      manifest_digest: Type.Optional(Type.String({ description: 'If specified, the manifest digest that should be used' })),
    }, { description: 'Restores a tag to a specific image' }),
    bodyName: 'RestoreTag',
    response: Type.Object({}),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'write');
      assertNormalState(repo);
      if (req.body.manifest_digest === undefined) throw new ApiError('invalid_request', 'Missing manifest_digest');
      checkTagName(req.params.tag);
      await restoreTag(s, repo, req.params.tag, req.body.manifest_digest, req.principal, req.ip);
      return {};
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository/{repository}/tag/{tag}/expire', nickname: 'removeTagFromTimemachine', tag: 'tag', scopes: ['repo:write'],
    showIf: (config) => config.permanentlyDeleteTags,
    description: 'Updates any expired tags with the matching name and manifest with an expiry outside the time machine window',
    paramDocs, params: TagParams,
    body: Type.Object({
      manifest_digest: Type.Optional(Type.String({
        description: 'Required if is_alive set to false. If specified, the manifest digest that should be used. Ignored when setting alive to true.',
      })),
      include_submanifests: Type.Optional(Type.Boolean({ description: 'If set to true, expire the sub-manifests as well' })),
      is_alive: Type.Optional(Type.Boolean({
        description: 'If true, set the expiry of the matching alive tag outside the time machine window. If false set the expiry of any expired tags with the same tag and manifest outside the time machine window.',
      })),
    }, { description: 'Removes tag from the time machine window' }),
    bodyName: 'ExpireTag',
    response: Type.String(),
    async handler(req, reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'write');
      const isAlive = req.body.is_alive ?? false;
      const digest = req.body.manifest_digest ?? null;
      if (!isAlive && digest === null) throw new ApiError('invalid_request', 'manifest_digest required when is_alive set to false');
      const updated = await expireFromTimeMachine(s, repo, req.params.tag, {
        isAlive, manifestDigest: digest, includeSubmanifests: req.body.include_submanifests ?? false,
      }, req.principal, req.ip);
      if (!updated) throw new DomainError('not_found', 'Not Found');
      // Quay's `return "", 200`: a JSON empty string.
      return reply.type('application/json').send('""');
    },
  }),
];

// /api/v1/repository/{repository}/manifest/{manifestref}/labels: labels of a manifest, those from
// the image config (source "manifest") and those added here (source "api").
import { Type } from 'typebox';
import { addLabel, deleteLabel, getLabel, listLabels, type Label } from '../../model/labels.ts';
import { findManifest } from '../../model/manifest-details.ts';
import { assertNormalState } from '../../model/tag-history.ts';
import { ApiError } from './errors.ts';
import { defineRoute, Nullable, type AnyRoute } from './route.ts';
import { plain400, REPOSITORY_DOC, repoFor } from './repository.ts';

const ManifestParams = Type.Object({ repository: Type.String(), manifestref: Type.String() });
const LabelParams = Type.Object({ repository: Type.String(), manifestref: Type.String(), labelid: Type.String() });
const paramDocs = { repository: REPOSITORY_DOC, manifestref: 'The digest of the manifest', labelid: 'The ID of the label' };

const LabelView = Type.Object({
  id: Type.String(),
  key: Type.String(),
  value: Type.String(),
  source_type: Type.String(),
  media_type: Type.String(),
});

function labelView(l: Label) {
  return { id: l.uuid, key: l.key, value: l.value, source_type: l.source_type, media_type: l.media_type };
}

export const labelRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository/{repository}/manifest/{manifestref}/labels', nickname: 'listManifestLabels', tag: 'manifest', scopes: ['repo:read'],
    description: 'List the labels of a manifest.',
    paramDocs, params: ManifestParams,
    querystring: Type.Object({ filter: Type.Optional(Type.String({ description: 'If specified, only labels matching the given prefix will be returned' })) }),
    response: Type.Object({ labels: Type.Array(LabelView) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'read');
      const m = await findManifest(s, repo.id, req.params.manifestref);
      return { labels: (await listLabels(s, m.id, req.query.filter ?? null)).map(labelView) };
    },
  }),
  defineRoute({
    method: 'POST', path: '/repository/{repository}/manifest/{manifestref}/labels', nickname: 'addManifestLabel', tag: 'manifest', scopes: ['repo:write'],
    status: 201,
    description: 'Adds a new label into the tag manifest.',
    paramDocs, params: ManifestParams,
    body: Type.Object({
      key: Type.String({ description: 'The key for the label' }),
      value: Type.String({ description: 'The value for the label' }),
      media_type: Nullable(Type.Unsafe<string>({ type: 'string', enum: ['text/plain', 'application/json', null], description: 'The media type for this label' })),
    }, { description: 'Adds a label to a manifest' }),
    bodyName: 'AddLabel',
    response: Type.Object({ label: LabelView }),
    async handler(req, reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'write');
      assertNormalState(repo);
      const m = await findManifest(s, repo.id, req.params.manifestref);
      const b = req.body;
      const label = await plain400(() => addLabel(s, repo, m, { key: b.key, value: b.value, mediaType: b.media_type ?? null }, req.principal, req.ip));
      reply.header('Location', `/api/v1/repository/${repo.namespace}/${repo.name}/manifest/${m.digest}/labels/${label.uuid}`);
      return { label: labelView(label) };
    },
  }),
  defineRoute({
    method: 'GET', path: '/repository/{repository}/manifest/{manifestref}/labels/{labelid}', nickname: 'getManifestLabel', tag: 'manifest', scopes: ['repo:read'],
    description: 'Retrieves the label with the specific ID under the manifest.',
    paramDocs, params: LabelParams,
    response: LabelView,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'read');
      const m = await findManifest(s, repo.id, req.params.manifestref);
      const label = await getLabel(s, m.id, req.params.labelid);
      if (!label) throw new ApiError('not_found', 'Not Found');
      return labelView(label);
    },
  }),
  defineRoute({
    method: 'DELETE', path: '/repository/{repository}/manifest/{manifestref}/labels/{labelid}', nickname: 'deleteManifestLabel', tag: 'manifest',
    scopes: ['repo:write'], status: 204,
    description: 'Deletes an existing label from a manifest.',
    paramDocs, params: LabelParams,
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'write');
      assertNormalState(repo);
      const m = await findManifest(s, repo.id, req.params.manifestref);
      await deleteLabel(s, repo, m, req.params.labelid, req.principal, req.ip);
    },
  }),
];

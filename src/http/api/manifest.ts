// /api/v1/repository/{repository}/manifest/{manifestref}: a manifest with its layers, sizes and
// build history (from the image config), and on request its model card (src/model/modelcard.ts).
import { Type } from 'typebox';
import { manifestDetails } from '../../model/manifest-details.ts';
import { defineRoute, Nullable, TruthyBool, truthy, type AnyRoute } from './route.ts';
import { REPOSITORY_DOC, repoFor } from './repository.ts';
import { formatDate } from './shapes.ts';

export const ManifestParams = Type.Object({ repository: Type.String(), manifestref: Type.String() });
export const manifestParamDocs = { repository: REPOSITORY_DOC, manifestref: 'The digest of the manifest' };

const Layer = Type.Object({
  index: Type.Integer(),
  compressed_size: Nullable(Type.Integer()),
  is_remote: Type.Boolean(),
  urls: Nullable(Type.Array(Type.String())),
  command: Nullable(Type.Array(Type.String())),
  comment: Nullable(Type.String()),
  author: Nullable(Type.String()),
  blob_digest: Type.String(),
  created_datetime: Nullable(Type.String()),
});

export const manifestRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository/{repository}/manifest/{manifestref}', nickname: 'getRepoManifest', tag: 'manifest', scopes: ['repo:read'],
    description: 'Get a manifest by digest, with its layers.',
    paramDocs: manifestParamDocs, params: ManifestParams,
    querystring: Type.Object({ include_modelcard: Type.Optional(TruthyBool('If specified, include modelcard markdown from image, if any')) }),
    response: Type.Object({
      digest: Type.String(),
      is_manifest_list: Type.Boolean(),
      manifest_data: Type.String(),
      config_media_type: Nullable(Type.String()),
      layers_compressed_size: Type.Integer(),
      layers: Nullable(Type.Array(Layer)),
      modelcard: Type.Optional(Type.String()),
    }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const { repo } = await repoFor(s, req, 'read');
      const m = await manifestDetails(s, repo.id, req.params.manifestref, { modelcard: truthy(req.query.include_modelcard) });
      return {
        digest: m.digest,
        is_manifest_list: m.isManifestList,
        manifest_data: m.manifestData,
        config_media_type: m.configMediaType,
        layers_compressed_size: m.layersCompressedSize,
        layers: m.layers && m.layers.map((l) => ({
          index: l.index, compressed_size: l.compressedSize, is_remote: l.isRemote, urls: l.urls, command: l.command, comment: l.comment,
          author: l.author, blob_digest: l.blobDigest, created_datetime: formatDate(l.created),
        })),
        ...(m.modelcard !== undefined ? { modelcard: m.modelcard } : {}),
      };
    },
  }),
];

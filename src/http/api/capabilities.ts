// GET /api/v1/registry/capabilities: what this registry supports (sparse manifest lists and the
// architectures repository mirroring can filter on), callable by anyone.
import { Type } from 'typebox';
import { defineRoute, type AnyRoute } from './route.ts';

// Quay's VALID_ARCHITECTURES for mirroring filters (the common OpenShift GOARCH values).
const MIRROR_ARCHITECTURES = ['amd64', 'arm64', 'ppc64le', 's390x'];

export const capabilitiesRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/registry/capabilities', nickname: 'getRegistryCapabilities', anonAllowed: true, tag: 'capabilities',
    description: 'Get registry capabilities.',
    response: Type.Object({
      sparse_manifests: Type.Object({
        supported: Type.Boolean(),
        required_architectures: Type.Array(Type.String()),
        optional_architectures_allowed: Type.Boolean(),
      }),
      mirror_architectures: Type.Array(Type.String(), { description: 'Available architectures for repository mirroring filter' }),
    }, { description: 'Registry capabilities information' }),
    responseName: 'RegistryCapabilitiesResponse',
    async handler(_req, _reply, env) {
      const cfg = env.ctx.services.config;
      const sparse = cfg.features.SPARSE_INDEX === true;
      const raw = cfg.raw.SPARSE_INDEX_REQUIRED_ARCHS;
      const required = Array.isArray(raw) ? raw.filter((x): x is string => typeof x === 'string') : [];
      return {
        sparse_manifests: {
          supported: sparse,
          required_architectures: sparse ? required : [],
          optional_architectures_allowed: sparse && required.length > 0,
        },
        mirror_architectures: [...MIRROR_ARCHITECTURES].sort(),
      };
    },
  }),
];

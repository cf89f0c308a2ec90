// /api/v1/repository/{repository}/signatures (FEATURE_SIGNING): the TUF-signed tags of a
// trust-enabled repository. See src/model/signatures.ts for why there are never any.
import { Type } from 'typebox';
import { repositorySignatures } from '../../model/signatures.ts';
import { defineRoute, type AnyRoute } from './route.ts';
import { splitRepositoryParam } from './repo-path.ts';
import { REPOSITORY_DOC, RepoParams } from './repository.ts';

export const signingRoutes: AnyRoute[] = [
  defineRoute({
    method: 'GET', path: '/repository/{repository}/signatures', nickname: 'getRepoSignatures', tag: 'signing',
    scopes: ['repo:read'], features: ['SIGNING'],
    description: 'Fetches the list of signed tags for the repository.',
    paramDocs: { repository: REPOSITORY_DOC }, params: RepoParams,
    response: Type.Object({ delegations: Type.Record(Type.String(), Type.Unknown()) }),
    async handler(req, _reply, env) {
      const s = env.ctx.services;
      const lib = typeof s.config.raw.LIBRARY_NAMESPACE === 'string' && s.config.raw.LIBRARY_NAMESPACE ? s.config.raw.LIBRARY_NAMESPACE : 'library';
      const { namespace, name } = splitRepositoryParam(req.params.repository, lib);
      return repositorySignatures(s, req.principal, namespace, name);
    },
  }),
];

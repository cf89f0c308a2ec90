// Docker Content Trust (FEATURE_SIGNING). Quay reads signed tags from a TUF metadata service
// (Notary/Apostille, TUF_SERVER); Quayside runs none, so a trust-enabled repository has no TUF
// data, and the answer is the one Quay gives when the service has nothing for the repository.
import type { Principal, Services } from './context.ts';
import { DomainError } from './errors.ts';
import { accessRepo } from './repository-api.ts';

export async function repositorySignatures(s: Services, p: Principal, namespace: string, name: string): Promise<{ delegations: Record<string, unknown> }> {
  const { repo } = await accessRepo(s, p, namespace, name, 'read');
  const row = await s.db.selectFrom('repositories').select('trust_enabled').where('id', '=', repo.id).executeTakeFirst();
  if (!row?.trust_enabled) throw new DomainError('not_found', 'Not Found');
  // Quay's get_all_tags_with_expiration: the top-level "targets" role, null when unreadable.
  return { delegations: { targets: null } };
}

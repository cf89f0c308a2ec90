// Quay's `<apirepopath:repository>`: one path parameter holding "namespace/name", where the name
// may itself contain slashes (FEATURE_EXTENDED_REPOSITORY_NAMES). Fastify's router never lets a
// parameter span '/', so a route written with {repository} is registered once per segment count
// and the segments are joined back into `repository` before validation: handlers and discovery
// only ever see Quay's single parameter.
import type { FastifyRequest } from 'fastify';

/** Namespace plus up to this many name components ("org/team/app/x" …). */
export const MAX_REPOSITORY_SEGMENTS = 5;

const PLACEHOLDER = '{repository}';

/** The Fastify URLs serving a Quay path, and how many segments `repository` spans in each. */
export function repositoryVariants(path: string): { path: string; segments: number }[] {
  if (!path.includes(PLACEHOLDER)) return [{ path, segments: 0 }];
  const out: { path: string; segments: number }[] = [];
  // One segment is kept for clients that send the slash encoded (acme%2Frepo), and for Quay's
  // library-namespace shorthand.
  for (let n = 1; n <= MAX_REPOSITORY_SEGMENTS; n++) {
    const parts = Array.from({ length: n }, (_, i) => `{repository__${i}}`);
    out.push({ path: path.replace(PLACEHOLDER, parts.join('/')), segments: n });
  }
  return out;
}

/** preValidation step for a variant: folds repository__0…n-1 into `repository`. */
export function joinRepositoryParam(req: FastifyRequest, segments: number): void {
  if (segments === 0) return;
  const params = req.params as Record<string, string>;
  const parts: string[] = [];
  for (let i = 0; i < segments; i++) {
    parts.push(params[`repository__${i}`] ?? '');
    delete params[`repository__${i}`];
  }
  params.repository = parts.join('/');
}

/** Quay's parse_namespace_repository: "ns/name[/more]", or a bare name in the library namespace. */
export function splitRepositoryParam(repository: string, libraryNamespace: string): { namespace: string; name: string } {
  const slash = repository.indexOf('/');
  if (slash < 0) return { namespace: libraryNamespace, name: repository };
  return { namespace: repository.slice(0, slash), name: repository.slice(slash + 1) };
}

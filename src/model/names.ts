// Quay's name rules, plus the distribution-spec grammar the registry path enforces.
import { DomainError } from './errors.ts';

export const NAMESPACE_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
export const TEAM_RE = NAMESPACE_RE;
export const REPO_RE = /^[a-z0-9][.a-z0-9_-]{0,254}$/;
// Extended names: path components like org/team/app (each component a repository-style name).
export const REPO_EXTENDED_RE = /^(?=.{0,255}$)[a-z0-9][.a-z0-9_-]*(?:\/[a-z0-9][.a-z0-9_-]*)*$/;
export const TAG_RE = /^[\w][\w.-]{0,127}$/;
export const DIGEST_RE = /^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$/;
/** Any syntactically valid digest (other algorithms are UNSUPPORTED, not malformed). */
export const ANY_DIGEST_RE = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function validNamespace(name: string): boolean {
  return name.length >= 2 && name.length <= 255 && NAMESPACE_RE.test(name);
}

export function validRepoName(name: string, extended: boolean): boolean {
  return name.length >= 1 && name.length <= 255 && (extended ? REPO_EXTENDED_RE : REPO_RE).test(name);
}

/** Splits a /v2 repository path "ns/repo[/more]" into Quay's namespace and repository name. */
export function splitRepoPath(path: string, extended: boolean): { namespace: string; repo: string } {
  const slash = path.indexOf('/');
  if (slash <= 0) throw new DomainError('name_invalid', 'repository name must have a namespace: <namespace>/<name>', { name: path });
  const namespace = path.slice(0, slash);
  const repo = path.slice(slash + 1);
  if (!validNamespace(namespace) || !validRepoName(repo, extended)) {
    throw new DomainError('name_invalid', 'invalid repository name', { name: path });
  }
  return { namespace, repo };
}

export function parseDigest(d: string): { algorithm: string; hex: string } {
  if (!ANY_DIGEST_RE.test(d)) throw new DomainError('digest_invalid', 'invalid digest', { digest: d });
  if (!DIGEST_RE.test(d)) {
    const alg = d.split(':')[0]!;
    if (alg === 'sha256' || alg === 'sha512') throw new DomainError('digest_invalid', 'invalid digest', { digest: d });
    throw new DomainError('unsupported', `unsupported digest algorithm ${alg}`, { digest: d });
  }
  const [algorithm, hex] = d.split(':') as [string, string];
  return { algorithm, hex };
}

// User-supplied tag-name patterns (immutability and auto-prune policies), matched with RE2
// (re2js): linear time in the tag name whatever the pattern, so a policy like `(a+)+$` cannot stall a
// push or the prune worker. RE2 lacks backreferences and lookaround; such patterns are refused
// when the policy is written rather than failing later.
import { RE2JS } from 're2js';
import { DomainError } from './errors.ts';

/** Longest pattern accepted (Quay's limit for immutability patterns, applied to both policies). */
export const MAX_TAG_PATTERN_LENGTH = 256;

const cache = new Map<string, RE2JS>();
const CACHE_SIZE = 256;

function compiled(pattern: string): RE2JS {
  let re = cache.get(pattern);
  if (re) {
    // Refresh recency: a Map iterates in insertion order, so the first key is the least recent.
    cache.delete(pattern);
    cache.set(pattern, re);
    return re;
  }
  re = RE2JS.compile(pattern);
  cache.set(pattern, re);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return re;
}

/** Why the pattern cannot be used, or null. Messages follow Quay's immutability validation. */
export function tagPatternIssue(pattern: string): string | null {
  if (pattern.length > MAX_TAG_PATTERN_LENGTH) return `tag_pattern must be ${MAX_TAG_PATTERN_LENGTH} characters or less`;
  try {
    compiled(pattern);
    return null;
  } catch (e) {
    return `Invalid regex pattern: ${e instanceof Error ? e.message : String(e)}`;
  }
}

export function assertTagPattern(pattern: string): void {
  const issue = tagPatternIssue(pattern);
  if (issue) throw new DomainError('invalid_request', issue);
}

/**
 * Does `name` match? `prefix` anchors at the start only (Python's re.match, used by Quay's
 * immutability policies); `search` finds the pattern anywhere (the database regex search Quay's
 * auto-prune uses). A stored pattern that no longer compiles matches nothing.
 */
export function tagMatches(pattern: string, name: string, mode: 'prefix' | 'search'): boolean {
  let re: RE2JS;
  try {
    re = compiled(pattern);
  } catch {
    return false;
  }
  return mode === 'prefix' ? re.matcher(name).lookingAt() : re.test(name);
}

/** A policy's selection: tags matching the pattern, or (matches=false) tags not matching it. */
export function selectedByPattern(pattern: string | null, matches: boolean, name: string, mode: 'prefix' | 'search'): boolean {
  if (pattern === null) return true;
  return tagMatches(pattern, name, mode) === matches;
}

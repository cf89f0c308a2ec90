// The endpoint × caller permission matrix: one table per API area, run as one test each.
// A row names the endpoint, the scopes Quay tags it with (endpoints.json `oauth_scopes`), and the
// expected status per caller. Rows whose call changes state get a `setup` that (re)creates what
// the call consumes, run before every caller.
import assert from 'node:assert/strict';
import type { Caller, World } from './world.ts';
import { CALLERS } from './world.ts';

export interface MatrixRow {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  scopes: readonly string[];
  body?: unknown;
  /** Expected status per caller; callers left out are not exercised for this row. */
  expect: Partial<Record<Caller, number>>;
  setup?: (w: World) => Promise<void>;
}

/** Shorthand for the common shapes: `deny` callers get the status Quay gives them. */
export function expectAll(allowed: Caller[], okStatus: number, others: Partial<Record<Caller, number>> = {}): Partial<Record<Caller, number>> {
  const out: Partial<Record<Caller, number>> = {};
  for (const c of CALLERS) {
    if (allowed.includes(c)) out[c] = okStatus;
    else if (c === 'anonymous' || c === 'robot' || c === 'appToken') out[c] = 401; // not /api/v1 credentials
    else if (c === 'oauthNoScope') out[c] = 403;
    else out[c] = 403;
  }
  return { ...out, ...others };
}

export async function runMatrix(w: World, rows: MatrixRow[]): Promise<void> {
  const mismatches: string[] = [];
  for (const row of rows) {
    for (const caller of CALLERS) {
      const want = row.expect[caller];
      if (want === undefined) continue;
      if (row.setup) await row.setup(w);
      const res = await w.api(row.method, row.path, { caller, scopes: row.scopes, body: row.body });
      if (res.status !== want) {
        mismatches.push(`${row.method} ${row.path} as ${caller}: expected ${want}, got ${res.status} ${(await res.text()).slice(0, 160)}`);
      } else {
        await res.arrayBuffer();
      }
    }
  }
  assert.deepEqual(mismatches, [], `permission matrix mismatches:\n${mismatches.join('\n')}`);
}

// Queries on every request, built and compiled once per database handle: each call binds its
// values to the same SQL (Kysely's builder and compiler cost more than SQLite running them).
// The builder runs once with marker values to find where each argument goes, so it must not
// branch on its arguments; values it writes itself (literals) are kept.
import type { Compilable, CompiledQuery, Kysely } from 'kysely';
import type { Database } from './schema.ts';

export function prepared<A extends unknown[], R>(build: (db: Kysely<Database>, ...args: A) => Compilable<R>): (db: Kysely<Database>, ...args: A) => Promise<R[]> {
  const cache = new WeakMap<Kysely<Database>, { query: CompiledQuery<R>; slots: number[] }>();
  return async (db, ...args) => {
    let c = cache.get(db);
    if (!c) {
      const markers = args.map((_, i) => `\u0000prepared-argument-${i}\u0000`);
      const query = build(db, ...(markers as A)).compile();
      const slots = query.parameters.map((v) => markers.indexOf(v as string));
      if (markers.some((_, i) => !slots.includes(i))) throw new Error(`prepared query does not bind every argument: ${query.sql}`);
      cache.set(db, (c = { query, slots }));
    }
    const { query, slots } = c;
    const parameters = slots.map((slot, i) => (slot < 0 ? query.parameters[i] : args[slot]));
    return (await db.executeQuery<R>({ ...query, parameters })).rows;
  };
}

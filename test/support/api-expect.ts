// Expected-value helpers shared by the /api/v1 test files.
import { createHash } from 'node:crypto';
import { AVATAR_COLORS } from '../../src/http/api/shapes.ts';

/** The avatar Quay derives for a name: sha256 of the e-mail (or name), color from the palette. */
export function avatarOf(name: string, source: string, kind: string): { name: string; hash: string; color: string; kind: string } {
  const hash = createHash('sha256').update(source.trim().toLowerCase()).digest('hex');
  return { name, hash, color: AVATAR_COLORS[parseInt(hash.slice(0, 2), 16) % 32]!, kind };
}

/** Status and parsed body (undefined for an empty body). */
export async function json(r: Response): Promise<{ status: number; body: any }> {
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

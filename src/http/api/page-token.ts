// Quay's `next_page` tokens (@page_support): an opaque, encrypted JSON object. A token that does
// not decrypt is ignored and the first page is served, as Quay does.
import type { Services } from '../../model/context.ts';

export function encodePageToken(s: Services, data: Record<string, unknown>): string {
  return s.box.encrypt(JSON.stringify(data));
}

export function decodePageToken(s: Services, token: string | undefined): Record<string, unknown> | null {
  if (!token) return null;
  try {
    const v = JSON.parse(s.box.decrypt(token)) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The `start_id` of a Quay id-ordered page token, or null for the first page. */
export function startIdFrom(s: Services, token: string | undefined): number | null {
  const t = decodePageToken(s, token);
  return t && typeof t.start_id === 'number' && Number.isSafeInteger(t.start_id) ? t.start_id : null;
}

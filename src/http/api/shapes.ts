// Response building blocks shared by every /api/v1 area: Quay's dates and avatar objects.
import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import type { Services } from '../../model/context.ts';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** Python's email.utils.formatdate(ts) on UTC, as Quay's format_date: `Wed, 08 Jan 2025 19:32:48 -0000`. */
export function formatDate(ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined) return null;
  const d = new Date(ms);
  return `${DAYS[d.getUTCDay()]}, ${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCFullYear()).padStart(4, '0')} `
    + `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} -0000`;
}

export const AVATAR_COLORS = [
  '#969696', '#aec7e8', '#ff7f0e', '#ffbb78', '#2ca02c', '#98df8a', '#d62728', '#ff9896',
  '#9467bd', '#c5b0d5', '#8c564b', '#c49c94', '#e377c2', '#f7b6d2', '#7f7f7f', '#c7c7c7',
  '#bcbd22', '#1f77b4', '#17becf', '#9edae5', '#393b79', '#5254a3', '#6b6ecf', '#9c9ede',
  '#9ecae1', '#31a354', '#b5cf6b', '#a1d99b', '#8c6d31', '#ad494a', '#e7ba52', '#a55194',
];

export type AvatarKind = 'user' | 'robot' | 'org' | 'team' | 'app';
export interface Avatar { name: string; hash: string; color: string; kind: AvatarKind }

export const AvatarSchema = Type.Object({
  name: Type.String(),
  hash: Type.String(),
  color: Type.String(),
  kind: Type.String(),
});

function palette(s: Services): string[] {
  const c = s.config.raw.AVATAR_COLORS;
  return Array.isArray(c) && c.length > 0 && c.every((x) => typeof x === 'string') ? (c as string[]) : AVATAR_COLORS;
}

/** Quay's avatar block: a digest of the email (or the name), and a palette color picked from it. */
export function avatar(s: Services, name: string, emailOrId: string | null | undefined, kind: AvatarKind): Avatar {
  const source = (emailOrId || name).trim().toLowerCase();
  const algorithm = s.config.raw.AVATAR_KIND === 'gravatar' ? 'md5' : 'sha256';
  const hash = createHash(algorithm).update(source, 'utf8').digest('hex');
  const colors = palette(s);
  // Enough leading hex digits to index the whole palette: ceil(log16(len)), 2 for 32 colors.
  const digits = Math.max(1, Math.ceil(Math.log(colors.length) / Math.log(16) - 1e-9));
  const color = colors[parseInt(hash.slice(0, digits), 16) % colors.length]!;
  return { name, hash, color, kind };
}

export function userAvatar(s: Services, u: { username: string; email: string | null; kind: string }): Avatar {
  if (u.kind === 'org') return avatar(s, u.username, u.email, 'org');
  return avatar(s, u.username, u.email, u.kind === 'robot' ? 'robot' : 'user');
}

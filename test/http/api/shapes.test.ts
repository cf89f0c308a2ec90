// Quay's date and avatar formats, and the validation messages, as pure functions.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { AVATAR_COLORS, avatar, formatDate } from '../../../src/http/api/shapes.ts';
import { pyRepr } from '../../../src/http/api/validation.ts';
import type { Services } from '../../../src/model/context.ts';

const services = (raw: Record<string, unknown>) => ({ config: { raw } }) as unknown as Services;

test('formatDate is RFC 2822 on UTC with -0000, like email.utils.formatdate', () => {
  assert.equal(formatDate(Date.UTC(2025, 0, 8, 19, 32, 48)), 'Wed, 08 Jan 2025 19:32:48 -0000');
  assert.equal(formatDate(Date.UTC(1999, 11, 31, 23, 59, 59, 999)), 'Fri, 31 Dec 1999 23:59:59 -0000');
  assert.equal(formatDate(0), 'Thu, 01 Jan 1970 00:00:00 -0000');
  assert.equal(formatDate(null), null);
});

test('avatar: sha256 for local, md5 for gravatar, color from the first two hex digits', () => {
  const local = avatar(services({}), 'Bob', '  Bob@Example.com ', 'user');
  const h = createHash('sha256').update('bob@example.com').digest('hex');
  assert.deepEqual(local, { name: 'Bob', hash: h, color: AVATAR_COLORS[parseInt(h.slice(0, 2), 16) % 32], kind: 'user' });
  const grav = avatar(services({ AVATAR_KIND: 'gravatar' }), 'bob', null, 'robot');
  const m = createHash('md5').update('bob').digest('hex');
  assert.deepEqual(grav, { name: 'bob', hash: m, color: AVATAR_COLORS[parseInt(m.slice(0, 2), 16) % 32], kind: 'robot' });
  assert.equal(AVATAR_COLORS.length, 32);
  assert.equal(AVATAR_COLORS[0], '#969696');
  assert.equal(AVATAR_COLORS[31], '#a55194');
  // A 16-color palette needs one hex digit.
  const small = Array.from({ length: 16 }, (_, i) => `#${i}`);
  const a = avatar(services({ AVATAR_COLORS: small }), 'x', 'x', 'team');
  assert.equal(a.color, small[parseInt(a.hash[0]!, 16)]);
});

test('pyRepr matches Python for the values JSON can carry', () => {
  assert.equal(pyRepr('it\'s'), "'it\\'s'");
  assert.equal(pyRepr([1, true, null, { a: false }]), "[1, True, None, {'a': False}]");
});

// The name-match score used by /find/all (LiquidMetal, as Quay's stringscore computes it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liquidMetal } from '../../src/model/search.ts';

const near = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} != ${b}`);

test('perfect, prefix, word-start and missing matches score as LiquidMetal does', () => {
  assert.equal(liquidMetal('web', 'web'), 1);
  near(liquidMetal('readers', 'read'), (4 + 3 * 0.9) / 7);
  // Not started at the beginning: unmatched leading chars 0, trailing 0.8.
  near(liquidMetal('mywebsite', 'web'), (0 + 0 + 3 + 4 * 0.8) / 9);
  // A match at a word start credits the separator before it and half-credits the skipped chars.
  near(liquidMetal('my-web', 'web'), (0.85 + 0.85 + 1 + 3) / 6);
  assert.equal(liquidMetal('builders', 'xyz'), 0);
  assert.equal(liquidMetal('ab', 'abc'), 0);
  assert.equal(liquidMetal('anything', ''), 0.8);
});

test('linear in the name: a hostile query over a long name returns at once', () => {
  const name = 'a'.repeat(200_000);
  const started = performance.now();
  assert.ok(liquidMetal(name, 'a'.repeat(255)) > 0);
  assert.equal(liquidMetal(name, `${'a'.repeat(254)}b`), 0);
  assert.ok(performance.now() - started < 1000);
});

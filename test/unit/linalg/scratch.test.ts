// Scratch buffers: one per name, reused while it is large enough, grown when not; requests past
// the cap get a buffer of their own, so a thread does not hold hundreds of MB after a large layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scratch } from '../../../src/core/linalg/scratch';

test('scratch reuses one buffer per name, grows it, and gives large requests a buffer of their own', () => {
  const a = scratch('test.a', 1000);
  a[999] = 7;
  const again = scratch('test.a', 500);
  assert.equal(again.buffer, a.buffer, 'same buffer for a smaller request');
  assert.equal(again.length, 500);
  assert.notEqual(scratch('test.b', 500).buffer, a.buffer, 'another name, another buffer');
  const grown = scratch('test.a', 5000);
  assert.notEqual(grown.buffer, a.buffer, 'grown past its size');
  assert.equal(scratch('test.a', 4000).buffer, grown.buffer);
  const huge = scratch('test.a', 9 * 1024 * 1024);
  assert.equal(huge.length, 9 * 1024 * 1024);
  assert.notEqual(huge.buffer, grown.buffer);
  assert.equal(scratch('test.a', 4000).buffer, grown.buffer, 'a large request does not replace the kept buffer');
});

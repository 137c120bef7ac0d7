// The Gram matrix kernel: streamed in row chunks (values path) it must equal the one-pass Gram
// (whose eigenvalues the scipy tests check) and an independent float64 product.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gramToKernelMemory } from '../../../src/core/linalg/gram';
import { kernelMemory } from '../../../src/core/linalg/wasm';
import { rng } from './reference';

function lowerTriangle(rows: number, cols: number, data: Float32Array, keepX: boolean, chunkDoubles?: number): Float64Array {
  const { n, g, scale } = gramToKernelMemory(data, rows, cols, 0, keepX, chunkDoubles);
  const F = kernelMemory(0);
  const out = new Float64Array((n * (n + 1)) / 2);
  let at = 0;
  // G is the Gram of scale·W; scale is a power of two, so dividing it out is exact.
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) out[at++] = F[g + i * n + j] / (scale * scale);
  return out;
}

for (const [rows, cols] of [[203, 37], [37, 203], [64, 64], [1, 9], [9, 1], [130, 33]]) {
  test(`Gram of ${rows}×${cols}: chunked = one pass = plain float64 product`, () => {
    const u = rng(rows * 1000 + cols);
    const data = Float32Array.from({ length: rows * cols }, () => u() - 0.5);
    const n = Math.min(rows, cols);
    const expected = new Float64Array((n * (n + 1)) / 2);
    let at = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        if (rows >= cols) for (let k = 0; k < rows; k++) s += data[k * cols + i] * data[k * cols + j];
        else for (let k = 0; k < cols; k++) s += data[i * cols + k] * data[j * cols + k];
        expected[at++] = s;
      }
    }
    const whole = lowerTriangle(rows, cols, data, true);
    // 8 rows of X per chunk, and a chunk size that leaves a ragged last chunk.
    for (const chunk of [8 * n, 12 * n + 5]) {
      const chunked = lowerTriangle(rows, cols, data, false, chunk);
      for (let i = 0; i < expected.length; i++) {
        assert.ok(Math.abs(chunked[i] - expected[i]) <= 1e-12 * (1 + Math.abs(expected[i])), `chunk ${chunk}: entry ${i}`);
        assert.ok(Math.abs(whole[i] - expected[i]) <= 1e-12 * (1 + Math.abs(expected[i])), `one pass: entry ${i}`);
      }
    }
  });
}

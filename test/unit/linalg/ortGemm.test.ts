// Products through ONNX Runtime (ortGemm.ts): the Gram and X·Z equal numpy's float64 products
// (to 1e-13 of the largest entry: only the summation order differs), chunk boundaries do not
// matter (bit-identical on integer data, where every sum is exact), the WASM route takes over
// when ORT cannot load (one notice, same values), and cancelling stops a chunked product: at the
// next chunk in the thread, and through the pool without terminating a worker inside a native
// run (which aborts the whole process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isRankscopeError } from '../../../src/core/errors';
import { gramToKernelMemory, ORT_GRAM_MIN_MACS } from '../../../src/core/linalg/gram';
import {
  cancelThisThread, crossProductOrt, gramBlocks, gramOrt, ortGemmAvailable, productOrt, reloadOrtGemmForTests, resetCancel,
} from '../../../src/core/linalg/ortGemm';
import { multiplyAdd, ORT_PRODUCT_MIN_MACS } from '../../../src/core/linalg/product';
import { singularValues } from '../../../src/core/linalg/singularValues';
import { runWorkerPool, type PoolJob } from '../../../src/core/linalg/workerPool';
import { kernelMemory } from '../../../src/core/linalg/wasm';
import { f64, rng, scipyCases, tempDir, writeF64 } from './reference';
import { runPython } from '../../helpers/python';

/** numpy's float64 product a (r×k) · b (k×c), or aᵀa with b absent. */
function numpyProduct(a: Float64Array, r: number, k: number, b?: Float64Array, c = 0): Float64Array {
  const dir = tempDir('rankscope-ortgemm-');
  writeF64(join(dir, 'a.f64'), a);
  if (b) writeF64(join(dir, 'b.f64'), b);
  runPython(`
import sys, numpy as np
d, r, k, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
a = np.fromfile(d + '/a.f64').reshape(r, k)
y = a.T @ a if c == 0 else a @ np.fromfile(d + '/b.f64').reshape(k, c)
y.astype('<f8').tofile(d + '/y.f64')
`, [dir, String(r), String(k), String(c)]);
  return f64(join(dir, 'y.f64'));
}

const random = (length: number, seed: number) => {
  const u = rng(seed);
  return Float64Array.from({ length }, () => u() - 0.5);
};
const integers = (length: number, seed: number) => {
  const u = rng(seed);
  return Float64Array.from({ length }, () => Math.floor(u() * 17) - 8);
};
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

/** G's n×n block from kernel memory after gramToKernelMemory, with the power-of-two scale divided out (exact). */
function gramOf(data: Float64Array, rows: number, cols: number, keepX: boolean, chunkDoubles?: number): Float64Array {
  const { n, g, scale } = gramToKernelMemory(data, rows, cols, 0, keepX, chunkDoubles);
  return kernelMemory(0).slice(g, g + n * n).map((x) => x / (scale * scale));
}

test('ONNX Runtime loads here (the fast route is the one the other tests exercise)', () => {
  assert.ok(ortGemmAvailable());
});

for (const [rows, cols] of [[700, 300], [300, 700]]) {
  test(`Gram of ${rows}×${cols} through ORT = numpy's float64 product (1e-13 of the largest entry), lower triangle as the WASM route's`, () => {
    assert.ok(Math.max(rows, cols) * Math.min(rows, cols) ** 2 >= ORT_GRAM_MIN_MACS, 'takes the ORT route');
    const w = random(rows * cols, rows + cols);
    const n = Math.min(rows, cols), m = Math.max(rows, cols);
    // numpy's XᵀX with X = W (tall) or Wᵀ (wide).
    const x = rows >= cols ? w : Float64Array.from({ length: m * n }, (_, i) => w[(i % n) * cols + Math.floor(i / n)]);
    const expected = numpyProduct(x, m, n);
    const bar = 1e-13 * maxAbs(expected);
    for (const keepX of [true, false]) {
      for (const chunk of [undefined, 37 * n + 3]) {
        const got = gramOf(w, rows, cols, keepX, chunk);
        for (let i = 0; i < n; i++) {
          for (let j = 0; j <= i; j++) assert.ok(Math.abs(got[i * n + j] - expected[i * n + j]) <= bar, `keepX ${keepX} chunk ${chunk}: G[${i},${j}] ${got[i * n + j]} vs ${expected[i * n + j]}`);
        }
      }
    }
  });
}

test('chunk boundaries do not matter: on integer data (exact sums) the chunked Gram is bit-identical to the exact one', () => {
  const m = 523, n = 400;
  const x = integers(m * n, 5);
  const exact = new Float64Array(n * n);
  for (let r = 0; r < m; r++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) exact[i * n + j] += x[r * n + i] * x[r * n + j];
  for (const rowsPerChunk of [1, 7, 64, 522, 523, 10_000]) {
    const calls: number[] = [];
    const g = new Float64Array(n * n);
    assert.ok(gramOrt(m, n, (r0, rows, out) => {
      calls.push(r0);
      for (let t = 0; t < rows; t++) for (let i = 0; i < n; i++) out[i * rows + t] = x[(r0 + t) * n + i];
    }, (i, row) => g.set(row, i * n), rowsPerChunk * n));
    // The lower triangle and the diagonal blocks are computed; the blocks above them stay 0.
    const cuts = gramBlocks(n);
    assert.ok(cuts.length > 2, 'more than one column block');
    const expected = exact.map((v, at) => {
      const i = Math.floor(at / n), j = at % n;
      return j < cuts.find((c) => c > i)! ? v : 0;
    });
    assert.deepEqual(g, expected, `${rowsPerChunk} rows per chunk`);
    assert.equal(calls.length, Math.ceil(m / Math.min(m, rowsPerChunk)));
  }
});

test('X·Z through ORT: = numpy (1e-13), bit-identical across chunkings on integer data, and multiplyAdd adds into strided C', () => {
  const m = 611, k = 257, N = 60;
  const x = random(m * k, 11), z = random(k * N, 12);
  const expected = numpyProduct(x, m, k, z, N);
  const c = new Float64Array(m * N);
  assert.ok(m * k * N >= ORT_PRODUCT_MIN_MACS, 'takes the ORT route');
  assert.ok(productOrt(m, k, N, (r0, rows, out) => out.set(x.subarray(r0 * k, (r0 + rows) * k)), z, (r0, _rows, out) => c.set(out, r0 * N), 50 * k));
  const bar = 1e-13 * maxAbs(expected);
  for (let i = 0; i < c.length; i++) assert.ok(Math.abs(c[i] - expected[i]) <= bar, `C[${i}]`);

  const xi = integers(m * k, 13), zi = integers(k * N, 14);
  const product = (chunk: number) => {
    const out = new Float64Array(m * N);
    productOrt(m, k, N, (r0, rows, o) => o.set(xi.subarray(r0 * k, (r0 + rows) * k)), zi, (r0, _rows, o) => out.set(o, r0 * N), chunk);
    return out;
  };
  const one = product(m * k);
  for (const chunk of [k, 9 * k + 1, 300 * k]) assert.deepEqual(product(chunk), one, `chunk ${chunk}`);

  // multiplyAdd on kernel memory: A with row stride 300, B with 70, C (stride 64) starting at 1.
  const lda = 300, ldb = 70, ldc = 64;
  const a = 0, b = a + m * lda, cc = b + k * ldb;
  const F = kernelMemory(cc + m * ldc + 16);
  F.fill(0, 0, cc + m * ldc + 16);
  for (let i = 0; i < m; i++) F.set(x.subarray(i * k, (i + 1) * k), a + i * lda);
  for (let i = 0; i < k; i++) F.set(z.subarray(i * N, (i + 1) * N), b + i * ldb);
  for (let i = 0; i < m; i++) for (let j = 0; j < ldc; j++) F[cc + i * ldc + j] = 1;
  multiplyAdd(m, k, N, a, lda, b, ldb, cc, ldc, cc + m * ldc + 2);
  const G = kernelMemory(0);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < ldc; j++) {
      const want = 1 + (j < N ? expected[i * N + j] : 0);
      assert.ok(Math.abs(G[cc + i * ldc + j] - want) <= bar, `C[${i},${j}] = ${G[cc + i * ldc + j]}, want ${want}`);
    }
  }
});

test('AᵀB through ORT (the subspace iteration\'s QᵀY) = numpy (1e-13)', () => {
  const k = 900, r = 70, N = 50;
  const a = random(k * r, 41), b = random(k * N, 42);
  const aT = Float64Array.from({ length: r * k }, (_, i) => a[(i % k) * r + Math.floor(i / k)]);
  const expected = numpyProduct(aT, r, k, b, N);
  const out = new Float64Array(r * N);
  assert.ok(crossProductOrt(k, r, N, a, b, out));
  const bar = 1e-13 * maxAbs(expected);
  for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i] - expected[i]) <= bar, `entry ${i}: ${out[i]} vs ${expected[i]}`);
});

test('without ONNX Runtime: one notice, and the WASM route gives the same Gram and singular values', () => {
  const rows = 600, cols = 300;
  const w = random(rows * cols, 21);
  const viaOrt = gramOf(w, rows, cols, false);
  const [c] = scipyCases({ c: 'rng.standard_normal((600, 300)) * 0.02' });
  const sOrt = singularValues(c.data, c.rows, c.cols);
  const notices: string[] = [];
  reloadOrtGemmForTests('rankscope-no-such-onnxruntime', (message) => notices.push(message));
  try {
    assert.equal(ortGemmAvailable(), false);
    assert.ok(rows * cols ** 2 >= ORT_GRAM_MIN_MACS, 'would take the ORT route');
    const viaWasm = gramOf(w, rows, cols, false);
    const n = cols;
    const bar = 1e-13 * maxAbs(viaOrt);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) assert.ok(Math.abs(viaWasm[i * n + j] - viaOrt[i * n + j]) <= bar, `G[${i},${j}]`);
    const sWasm = singularValues(c.data, c.rows, c.cols);
    for (let i = 0; i < sWasm.length; i++) {
      assert.ok(Math.abs(sWasm[i] - c.reference[i]) <= 1e-9 * c.reference[0], `σ${i} (WASM) vs scipy`);
      assert.ok(Math.abs(sOrt[i] - c.reference[i]) <= 1e-9 * c.reference[0], `σ${i} (ORT) vs scipy`);
    }
    assert.equal(notices.length, 1, 'said once');
    assert.match(notices[0], /ONNX Runtime's GEMM is not available .*WebAssembly kernels/);
  } finally {
    reloadOrtGemmForTests();
  }
  assert.ok(ortGemmAvailable());
});

test('without ONNX Runtime in a pool of two workers: the notice comes once for the pool', async () => {
  const replies: { available: boolean; noticed: boolean }[] = [];
  await runWorkerPool<PoolJob, { id: number; ok: true; available: boolean; noticed: boolean }>({
    name: 'ort notice test',
    entry: { file: join(__dirname, 'ortNoticeWorker.ts'), execArgv: ['--require', 'tsx/cjs'] },
    count: 2,
    threads: 2,
    prepare: () => ({ matrices: [] }),
    onDone: (reply) => replies.push(reply),
  });
  assert.equal(replies.length, 2);
  assert.ok(replies.every((r) => !r.available), 'both fell back');
  assert.equal(replies.filter((r) => r.noticed).length, 1, 'one notice for the pool');
});

test('cancelling stops a chunked product at the next chunk', () => {
  const m = 2000, n = 64;
  const x = random(m * n, 31);
  let chunks = 0;
  try {
    assert.throws(() => gramOrt(m, n, (r0, rows, out) => {
      if (++chunks === 3) cancelThisThread();
      out.set(x.subarray(r0 * n, (r0 + rows) * n));
    }, () => {}, 10 * n), (e) => isRankscopeError(e) && e.code === 'CANCELLED');
    assert.equal(chunks, 3, 'no chunk after the cancel was multiplied');
  } finally {
    resetCancel();
  }
  assert.ok(gramOrt(m, n, (r0, rows, out) => out.set(x.subarray(r0 * n, (r0 + rows) * n)), () => {}, 10 * n), 'runs again after the reset');
});

test('aborting a pool whose worker is inside ORT products rejects at once and the process lives on', async () => {
  const controller = new AbortController();
  const started = Date.now();
  let abortedAt = 0;
  setTimeout(() => {
    abortedAt = Date.now();
    controller.abort();
  }, 2500);
  await assert.rejects(runWorkerPool<PoolJob & { rows: number }, { id: number; ok: true }>({
    name: 'ort cancel test',
    entry: { file: join(__dirname, 'ortCancelWorker.ts'), execArgv: ['--require', 'tsx/cjs'] },
    count: 1,
    threads: 1,
    signal: controller.signal,
    prepare: () => ({ matrices: [], rows: 1 << 30 }),
    onDone: () => assert.fail('the endless product finished'),
  }), (e) => isRankscopeError(e) && e.code === 'CANCELLED');
  assert.ok(abortedAt > 0 && Date.now() - abortedAt < 1000, `rejected ${Date.now() - abortedAt} ms after the abort (started ${abortedAt - started} ms in)`);
  // A worker terminated inside a native run would have aborted this process by now.
  await new Promise((r) => setTimeout(r, 1500));
});

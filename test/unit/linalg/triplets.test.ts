// Top-k triplets: ‖W − U_k·Σ_k·V_kᵀ‖_F must equal √Σ_{i>k} σ_i² (σ from scipy) within 1e-5
// relative; at full rank (tail 0) the residual must be ≤ 1e-5·‖W‖_F. Both computation paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { blockedWorkDoubles } from '../../../src/core/linalg/blockedTridiagonal';
import { gramToKernelMemory, tileSlack } from '../../../src/core/linalg/gram';
import { symmetricEigen, symmetricEigenTails, symmetricEigenWork, topSingularTriplets, tripletsFromGram, tripletsViaGram, type SingularTriplets } from '../../../src/core/linalg/triplets';
import { kernelMemory } from '../../../src/core/linalg/wasm';
import { runPython } from '../../helpers/python';
import { RankscopeError } from '../../../src/core/errors';
import { f64, lowRankResidual, maxAbsDiff, rng, scipyCases, tempDir, writeF64 } from './reference';

const cases = scipyCases({
  tall: 'rng.standard_normal((160, 96))',
  wide: 'rng.standard_normal((72, 150)) * 0.1',
  low_rank: 'rng.standard_normal((90, 5)) @ rng.standard_normal((5, 64))',
  geometric: 'spectrum(100, 80, np.logspace(0, -8, 80))',
  small: 'rng.standard_normal((12, 20))',
});

function orthonormalityError(m: Float64Array, rows: number, k: number, count = k): number {
  let worst = 0;
  for (let a = 0; a < count; a++) {
    for (let b = 0; b <= a; b++) {
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += m[i * k + a] * m[i * k + b];
      worst = Math.max(worst, Math.abs(dot - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

for (const c of cases) {
  const r = Math.min(c.rows, c.cols);
  const norm = Math.sqrt(c.reference.reduce((s, x) => s + x * x, 0));
  for (const k of [1, Math.max(1, r >> 2), r >> 1, r - 1, r]) {
    test(`triplets reconstruct: ${c.name} (${c.rows}×${c.cols}) k=${k}`, () => {
      const tail = Math.sqrt(c.reference.slice(k).reduce((s, x) => s + x * x, 0));
      const routes: [string, SingularTriplets][] = [
        ['default', topSingularTriplets(c.data, c.rows, c.cols, k, c.name)],
        ['gram+wasm', tripletsViaGram(c.data, c.rows, c.cols, k)],
        ['gram+full QL', tripletsViaGram(c.data, c.rows, c.cols, k, 'full')],
      ];
      // Inverse iteration is the route for k ≤ n/4; its own check may refuse (then 'auto' falls back).
      if (r >= 32 && k <= r >> 2) routes.push(['gram+inverse iteration', tripletsViaGram(c.data, c.rows, c.cols, k, 'inverse')]);
      for (const [route, t] of routes) {
        assert.equal(t.u.length, c.rows * k);
        assert.equal(t.v.length, c.cols * k);
        assert.equal(t.s.length, k);
        const res = lowRankResidual(c, t);
        // Relative to the tail where it is resolvable (≥ 1e-6·‖W‖ in float32 data), else to ‖W‖_F.
        const scale = tail >= 1e-6 * norm ? tail : norm;
        assert.ok(Math.abs(res - tail) <= 1e-5 * scale, `${route}: residual ${res} vs tail ${tail}`);
        for (let i = 0; i < k; i++) assert.ok(Math.abs(t.s[i] - c.reference[i]) <= 1e-5 * c.reference[0], `${route}: σ_${i}`);
        // The singular vectors of resolvable values are orthonormal.
        const resolvable = c.reference.slice(0, k).filter((s) => s > 1e-3 * c.reference[0]).length;
        assert.ok(orthonormalityError(t.v, c.cols, k, resolvable) < 1e-6, `${route}: V not orthonormal`);
        assert.ok(orthonormalityError(t.u, c.rows, k, resolvable) < 1e-6, `${route}: U not orthonormal`);
      }
    });
  }
}

// Through ONNX Runtime (m·n² ≥ ORT_GRAM_MIN_MACS) X is kept as the plain Xᵀ chunks the Gram was
// made from, and U (or V) comes from one product per chunk: tall, wide and square (a square W counts
// as wide there), in one chunk and in several with a ragged last one.
const large = scipyCases({
  tall: 'spectrum(700, 400, np.arange(1, 401) ** -0.7)',
  wide: 'spectrum(400, 700, np.arange(1, 401) ** -0.7)',
  square: 'spectrum(420, 420, np.arange(1, 421) ** -0.7)',
});
for (const c of large) {
  test(`triplets from X kept as Xᵀ chunks (ONNX Runtime): ${c.name} (${c.rows}×${c.cols})`, () => {
    const n = Math.min(c.rows, c.cols), m = Math.max(c.rows, c.cols);
    for (const chunkRows of [m, 300, 199]) {
      const probe = gramToKernelMemory(c.data, c.rows, c.cols, blockedWorkDoubles(n) + 2 * n * n, true, chunkRows * n);
      assert.ok(probe.xt, 'X kept as Xᵀ chunks');
      assert.equal(probe.xt.length, Math.ceil(m / chunkRows));
      assert.equal(probe.tall, c.rows > c.cols);
      for (const k of [1, 40, n]) {
        const t = tripletsFromGram(c.data, probe, k);
        const tail = Math.sqrt(c.reference.slice(k).reduce((sum, x) => sum + x * x, 0));
        const norm = Math.sqrt(c.reference.reduce((sum, x) => sum + x * x, 0));
        const res = lowRankResidual(c, t);
        assert.ok(Math.abs(res - tail) <= 1e-5 * (k === n ? norm : tail), `${chunkRows} rows per chunk, k=${k}: residual ${res} vs tail ${tail}`);
        for (let i = 0; i < k; i++) assert.ok(Math.abs(t.s[i] - c.reference[i]) <= 1e-5 * c.reference[0], `σ_${i}`);
        assert.ok(orthonormalityError(t.u, c.rows, k) < 1e-6 && orthonormalityError(t.v, c.cols, k) < 1e-6, 'U and V orthonormal');
        // G is destroyed by the reduction: the next k starts from a fresh Gram.
        Object.assign(probe, gramToKernelMemory(c.data, c.rows, c.cols, blockedWorkDoubles(n) + 2 * n * n, true, chunkRows * n));
      }
    }
  });
}

test('triplets returned own their buffers: a later Gram on the same thread (its reused work buffers) leaves them as they were', () => {
  const [a, b] = large;
  const t = topSingularTriplets(a.data, a.rows, a.cols, 30);
  const copy = { u: t.u.slice(), s: t.s.slice(), v: t.v.slice() };
  topSingularTriplets(b.data, b.rows, b.cols, 30);
  assert.deepEqual({ u: t.u, s: t.s, v: t.v }, copy);
});

test('rank out of range is a BAD_ARGUMENT error; k = 0 gives empty factors', () => {
  const c = cases[0];
  assert.throws(() => topSingularTriplets(c.data, c.rows, c.cols, 97, 'fc'), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT' && /fc/.test(e.message));
  assert.throws(() => topSingularTriplets(c.data, c.rows, c.cols, 1.5), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT');
  assert.equal(topSingularTriplets(c.data, c.rows, c.cols, 0).s.length, 0);
});

test('dense symmetric eigenpairs (the Ritz step of block Lanczos): all, the largest few, or the last entries only, as numpy eigh', () => {
  const n = 40, few = 10, tail = 8;
  const random = rng(17);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = random() - 0.5;
  const dir = tempDir('rankscope-eigen-');
  writeF64(join(dir, 'a.f64'), a);
  runPython(`
import sys, numpy as np
d, n = sys.argv[1], int(sys.argv[2])
w, v = np.linalg.eigh(np.fromfile(d + '/a.f64').reshape(n, n))
w[::-1].astype('<f8').tofile(d + '/w.f64')
v[:, ::-1].T.copy().astype('<f8').tofile(d + '/v.f64')  # rows: eigenvectors, largest value first
`, [dir, String(n)]);
  const w = f64(join(dir, 'w.f64')), v = f64(join(dir, 'v.f64'));
  // A at 0 (with its tile slack), the work after it, the output last.
  const work = n * n + tileSlack(n) + 2, out = work + symmetricEigenWork(n) + 2;
  const run = (solve: () => Float64Array | undefined): { values: Float64Array; F: Float64Array } => {
    kernelMemory(out + n * n).set(a, 0);
    const values = solve();
    assert.ok(values, 'QL converged');
    return { values, F: kernelMemory(0) };
  };
  // Eigenvectors are unique up to sign: compare ±row to numpy's, with the sign of their dot product.
  const sameUpToSign = (row: ArrayLike<number>, ref: ArrayLike<number>, what: string) => {
    let dot = 0;
    for (let i = 0; i < ref.length; i++) dot += row[i] * ref[i];
    const sign = dot < 0 ? -1 : 1;
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(sign * row[i] - ref[i]) <= 1e-10, `${what}: entry ${i}`);
  };
  for (const vectors of [n, few]) {
    const { values, F } = run(() => symmetricEigen(0, n, work, out, vectors));
    assert.ok(maxAbsDiff(values, w) <= 1e-12, 'values');
    for (let e = 0; e < vectors; e++) sameUpToSign(F.subarray(out + e * n, out + (e + 1) * n), v.subarray(e * n, (e + 1) * n), `vector ${e} of ${vectors}`);
  }
  const { values, F } = run(() => symmetricEigenTails(0, n, tail, work, out));
  assert.ok(maxAbsDiff(values, w) <= 1e-12, 'values with the tails');
  for (let e = 0; e < n; e++) sameUpToSign(F.subarray(out + e * tail, out + (e + 1) * tail), v.subarray(e * n + n - tail, (e + 1) * n), `last ${tail} entries of vector ${e}`);
});

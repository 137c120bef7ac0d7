// Matrices that break iterative solvers (issue 12 item 3: a 24×512 matrix of 0.02 never returned):
// constant, rank-1, repeated values, 1e-30/1e30 (float32) and 1e-200/1e200 (float64) scales,
// zero rows/columns, and sides either side of the Jacobi/Gram switch (32). Every call runs in a
// child process under a time bound, so a hang fails the test instead of blocking the run.
// Reference: scipy.linalg.svdvals (LAPACK) of the same float32/float64 matrix. Tolerances, as a
// share of σ_max: Jacobi (sides < 32, and the Gram route's last fallback) 1e-12; the Gram route and
// its bisection fallback 1e-5 (the design bar; √(n·ε) ≈ 1e-7 expected).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scipyCases, maxAbsDiff, type Case } from './reference';
import { solveBounded } from './bounded';
import type { SolverCall, SolverResult } from './solverChild';
import { SMALL_SIDE } from '../../../src/core/linalg/singularValues';

const JACOBI_TOLERANCE = 1e-12;
const GRAM_TOLERANCE = 1e-5;

const float32 = scipyCases({
  constant_24x512: 'np.full((24, 512), 0.02)',
  constant_512x24: 'np.full((512, 24), 0.02)',
  constant_31x512: 'np.full((31, 512), 0.02)',
  constant_32x512: 'np.full((32, 512), 0.02)',
  constant_48x512: 'np.full((48, 512), -0.02)',
  constant_64x64: 'np.full((64, 64), 3.0)',
  rank1_20x300: 'np.outer(rng.standard_normal(20), rng.standard_normal(300))',
  rank1_96x200: 'np.outer(rng.standard_normal(96), rng.standard_normal(200))',
  repeated_30x25: 'spectrum(30, 25, [1.0] * 25)',
  repeated_80x64: 'spectrum(80, 64, [2.0] * 32 + [0.5] * 32)',
  identity_31: 'np.eye(31)',
  identity_40x50: 'np.eye(40, 50)',
  tiny_24x100: 'rng.standard_normal((24, 100)) * 1e-30',
  tiny_100x80: 'rng.standard_normal((100, 80)) * 1e-30',
  huge_24x100: 'rng.standard_normal((24, 100)) * 1e30',
  huge_100x80: 'rng.standard_normal((100, 80)) * 1e30',
  // float32's own ends, where the Gram is formed without rescaling (squares stay in float64's range):
  // entries up to ~3e38, and subnormals down to ~1e-44 (sides past the switch to ONNX Runtime's Gram).
  max32_340x330: 'rng.standard_normal((340, 330)) * 7e37',
  subnormal32_330x340: 'rng.standard_normal((330, 340)) * 1e-41',
  zero_rows_20x40: 'np.vstack([np.zeros((10, 40)), rng.standard_normal((10, 40))])',
  zero_rows_50x70: 'np.vstack([rng.standard_normal((30, 70)), np.zeros((20, 70))])',
  zero_cols_60x38: 'np.hstack([np.zeros((60, 8)), rng.standard_normal((60, 30))])',
  zero_row_1x50: 'np.zeros((1, 50))',
  random_31x200: 'rng.standard_normal((31, 200))',
  random_32x200: 'rng.standard_normal((32, 200))',
  random_33x200: 'rng.standard_normal((33, 200))',
  random_200x31: 'rng.standard_normal((200, 31))',
  random_200x32: 'rng.standard_normal((200, 32))',
  random_200x33: 'rng.standard_normal((200, 33))',
});
const float64 = scipyCases({
  tiny64_24x100: 'rng.standard_normal((24, 100)) * 1e-200',
  tiny64_100x80: 'rng.standard_normal((100, 80)) * 1e-200',
  huge64_24x100: 'rng.standard_normal((24, 100)) * 1e200',
  huge64_100x80: 'rng.standard_normal((100, 80)) * 1e200',
  constant64_40x300: 'np.full((40, 300), 1e-300)',
}, 'float64');

/** Every values route, with and without its fallback forced (an iteration budget of 0). */
const VALUE_CALLS: [string, SolverCall, number][] = [
  ['default', { kind: 'values', route: 'default' }, NaN], // tolerance by side, below
  ['jacobi', { kind: 'values', route: 'jacobi' }, JACOBI_TOLERANCE],
  ['gram (QL)', { kind: 'values', route: 'gram' }, GRAM_TOLERANCE],
  ['gram, QL out of budget → bisection', { kind: 'values', route: 'gram', limits: { qlIterations: 0 } }, GRAM_TOLERANCE],
  ['jacobi out of budget → gram', { kind: 'values', route: 'jacobi', limits: { jacobiSweeps: 0 } }, GRAM_TOLERANCE],
];

for (const c of [...float32, ...float64]) {
  const r = Math.min(c.rows, c.cols);
  test(`bounded singular values match scipy: ${c.name} (${c.rows}×${c.cols}, ${c.data instanceof Float32Array ? 'float32' : 'float64'})`, () => {
    const results = solveBounded(c.data, c.rows, c.cols, VALUE_CALLS.map(([, call]) => call));
    VALUE_CALLS.forEach(([route, , bar], i) => {
      const s = results[i].s;
      assert.equal(s.length, r, route);
      for (let j = 1; j < s.length; j++) assert.ok(s[j] <= s[j - 1], `${route}: not descending at ${j}`);
      const tolerance = (Number.isNaN(bar) ? (r < SMALL_SIDE ? JACOBI_TOLERANCE : GRAM_TOLERANCE) : bar) * c.reference[0];
      const err = maxAbsDiff(s, c.reference);
      if (c.reference[0] === 0) assert.equal(err, 0, `${route}: a zero matrix gives exact zeros`);
      else assert.ok(err <= tolerance, `${route}: max error ${err.toExponential(2)} > ${tolerance.toExponential(2)} (σ_max ${c.reference[0].toExponential(3)})`);
    });
  });

  if (r === 0) continue;
  const ks = [...new Set([1, r])];
  test(`bounded triplets reconstruct: ${c.name} (k = ${ks.join(', ')})`, () => {
    const calls: [string, SolverCall][] = ks.flatMap((k): [string, SolverCall][] => [
      [`default k=${k}`, { kind: 'triplets', route: 'default', k }],
      [`jacobi k=${k}`, { kind: 'triplets', route: 'jacobi', k }],
      [`gram auto k=${k}`, { kind: 'triplets', route: 'auto', k }],
      [`gram full, QL out of budget k=${k}`, { kind: 'triplets', route: 'full', k, limits: { qlIterations: 0 } }],
    ]);
    const results = solveBounded(c.data, c.rows, c.cols, calls.map(([, call]) => call));
    calls.forEach(([route, call], i) => checkTriplets(c, route, (call as { k: number }).k, results[i]));
  });
}

/** ‖W − U·Σ·Vᵀ‖_F equals the tail √Σ_{i>k} σ_i², σ match scipy, resolvable vectors are orthonormal. */
function checkTriplets(c: Case, route: string, k: number, t: SolverResult): void {
  assert.equal(t.s.length, k, route);
  assert.equal(t.u!.length, c.rows * k, route);
  assert.equal(t.v!.length, c.cols * k, route);
  const sMax = c.reference[0];
  if (sMax === 0) {
    assert.ok(t.s.every((s) => s === 0), `${route}: zero matrix`);
    return;
  }
  // Work in units of σ_max so 1e±200 scales do not over- or underflow the check itself.
  let res2 = 0, norm2 = 0;
  for (let i = 0; i < c.rows; i++) {
    for (let j = 0; j < c.cols; j++) {
      let x = c.data[i * c.cols + j] / sMax;
      norm2 += x * x;
      for (let q = 0; q < k; q++) x -= t.u![i * k + q] * (t.s[q] / sMax) * t.v![j * k + q];
      res2 += x * x;
    }
  }
  const tail = Math.sqrt(c.reference.slice(k).reduce((s, x) => s + (x / sMax) ** 2, 0));
  const norm = Math.sqrt(norm2);
  const scale = tail >= 1e-6 * norm ? tail : norm;
  assert.ok(Math.abs(Math.sqrt(res2) - tail) <= 1e-5 * scale, `${route}: residual ${Math.sqrt(res2)} vs tail ${tail} (units of σ_max)`);
  for (let q = 0; q < k; q++) assert.ok(Math.abs(t.s[q] - c.reference[q]) <= GRAM_TOLERANCE * sMax, `${route}: σ_${q}`);
  const resolvable = c.reference.slice(0, k).filter((s) => s > 1e-3 * sMax).length;
  for (const [name, m, rows] of [['U', t.u!, c.rows], ['V', t.v!, c.cols]] as const) {
    for (let a = 0; a < resolvable; a++) {
      for (let b = 0; b <= a; b++) {
        let dot = 0;
        for (let i = 0; i < rows; i++) dot += m[i * k + a] * m[i * k + b];
        assert.ok(Math.abs(dot - (a === b ? 1 : 0)) < 1e-6, `${route}: ${name} columns ${a}, ${b} not orthonormal (${dot})`);
      }
    }
  }
}

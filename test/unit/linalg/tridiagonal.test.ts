// The bounded tridiagonal eigenvalue solvers: implicit QL stops at its iteration budget (and says
// so), and bisection, its fallback, matches scipy.linalg.eigvalsh_tridiagonal (LAPACK) to
// 1e-13·‖T‖ on random, glued-Wilkinson, repeated, zero, 1e±150-scale and 1×1 matrices; QL's
// eigenvectors match scipy's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bisectionEigenvalues, tridiagonalEigen, tridiagonalEigenvalues } from '../../../src/core/linalg/tridiagonal';
import { kernelMemory } from '../../../src/core/linalg/wasm';
import { runPython } from '../../helpers/python';
import { maxAbsDiff } from './reference';

interface Reference { d: number[]; e: number[]; values: number[] }

const cases = JSON.parse(runPython(`
import json, numpy as np, scipy.linalg as sl
rng = np.random.default_rng(11)
out = {}
def add(name, d, e):
    d = np.asarray(d, dtype=np.float64); e = np.asarray(e, dtype=np.float64)
    out[name] = {'d': d.tolist(), 'e': list(e) + [0.0], 'values': sl.eigvalsh_tridiagonal(d, e).tolist() if len(d) > 1 else d.tolist()}
add('random', rng.standard_normal(200), rng.standard_normal(199))
w21 = np.abs(np.arange(-10, 11)).astype(float)
d = np.concatenate([w21] * 5); e = np.ones(len(d) - 1); e[20::21] = 1e-7
add('glued_wilkinson', d, e)
add('repeated', np.full(64, 0.5), np.zeros(63))
add('zeros', np.zeros(40), np.zeros(39))
add('rank_one_gram', np.r_[1.0, np.zeros(49)], np.zeros(49))
add('tiny', rng.standard_normal(80) * 1e-150, rng.standard_normal(79) * 1e-150)
add('huge', rng.standard_normal(80) * 1e150, rng.standard_normal(79) * 1e150)
add('one', [3.0], [])
print(json.dumps(out))
`)) as Record<string, Reference>;

for (const [name, c] of Object.entries(cases)) {
  test(`bisection matches eigvalsh_tridiagonal: ${name} (n = ${c.d.length})`, () => {
    const d = Float64Array.from(c.d), e = Float64Array.from(c.e);
    const norm = Math.max(...c.values.map(Math.abs));
    const values = bisectionEigenvalues(d, e);
    assert.deepEqual(Array.from(d), c.d, 'd is left untouched');
    for (let i = 1; i < values.length; i++) assert.ok(values[i] >= values[i - 1], `ascending at ${i}`);
    const err = maxAbsDiff(values, c.values);
    assert.ok(err <= 1e-13 * norm, `max error ${err.toExponential(2)} > 1e-13·‖T‖ (${norm.toExponential(2)})`);
    // The combined entry point with QL's budget at 0 takes the same fallback.
    const fallback = Float64Array.from(tridiagonalEigenvalues(d, e, 0)).sort();
    assert.ok(maxAbsDiff(fallback, c.values) <= 1e-13 * norm);
    // With its normal budget QL converges to the same values.
    const ql = Float64Array.from(tridiagonalEigenvalues(d, e)).sort();
    assert.ok(maxAbsDiff(ql, c.values) <= 1e-13 * norm, `QL: ${maxAbsDiff(ql, c.values)}`);
  });
}

test('implicit QL reports running out of its iteration budget instead of looping on', () => {
  const c = cases.random;
  assert.equal(tridiagonalEigen(Float64Array.from(c.d), Float64Array.from(c.e), undefined, 5), false);
  assert.equal(tridiagonalEigen(Float64Array.from(c.d), Float64Array.from(c.e)), true);
  // Already diagonal: nothing to iterate, even with no budget.
  const z = cases.zeros;
  assert.equal(tridiagonalEigen(Float64Array.from(z.d), Float64Array.from(z.e), undefined, 0), true);
});

test('QL eigenvectors (rows of zt) match scipy\'s eigh_tridiagonal up to sign', () => {
  const ref = JSON.parse(runPython(`
import json, numpy as np, scipy.linalg as sl
rng = np.random.default_rng(5)
d = rng.standard_normal(301); e = rng.standard_normal(300)
w, v = sl.eigh_tridiagonal(d, e)
print(json.dumps({'d': d.tolist(), 'e': e.tolist() + [0.0], 'values': w.tolist(), 'vectors': v.T.tolist()}))
`)) as { d: number[]; e: number[]; values: number[]; vectors: number[][] };
  const n = ref.d.length;
  const F = kernelMemory(n * n);
  F.fill(0, 0, n * n);
  for (let i = 0; i < n; i++) F[i * n + i] = 1;
  const d = Float64Array.from(ref.d);
  assert.equal(tridiagonalEigen(d, Float64Array.from(ref.e), 0), true);
  const z = kernelMemory(n * n).slice(0, n * n);
  const order = Array.from(d.keys()).sort((a, b) => d[a] - d[b]);
  order.forEach((row, t) => {
    assert.ok(Math.abs(d[row] - ref.values[t]) <= 1e-12 * n);
    let dot = 0;
    for (let j = 0; j < n; j++) dot += z[row * n + j] * ref.vectors[t][j];
    assert.ok(Math.abs(Math.abs(dot) - 1) <= 1e-9, `vector ${t}: |cos| = ${Math.abs(dot)}`);
  });
});

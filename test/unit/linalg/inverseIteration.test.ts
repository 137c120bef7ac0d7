// Inverse iteration on a symmetric tridiagonal vs scipy.linalg.eigh_tridiagonal (LAPACK stemr):
// each top-k vector must match the reference up to sign (|xᵀx_ref| ≥ 1 − 1e-10) where the
// eigenvalue is isolated; inside clusters the vectors must span the reference's eigenspace
// (projection residual ≤ 1e-8) and be orthonormal (1e-9).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tridiagonalEigenvectors } from '../../../src/core/linalg/inverseIteration';
import { runPython } from '../../helpers/python';

interface Reference { d: number[]; e: number[]; values: number[]; vectors: number[][] }

const K = 12;
const cases = JSON.parse(runPython(`
import json, numpy as np, scipy.linalg as sl
rng = np.random.default_rng(7)
n = 200
out = {}
def add(name, d, e):
    w, v = sl.eigh_tridiagonal(d, e)
    top = np.argsort(-w)[:${K} + 30]  # the reference spans clusters that straddle the K-th value
    out[name] = {'d': d.tolist(), 'e': list(e) + [0.0], 'values': w[top].tolist(), 'vectors': v[:, top].T.tolist()}
add('random', rng.standard_normal(n), rng.standard_normal(n - 1))
# Glued Wilkinson matrices: pairs of eigenvalues equal to ~1e-14 (a hard case for inverse iteration).
w21 = np.abs(np.arange(-10, 11)).astype(float)
d = np.concatenate([w21] * 9)
e = np.ones(len(d) - 1); e[20::21] = 1e-7
add('glued_wilkinson', d, e)
# A decaying spectrum like a trained layer's Gram, tridiagonalized by scipy (Hessenberg of a symmetric matrix).
q, _ = np.linalg.qr(rng.standard_normal((n, n)))
g = (q * (np.arange(1, n + 1) ** -1.4)) @ q.T
h = sl.hessenberg((g + g.T) / 2)
add('decaying', np.diag(h).copy(), np.diag(h, -1).copy())
print(json.dumps(out))
`)) as Record<string, Reference>;

for (const [name, c] of Object.entries(cases)) {
  test(`inverse iteration matches eigh_tridiagonal: ${name}`, () => {
    const n = c.d.length;
    const x = tridiagonalEigenvectors(Float64Array.from(c.d), Float64Array.from(c.e), Float64Array.from(c.values.slice(0, K)));
    assert.ok(x, 'the check refused the vectors');
    const scale = Math.max(...c.values.map(Math.abs));
    for (let t = 0; t < K; t++) {
      const row = x.subarray(t * n, t * n + n);
      // Reference vectors whose eigenvalue is within 1e-6·‖T‖ of this one span its eigenspace (closer ones are only resolved to residual/gap).
      const space = c.vectors.filter((_, s) => Math.abs(c.values[s] - c.values[t]) <= 1e-6 * scale);
      const coefficients = space.map((ref) => ref.reduce((sum, r, i) => sum + r * row[i], 0));
      const captured = coefficients.reduce((sum, a) => sum + a * a, 0);
      assert.ok(Math.abs(1 - captured) <= (space.length === 1 ? 2e-10 : 1e-8), `vector ${t}: captured ${captured} of its eigenspace (dim ${space.length})`);
      for (let s = 0; s < t; s++) {
        const dot = x.subarray(s * n, s * n + n).reduce((sum, v, i) => sum + v * row[i], 0);
        assert.ok(Math.abs(dot) <= 1e-9, `vectors ${s}, ${t} not orthogonal: ${dot}`);
      }
    }
  });
}

test('a zero tridiagonal gives unit vectors', () => {
  const x = tridiagonalEigenvectors(new Float64Array(5), new Float64Array(5), new Float64Array(2));
  assert.deepEqual([...x!], [1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
});

// Top-k triplets: ‖W − U_k·Σ_k·V_kᵀ‖_F must equal √Σ_{i>k} σ_i² (σ from scipy) within 1e-5
// relative; at full rank (tail 0) the residual must be ≤ 1e-5·‖W‖_F. Both computation paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { topSingularTriplets, tripletsViaGram, type SingularTriplets } from '../../../src/core/linalg/triplets';
import { RankscopeError } from '../../../src/core/errors';
import { lowRankResidual, scipyCases } from './reference';

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

test('rank out of range is a BAD_ARGUMENT error; k = 0 gives empty factors', () => {
  const c = cases[0];
  assert.throws(() => topSingularTriplets(c.data, c.rows, c.cols, 97, 'fc'), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT' && /fc/.test(e.message));
  assert.throws(() => topSingularTriplets(c.data, c.rows, c.cols, 1.5), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT');
  assert.equal(topSingularTriplets(c.data, c.rows, c.cols, 0).s.length, 0);
});

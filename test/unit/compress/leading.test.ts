// The factor worker's policy on the leading route: k from the converged leading σ and ‖W‖²_F
// alone must be the k scipy's full spectrum gives, the plan made from the reply's (partial)
// spectrum must choose it too, and a layer whose target lies past the break-even rank is skipped
// (nothing factorized). Reference: scipy's svdvals of the same float32 matrix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { multiply } from '../../../src/core/compress/factor';
import { byPolicy, factorGroup, withFlatTail } from '../../../src/core/compress/factorWorker';
import { chooseRank, type RankPolicy } from '../../../src/core/compress/policy';
import { scipyCases } from '../linalg/reference';

const [c, flat] = scipyCases({ decaying: 'spectrum(1100, 1200, np.arange(1, 1101) ** -1.2)', flat: 'rng.standard_normal((1100, 1200))' });
const shape = { m: c.rows, n: c.cols, groups: 1 };

function reply(policy: RankPolicy, m = c) {
  return byPolicy({ id: 0, label: m.name, k: 0, matrices: [{ rows: m.rows, cols: m.cols, data: m.data }] }, { policy, shape });
}

test('energy 0.8: the leading route picks scipy\'s k, and the plan agrees from the partial spectrum', () => {
  const expected = chooseRank({ energy: 0.8 }, shape, [c.reference]);
  const r = reply({ energy: 0.8 });
  assert.equal(r.partialSpectra, true, 'took the leading route');
  assert.equal(r.groups[0].k, expected.k);
  const planned = chooseRank({ energy: 0.8 }, shape, r.spectra!);
  assert.equal(planned.k, expected.k);
  assert.ok(Math.abs(planned.energyKept - expected.energyKept) <= 1e-9, `energy kept ${planned.energyKept} vs ${expected.energyKept}`);
  assert.ok(Math.abs(r.groups[0].energyKept - expected.energyKept) <= 1e-9);
  // The spectrum is exact (to 1e-7·σ_max) up to k and non-increasing after it.
  const s = r.spectra![0];
  for (let i = 0; i < expected.k; i++) assert.ok(Math.abs(s[i] - c.reference[i]) <= 1e-7 * c.reference[0], `σ_${i}`);
  for (let i = 1; i < s.length; i++) assert.ok(s[i] <= s[i - 1]);
});

test('a fixed rank takes the leading route too', () => {
  const r = reply({ rank: 16 });
  assert.equal(r.partialSpectra, true);
  assert.equal(r.groups[0].k, 16);
});

test('a target past the break-even rank (a flat spectrum) is skipped, as with the full spectrum', () => {
  const policy = { energy: 0.9 };
  assert.equal(chooseRank(policy, shape, [flat.reference]).skipped, true);
  const r = reply(policy, flat);
  assert.equal(r.groups.length, 0);
  assert.equal(chooseRank(policy, shape, r.spectra!).skipped, true);
});

test('withFlatTail keeps the total energy and stays descending', () => {
  const t = withFlatTail(Float64Array.from([3, 2]), 9 + 4 + 3, 5);
  assert.deepEqual([...t], [3, 2, 1, 1, 1]);
  assert.deepEqual([...withFlatTail(Float64Array.from([1, 0.5]), 1 + 0.25 + 30, 4)].slice(2), [0.5, 0.5]); // capped at the last known σ
});

test('a job holding the weight as stored (Wᵀ, in_out) gives the factors of W itself', () => {
  const { rows, cols, data } = c;
  const wt = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) wt[j * rows + i] = data[i * cols + j];
  for (const job of [{ k: 0, policy: { energy: 0.8 } }, { k: 24 }]) {
    const asW = { id: 0, label: 'w', k: job.k, matrices: [{ rows, cols, data }] };
    const asStored = { id: 0, label: 'w', k: job.k, matrices: [{ rows, cols, data: wt, transposed: true }] };
    const [direct, stored] = job.policy
      ? [byPolicy(asW, { policy: job.policy, shape }), byPolicy(asStored, { policy: job.policy, shape })]
      : [{ groups: [factorGroup(asW, 0, job.k)] }, { groups: [factorGroup(asStored, 0, job.k)] }];
    const a = direct.groups[0], b = stored.groups[0];
    assert.deepEqual([b.m, b.n, b.k], [a.m, a.n, a.k]);
    // A·B agree entry by entry (the factors themselves may differ by the signs of their columns).
    const product = (f: typeof a) => multiply(f.a, f.b, f.m, f.k, f.n);
    const pa = product(a), pb = product(b);
    const scale = pa.reduce((top, x) => Math.max(top, Math.abs(x)), 0);
    for (let i = 0; i < pa.length; i++) assert.ok(Math.abs(pa[i] - pb[i]) <= 1e-9 * scale, `entry ${i}: ${pb[i]} vs ${pa[i]}`);
    assert.ok(Math.abs(a.energyKept - b.energyKept) <= 1e-12);
  }
});

// Spectrum metrics against worked examples and numpy, and the power-law fit on synthetic samples
// drawn from known power laws.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spectrumMetrics, rankForEnergy } from '../../../src/core/linalg/metrics';
import { fitPowerLaw, MIN_EIGENVALUES } from '../../../src/core/linalg/powerLaw';
import { singularValues } from '../../../src/core/linalg/singularValues';
import { runPython } from '../../helpers/python';
import { rng, scipyCases } from './reference';

test('metrics of a worked example: σ = [4, 3]', () => {
  const m = spectrumMetrics([4, 3], [2, 2]);
  assert.equal(m.frobenius, 5);
  assert.equal(m.spectral, 4);
  assert.equal(m.stableRank, 25 / 16);
  const p = [4 / 7, 3 / 7];
  assert.ok(Math.abs(m.effectiveRank - Math.exp(-(p[0] * Math.log(p[0]) + p[1] * Math.log(p[1])))) < 1e-14);
  assert.deepEqual(m.energyRank, { '0.9': 2, '0.95': 2, '0.99': 2 }); // 16/25 = 64 % from the first
  assert.equal(m.numericalRank, 2);
  assert.equal(m.alpha, undefined);
  assert.match(m.alphaReason!, /only 2 eigenvalues.*at least 50/);
});

test('energy ranks at exact thresholds and for a zero matrix', () => {
  const sv = [3, 1, 0]; // energies 9, 1: 90 % exactly at k = 1
  assert.equal(rankForEnergy(sv, 10, 0.9), 1);
  assert.equal(rankForEnergy(sv, 10, 0.95), 2);
  const zero = spectrumMetrics([0, 0, 0], [3, 5]);
  assert.deepEqual([zero.frobenius, zero.stableRank, zero.effectiveRank, zero.numericalRank], [0, 0, 0, 0]);
  assert.deepEqual(zero.energyRank, { '0.9': 0, '0.95': 0, '0.99': 0 });
});

test('metrics agree with numpy on a low-rank and a random matrix', () => {
  const cases = scipyCases({
    low_rank: 'rng.standard_normal((120, 9)) @ rng.standard_normal((9, 80))',
    random: 'rng.standard_normal((100, 64))',
  });
  for (const c of cases) {
    const sv = singularValues(c.data, c.rows, c.cols);
    const m = spectrumMetrics(sv, [c.rows, c.cols]);
    const ref = JSON.parse(runPython(`
import json, sys, numpy as np
s = np.array(json.loads(sys.stdin.read()), dtype=np.float64)
a = s  # singular values from scipy
e = np.cumsum(a**2) / np.sum(a**2)
p = a / a.sum()
print(json.dumps({
  'fro': float(np.sqrt((a**2).sum())), 'stable': float((a**2).sum() / a[0]**2),
  'erank': float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())),
  'energy': [int(np.searchsorted(e, q - 1e-12) + 1) for q in (0.9, 0.95, 0.99)],
  'rank': int((a > a[0] * max(${c.rows}, ${c.cols}) * np.finfo(np.float32).eps).sum()),
}))`, [], JSON.stringify(Array.from(c.reference))));
    assert.ok(Math.abs(m.frobenius - ref.fro) <= 1e-9 * ref.fro, c.name);
    assert.ok(Math.abs(m.stableRank - ref.stable) <= 1e-6 * ref.stable, c.name);
    assert.ok(Math.abs(m.effectiveRank - ref.erank) <= 1e-6 * ref.erank, c.name);
    assert.deepEqual([m.energyRank['0.9'], m.energyRank['0.95'], m.energyRank['0.99']], ref.energy, c.name);
    if (c.name === 'low_rank') assert.equal(m.numericalRank, 9);
    else assert.equal(m.numericalRank, ref.rank);
  }
});

/** Samples of p(x) ∝ x^−α on [xmin, ∞) by inversion. */
function paretoSamples(alpha: number, n: number, seed: number, xmin = 1): number[] {
  const u = rng(seed);
  return Array.from({ length: n }, () => xmin * (1 - u()) ** (-1 / (alpha - 1)));
}

// The MLE's spread is (α−1)/√tail, and choosing xmin by KS shrinks the tail, so a single fit at
// n = 1000 lands within ±0.1 only for moderate α. Judge each setting over 20 seeds: the median
// error must be ≤ 0.05 and at least 90 % of the fits within ±0.1.
for (const [alpha, n] of [[2, 1000], [2.5, 1000], [2.5, 3000]]) {
  test(`power-law fit recovers alpha = ${alpha} within ±0.1 (n = ${n}, 20 samples)`, () => {
    const errors: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const fit = fitPowerLaw(paretoSamples(alpha, n, seed * 7919 + n));
      assert.ok(fit.alpha !== undefined && fit.ks !== undefined && fit.ks > 0 && fit.ks < 0.1, `seed ${seed}: ${JSON.stringify(fit)}`);
      errors.push(Math.abs(fit.alpha - alpha));
    }
    errors.sort((a, b) => a - b);
    assert.ok(errors[9] <= 0.05, `median error ${errors[9]}`);
    assert.ok(errors.filter((e) => e <= 0.1).length >= 18, `errors ${errors.map((e) => e.toFixed(3)).join(' ')}`);
  });
}

test('power-law fit finds xmin above a non-power-law body', () => {
  const u = rng(99);
  const body = Array.from({ length: 1500 }, () => 0.2 + 0.8 * u()); // uniform below the tail
  const tail = paretoSamples(3, 1500, 4242, 1);
  const fit = fitPowerLaw([...body, ...tail]);
  assert.ok(fit.alpha !== undefined && Math.abs(fit.alpha - 3) <= 0.15, `alpha ${fit.alpha}`);
  assert.ok(fit.xmin! >= 0.9, `xmin ${fit.xmin}`);
});

test('alpha is undefined, with the reason, below 50 eigenvalues', () => {
  const few = fitPowerLaw(paretoSamples(2.5, MIN_EIGENVALUES - 1, 5));
  assert.equal(few.alpha, undefined);
  assert.match(few.reason!, /only 49 eigenvalues/);
  assert.notEqual(fitPowerLaw(paretoSamples(2.5, MIN_EIGENVALUES, 5)).alpha, undefined);
  const zeros = fitPowerLaw(new Array(80).fill(0));
  assert.match(zeros.reason!, /only 0 nonzero eigenvalues/);
  const m = spectrumMetrics(Array.from({ length: 60 }, (_, i) => 60 - i), [60, 100]);
  assert.ok(m.alpha !== undefined && m.alphaKs !== undefined && m.alphaReason === undefined);
});

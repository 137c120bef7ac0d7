// The progressive leading-triplets route (block Lanczos on the Gram) against scipy's LAPACK SVD
// of the same float32 matrices. Tolerances: kept σ within 1e-7·σ_max (1e-9 on the BERT shapes); the
// reconstruction error ‖W − U_k·Σ_k·V_kᵀ‖_F equal to scipy's optimum √Σ_{i≥k} σ_i² within 1e-6
// relative; the largest principal angle between the kept right subspace and scipy's ≤ 1e-4 (the
// cut has a relative gap ≥ 5 % in these cases); U, V orthonormal to 1e-9. Adversarial inputs
// (constant, rank-1, repeated or flat values, rank-deficient, zero) must be right, by the leading
// route or by falling back to the full one; a multiplicity above the block size must not be missed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leadingBlock, leadingTriplets, LEADING_MAX_SHARE, LEADING_MIN_ORDER, progressiveTriplets, type LeadingRankChooser } from '../../../src/core/linalg/leading';
import { ORT_PRODUCT_MIN_MACS } from '../../../src/core/linalg/product';
import type { SingularTriplets } from '../../../src/core/linalg/triplets';
import { gramToKernelMemory } from '../../../src/core/linalg/gram';
import { policyOnLeading } from '../../../src/core/compress/factorWorker';
import { lowRankResidual, scipyCases, type Case } from './reference';

/** A case with scipy's top right singular vectors, cols×K_REF row-major. */
type Ref = Case & { v: Float64Array };
const K_REF = 40;
/** Some cases are smaller than LEADING_MIN_ORDER (test time); the route is asked to take them. */
const MIN = 256;

function leading(c: { data: Float32Array | Float64Array; rows: number; cols: number }, want: LeadingRankChooser, firstBlock: number) {
  return leadingTriplets(gramToKernelMemory(c.data, c.rows, c.cols, 0, true), want, { firstBlock, minOrder: MIN });
}

const spec: Record<string, string> = {
  slow_decay: 'spectrum(600, 900, np.arange(1, 601) ** -0.7)',
  geometric_wide: 'spectrum(560, 1100, 0.93 ** np.arange(560))',
  tiny_scale: 'spectrum(700, 520, np.arange(1, 521) ** -1.0) * 1e-30',
  huge_scale: 'spectrum(700, 520, np.arange(1, 521) ** -1.0) * 1e30',
  constant: 'np.full((600, 640), 0.25)',
  rank_one: 'np.outer(rng.standard_normal(600), rng.standard_normal(700))',
  repeated: 'spectrum(600, 600, np.ones(600))',
  large_block: 'spectrum(1400, 1500, 0.95 ** np.arange(1400))',
  small: 'spectrum(400, 300, np.arange(1, 301) ** -0.7)',
  gaussian: 'rng.standard_normal((600, 640))',
  // BERT-base shapes as bench:compress builds them.
  bert_square: 'bert(768, 768)',
  bert_tall: 'bert(3072, 768)',
  bert_wide: 'bert(768, 3072)',
  bert_flat: 'spectrum(768, 768, np.ones(768))',
  // Multiplicities below and above the block (8 at n = 768), then a power law.
  repeated_few: 'spectrum(768, 768, np.concatenate([np.full(5, 3.0), 2.0 * np.arange(1, 764) ** -0.7]))',
  repeated_many: 'spectrum(768, 768, np.concatenate([np.full(20, 3.0), 2.0 * np.arange(1, 749) ** -0.7]))',
  // Exactly repeated (diagonal W: float32 keeps the 20 copies equal, so Krylov sees only b of them).
  repeated_exact: 'np.diag(np.concatenate([np.full(20, 3.0), 2.0 * np.arange(1, 749) ** -0.7]))',
  rank_30: 'spectrum(768, 768, np.concatenate([np.arange(1, 31) ** -0.7, np.zeros(738)]))',
};

const refs = scipyCases(spec, 'float32', { seed: 7, topVectors: K_REF }) as Ref[];
const ref = (name: string) => refs.find((r) => r.name === name)!;

/** sin of the largest principal angle between span(V_k) and scipy's top-k right vectors. */
function largestAngleSin(c: Ref, v: Float64Array, k: number): number {
  // ‖(I − V_ref V_refᵀ)·V‖₂ ≤ its Frobenius norm; the Frobenius bound is what we check.
  let worst = 0;
  for (let t = 0; t < k; t++) {
    const proj = new Float64Array(k);
    for (let r = 0; r < k; r++) for (let j = 0; j < c.cols; j++) proj[r] += c.v[j * K_REF + r] * v[j * k + t];
    worst = Math.max(worst, Math.sqrt(Math.max(0, 1 - proj.reduce((s, x) => s + x * x, 0))));
  }
  return worst;
}

function orthonormalityError(m: Float64Array, rows: number, k: number): number {
  let worst = 0;
  for (let a = 0; a < k; a++) {
    for (let b = 0; b <= a; b++) {
      let dot = 0;
      for (let i = 0; i < rows; i++) dot += m[i * k + a] * m[i * k + b];
      worst = Math.max(worst, Math.abs(dot - (a === b ? 1 : 0)));
    }
  }
  return worst;
}

function checkAgainstScipy(c: Ref, t: SingularTriplets, k: number): void {
  assert.equal(t.s.length, k);
  for (let i = 0; i < k; i++) assert.ok(Math.abs(t.s[i] - c.reference[i]) <= 1e-7 * c.reference[0], `${c.name}: σ_${i} ${t.s[i]} vs ${c.reference[i]}`);
  const best = Math.sqrt(c.reference.slice(k).reduce((s, x) => s + x * x, 0));
  const err = lowRankResidual(c, t);
  assert.ok(Math.abs(err - best) <= 1e-6 * best, `${c.name}: reconstruction ${err} vs optimum ${best} (rel ${(Math.abs(err - best) / best).toExponential(1)})`);
  assert.ok(largestAngleSin(c, t.v, k) <= 1e-4, `${c.name}: kept subspace off by sin θ = ${largestAngleSin(c, t.v, k).toExponential(1)}`);
  assert.ok(orthonormalityError(t.v, c.cols, k) <= 1e-9, `${c.name}: V not orthonormal`);
  assert.ok(orthonormalityError(t.u, c.rows, k) <= 1e-9, `${c.name}: U not orthonormal`);
}

/** The energy policy on leading values: smallest k with Σ_{i<k} σ² ≥ τ·‖W‖², undecided if not reached. */
const energy = (tau: number): LeadingRankChooser => (leading, total) => {
  let acc = 0;
  for (let i = 0; i < leading.length; i++) {
    acc += leading[i] ** 2;
    if (acc >= tau * total) return i + 1;
  }
  return undefined;
};

test('a fixed rank on a slowly decaying spectrum (σ_j = j^-0.7) matches scipy by the leading route', () => {
  const c = ref('slow_decay');
  const t = progressiveTriplets(c.data, c.rows, c.cols, () => 12, c.name, { firstBlock: 24, minOrder: MIN });
  assert.equal(t.route, 'leading');
  checkAgainstScipy(c, t, 12);
});

test('an order at which every product of the iteration runs through ONNX Runtime (n = 1400) matches scipy', () => {
  const c = ref('large_block');
  assert.ok(c.rows * c.rows * leadingBlock(c.rows) >= ORT_PRODUCT_MIN_MACS, 'G·Q and the re-orthogonalization go through ORT');
  const t = progressiveTriplets(c.data, c.rows, c.cols, () => 40, c.name, { firstBlock: 80, minOrder: MIN });
  assert.equal(t.route, 'leading');
  checkAgainstScipy(c, t, 40);
});

test('an energy target grows the block until it is met, and picks the rank scipy\'s values give', () => {
  const c = ref('geometric_wide');
  const total = c.reference.reduce((s, x) => s + x * x, 0);
  const tau = 0.8;
  let expected = 0;
  for (let acc = 0; acc < tau * total; expected++) acc += c.reference[expected] ** 2;
  const found = leading(c, energy(tau), 8);
  assert.ok(found, 'the leading route applies');
  assert.ok(found.steps > 3 && expected > 4, `took ${found.steps} steps for k = ${expected}`);
  checkAgainstScipy(c, found, expected);
});

for (const name of ['tiny_scale', 'huge_scale']) {
  test(`scale ${name === 'tiny_scale' ? '1e-30' : '1e30'}: same relative accuracy`, () => {
    const c = ref(name);
    const t = progressiveTriplets(c.data, c.rows, c.cols, () => 10, c.name, { firstBlock: 20, minOrder: MIN });
    assert.equal(t.route, 'leading');
    checkAgainstScipy(c, t, 10);
  });
}

test('the chooser sees W\'s own singular values and ‖W‖²_F, not those of the power-of-two-scaled Gram', () => {
  // 1e30 weights: the Gram is of 2^-100·W or so; a chooser with an absolute threshold must not see that.
  const c = ref('huge_scale');
  const total = c.reference.reduce((sum, x) => sum + x * x, 0);
  let seen: { leading: Float64Array; total: number } | undefined;
  const found = leading(c, (values, energy) => {
    seen = { leading: values.slice(), total: energy };
    return values.length >= 10 ? 10 : undefined;
  }, 20);
  assert.ok(found && seen);
  assert.ok(Math.abs(seen.total - total) <= 1e-6 * total, `total ${seen.total} vs ${total}`);
  seen.leading.forEach((x, i) => assert.ok(Math.abs(x - c.reference[i]) <= 1e-7 * c.reference[0], `σ_${i}: ${x} vs ${c.reference[i]}`));
});

for (const name of ['constant', 'rank_one', 'repeated']) {
  test(`${name}: no converged leading block, so the full route answers (and is right)`, () => {
    const c = ref(name);
    const k = 3;
    assert.equal(leading(c, () => k, 8), undefined);
    const t = progressiveTriplets(c.data, c.rows, c.cols, () => k, c.name, { firstBlock: 8, minOrder: MIN });
    assert.equal(t.route, 'full');
    const best = Math.sqrt(c.reference.slice(k).reduce((s, x) => s + x * x, 0));
    const norm = Math.sqrt(c.reference.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(lowRankResidual(c, t) - best) <= 1e-6 * norm, `${name}: reconstruction error`);
    for (let i = 0; i < k; i++) assert.ok(Math.abs(t.s[i] - c.reference[i]) <= 1e-6 * c.reference[0], `${name}: σ_${i}`);
  });
}

test('below the minimum order the full route answers directly', () => {
  const c = ref('small');
  assert.ok(Math.min(c.rows, c.cols) < LEADING_MIN_ORDER);
  assert.equal(progressiveTriplets(c.data, c.rows, c.cols, () => 2).route, 'full');
  const data = new Float32Array(40 * 30).map((_, i) => Math.sin(i * 0.37));
  assert.equal(progressiveTriplets(data, 40, 30, () => 2, 'small', { minOrder: 1 }).route, 'full');
});

test('an energy target out of the largest basis\'s reach (a flat Gaussian spectrum) falls back to the full route', () => {
  const c = ref('gaussian');
  let decisions = 0;
  const tried = leading(c, (values, total, whatIf) => {
    if (!whatIf) decisions++;
    return energy(0.9)(values, total);
  }, 8);
  assert.equal(tried, undefined);
  assert.equal(decisions, 0, 'gave up at the first Rayleigh–Ritz (kmax values at θ_0 + its residual cannot reach 0.9)');
  const t = progressiveTriplets(c.data, c.rows, c.cols, energy(0.9), c.name, { firstBlock: 8, minOrder: MIN });
  assert.equal(t.route, 'full');
  assert.equal(t.s.length, energyRank(c.reference, 0.9));
});

/** scipy's k for an energy target: the smallest k with Σ_{i<k} σ² ≥ τ·Σσ². */
function energyRank(s: Float64Array, tau: number): number {
  const total = s.reduce((sum, x) => sum + x * x, 0);
  let k = 0;
  for (let acc = 0; acc < tau * total; k++) acc += s[k] ** 2;
  return k;
}

/** Kept σ within `tol`·σ_max of scipy's, and ‖W − U_kΣ_kV_kᵀ‖_F equal to the optimum within 1e-6 relative (of ‖W‖ when the optimum is 0). */
function checkKept(c: Ref, t: SingularTriplets, k: number, tol: number): void {
  assert.equal(t.s.length, k, `${c.name}: kept rank`);
  for (let i = 0; i < k; i++) assert.ok(Math.abs(t.s[i] - c.reference[i]) <= tol * c.reference[0], `${c.name}: σ_${i} ${t.s[i]} vs ${c.reference[i]} (${(Math.abs(t.s[i] - c.reference[i]) / c.reference[0]).toExponential(1)}·σ_max)`);
  const best = Math.sqrt(c.reference.slice(k).reduce((sum, x) => sum + x * x, 0));
  const scale = best > 1e-6 * c.reference[0] ? best : Math.sqrt(c.reference.reduce((sum, x) => sum + x * x, 0));
  const err = lowRankResidual(c, t);
  assert.ok(Math.abs(err - best) <= 1e-6 * scale, `${c.name}: reconstruction ${err} vs optimum ${best} (rel ${(Math.abs(err - best) / scale).toExponential(1)})`);
}

for (const name of ['bert_square', 'bert_tall', 'bert_wide']) {
  test(`${name}: energy 0.9 takes the leading route by default and keeps scipy's rank, σ within 1e-9·σ_max, the optimal error`, () => {
    const c = ref(name);
    const t = progressiveTriplets(c.data, c.rows, c.cols, energy(0.9), c.name);
    assert.equal(t.route, 'leading', 'the BERT-base shapes take the leading route (the speed-up of issue 16)');
    checkKept(c, t, energyRank(c.reference, 0.9), 1e-9);
  });
}

test('bert_square: the factor worker\'s energy policy needs no more Rayleigh–Ritz extractions than a plain energy chooser', () => {
  // Its chooser fills the unknown tail up to the last value given; judged on the lower Ritz values
  // (which approach the bottom of the spectrum) it saw too little energy there and asked for an
  // extraction at every block (10 instead of 4 here).
  const c = ref('bert_square');
  const shape = { m: c.rows, n: c.cols, groups: 1 };
  const plain = leadingTriplets(gramToKernelMemory(c.data, c.rows, c.cols, 0, true), energy(0.9))!;
  const policy = leadingTriplets(gramToKernelMemory(c.data, c.rows, c.cols, 0, true), policyOnLeading({ energy: 0.9 }, shape, 768, () => {}))!;
  assert.equal(policy.s.length, energyRank(c.reference, 0.9));
  assert.ok(policy.extractions <= plain.extractions, `${policy.extractions} extractions against ${plain.extractions}`);
});

test('bert_square: a rank policy (k = 64, told as firstBlock = 2k) and a rank ratio of 0.1 (k = 77) match scipy by the leading route', () => {
  const c = ref('bert_square');
  for (const k of [64, Math.round(0.1 * 768)]) {
    const t = progressiveTriplets(c.data, c.rows, c.cols, () => k, c.name, { firstBlock: 2 * k });
    assert.equal(t.route, 'leading');
    checkKept(c, t, k, 1e-9);
  }
});

test('a flat spectrum (all σ equal, an orthogonal-like layer) falls back and keeps scipy\'s rank at energy 0.9', () => {
  const c = ref('bert_flat');
  const t = progressiveTriplets(c.data, c.rows, c.cols, energy(0.9), c.name);
  assert.equal(t.route, 'full');
  checkKept(c, t, energyRank(c.reference, 0.9), 1e-9);
  // A small fixed rank cannot be told apart within the cluster: the leading route must not answer.
  assert.equal(leading(c, () => 10, 20), undefined);
});

test('a multiplicity below the block size (5 < 8) is found whole by the leading route', () => {
  const c = ref('repeated_few');
  assert.ok(5 < leadingBlock(c.rows));
  for (const want of [energy(0.5), () => 12]) {
    const t = progressiveTriplets(c.data, c.rows, c.cols, want, c.name);
    assert.equal(t.route, 'leading');
    checkKept(c, t, t.s.length, 1e-9);
  }
  assert.equal(progressiveTriplets(c.data, c.rows, c.cols, energy(0.5), c.name).s.length, energyRank(c.reference, 0.5));
});

for (const name of ['repeated_many', 'repeated_exact']) {
  test(`${name}: a multiplicity above the block size (20 > 8) is not missed: the rank and error are scipy's`, () => {
    const c = ref(name);
    assert.ok(20 > leadingBlock(c.rows));
    for (const [want, k] of [[energy(0.5), energyRank(c.reference, 0.5)], [() => 12, 12], [() => 24, 24]] as const) {
      const t = progressiveTriplets(c.data, c.rows, c.cols, want, c.name);
      checkKept(c, t, k, 1e-9);
    }
  });
}

test('a rank-deficient W (rank 30 of 768) keeps scipy\'s rank and the optimal error', () => {
  const c = ref('rank_30');
  for (const [want, k] of [[energy(0.9), energyRank(c.reference, 0.9)], [() => 10, 10], [() => 30, 30]] as const) {
    const t = progressiveTriplets(c.data, c.rows, c.cols, want, c.name);
    checkKept(c, t, k, 1e-9);
  }
});

test('W = 0: no leading route (no energy), and the full route keeps what the policy asks, with zero values', () => {
  const data = new Float32Array(768 * 768);
  const probe = gramToKernelMemory(data, 768, 768, 0, true);
  assert.equal(leadingTriplets(probe, () => 3), undefined);
  const none = progressiveTriplets(data, 768, 768, () => 0, 'zero');
  assert.equal(none.route, 'full');
  assert.equal(none.s.length, 0);
  const some = progressiveTriplets(data, 768, 768, () => 3, 'zero');
  assert.deepEqual(Array.from(some.s), [0, 0, 0]);
});

test('a known rank past the route\'s reach (k > n/8, e.g. full rank) goes to the full route without a try', () => {
  const c = ref('bert_square');
  const k = Math.floor(c.rows * LEADING_MAX_SHARE) + 1;
  let asked = 0;
  assert.equal(leadingTriplets(gramToKernelMemory(c.data, c.rows, c.cols, 0, true), () => (asked++, k), { firstBlock: 2 * k }), undefined);
  assert.equal(asked, 0, 'no Rayleigh–Ritz was made');
  const t = progressiveTriplets(c.data, c.rows, c.cols, () => k, c.name, { firstBlock: 2 * k });
  assert.equal(t.route, 'full');
  checkKept(c, t, k, 1e-9);
});

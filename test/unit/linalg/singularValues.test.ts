// Singular values against scipy's LAPACK (svdvals, float64) on random and adversarial spectra.
// Bar (issue 3): |σ_i − σ_i(scipy)| ≤ 1e-5·σ_max for every i, on both computation paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { checkKernelMemory, checkMatrix, singularValues, singularValuesViaGram, singularValuesJacobi, SMALL_SIDE } from '../../../src/core/linalg/singularValues';
import { RankscopeError } from '../../../src/core/errors';
import { scipyCases, maxAbsDiff } from './reference';

const cases = scipyCases({
  random_tall: 'rng.standard_normal((200, 120))',
  random_wide: 'rng.standard_normal((90, 260))',
  random_square: 'rng.standard_normal((128, 128)) * 0.02',
  random_layer: 'rng.standard_normal((384, 1536)) * 0.05',
  low_rank: 'rng.standard_normal((150, 7)) @ rng.standard_normal((7, 100))',
  low_rank_wide: 'rng.standard_normal((60, 3)) @ rng.standard_normal((3, 200))',
  clustered: 'spectrum(120, 100, [1.0] * 40 + [1.0 - 1e-7] * 20 + [0.5] * 30 + [1e-3] * 10)',
  geometric_8_decades: 'spectrum(140, 120, np.logspace(0, -8, 120))',
  one_row: 'rng.standard_normal((1, 300))',
  one_col: 'rng.standard_normal((300, 1))',
  small: 'rng.standard_normal((5, 7))',
  zeros: 'np.zeros((64, 48))',
  zeros_small: 'np.zeros((3, 4))',
});

for (const c of cases) {
  test(`singular values match scipy: ${c.name} (${c.rows}×${c.cols})`, () => {
    const tolerance = 1e-5 * c.reference[0];
    const routes: [string, Float64Array][] = [
      ['default', singularValues(c.data, c.rows, c.cols, c.name)],
      ['gram+wasm', singularValuesViaGram(c.data, c.rows, c.cols)],
    ];
    if (Math.min(c.rows, c.cols) <= 150) routes.push(['jacobi', singularValuesJacobi(c.data, c.rows, c.cols)]);
    for (const [route, s] of routes) {
      assert.equal(s.length, Math.min(c.rows, c.cols), route);
      for (let i = 1; i < s.length; i++) assert.ok(s[i] <= s[i - 1], `${route}: not descending at ${i}`);
      const err = maxAbsDiff(s, c.reference);
      if (c.reference[0] === 0) assert.equal(err, 0, `${route}: zero matrix must give exact zeros`);
      else assert.ok(err <= tolerance, `${route}: max error ${err.toExponential(2)} > ${tolerance.toExponential(2)}`);
    }
  });
}

test('geometric decay: the fast path resolves values far below the bar, not just the top', () => {
  const c = cases.find((x) => x.name === 'geometric_8_decades')!;
  const s = singularValuesViaGram(c.data, c.rows, c.cols);
  // Relative accuracy where σ ≥ 1e-3·σ_max: the Gram route is good to ~1e-7·σ_max absolute.
  for (let i = 0; i < s.length && c.reference[i] >= 1e-3; i++) {
    assert.ok(Math.abs(s[i] - c.reference[i]) <= 1e-3 * c.reference[i], `σ_${i}: ${s[i]} vs ${c.reference[i]}`);
  }
});

test('float64 input is accepted and the default route switches at SMALL_SIDE', () => {
  const c = cases.find((x) => x.name === 'random_tall')!;
  const s = singularValues(Float64Array.from(c.data), c.rows, c.cols);
  assert.ok(maxAbsDiff(s, c.reference) <= 1e-9 * c.reference[0]);
  assert.ok(SMALL_SIDE > 1 && SMALL_SIDE < 120);
});

test('NaN and Inf give a NUMERIC RankscopeError naming the layer and the position', () => {
  const a = new Float32Array(40 * 50).fill(0.5);
  a[3 * 50 + 7] = NaN;
  assert.throws(() => singularValues(a, 40, 50, "Layer 'enc.fc1'"), (e: unknown) =>
    e instanceof RankscopeError && e.code === 'NUMERIC' && /enc\.fc1/.test(e.message) && /NaN/.test(e.message) && /row 3, column 7/.test(e.message));
  a[3 * 50 + 7] = -Infinity;
  assert.throws(() => singularValues(a, 40, 50, "Layer 'x'"), (e: unknown) => e instanceof RankscopeError && e.code === 'NUMERIC' && /Inf/.test(e.message));
});

test('the value scan gives ‖W‖²_F and the largest |w| in the pass that checks the values', () => {
  for (const magnitude of [1, 1e150, 1e-150]) {
    const a = Float64Array.from({ length: 301 }, (_, i) => magnitude * (i % 7 === 3 ? -1.5 : Math.cos(i)));
    const exact = a.reduce((s, x) => s + (x / magnitude) ** 2, 0); // the same values at magnitude 1
    const { maxAbs, sumSquares } = checkMatrix(a, 7, 43);
    assert.equal(maxAbs, 1.5 * magnitude);
    assert.ok(Math.abs(sumSquares / magnitude / magnitude - exact) <= 1e-12 * exact, `magnitude ${magnitude}: ${sumSquares}`);
  }
  const f32 = Float32Array.from({ length: 99 }, (_, i) => i - 50);
  assert.deepEqual(checkMatrix(f32, 9, 11), { maxAbs: 50, sumSquares: f32.reduce((s, x) => s + x * x, 0) });
});

test('a shape that does not match the data is a SHAPE_MISMATCH error', () => {
  assert.throws(() => singularValues(new Float32Array(10), 3, 4), (e: unknown) => e instanceof RankscopeError && e.code === 'SHAPE_MISMATCH');
  assert.equal(singularValues(new Float32Array(0), 0, 5).length, 0);
});

test('kernelsWasm.ts is the assembled kernels.wat', () => {
  const r = spawnSync(process.execPath, [join(__dirname, '../../../src/core/linalg/buildKernels.mjs'), '--check']);
  assert.equal(r.status, 0, r.stdout.toString() + r.stderr.toString());
});

test('a matrix too large for the kernel memory is a clear UNSUPPORTED error before any work', () => {
  // 17000² doubles of Gram (×2 with the streamed chunk) exceed 2 GiB.
  assert.throws(() => checkKernelMemory(2 * 17000 ** 2, 17000, 20000, "Layer 'huge'"), (e: unknown) =>
    e instanceof RankscopeError && e.code === 'UNSUPPORTED' && /Layer 'huge'.*17000×20000/.test(e.message));
  assert.doesNotThrow(() => checkKernelMemory(2 * 4096 ** 2, 4096, 50000));
});

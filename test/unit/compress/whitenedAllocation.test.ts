// The 'whitened' budget allocation: the energy greedy over whitened spectra minimizes the summed
// normalized output error (checked against a brute force over every rank combination), fits the
// budget, keeps layers without a calibration dense, and refuses a request without spectra.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateBudget, type BudgetLayer } from '../../../src/core/compress/budget';
import { denseParams, factoredParams, maxRank, type FactorShape } from '../../../src/core/compress/policy';
import { RankscopeError } from '../../../src/core/errors';

const shapes: Record<string, FactorShape> = { a: { m: 12, n: 10, groups: 1 }, b: { m: 16, n: 12, groups: 1 }, c: { m: 10, n: 14, groups: 1 } };
// Whitened σ: one steep, one flat, one in between (what calibration data makes of them).
const whitened: Record<string, number[][]> = {
  a: [Array.from({ length: 10 }, (_, i) => 10 * 0.5 ** i)],
  b: [Array.from({ length: 12 }, (_, i) => 3 - 0.2 * i)],
  c: [Array.from({ length: 10 }, (_, i) => 5 / (1 + i))],
};
// The plain spectra the layers also carry: deliberately unlike the whitened ones (the allocation must not read them).
const layers: BudgetLayer[] = Object.entries(shapes).map(([name, shape]) => ({ name, shape, spectra: [new Float64Array(maxRank(shape)).fill(1)] }));

/** Normalized output error of a layer at rank k (k = 0: dense). */
function loss(name: string, k: number): number {
  const s = whitened[name][0];
  const total = s.reduce((x, v) => x + v * v, 0);
  return k === 0 ? 0 : s.slice(k).reduce((x, v) => x + v * v, 0) / total;
}

test('minimizes the summed normalized output error within the budget (brute force over all ranks)', () => {
  for (const budget of [0.3, 0.5, 0.7]) {
    const choices = allocateBudget(layers, { budget, allocation: 'whitened', whitened });
    const total = Object.values(shapes).reduce((s, sh) => s + denseParams(sh), 0);
    const target = (1 - budget) * total;
    let used = 0;
    let mine = 0;
    for (const [name, c] of choices) {
      used += c.skipped ? c.paramsBefore : c.paramsAfter;
      mine += c.skipped ? 0 : loss(name, c.k);
      if (!c.skipped) assert.ok(Math.abs(c.energyKept - (1 - loss(name, c.k))) < 1e-12, 'energyKept = 1 − normalized output error');
    }
    assert.ok(used <= target + 1e-9, `budget ${budget}: ${used} > ${target}`);
    // Every combination: k in 1…break-even, or dense (0).
    let best = Infinity;
    const options = (sh: FactorShape) => [0, ...Array.from({ length: maxRank(sh) }, (_, i) => i + 1).filter((k) => factoredParams(sh, k) < denseParams(sh))];
    const cost = (sh: FactorShape, k: number) => (k === 0 ? denseParams(sh) : factoredParams(sh, k));
    for (const ka of options(shapes.a)) for (const kb of options(shapes.b)) for (const kc of options(shapes.c)) {
      if (cost(shapes.a, ka) + cost(shapes.b, kb) + cost(shapes.c, kc) > target) continue;
      best = Math.min(best, loss('a', ka) + loss('b', kb) + loss('c', kc));
    }
    // Greedy by gain per parameter over convex losses: it finds the optimum here (near-optimal in general).
    assert.ok(mine <= best + 1e-12, `budget ${budget}: greedy ${mine} vs optimum ${best}`);
  }
});

test('layers without whitened spectra stay dense, and a request without any is refused', () => {
  const { c: _c, ...two } = whitened;
  const choices = allocateBudget(layers, { budget: 0.3, allocation: 'whitened', whitened: two });
  assert.equal(choices.get('c')!.skipped, true);
  assert.match(choices.get('c')!.reason!, /no calibration Gram/);
  assert.throws(() => allocateBudget(layers, { budget: 0.3, allocation: 'whitened' }), (e) => e instanceof RankscopeError && /needs each layer's whitened singular values/.test(e.message));
});

// Rank policies and the whole-model budget allocator, on spectra we construct.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseRank, energyCurve, type FactorShape } from '../../../src/core/compress/policy';
import { allocateBudget, totalEnergyKept, type BudgetLayer } from '../../../src/core/compress/budget';
import { RankscopeError } from '../../../src/core/errors';

const sv = (...values: number[]) => new Float64Array(values);
const shape = (m: number, n: number, groups = 1): FactorShape => ({ m, n, groups });
/** A geometric spectrum σ_i = decay^i, n values. */
const geometric = (count: number, decay: number) => Float64Array.from({ length: count }, (_, i) => decay ** i);

test('fixed rank: kept as given, energy is the σ² share', () => {
  const c = chooseRank({ rank: 2 }, shape(100, 4), [sv(3, 2, 1, 1)]);
  assert.equal(c.k, 2);
  assert.ok(Math.abs(c.energyKept - 13 / 15) < 1e-12);
  assert.equal(c.paramsBefore, 400);
  assert.equal(c.paramsAfter, 2 * 104);
  assert.equal(c.skipped, undefined);
});

test('energy τ: the smallest k whose cumulative σ² share reaches τ', () => {
  const spectrum = [sv(4, 2, 1, 1, 0)]; // σ² = 16, 4, 1, 1, 0 → shares .727, .909, .954, 1
  const s = shape(1000, 5);
  assert.equal(chooseRank({ energy: 0.7 }, s, spectrum).k, 1);
  assert.equal(chooseRank({ energy: 0.9 }, s, spectrum).k, 2);
  assert.equal(chooseRank({ energy: 0.95 }, s, spectrum).k, 3);
  assert.equal(chooseRank({ energy: 16 / 22 }, s, spectrum).k, 1, 'τ exactly on a step is reached there');
  assert.equal(chooseRank({ energy: 1 }, s, spectrum).k, 4, 'a zero σ adds nothing');
});

test('rank ratio: k = ⌈ρ·min(m,n)⌉', () => {
  const spectrum = [geometric(64, 0.9)];
  assert.equal(chooseRank({ rankRatio: 0.25 }, shape(64, 512), spectrum).k, 16);
  assert.equal(chooseRank({ rankRatio: 0.1 }, shape(64, 512), spectrum).k, 7);
});

test('param ratio: the factorization keeps ≤ β of the weight parameters', () => {
  const s = shape(768, 3072);
  for (const beta of [0.1, 0.25, 0.5]) {
    const c = chooseRank({ paramRatio: beta }, s, [geometric(768, 0.99)]);
    assert.ok(c.paramsAfter <= beta * c.paramsBefore, `β=${beta}`);
    assert.ok((c.k + 1) * (768 + 3072) > beta * 768 * 3072, `β=${beta}: k is the largest that fits`);
  }
});

test('round to a multiple: up for rank policies, down for the parameter ratio', () => {
  const spectrum = [geometric(256, 0.97)];
  assert.equal(chooseRank({ rank: 13, roundTo: 8 }, shape(256, 1024), spectrum).k, 16);
  assert.equal(chooseRank({ rankRatio: 0.1, roundTo: 8 }, shape(256, 1024), spectrum).k, 32); // ⌈25.6⌉ = 26 → 32
  const p = chooseRank({ paramRatio: 0.3, roundTo: 8 }, shape(256, 1024), spectrum);
  assert.equal(p.k % 8, 0);
  assert.ok(p.paramsAfter <= 0.3 * p.paramsBefore);
});

test('a factorization that saves nothing is skipped with the reason, unless forced', () => {
  // 8×8 at k=4: 4·16 = 64 = mn → no saving.
  const c = chooseRank({ rank: 4 }, shape(8, 8), [geometric(8, 0.5)]);
  assert.equal(c.skipped, true);
  assert.match(c.reason!, /saves no parameters/);
  assert.equal(c.paramsAfter, c.paramsBefore);
  const forced = chooseRank({ rank: 4, force: true }, shape(8, 8), [geometric(8, 0.5)]);
  assert.equal(forced.skipped, undefined);
  assert.equal(forced.paramsAfter, 64);
  const tooBig = chooseRank({ rank: 9 }, shape(8, 8), [geometric(8, 0.5)]);
  assert.equal(tooBig.skipped, true);
  assert.match(tooBig.reason!, /exceeds min\(m,n\) = 8/);
});

test('grouped layers: one k per group, energy over all groups', () => {
  const groups = [sv(2, 1), sv(1, 1)]; // σ² 4,1 | 1,1 → k=1 keeps 5/7
  const c = chooseRank({ rank: 1 }, shape(2, 18, 2), groups);
  assert.ok(Math.abs(c.energyKept - 5 / 7) < 1e-12);
  assert.equal(c.paramsBefore, 2 * 2 * 18);
  assert.equal(c.paramsAfter, 2 * 1 * 20);
  assert.deepEqual(Array.from(energyCurve(groups, 2)), [0, 5 / 7, 1]);
});

test('bad policies are refused with BAD_ARGUMENT', () => {
  const s = shape(10, 10);
  const spectrum = [geometric(10, 0.5)];
  for (const p of [{}, { rank: 0 }, { rank: 2.5 }, { energy: 0 }, { energy: 1.5 }, { paramRatio: 1 }, { rankRatio: -1 }, { rank: 2, energy: 0.9 }, { rank: 2, roundTo: 0 }]) {
    assert.throws(() => chooseRank(p, s, spectrum), (e: unknown) => e instanceof RankscopeError && e.code === 'BAD_ARGUMENT', JSON.stringify(p));
  }
});

/** Layers with very different spectra: where energy sits decides where ranks pay off. */
function mixedLayers(): BudgetLayer[] {
  return [
    { name: 'steep', shape: shape(256, 256), spectra: [geometric(256, 0.8)] },
    { name: 'flat', shape: shape(256, 256), spectra: [geometric(256, 0.999)] },
    { name: 'medium', shape: shape(128, 512), spectra: [geometric(128, 0.95)] },
    { name: 'wide', shape: shape(64, 1024), spectra: [geometric(64, 0.9)] },
  ];
}

test('budget: greedy allocation stays within the budget and beats a uniform ratio on energy kept', () => {
  const layers = mixedLayers();
  const dense = layers.reduce((s, l) => s + l.shape.m * l.shape.n, 0);
  for (const budget of [0.3, 0.5, 0.75]) {
    const greedy = allocateBudget(layers, { budget, allocation: 'energy' });
    const uniform = allocateBudget(layers, { budget, allocation: 'uniform' });
    const after = (m: Map<string, { paramsAfter: number }>) => [...m.values()].reduce((s, c) => s + c.paramsAfter, 0);
    assert.ok(after(greedy) <= (1 - budget) * dense, `greedy within budget ${budget}`);
    assert.ok(after(uniform) <= (1 - budget) * dense, `uniform within budget ${budget}`);
    const g = totalEnergyKept(greedy.values());
    const u = totalEnergyKept(uniform.values());
    assert.ok(g > u + 0.01, `budget ${budget}: greedy ${g.toFixed(4)} > uniform ${u.toFixed(4)}`);
    // The steep layer needs few ranks; the flat one gets the parameters.
    assert.ok(greedy.get('steep')!.k < greedy.get('flat')!.k || greedy.get('flat')!.skipped);
  }
});

test('budget: greedy is optimal on a tiny case checked by brute force', () => {
  const layers: BudgetLayer[] = [
    { name: 'a', shape: shape(20, 20), spectra: [geometric(20, 0.7)] },
    { name: 'b', shape: shape(20, 20), spectra: [geometric(20, 0.9)] },
  ];
  const budget = 0.6;
  const limit = (1 - budget) * 800;
  const curves = layers.map((l) => energyCurve(l.spectra, 20));
  let best = 0;
  for (let ka = 1; ka < 10; ka++) for (let kb = 1; kb < 10; kb++) {
    if ((ka + kb) * 40 <= limit) best = Math.max(best, curves[0][ka] + curves[1][kb]);
  }
  const greedy = totalEnergyKept(allocateBudget(layers, { budget }).values());
  assert.ok(Math.abs(greedy - best) < 1e-12, `greedy ${greedy} vs best ${best}`);
});

test('budget: roundTo steps, weighted allocation, unreachable budgets', () => {
  const layers = mixedLayers();
  const rounded = allocateBudget(layers, { budget: 0.5, roundTo: 8 });
  for (const c of rounded.values()) if (!c.skipped) assert.equal(c.k % 8, 0);
  const plain = allocateBudget(layers, { budget: 0.5 });
  const favoured = allocateBudget(layers, { budget: 0.5, allocation: 'weighted', weights: { steep: 100 } });
  assert.ok(favoured.get('steep')!.k > plain.get('steep')!.k, 'a sensitive layer gets more rank');
  assert.throws(() => allocateBudget(layers, { budget: 0.999 }), /out of reach/);
  assert.throws(() => allocateBudget(layers, { budget: 1.5 }), /budget must be a fraction/);
});

test('budget: the sensitivity allocation spends the budget where the probed loss is least; unprobed layers stay dense', () => {
  const layers = mixedLayers();
  // 'flat' loses a lot when cut, 'steep' little; 'wide' is not probed.
  const probes = {
    steep: [{ k: 16, loss: 0.01 }, { k: 64, loss: 0.001 }],
    flat: [{ k: 16, loss: 2 }, { k: 64, loss: 0.5 }],
    medium: [{ k: 16, loss: 0.2 }, { k: 64, loss: 0.05 }],
  };
  const choices = allocateBudget(layers, { budget: 0.4, allocation: 'sensitivity', probes });
  const probed = layers.filter((l) => l.name !== 'wide');
  const dense = probed.reduce((s, l) => s + l.shape.m * l.shape.n, 0);
  const after = probed.reduce((s, l) => s + choices.get(l.name)!.paramsAfter, 0);
  assert.ok(after <= 0.6 * dense, `${after} > ${0.6 * dense}`);
  assert.ok(choices.get('wide')!.skipped && /not probed/.test(choices.get('wide')!.reason!));
  assert.ok(choices.get('flat')!.skipped || choices.get('flat')!.k > choices.get('steep')!.k, 'the sensitive layer keeps more');
  assert.throws(() => allocateBudget(layers, { budget: 0.4, allocation: 'sensitivity' }), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /probes/.test(e.message));
  assert.throws(() => allocateBudget(layers, { budget: 0.4, allocation: 'sensitivity', probes, roundTo: 8 }), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');
  assert.throws(() => allocateBudget(layers, { budget: 0.999, allocation: 'sensitivity', probes }), (e: RankscopeError) => e.code === 'BUDGET_UNREACHABLE');
  assert.throws(() => allocateBudget(layers, { budget: 0.999 }), (e: RankscopeError) => e.code === 'BUDGET_UNREACHABLE');
});

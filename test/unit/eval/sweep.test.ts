// The sweep on real compression (COMPRESS's makePlan/applyPlan in memory) and ONNX Runtime:
// sensitivity allocation against uniform and energy on a model whose layers differ in
// sensitivity, the cache hit and resume paths, cancellation, and the Pareto front.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTwoBranchFixture, spectraOnThread } from './fixtures';
import { openOnnx, type OnnxModel } from '../../../src/core/formats/onnx';
import type { SpectrumLike } from '../../../src/core/compress/plan';
import { OrtRunner } from '../../../src/core/eval/runner';
import { loadDataset, type Dataset } from '../../../src/core/eval/dataset';
import { baselineLabel, progressText, runSweep, sweepModelChoices, type SweepPoint, type SweepProgress } from '../../../src/core/eval/sweep';
import { paretoFront } from '../../../src/core/eval/pareto';
import { calibrationIndices, collapseProbeRanks } from '../../../src/core/eval/sensitivity';
import { allocateBySensitivity, type LayerProbes } from '../../../src/core/compress/knapsack';
import { RankscopeError } from '../../../src/core/errors';
import { compressToFile, graphCheck } from '../../../src/core/compress/apply';
import { makePlan } from '../../../src/core/compress/plan';
import { factorize, multiply, truncateFactors } from '../../../src/core/compress/factor';

let dir = '';
let model: OnnxModel;
let spectra: SpectrumLike[];
let runner: OrtRunner;
let data: Dataset;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rankscope-sweep-'));
  writeTwoBranchFixture(dir);
  model = await openOnnx(join(dir, 'two_branch.onnx'));
  spectra = spectraOnThread(model);
  runner = OrtRunner.create({ intraOpThreads: 1 });
  const probe = await runner.open(join(dir, 'two_branch.onnx'));
  data = await loadDataset({ data: join(dir, 'two_branch.npz') }, probe.inputs);
  await probe.close();
});
after(async () => {
  await data?.close();
  await runner?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('sensitivity allocation beats uniform (and energy) at the same budgets on a model whose layers differ', async () => {
  const budgets = [0.3, 0.5, 0.7];
  const r = await runSweep({ levels: budgets, allocations: ['uniform', 'energy', 'sensitivity'] }, {
    model, spectra, dataset: data, runner, metric: 'top1', latency: false,
  });
  assert.equal(r.points.length, 9);
  const at = (allocation: string, level: number) => r.points.find((p) => p.allocation === allocation && p.level === level)!;
  const table = budgets.map((b) => ({ budget: b, ...Object.fromEntries(['uniform', 'energy', 'sensitivity'].map((a) => [a, `${(at(a, b).metrics.top1! * 100).toFixed(1)} % / KL ${at(a, b).metrics.meanKL!.toExponential(2)} / ${at(a, b).params}`])) }));
  console.table(table);
  for (const b of budgets) {
    const u = at('uniform', b);
    const s = at('sensitivity', b);
    const e = at('energy', b);
    // Same budget: both fit (1 − b) of the layer parameters.
    const target = (1 - b) * 18944 + (model.summary.totalParams - 18944);
    for (const p of [u, s, e]) assert.ok(p.params <= target + 1, `${p.label}: ${p.params} > ${target}`);
    assert.ok(s.metrics.meanKL! < 0.5 * u.metrics.meanKL!, `budget ${b}: KL ${s.metrics.meanKL} vs uniform ${u.metrics.meanKL}`);
    assert.ok(s.metrics.top1! >= u.metrics.top1! + 0.05, `budget ${b}: top-1 ${s.metrics.top1} vs uniform ${u.metrics.top1}`);
    assert.ok(s.metrics.meanKL! < e.metrics.meanKL!, `budget ${b}: KL vs energy`);
  }
  // The quiet branch is where the sensitivity allocation cuts.
  const s50 = at('sensitivity', 0.5);
  assert.ok((s50.ranks['quiet.in'] ?? 64) < (s50.ranks['loud.in'] ?? 64));
  assert.ok(r.sensitivity!.find((x) => x.layer === 'quiet.in')!.probes[0].loss < r.sensitivity!.find((x) => x.layer === 'loud.in')!.probes[0].loss / 50);
  // Pareto: no point of the front is dominated by any point.
  const all = [r.original, ...r.points];
  for (const id of r.front) {
    const p = all.find((x) => x.id === id)!;
    assert.ok(p.pareto);
    assert.ok(!all.some((q) => q.params <= p.params && q.score >= p.score && (q.params < p.params || q.score > p.score)), `${id} is dominated`);
  }
  assert.ok(r.front.length >= 2);
  assert.equal(r.original.metrics.agreement, 1);
});

test('every point carries the plan it measured, and the plan\'s recorded request reproduces it (cached points too)', async () => {
  const cacheDir = join(dir, 'cache-plans');
  const spec = { levels: [0.3, 0.6], energies: [0.9], allocations: ['energy', 'uniform', 'sensitivity'] as const, layers: ['*.in', 'loud.out'] };
  const options = { model, spectra, dataset: data, runner, metric: 'top1' as const, latency: false as const, cacheDir, sensitivity: { samples: 128 } };
  const first = await runSweep({ ...spec, allocations: [...spec.allocations] }, options);
  const again = await runSweep({ ...spec, allocations: [...spec.allocations] }, options);
  assert.equal(first.points.length, 7);
  assert.ok(again.points.every((p) => p.cached));
  assert.equal(first.original.plan, undefined);
  const check = graphCheck(model);
  for (const p of [...first.points, ...again.points]) {
    const plan = p.plan!;
    assert.ok(plan, `${p.id} has no plan`);
    assert.deepEqual(plan.request.layers, spec.layers, `${p.id}: the sweep's layer selection is recorded`);
    const remade = makePlan(model, spectra, plan.request, check);
    assert.deepEqual(remade.layers, plan.layers, `${p.id}: makePlan(plan.request) gives other rows`);
    assert.deepEqual(remade.totals, plan.totals);
    // The plan is the one scored: its parameters and ranks are the point's.
    assert.equal(plan.totals.modelParamsAfter, p.params, p.id);
    assert.deepEqual(Object.fromEntries(plan.layers.filter((r) => !r.skipped).map((r) => [r.layer, r.k])), p.ranks, p.id);
    const policy = p.kind === 'energy' ? { energy: p.level } : { budget: p.level, allocation: p.allocation };
    assert.deepEqual(plan.layers[0].policy, policy, p.id);
  }
  // The sensitivity point's request holds the probes the sweep measured, not a stand-in.
  const s = first.points.find((p) => p.allocation === 'sensitivity')!;
  assert.deepEqual(Object.keys((s.plan!.request as { probes: object }).probes).sort(), first.sensitivity!.map((l) => l.layer).sort());
  assert.deepEqual(again.points.map((p) => p.plan), first.points.map((p) => p.plan));
});

test('re-running hits the cache for every point; a longer sweep computes only the new points', async () => {
  const cacheDir = join(dir, 'cache');
  const first = await runSweep({ levels: [0.4, 0.6], allocations: ['energy', 'uniform'] }, { model, spectra, dataset: data, runner, cacheDir, latency: { warmup: 0, runs: 2 } });
  assert.ok(first.points.every((p) => !p.cached) && !first.original.cached);
  assert.ok(readdirSync(cacheDir).filter((f) => f.endsWith('.json')).length >= 5);
  const seen: SweepPoint[] = [];
  const again = await runSweep({ levels: [0.4, 0.6], allocations: ['energy', 'uniform'] }, { model, spectra, dataset: data, runner, cacheDir, latency: { warmup: 0, runs: 2 }, onPoint: (p) => seen.push(p) });
  assert.ok(again.original.cached && again.points.every((p) => p.cached));
  assert.equal(again.timing.cachedPoints, 5);
  assert.equal(again.timing.compress, 0);
  assert.equal(seen.length, 5);
  assert.deepEqual(again.points.map((p) => [p.id, p.metrics, p.params, p.fileSize]), first.points.map((p) => [p.id, p.metrics, p.params, p.fileSize]));
  const longer = await runSweep({ levels: [0.4, 0.5, 0.6], allocations: ['energy', 'uniform'] }, { model, spectra, dataset: data, runner, cacheDir, latency: { warmup: 0, runs: 2 } });
  assert.deepEqual(longer.points.filter((p) => !p.cached).map((p) => p.id).sort(), ['energy:0.5', 'uniform:0.5']);
  // Different data (a limit) is a different key: nothing cached.
  const fewer = await loadDataset({ data: join(dir, 'two_branch.npz'), limit: 100 }, (await runner.open(join(dir, 'two_branch.onnx'))).inputs);
  const other = await runSweep({ levels: [0.4] }, { model, spectra, dataset: fewer, runner, cacheDir, latency: false });
  assert.ok(!other.original.cached && !other.points[0].cached);
  await fewer.close();
});

test('cancelling mid-sweep rejects with CANCELLED; the resumed sweep reuses the finished points', async () => {
  const cacheDir = join(dir, 'cache-cancel');
  const controller = new AbortController();
  const own = OrtRunner.create({ intraOpThreads: 1, signal: controller.signal });
  const points: SweepPoint[] = [];
  await assert.rejects(runSweep({ levels: [0.2, 0.4, 0.6, 0.8], allocations: ['energy'] }, {
    model, spectra, dataset: data, runner: own, cacheDir, latency: false, signal: controller.signal,
    onPoint: (p) => { points.push(p); if (points.length === 2) controller.abort(); },
  }), (e: RankscopeError) => e.code === 'CANCELLED');
  assert.equal(points.length, 2); // original + one level
  const resumed = await runSweep({ levels: [0.2, 0.4, 0.6, 0.8], allocations: ['energy'] }, { model, spectra, dataset: data, runner, cacheDir, latency: false });
  assert.ok(resumed.original.cached);
  assert.deepEqual(resumed.points.map((p) => p.cached), [true, false, false, false]);
});

test('energy thresholds, progress per point, and bad sweep requests', async () => {
  const progress: number[] = [];
  const r = await runSweep({ energies: [0.9, 0.5] }, { model, spectra, dataset: data, runner, metric: 'kl', latency: false, onProgress: (p) => progress.push(p.done) });
  assert.deepEqual(r.points.map((p) => p.id), ['energy:0.9', 'energy:0.5']);
  assert.ok(r.points[0].params > r.points[1].params);
  assert.equal(r.metric, 'kl');
  assert.equal(r.original.score, 0);
  assert.ok(r.points[1].score < r.points[0].score); // −KL: less energy, more divergence
  assert.deepEqual([...new Set(progress)], [0, 1, 2, 3]);
  await assert.rejects(runSweep({}, { model, spectra, dataset: data, runner }), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');
  await assert.rejects(runSweep({ levels: [1.5] }, { model, spectra, dataset: data, runner }), (e: RankscopeError) => e.code === 'BAD_ARGUMENT' && /1.5/.test(e.message));
  await assert.rejects(runSweep({ levels: [0.5], allocations: ['random' as never] }, { model, spectra, dataset: data, runner }), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');
});

test('an unreachable budget skips that point (BUDGET_UNREACHABLE), not the sweep', async () => {
  const messages: string[] = [];
  const r = await runSweep({ levels: [0.5, 0.9999], allocations: ['energy', 'sensitivity'] }, {
    model, spectra, dataset: data, runner, latency: false, sensitivity: { samples: 64 }, onProgress: (p) => messages.push(`${p.done}/${p.total} ${p.message}`),
  });
  assert.deepEqual(r.points.map((p) => p.id), ['energy:0.5', 'sensitivity:0.5']);
  assert.equal(messages.filter((m) => /: skipped \(budget 0\.9999 is out of reach/.test(m)).length, 2, messages.join('\n'));
  assert.equal(messages.at(-1), '5/5 done');
});

test('allocateBySensitivity solves the knapsack exactly on a hand example', () => {
  // Two equal layers; A loses a lot when cut, B little: at a 40 % budget B takes the cut.
  const layer = (name: string, loss: number): LayerProbes => ({
    layer: name, shape: [100, 100], groups: 1, denseParams: 10000,
    probes: [{ k: 10, params: 2000, loss: loss * 3 }, { k: 25, params: 5000, loss }],
  });
  const ranks = allocateBySensitivity([layer('A', 1), layer('B', 0.01)], 0.4);
  assert.equal(ranks.get('A'), 0); // dense
  assert.ok(ranks.get('B')! >= 10 && ranks.get('B')! <= 10 + 2);
  assert.throws(() => allocateBySensitivity([layer('A', 1)], 0.95), (e: RankscopeError) => e.code === 'BUDGET_UNREACHABLE' && /out of reach/.test(e.message));
  // With the layer's energy curve, ranks below the smallest probe become options (loss scaled by discarded energy).
  const curve = Float64Array.from({ length: 101 }, (_, k) => 1 - (1 - k / 100) ** 2);
  const low = allocateBySensitivity([layer('A', 1)], 0.95, new Map([['A', curve]]));
  assert.ok(low.get('A')! >= 1 && low.get('A')! <= 5, `rank ${low.get('A')}`);
  // The generic Pareto helper.
  const front = paretoFront([{ c: 1, v: 1 }, { c: 2, v: 0.5 }, { c: 2, v: 2 }, { c: 3, v: 2 }], (p) => p.c, (p) => p.v);
  assert.deepEqual(front, [{ c: 1, v: 1 }, { c: 2, v: 2 }]);
});

test('truncating rank-K balanced factors gives the rank-k factorization (product and energy)', () => {
  const m = 40;
  const n = 30;
  const w = new Float32Array(m * n);
  let seed = 1;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  for (let i = 0; i < w.length; i++) w[i] = rand() * (1 + (i % n) / 5);
  const total = w.reduce((s, x) => s + x * x, 0);
  const big = { ...factorize(w, m, n, 20), total };
  for (const k of [1, 7, 19]) {
    const t = truncateFactors(big, k);
    const direct = factorize(w, m, n, k);
    const p1 = multiply(t.a, t.b, m, k, n);
    const p2 = multiply(direct.a, direct.b, m, k, n);
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < p1.length; i++) { diff += (p1[i] - p2[i]) ** 2; norm += p2[i] ** 2; }
    assert.ok(Math.sqrt(diff / norm) < 1e-6, `k=${k}: relative difference ${Math.sqrt(diff / norm)}`);
    assert.ok(Math.abs(t.energyKept - direct.energyKept) < 1e-9, `k=${k}: energy ${t.energyKept} vs ${direct.energyKept}`);
    assert.equal(t.k, k);
  }
});

test('the cheap points stream first; the probes follow as their own counted stage, then the sensitivity points', async () => {
  const events: ({ point: string } | { progress: SweepProgress })[] = [];
  const r = await runSweep({ levels: [0.3, 0.6], energies: [0.9], allocations: ['sensitivity', 'energy', 'uniform'] }, {
    model, spectra, dataset: data, runner, metric: 'top1', latency: false, sensitivity: { samples: 96 },
    onPoint: (p) => events.push({ point: p.id }), onProgress: (p) => events.push({ progress: p }),
  });
  const order = events.flatMap((e) => ('point' in e ? [e.point] : []));
  assert.deepEqual(order, ['original', 'energy:0.3', 'uniform:0.3', 'energy:0.6', 'uniform:0.6', 'energy:0.9', 'sensitivity:0.3', 'sensitivity:0.6']);
  const firstStage = events.findIndex((e) => 'progress' in e && e.progress.stage);
  const lastStage = events.length - 1 - [...events].reverse().findIndex((e) => 'progress' in e && e.progress.stage);
  assert.ok(firstStage > events.findIndex((e) => 'point' in e && e.point === 'energy:0.9'), 'probes start after every cheap point');
  assert.ok(lastStage < events.findIndex((e) => 'point' in e && e.point === 'sensitivity:0.3'), 'sensitivity points follow the probes');
  const stages = events.flatMap((e) => ('progress' in e && e.progress.stage ? [e.progress] : []));
  const total = r.calibration!.probes;
  assert.ok(stages.every((p) => p.stage!.total === total && p.stage!.id === 'probes' && /96 of 512 samples/.test(p.stage!.label)));
  assert.deepEqual(stages.map((p) => p.stage!.done), [...Array.from({ length: total }, (_, i) => i), total]);
  // The point counter moves while the cheap points run: 6 of 8 done when the probes start.
  assert.equal(stages[0].done, 6);
  assert.equal(progressText(stages[1]), `[6/8] sensitivity probes on 96 of 512 samples 1/${total}: ${stages[1].message}`);
  assert.equal(r.sensitivity!.reduce((n, l) => n + l.probes.filter((p) => p.from === undefined).length, 0), total);
});

test('the calibration subset: seeded, ascending, distinct; the subset view serves those samples; stated in the result', async () => {
  const a = calibrationIndices(512, 100, 7);
  assert.deepEqual(a, calibrationIndices(512, 100, 7));
  assert.notDeepEqual(a, calibrationIndices(512, 100, 8));
  assert.equal(new Set(a).size, 100);
  assert.ok(a.every((x, i) => x >= 0 && x < 512 && (i === 0 || x > a[i - 1])));
  assert.ok(a[99] > 256 && a[0] < 256, 'drawn from the whole data, not its first samples');
  assert.deepEqual(calibrationIndices(50, 100, 1), Int32Array.from({ length: 50 }, (_, i) => i));
  // The view: sample i of the subset is sample a[i] of the data, inputs and labels alike.
  const view = data.subset(a);
  assert.equal(view.size, 100);
  const viewBatch = await view.batch(0, 100);
  const labels = (await data.allLabels())!;
  const viewLabels = (await view.allLabels())!;
  for (const i of [0, 13, 99]) {
    const parent = await data.batch(a[i], 1);
    assert.deepEqual(viewBatch.feeds.x.data.slice(i * 64, (i + 1) * 64), parent.feeds.x.data);
    assert.equal(viewLabels[i], labels[a[i]]);
  }
  assert.notEqual(await view.hash(), await data.hash());
  await view.close();
  assert.equal((await data.batch(0, 2)).count, 2, 'closing the view keeps the data open');
  assert.throws(() => data.subset(Int32Array.from([3, 2])), (e: RankscopeError) => e.code === 'BAD_ARGUMENT');

  const r = await runSweep({ levels: [0.5], allocations: ['sensitivity'] }, { model, spectra, dataset: data, runner, latency: false, sensitivity: { samples: 128, seed: 5 } });
  assert.deepEqual({ ...r.calibration, probes: undefined, inferred: undefined }, { samples: 128, of: 512, seed: 5, measure: 'kl', energyEpsilon: 0.002, probes: undefined, inferred: undefined });
  const other = await runSweep({ levels: [0.5], allocations: ['sensitivity'] }, { model, spectra, dataset: data, runner, latency: false, sensitivity: { samples: 128, seed: 6 } });
  assert.notDeepEqual(other.sensitivity!.map((l) => l.probes.map((p) => p.loss)), r.sensitivity!.map((l) => l.probes.map((p) => p.loss)), 'another seed, other samples');
});

test('probe ranks whose kept energy is within the epsilon of a lower one are not measured; they take its loss', async () => {
  assert.deepEqual(collapseProbeRanks([{ k: 8, energyKept: 0.9 }, { k: 2, energyKept: 0.5 }, { k: 4, energyKept: 0.899 }, { k: 16, energyKept: 0.995 }, { k: 12, energyKept: 0.9005 }], 0.01), [
    { k: 2, energyKept: 0.5 }, { k: 4, energyKept: 0.899 }, { k: 8, energyKept: 0.9, from: 4 }, { k: 12, energyKept: 0.9005, from: 4 }, { k: 16, energyKept: 0.995 },
  ]);
  const all = await runSweep({ levels: [0.5], allocations: ['sensitivity'] }, { model, spectra, dataset: data, runner, latency: false, sensitivity: { samples: 64, energyEpsilon: 0 } });
  const coarse = await runSweep({ levels: [0.5], allocations: ['sensitivity'] }, { model, spectra, dataset: data, runner, latency: false, sensitivity: { samples: 64, energyEpsilon: 0.3 } });
  assert.equal(all.calibration!.inferred, 0);
  assert.ok(coarse.calibration!.inferred > 0 && coarse.calibration!.probes < all.calibration!.probes, `${coarse.calibration!.probes} vs ${all.calibration!.probes}`);
  assert.equal(coarse.calibration!.probes + coarse.calibration!.inferred, all.calibration!.probes);
  for (const layer of coarse.sensitivity!) {
    for (const p of layer.probes) {
      const measured = all.sensitivity!.find((l) => l.layer === layer.layer)!.probes.find((q) => q.k === (p.from ?? p.k))!;
      assert.ok(Math.abs(p.loss - measured.loss) <= 1e-9 * Math.max(1, measured.loss), `${layer.layer} @ ${p.k}: ${p.loss} vs ${measured.loss}`);
      if (p.from !== undefined) assert.ok(p.energyKept - layer.probes.find((q) => q.k === p.from)!.energyKept < 0.3);
    }
  }
});

test('which model a sweep starts from: the task file\'s, the original a compressed model records, the open one; the baseline says what it is', async () => {
  const compressedPath = join(dir, 'two_branch.rankscope.onnx');
  const plan = makePlan(model, spectra, { budget: 0.5, allocation: 'uniform' }, graphCheck(model));
  await compressToFile(model, plan, compressedPath);
  const compressed = await openOnnx(compressedPath);
  const original = join(dir, 'two_branch.onnx');
  assert.equal(baselineLabel(model), 'original');
  assert.equal(baselineLabel(compressed), 'baseline (already compressed: 4 layers)');
  assert.deepEqual(sweepModelChoices({ path: original, model }), [{ path: original, why: 'open' }]);
  assert.deepEqual(sweepModelChoices({ path: original, model }, original), [{ path: original, why: 'task' }], 'the task names the open model: one choice');
  assert.deepEqual(sweepModelChoices({ path: compressedPath, model: compressed }), [{ path: original, why: 'recorded original' }, { path: compressedPath, why: 'open' }]);
  assert.deepEqual(sweepModelChoices({ path: compressedPath, model: compressed }, join(dir, 'other.onnx'), (p) => p !== original), [
    { path: join(dir, 'other.onnx'), why: 'task' }, { path: compressedPath, why: 'open' },
  ], 'a recorded original that is gone is not offered');
  // A sweep of the compressed model: its baseline point is labelled for what it is.
  const r = await runSweep({ energies: [0.9] }, { model: compressed, spectra: spectraOnThread(compressed), dataset: data, runner, latency: false });
  assert.equal(r.original.label, 'baseline (already compressed: 4 layers)');
  assert.equal(r.original.params, compressed.summary.totalParams);
});

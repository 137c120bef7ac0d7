// `npm run bench:eval`, on the bundled sample (media/samples/skeleton-transformer.onnx, 31 layers, + skeleton-actions.npz,
// NTU layout, 405 test clips; `--catformer` uses skeleton-catformer.onnx instead):
// 1. OrtRunner (ONNX Runtime in a worker thread) against a bare onnxruntime-node session.run loop
//    over the SAME pre-read batches in the same process, same intra-op threads, passes interleaved.
//    Goal: ≤ 10 % overhead for evaluate() (what evaluations and sweeps run: batches prepared from the .npz
//    and kept, two in flight, metrics). Also OrtRunner.run awaited call by call (no pipelining).
// 2. A sweep of 8 budget levels: wall time, and how much is compression vs evaluation.
// 3. Uniform vs energy vs sensitivity allocation at the same budgets (the table), the probes at
//    their defaults (what a user gets): their count, samples and time.
// 4. The sample's own sweep (media/samples/rankscope.json: 3 budgets × energy/uniform/sensitivity
//    + 3 energy thresholds) as the trade-off view runs it: when the original and the first
//    compressed point arrive, the probes' stage (count, seconds), the wall time.
// 5. The unit tests' two-branch fixture: the sensitivity allocation's top-1 at 30/50/70 %.
// The machine is shared: the load average is printed with the figures.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { openOnnx } from '../src/core/formats/onnx';
import { computeSpectra } from '../src/core/linalg';
import { loadDataset, type Batch } from '../src/core/eval/dataset';
import { evaluate } from '../src/core/eval/evaluate';
import { OrtRunner } from '../src/core/eval/runner';
import { runSweep, type SweepResult, type SweepSpec } from '../src/core/eval/sweep';
import { writeTwoBranchFixture, spectraOnThread } from '../test/unit/eval/fixtures';
import { ROOT } from './paths';

const MODEL = join(ROOT, `media/samples/${process.argv.includes('--catformer') ? 'skeleton-catformer' : 'skeleton-transformer'}.onnx`);
const DATA = join(ROOT, 'media/samples/skeleton-actions.npz');
const THREADS = 1;
const BATCH = 32;
const PASSES = 9;
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function runnerVsBare(): Promise<void> {
  const runner = OrtRunner.create({ intraOpThreads: THREADS });
  const session = await runner.open(MODEL);
  const dataset = await loadDataset({ data: DATA, preset: 'ntu' }, session.inputs);
  const batches: Batch[] = [];
  for await (const b of dataset.batches(BATCH)) batches.push(b);
  const bare = await ort.InferenceSession.create(MODEL, { executionProviders: ['cpu'], intraOpNumThreads: THREADS, graphOptimizationLevel: 'all' });
  const input = session.inputs[0].name;
  const bareTensors = batches.map((b) => new ort.Tensor('float32', b.feeds[input].data as Float32Array, b.feeds[input].dims));
  const barePass = async () => {
    const t0 = performance.now();
    for (const t of bareTensors) await bare.run({ [input]: t });
    return performance.now() - t0;
  };
  const runnerPass = async () => {
    const t0 = performance.now();
    for (const b of batches) await session.run(b.feeds); // copies the batch to the worker: counted as overhead
    return performance.now() - t0;
  };
  const evaluatePass = async () => {
    const t0 = performance.now();
    await evaluate(session, dataset, { batchSize: BATCH });
    return performance.now() - t0;
  };
  await barePass();
  await runnerPass();
  await evaluatePass(); // warm-up all three (evaluate's first pass also prepares the batches it then keeps)
  const bareTimes: number[] = [];
  const runnerTimes: number[] = [];
  const evalTimes: number[] = [];
  for (let i = 0; i < PASSES; i++) {
    // Alternate which goes first, so neither always runs on a warmer cache.
    if (i % 2 === 0) {
      bareTimes.push(await barePass());
      runnerTimes.push(await runnerPass());
    } else {
      runnerTimes.push(await runnerPass());
      bareTimes.push(await barePass());
    }
    evalTimes.push(await evaluatePass());
  }
  const n = dataset.size;
  const tp = (ms: number) => `${((n / ms) * 1000).toFixed(0)} samples/s`;
  const row = (label: string, times: number[], base?: number[]) => {
    const med = median(times);
    const best = Math.min(...times);
    const vs = base ? `   overhead ${((med / median(base) - 1) * 100).toFixed(1)} % (median), ${((best / Math.min(...base) - 1) * 100).toFixed(1)} % (best)` : '';
    console.log(`   ${label.padEnd(58)} median ${med.toFixed(1).padStart(6)} ms, best ${best.toFixed(1).padStart(6)} ms   ${tp(med)}${vs}`);
  };
  console.log(`\n1. Runner vs bare session.run — ${n} samples, ${batches.length} batches of ${BATCH}, ${THREADS} intra-op thread, ${PASSES} interleaved passes, order alternating (load ${load()})`);
  row('bare session.run loop (main thread, same batches)', bareTimes);
  row('evaluate() (worker thread, 2 batches in flight, metrics)', evalTimes, bareTimes);
  row('OrtRunner.run, one awaited call per batch', runnerTimes, bareTimes);
  console.log('   goal: ≤ 10 % overhead for evaluate()');
  await bare.release();
  await dataset.close();
  await runner.dispose();
}

function table(r: SweepResult): void {
  console.log(`   ${'point'.padEnd(20)} ${'params'.padStart(10)} ${'top-1 %'.padStart(8)} ${'agree %'.padStart(8)} ${'mean KL'.padStart(9)} ${'ms/batch'.padStart(9)} ${'compress s'.padStart(10)} ${'eval s'.padStart(7)}`);
  for (const p of [r.original, ...r.points]) {
    console.log(`   ${(p.label + (p.pareto ? ' *' : '')).padEnd(20)} ${String(p.params).padStart(10)} ${(p.metrics.top1! * 100).toFixed(2).padStart(8)} ${((p.metrics.agreement ?? 1) * 100).toFixed(1).padStart(8)} ${(p.metrics.meanKL ?? 0).toExponential(2).padStart(9)} ${(p.latency?.medianMs.toFixed(2) ?? '').padStart(9)} ${p.seconds.compress.toFixed(2).padStart(10)} ${p.seconds.evaluate.toFixed(2).padStart(7)}`);
  }
}

async function sweeps(): Promise<void> {
  const model = await openOnnx(MODEL);
  const ts = performance.now();
  const spectra = await computeSpectra(model, { order: 'module' });
  const spectraSeconds = (performance.now() - ts) / 1000;
  const runner = OrtRunner.create({ intraOpThreads: THREADS });
  const probe = await runner.open(MODEL);
  const dataset = await loadDataset({ data: DATA, preset: 'ntu' }, probe.inputs);
  await probe.close();
  const levels = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];
  const cacheDir = mkdtempSync(join(tmpdir(), 'rankscope-bench-eval-'));
  try {
    const t0 = performance.now();
    const r = await runSweep({ levels, allocations: ['energy'] }, { model, spectra, dataset, runner, batchSize: BATCH, latency: { warmup: 2, runs: 5 }, cacheDir });
    const wall = (performance.now() - t0) / 1000;
    const t = r.timing;
    console.log(`\n2. Sweep of ${levels.length} budget levels (energy allocation) + the original, ${dataset.size} samples each (load ${load()})`);
    console.log(`   wall ${wall.toFixed(2)} s = compression ${t.compress.toFixed(2)} s (${(t.compress / wall * 100).toFixed(0)} %: plan + SVD factors + graph rewrite + encode)`
      + ` + evaluation ${t.evaluate.toFixed(2)} s (${(t.evaluate / wall * 100).toFixed(0)} %: session load + ${dataset.size} samples)`
      + ` + latency ${t.latency.toFixed(2)} s + other ${(wall - t.compress - t.evaluate - t.latency).toFixed(2)} s (hashing, points)`);
    console.log(`   (spectra before the sweep, LINALG pool: ${spectraSeconds.toFixed(2)} s)`);
    table(r);
    const t1 = performance.now();
    const again = await runSweep({ levels, allocations: ['energy'] }, { model, spectra, dataset, runner, batchSize: BATCH, latency: { warmup: 2, runs: 5 }, cacheDir });
    console.log(`   re-run from the cache: ${((performance.now() - t1) / 1000).toFixed(2)} s, ${again.timing.cachedPoints} of ${1 + levels.length} points cached`);

    const budgets = [0.3, 0.5, 0.7, 0.9];
    const t2 = performance.now();
    const cmp = await runSweep({ levels: budgets, allocations: ['uniform', 'energy', 'sensitivity'] }, { model, spectra, dataset, runner, batchSize: BATCH, latency: false });
    console.log(`\n3. Allocation at the same budgets (sensitivity probes at their defaults: ${probeText(cmp)}; total ${((performance.now() - t2) / 1000).toFixed(2)} s; load ${load()})`);
    allocationTable(cmp, budgets);
    await sampleSweep(model, spectra, dataset, runner);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
    await dataset.close();
    await runner.dispose();
  }
}

/** The probes of a sweep: how many were measured, on how many samples, in how long. */
function probeText(r: SweepResult): string {
  const measured = r.sensitivity?.reduce((n, l) => n + l.probes.filter((p) => !(p as { from?: number }).from).length, 0) ?? 0;
  const calibration = (r as { calibration?: { samples: number; seed: number } }).calibration;
  const on = calibration ? `${calibration.samples} of ${r.samples} samples (seed ${calibration.seed})` : `the first ${Math.min(512, r.samples)} of ${r.samples} samples`;
  return `${measured} probes on ${on}: ${r.timing.sensitivity.toFixed(2)} s`;
}

function allocationTable(r: SweepResult, budgets: number[]): void {
  console.log(`   ${'budget'.padEnd(8)} ${'uniform top-1 / KL'.padStart(22)} ${'energy top-1 / KL'.padStart(22)} ${'sensitivity top-1 / KL'.padStart(24)}`);
  for (const b of budgets) {
    const cell = (a: string) => {
      const p = r.points.find((x) => x.allocation === a && x.level === b);
      return p ? `${(p.metrics.top1! * 100).toFixed(2)} % / ${p.metrics.meanKL!.toExponential(2)}` : 'out of reach';
    };
    console.log(`   ${`−${b * 100} %`.padEnd(8)} ${cell('uniform').padStart(22)} ${cell('energy').padStart(22)} ${cell('sensitivity').padStart(24)}`);
  }
}

/** The sample's task-file sweep, timed as the trade-off view sees it (points and progress as they arrive). */
async function sampleSweep(model: Awaited<ReturnType<typeof openOnnx>>, spectra: Awaited<ReturnType<typeof computeSpectra>>, dataset: Awaited<ReturnType<typeof loadDataset>>, runner: OrtRunner): Promise<void> {
  const task = JSON.parse(readFileSync(join(ROOT, 'media/samples/rankscope.json'), 'utf8')) as { batchSize: number; sweep: SweepSpec };
  const t0 = performance.now();
  const at = () => (performance.now() - t0) / 1000;
  const arrivals: { t: number; label: string }[] = [];
  let firstProbe: number | undefined;
  let lastProbe: number | undefined;
  const r = await runSweep(task.sweep, {
    model, spectra, dataset, runner, batchSize: task.batchSize, latency: { warmup: 2, runs: 5 },
    onPoint: (p) => arrivals.push({ t: at(), label: p.label }),
    onProgress: (p) => {
      // A probe: the stage (now), or the old "sensitivity: <layer> at rank k (i/N)" message (before the stage existed).
      if (!(p as { stage?: unknown }).stage && !/^sensitivity: /.test(p.message)) return;
      firstProbe ??= at();
      lastProbe = at();
    },
  });
  const wall = at();
  const firstCompressed = arrivals.find((a) => a.label !== 'original');
  console.log(`\n4. The sample's sweep (rankscope.json: levels ${task.sweep.levels}, energies ${task.sweep.energies}, allocations ${task.sweep.allocations}; ${r.points.length} points; load ${load()})`);
  console.log(`   wall ${wall.toFixed(2)} s; original at ${arrivals[0].t.toFixed(2)} s; first compressed point at ${firstCompressed?.t.toFixed(2)} s (${firstCompressed?.label});`
    + ` ${arrivals.filter((a) => a.t < (firstProbe ?? Infinity)).length - 1} points before the probes`);
  console.log(`   probes ${firstProbe?.toFixed(2)}–${lastProbe?.toFixed(2)} s: ${probeText(r)}; compression ${r.timing.compress.toFixed(2)} s, evaluation ${r.timing.evaluate.toFixed(2)} s, latency ${r.timing.latency.toFixed(2)} s`);
  console.log(`   arrivals: ${arrivals.map((a) => `${a.label} ${a.t.toFixed(1)} s`).join(', ')}`);
  allocationTable(r, task.sweep.levels!);
}

/** The unit tests' two-branch fixture (layers that differ in sensitivity): sensitivity vs uniform at the same budgets. */
async function fixtureQuality(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rankscope-bench-two-branch-'));
  const runner = OrtRunner.create({ intraOpThreads: THREADS });
  try {
    writeTwoBranchFixture(dir);
    const model = await openOnnx(join(dir, 'two_branch.onnx'));
    const probe = await runner.open(join(dir, 'two_branch.onnx'));
    const dataset = await loadDataset({ data: join(dir, 'two_branch.npz') }, probe.inputs);
    await probe.close();
    const budgets = [0.3, 0.5, 0.7];
    const r = await runSweep({ levels: budgets, allocations: ['uniform', 'energy', 'sensitivity'] }, { model, spectra: spectraOnThread(model), dataset, runner, metric: 'top1', latency: false });
    console.log(`\n5. Two-branch fixture (test/unit/eval), ${r.samples} samples; ${probeText(r)} (load ${load()})`);
    allocationTable(r, budgets);
    await dataset.close();
  } finally {
    await runner.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  console.log(`bench:eval — ${MODEL.split('/').pop()} on ${DATA.split('/').pop()}; onnxruntime-node ${ort.env.versions?.common ?? ''}; load ${load()}`);
  await runnerVsBare();
  if (!process.argv.includes('--runner-only')) {
    await sweeps();
    await fixtureQuality();
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

// `rankscope demo`: the main job on the bundled skeleton-action sample, through the same core the
// extension uses: 1 inspect (layers, spectra), 2 sweep (energy thresholds and budgets × allocation,
// plain and whitened SVD, accuracy with ONNX Runtime; the whitened calibration on training samples
// only), 3 compress at the knee of the trade-off curve, 4 evaluate it against the original,
// 5 fine-tune it on the CPU when PyTorch is there. Writes DIR/report.html,
// summary.json, the sweep files, the plan, and the compressed and fine-tuned models.
// `--table` instead computes the README results table (resultsTable.ts) into DIR/results.json;
// scripts/results.mjs renders it.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { RankscopeError } from '../core/errors';
import { calibrationCandidates, compressToFile } from '../core/compress';
import { ALLOCATIONS, isAllocation, type SweepAllocation } from '../core/compress/budget';
import type { Dataset } from '../core/eval/dataset';
import { evaluate } from '../core/eval/evaluate';
import { compareLatency, type Latency } from '../core/eval/latency';
import { measureMacs } from '../core/eval/macs';
import { OrtRunner, type OrtSession } from '../core/eval/runner';
import { runSweep, SWEEP_METHODS, type SweepMethod, type SweepPoint, type SweepResult } from '../core/eval/sweep';
import { writeSweepReport } from '../core/eval/report';
import { openOnnxModel } from '../core/formats';
import { ensureOutputFolder, writeFileAtomic } from '../core/fs/atomicWrite';
import { computeSpectra } from '../core/linalg';
import type { Command, CommandIO } from './command';
import { intOption, nameList, numberList, parseOptions } from './options';
import { demoReportHtml } from './demoReport';
import { calibrateOnTraining, findTorch, kib, num, openData, pct, planOf, runFinetune, type Context } from './demoSteps';
import { DEFAULT_TABLE_OPTIONS, resultsTable, type ResultsTable, type TableOptions } from './resultsTable';

export type { ResultsTable, TableRow } from './resultsTable';

/**
 * The demo's allocations and methods. 'whitened' (allocation and method) reads each layer's error
 * per rank off one calibration pass; 'sensitivity' (one evaluation per layer per probed rank, most
 * of 20 minutes on the 71-layer sample) and 'uniform' are left to `rankscope sweep`.
 */
const DEMO_ALLOCATIONS: SweepAllocation[] = ['energy', 'whitened'];
const DEMO_METHODS: SweepMethod[] = ['svd', 'whitened'];

const usage = `rankscope demo [options]

Runs the whole loop on the bundled sample (media/samples: a Hyperformer-like skeleton-action
Transformer and its NTU-layout data): inspect, sweep, compress at the knee, evaluate, fine-tune.
  -o, --out DIR        output folder (default demo-output)
  --model FILE         another ONNX model (default media/samples/skeleton-transformer.onnx)
  --data FILE          its data in the NTU layout (default media/samples/skeleton-actions.npz)
  --epochs N           fine-tuning epochs (default 3, --table 5; 1 under CI=true); 0 skips fine-tuning
  --python PATH        interpreter with PyTorch for fine-tuning (default: as \`rankscope finetune\`)
  --threads N          ONNX Runtime threads (default 1: stable latency figures)
  --table              compute the README results table instead into DIR/results.json: each cut ×
                       allocation × method compressed to a file, test top-1 after compression,
                       fine-tuning and distillation, parameters, MACs, size, interleaved latency
  --cuts LIST          --table: cuts of the factorizable parameters (default 0.3,0.5,0.7)
  --allocations LIST   --table: ${ALLOCATIONS.join(',')} (default all)
  --methods LIST       --table: ${SWEEP_METHODS.join(',')} (default all)
  --latency-runs N     --table: timed runs of each model per row, alternating (default 20)
  --json               print summary.json to stdout at the end`;

/** The demo's machine-readable outcome (DIR/summary.json); the demo test checks it. */
export interface DemoSummary {
  model: string;
  data: string;
  ci: boolean;
  steps: {
    inspect: { layers: number; factorizable: number; totalParams: number; factorizableParams: number; fileSize: number; spectra: number; seconds: number };
    sweep: { points: number; original: number; best: { label: string; top1: number; params: number }[]; seconds: number };
    compress: { point: string; method: SweepMethod; plan: string; output: string; layersCompressed: number; paramsBefore: number; paramsAfter: number; fileSizeBefore: number; fileSizeAfter: number };
    evaluate: { top1Original: number; top1Compressed: number; agreement: number; latencyOriginalMs: number; latencyCompressedMs: number; macsOriginal: number | null; macsCompressed: number | null };
    finetune: { ran: true; epochs: number; top1: number; output: string; seconds: number; device: string } | { ran: false; reason: string; howToEnable?: string };
  };
  seconds: number;
}

export const CUTS = [0.3, 0.5, 0.7];
/**
 * The sweep's grid: the cuts (CI: the two where the curve bends) and one energy threshold (99 and
 * 95 % keep nearly every parameter of this sample), each with both allocations and both methods.
 */
const sweepGrid = (ci: boolean) => ({ levels: ci ? [0.5, 0.7] : CUTS, energies: [0.9] });

/** media/samples, found from the bundle (dist/) or the sources (src/cli/). */
export function samplesDir(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'media', 'samples');
    if (existsSync(join(candidate, 'skeleton-actions.npz'))) return candidate;
    if (dirname(dir) === dir) throw new RankscopeError('NOT_FOUND', 'The bundled sample (media/samples/skeleton-transformer.onnx) is not here.', 'Run from a Rankscope checkout, or give --model and --data.');
  }
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'the whole loop on the bundled skeleton-action sample (inspect, sweep, compress, evaluate, fine-tune)',
  usage,
  async run(argv, io) {
    const { values } = parseOptions(argv, {
      out: { type: 'string', short: 'o' }, model: { type: 'string' }, data: { type: 'string' }, epochs: { type: 'string' },
      python: { type: 'string' }, threads: { type: 'string' }, table: { type: 'boolean' }, json: { type: 'boolean' },
      cuts: { type: 'string' }, allocations: { type: 'string' }, methods: { type: 'string' }, 'latency-runs': { type: 'string' },
    });
    const ci = process.env.CI === 'true';
    const model = resolve(values.model ?? join(samplesDir(), 'skeleton-transformer.onnx'));
    const data = resolve(values.data ?? join(samplesDir(), 'skeleton-actions.npz'));
    for (const f of [model, data]) if (!existsSync(f)) throw new RankscopeError('NOT_FOUND', `${f}: no such file.`);
    const out = resolve(values.out ?? 'demo-output');
    const epochs = values.epochs === undefined ? (ci ? 1 : values.table ? 5 : 3) : intOption(values.epochs, '--epochs', 0);
    const threads = values.threads === undefined ? 1 : intOption(values.threads, '--threads');
    const table = values.table ? tableOptions(values, ci) : undefined; // checked before anything is written
    ensureOutputFolder(out);
    const ctx: Context = { io, model, data, out, epochs, threads, ci, python: values.python };
    if (table) {
      const result = await resultsTable(ctx, table);
      io.out(`wrote ${join(out, 'results.json')}`);
      if (values.json) io.out(JSON.stringify(result, null, 2));
      return 0;
    }
    const summary = await demo(ctx);
    if (values.json) io.out(JSON.stringify(summary, null, 2));
    return 0;
  },
};

/** --cuts/--allocations/--methods/--latency-runs, checked (a subset of the full table runs in minutes). */
function tableOptions(values: { cuts?: string; allocations?: string; methods?: string; 'latency-runs'?: string }, ci: boolean): TableOptions {
  const cuts = numberList(values.cuts, '--cuts') ?? DEFAULT_TABLE_OPTIONS.cuts;
  for (const c of cuts) if (!(c > 0 && c < 1)) throw new RankscopeError('BAD_ARGUMENT', `--cuts: ${c} is not a fraction in (0, 1) (0.5 = cut half the factorizable parameters).`);
  const allocations = nameList(values.allocations) ?? DEFAULT_TABLE_OPTIONS.allocations;
  for (const a of allocations) if (!isAllocation(a)) throw new RankscopeError('BAD_ARGUMENT', `--allocations: '${a}' is not one of ${ALLOCATIONS.join(', ')}.`);
  const methods = nameList(values.methods) ?? DEFAULT_TABLE_OPTIONS.methods;
  for (const m of methods) if (!SWEEP_METHODS.includes(m as SweepMethod)) throw new RankscopeError('BAD_ARGUMENT', `--methods: '${m}' is not one of ${SWEEP_METHODS.join(', ')}.`);
  const latencyRuns = values['latency-runs'] === undefined ? (ci ? 5 : DEFAULT_TABLE_OPTIONS.latencyRuns) : intOption(values['latency-runs'], '--latency-runs');
  return { cuts, allocations: allocations as TableOptions['allocations'], methods: methods as SweepMethod[], latencyRuns };
}

async function demo(ctx: Context): Promise<DemoSummary> {
  const { io, out } = ctx;
  const t0 = performance.now();
  const heading = (s: string) => io.out(`\n== ${s}`);

  // 1. Inspect.
  heading('1/5 inspect');
  const ti = performance.now();
  const model = await openOnnxModel(ctx.model, { signal: io.signal });
  const s = model.summary;
  const factorizable = model.layers.filter((l) => l.factorizable);
  io.out(`${ctx.model}: ${num(s.totalParams)} parameters, ${(s.fileSize / 1024 / 1024).toFixed(2)} MiB, ${model.layers.length} weight layers (${factorizable.length} factorizable, ${num(s.factorizableParams)} parameters)`);
  const spectra = await computeSpectra(model, { order: 'module', signal: io.signal, cacheDir: join(out, '.cache', 'spectra') });
  const bySize = [...spectra].sort((a, b) => b.shape[0] * b.shape[1] - a.shape[0] * a.shape[1]);
  io.out(`${'layer'.padEnd(34)} ${'shape'.padStart(11)} ${'rank@90%'.padStart(9)} ${'rank@99%'.padStart(9)} ${'stable rank'.padStart(12)}`);
  for (const sp of bySize.slice(0, 8)) {
    io.out(`${sp.layer.slice(0, 34).padEnd(34)} ${`${sp.shape[0]}×${sp.shape[1]}`.padStart(11)} ${String(sp.metrics.energyRank['0.9']).padStart(9)} ${String(sp.metrics.energyRank['0.99']).padStart(9)} ${sp.metrics.stableRank.toFixed(1).padStart(12)}`);
  }
  if (bySize.length > 8) io.out(`… and ${bySize.length - 8} more (rankscope inspect ${ctx.model})`);
  const inspect = { layers: model.layers.length, factorizable: factorizable.length, totalParams: s.totalParams, factorizableParams: s.factorizableParams, fileSize: s.fileSize, spectra: spectra.length, seconds: (performance.now() - ti) / 1000 };

  const runner = OrtRunner.create({ intraOpThreads: ctx.threads, signal: io.signal });
  let dataset: Dataset | undefined;
  try {
    dataset = await openData(runner, ctx);

    // 2. Sweep.
    heading('2/5 sweep: an energy threshold, and parameter cuts × allocation, plain and whitened SVD (top-1 on the test split with ONNX Runtime)');
    const whitening = await withTraining(runner, ctx, (train) => calibrateOnTraining(model, calibrationCandidates(model), train, runner, ctx));
    const sweep = await runSweep({ ...sweepGrid(ctx.ci), allocations: DEMO_ALLOCATIONS, methods: DEMO_METHODS }, {
      // No latency per point: step 4 times the knee against the original, interleaved.
      model, spectra, dataset, runner, batchSize: 64, latency: false,
      cacheDir: join(out, '.cache', 'sweep'), whitening, signal: io.signal,
      onPoint: (p) => io.out(`${p.label.padEnd(24)} ${num(p.params).padStart(11)} params  top-1 ${pct(p.metrics.top1).padStart(8)}${p.cached ? '  (cached)' : ''}`),
    });
    await writeSweepReport(sweep, out, io.signal);
    const sweepSummary = {
      points: sweep.points.length, original: sweep.original.metrics.top1 ?? 0, seconds: sweep.timing.total,
      best: sweep.points.filter((p) => p.pareto).map((p) => ({ label: p.label, top1: p.metrics.top1 ?? 0, params: p.params })),
    };

    // 3. Compress at the knee.
    heading('3/5 compress at the knee of the accuracy/size curve');
    const knee = kneePoint(sweep);
    const method = knee.method ?? 'svd';
    const plan = planOf(knee);
    const planPath = join(out, 'plan.json');
    await writeFileAtomic(planPath, JSON.stringify(plan, null, 2), { signal: io.signal });
    const compressedPath = join(out, `${basename(ctx.model, '.onnx')}.compressed.onnx`);
    // A whitened point is written with the whitened factors it was measured with.
    await compressToFile(model, plan, compressedPath, { signal: io.signal, ...(method === 'whitened' && { whitening }) });
    const compressedSize = (await stat(compressedPath)).size;
    io.out(`knee: ${knee.label} → ${plan.totals.compressed} layers factorized, parameters ${num(plan.totals.modelParamsBefore)} → ${num(plan.totals.modelParamsAfter)} (−${pct(1 - plan.totals.modelParamsAfter / plan.totals.modelParamsBefore)}), file ${kib(s.fileSize)} → ${kib(compressedSize)}`);
    io.out(`wrote ${compressedPath}`);
    const compress = {
      point: knee.label, method, plan: planPath, output: compressedPath, layersCompressed: plan.totals.compressed,
      paramsBefore: plan.totals.modelParamsBefore, paramsAfter: plan.totals.modelParamsAfter, fileSizeBefore: s.fileSize, fileSizeAfter: compressedSize,
    };

    // 4. Evaluate the written file against the original.
    heading('4/5 evaluate the compressed model (ONNX Runtime, CPU)');
    const original = await runner.open(ctx.model);
    const compressed = await runner.open(compressedPath);
    const base = await evaluate(original, dataset, { batchSize: 64, keepOutputs: true, signal: io.signal });
    const comp = await evaluate(compressed, dataset, { batchSize: 64, reference: base.outputs, signal: io.signal });
    const [latC, latO] = await latencies([compressed, original], dataset, ctx);
    io.out(`top-1: original ${pct(base.metrics.top1)}, compressed ${pct(comp.metrics.top1)}; agreement with the original ${pct(comp.metrics.agreement)}`);
    io.out(`latency (batch ${latO.batchSize}, ${ctx.threads} thread): original ${latO.medianMs.toFixed(2)} ms, compressed ${latC.medianMs.toFixed(2)} ms`);
    await original.close();
    await compressed.close();
    const [macsO, macsC] = [await measureMacs(model, { runner, dataset, signal: io.signal }), await measureMacs(await openOnnxModel(compressedPath, { signal: io.signal }), { runner, dataset, signal: io.signal })];
    io.out(macsO.ok && macsC.ok ? `MACs per sample (weight layers): original ${num(macsO.total)}, compressed ${num(macsC.total)} (×${(macsC.total / macsO.total).toFixed(2)})` : `MACs: not measured (${!macsO.ok ? macsO.reason : !macsC.ok ? macsC.reason : ''})`);
    const evaluation = {
      top1Original: base.metrics.top1 ?? 0, top1Compressed: comp.metrics.top1 ?? 0, agreement: comp.metrics.agreement ?? 0,
      latencyOriginalMs: latO.medianMs, latencyCompressedMs: latC.medianMs, macsOriginal: macsO.ok ? macsO.total : null, macsCompressed: macsC.ok ? macsC.total : null,
    };

    // 5. Fine-tune.
    heading(`5/5 fine-tune the compressed model (${ctx.epochs} epoch${ctx.epochs === 1 ? '' : 's'}, CPU)`);
    let ft: DemoSummary['steps']['finetune'];
    if (ctx.epochs === 0) ft = { ran: false, reason: '--epochs 0' };
    else {
      const env = await findTorch(ctx);
      if (!env.ok) {
        const how = env.problems.map((p) => `${p.what}: ${p.fix}`).join(' ');
        io.out(`skipped: fine-tuning needs Python with PyTorch (${env.python}). ${how}`);
        io.out('Then run `npm run demo` again (or `rankscope finetune`); the steps above are cached.');
        ft = { ran: false, reason: 'PyTorch not available', howToEnable: how };
      } else {
        const tf = performance.now();
        const r = await runFinetune(ctx, compressedPath, join(out, `${basename(ctx.model, '.onnx')}.finetuned.onnx`), undefined);
        const tuned = await runner.open(r.output!);
        const after = await evaluate(tuned, dataset, { batchSize: 64, signal: io.signal });
        await tuned.close();
        io.out(`top-1 after fine-tuning (ONNX Runtime on the written model): ${pct(after.metrics.top1)}  (original ${pct(base.metrics.top1)})`);
        io.out(`wrote ${r.output}`);
        ft = { ran: true, epochs: ctx.epochs, top1: after.metrics.top1 ?? 0, output: r.output!, seconds: (performance.now() - tf) / 1000, device: r.summary.device };
      }
    }

    const summary: DemoSummary = {
      model: ctx.model, data: ctx.data, ci: ctx.ci,
      steps: { inspect, sweep: sweepSummary, compress, evaluate: evaluation, finetune: ft },
      seconds: (performance.now() - t0) / 1000,
    };
    await writeFileAtomic(join(out, 'summary.json'), JSON.stringify(summary, null, 2), { signal: io.signal });
    const table = await readTable(out);
    await writeFileAtomic(join(out, 'report.html'), demoReportHtml({ summary, sweep, spectra: bySize, table }), { signal: io.signal });
    printSummary(summary, io);
    return summary;
  } finally {
    await dataset?.close();
    await runner.dispose();
  }
}

/** Runs `use` on the training split (no labels needed), closed after. */
async function withTraining<T>(runner: OrtRunner, ctx: Context, use: (train: Dataset) => Promise<T>): Promise<T> {
  const train = await openData(runner, ctx, 'train', false);
  try {
    return await use(train);
  } finally {
    await train.close();
  }
}

const methodText = (m: SweepMethod) => (m === 'whitened' ? 'whitened SVD' : 'plain SVD');

async function latencies(sessions: OrtSession[], dataset: Dataset, ctx: Context): Promise<Latency[]> {
  const batch = await dataset.batch(0, Math.min(32, dataset.size), ctx.io.signal);
  return compareLatency(sessions, batch.feeds, { warmup: 3, runs: ctx.ci ? 5 : 15 });
}

/**
 * The knee of the accuracy/size curve: the smallest model whose score right after factorization
 * (plain or whitened SVD, before any fine-tuning) stays within
 * `tolerance` of the original's (past it the curve bends down, and a few epochs of fine-tuning
 * no longer win the loss back). With none that close, the best-scoring compressed point.
 */
export function kneePoint(sweep: SweepResult, tolerance = KNEE_TOLERANCE): SweepPoint {
  const points = sweep.points.filter((p) => Number.isFinite(p.score) && p.params < sweep.original.params);
  if (points.length === 0) throw new RankscopeError('NUMERIC', 'The sweep produced no smaller model to compress to.', 'Try other levels (rankscope sweep).');
  const close = points.filter((p) => p.score >= sweep.original.score - tolerance);
  if (close.length > 0) return close.reduce((a, b) => (b.params < a.params ? b : a));
  return points.reduce((a, b) => (b.score > a.score ? b : a));
}
const KNEE_TOLERANCE = 0.02;

/** DIR/results.json of this table format (an older one is left out of the report). */
async function readTable(out: string): Promise<ResultsTable | undefined> {
  const path = join(out, 'results.json');
  if (!existsSync(path)) return undefined;
  const { readFile } = await import('node:fs/promises');
  const table = JSON.parse(await readFile(path, 'utf8')) as ResultsTable;
  return table.schema === 'rankscope.results/2' ? table : undefined;
}

function printSummary(s: DemoSummary, io: CommandIO): void {
  const st = s.steps;
  io.out('\n== summary');
  io.out(`inspect   ${st.inspect.layers} layers, ${num(st.inspect.totalParams)} parameters, ${st.inspect.spectra} spectra`);
  io.out(`sweep     ${st.sweep.points} points; original top-1 ${pct(st.sweep.original)}`);
  io.out(`compress  ${st.compress.point}: ${num(st.compress.paramsBefore)} → ${num(st.compress.paramsAfter)} parameters, ${kib(st.compress.fileSizeBefore)} → ${kib(st.compress.fileSizeAfter)}`);
  io.out(`evaluate  top-1 ${pct(st.evaluate.top1Original)} → ${pct(st.evaluate.top1Compressed)} after ${methodText(st.compress.method)}; latency ${st.evaluate.latencyOriginalMs.toFixed(2)} → ${st.evaluate.latencyCompressedMs.toFixed(2)} ms/batch`
    + (st.evaluate.macsOriginal !== null && st.evaluate.macsCompressed !== null ? `; MACs ${num(st.evaluate.macsOriginal)} → ${num(st.evaluate.macsCompressed)}` : ''));
  const ft = st.finetune;
  io.out(ft.ran ? `finetune  top-1 ${pct(ft.top1)} after ${ft.epochs} epoch(s) on ${ft.device} (${ft.seconds.toFixed(0)} s)` : `finetune  skipped: ${ft.reason}`);
  io.out(`report    ${join(dirname(st.compress.plan), 'report.html')}  (${s.seconds.toFixed(0)} s in all)`);
}


// `rankscope demo --table`: the LORTSAR-style results table of one model (scripts/results.mjs
// renders it into README.md). Rows: each cut of the factorizable parameters × each allocation ×
// each factorization method, every one compressed to a file and measured the same way:
//   top-1 on the TEST split (ONNX Runtime on the written file) after compression, after
//   fine-tuning and after fine-tuning with distillation (the worker trains on the training split
//   less its validation subjects and keeps the best VALIDATION epoch);
//   parameters, MACs per sample (eval/macs.ts, from the file's own run), file size;
//   CPU latency of the original and the compressed model timed in the same process, one run of
//   each in turn (compareLatency with rounds = runs), median of each, and their ratio.
// Whatever chooses ranks or factors sees TRAINING samples only: the sensitivity probes (a sweep
// on a training subset), the whitened calibration, the fine-tuning. The test split is only scored.
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { RankscopeError } from '../core/errors';
import { ALLOCATIONS, type Allocation } from '../core/compress/budget';
import { compressToFile, graphCheck, whitenedSpectraOf, type Plan, type WhiteningSource } from '../core/compress';
import { isCompressible, makePlan } from '../core/compress/plan';
import { selectSamples } from '../core/eval/calibration';
import type { Dataset } from '../core/eval/dataset';
import { evaluate } from '../core/eval/evaluate';
import { compareLatency } from '../core/eval/latency';
import { measureMacs, type MacsProfile } from '../core/eval/macs';
import { OrtRunner, type OrtSession, type WireTensor } from '../core/eval/runner';
import { runSweep, SWEEP_METHODS, type SweepMethod } from '../core/eval/sweep';
import { openOnnxModel } from '../core/formats';
import type { OnnxModel } from '../core/formats/onnx';
import { writeFileAtomic } from '../core/fs/atomicWrite';
import { computeSpectra } from '../core/linalg';
import { CALIBRATION_SAMPLES, calibrateOnTraining, findTorch, kib, num, openData, pct, runFinetune, type Context } from './demoSteps';

export const TABLE_CUTS = [0.3, 0.5, 0.7];
/** Training samples the sensitivity probes draw from (seeded; the calibration's: demoSteps.ts). */
const PROBE_SAMPLES = 512;
const LATENCY_BATCH = 32;

export interface TableOptions {
  cuts: number[];
  allocations: Allocation[];
  methods: SweepMethod[];
  /** Timed runs of each model per row (alternating). */
  latencyRuns: number;
}

export interface TableRow {
  cut: number;
  allocation: Allocation;
  method: SweepMethod;
  layersCompressed: number;
  params: number;
  /** MACs per sample of the written file (null: not measurable, see the table's macsNote). */
  macs: number | null;
  fileSize: number;
  /** Test top-1 (ONNX Runtime on the written files). */
  top1Svd: number;
  top1Finetuned: number | null;
  top1Distilled: number | null;
  /** The fine-tuning runs' best validation top-1 and its epoch (0 = the model as given). */
  validation: { finetuned: { top1: number | null; epoch: number | null } | null; distilled: { top1: number | null; epoch: number | null } | null };
  /** Medians of the interleaved runs, ms per batch, and compressed ÷ original. */
  latency: { originalMs: number; compressedMs: number; ratio: number };
  seconds: { compress: number; evaluate: number; latency: number; finetune: number; distill: number; total: number };
}

export interface ResultsTable {
  schema: 'rankscope.results/2';
  model: string;
  data: string;
  epochs: number;
  options: TableOptions;
  baseline: { params: number; factorizableParams: number; macs: number | null; fileSize: number; top1: number; latencyMs: number };
  /** Why MACs are missing, when they are. */
  macsNote?: string;
  rows: TableRow[];
  /** Cut × allocation pairs no plan could reach (BUDGET_UNREACHABLE), with the reason. */
  skipped: { cut: number; allocation: Allocation; reason: string }[];
  /** Which split each figure comes from, in words (rendered under the table). */
  splits: string;
  /** What 'weighted' weighs by. */
  weighted: string;
  machine: string;
  latencyBatch: number;
  seconds: number;
}

export const DEFAULT_TABLE_OPTIONS: TableOptions = { cuts: TABLE_CUTS, allocations: [...ALLOCATIONS], methods: [...SWEEP_METHODS], latencyRuns: 20 };

const SPLITS = 'top-1 is measured on the test split (ONNX Runtime on each written file). Ranks and factors see training samples only: '
  + `the sensitivity probes run on ${PROBE_SAMPLES} training samples, the whitened calibration on ${CALIBRATION_SAMPLES}; fine-tuning trains on the `
  + 'training split less its validation subjects and keeps the epoch with the best validation top-1 (recorded per row); the test split is scored once, after.';
const WEIGHTED = "'weighted' is the energy greedy with each layer's gain weighted by 1 / (its MACs per parameter): rank is kept where it costs few MACs, cut where the layer runs often.";

/** Computes the table into DIR/results.json, printing each row as it lands with its timings. */
export async function resultsTable(ctx: Context, options: TableOptions): Promise<ResultsTable> {
  const { io, out } = ctx;
  const t0 = performance.now();
  const model = await openOnnxModel(ctx.model, { signal: io.signal });
  const spectra = await computeSpectra(model, { order: 'module', signal: io.signal, cacheDir: join(out, '.cache', 'spectra') });
  const runner = OrtRunner.create({ intraOpThreads: ctx.threads, signal: io.signal });
  const opened: Dataset[] = [];
  let original: OrtSession | undefined;
  try {
    const test = await openData(runner, ctx, 'test');
    const train = await openData(runner, ctx, 'train');
    opened.push(test, train);
    const probeSet = train.subset(Int32Array.from(selectSamples(train.size, PROBE_SAMPLES, 0)));
    opened.push(probeSet);
    original = await runner.open(ctx.model);
    const base = await evaluate(original, test, { batchSize: 64, signal: io.signal });
    const baseMacs = await measureMacs(model, { runner, dataset: test, signal: io.signal });
    const baseSize = model.summary.fileSize;
    io.out(`${basename(ctx.model)}: ${num(model.summary.totalParams)} parameters, ${baseMacs.ok ? `${num(baseMacs.total)} MACs per sample` : `MACs not measured (${baseMacs.reason})`}, test top-1 ${pct(base.metrics.top1)}`);

    const planned = await planRows(model, spectra, options, { ctx, runner, train, probeSet, macs: baseMacs });
    const env = ctx.epochs > 0 ? await findTorch(ctx) : undefined;
    if (env && !env.ok) io.out(`fine-tuning skipped: ${env.problems.map((p) => `${p.what}: ${p.fix}`).join(' ')}`);
    const latencyFeeds = (await test.batch(0, Math.min(LATENCY_BATCH, test.size), io.signal)).feeds;

    const rows: TableRow[] = [];
    const originalTimes: number[] = [];
    const total = planned.rows.length;
    for (const [i, r] of planned.rows.entries()) {
      const tr = performance.now();
      const row = await measureRow(model, r, { ctx, runner, test, original, latencyFeeds, whitening: planned.whitening, tune: env?.ok === true, latencyRuns: options.latencyRuns });
      rows.push(row);
      originalTimes.push(row.latency.originalMs);
      const elapsed = (performance.now() - tr) / 1000;
      const s = row.seconds;
      io.out(`[${i + 1}/${total}] −${Math.round(r.cut * 100)} % ${r.allocation} ${r.method}: ${num(row.params)} params, ${row.macs === null ? '— MACs' : `${num(row.macs)} MACs`}, ${kib(row.fileSize)}; `
        + `top-1 ${pct(row.top1Svd)} / fine-tuned ${pct(row.top1Finetuned)} / distilled ${pct(row.top1Distilled)}; `
        + `latency ${row.latency.originalMs.toFixed(2)} → ${row.latency.compressedMs.toFixed(2)} ms (×${row.latency.ratio.toFixed(2)})`);
      io.out(`    ${elapsed.toFixed(0)} s (compress ${s.compress.toFixed(1)}, evaluate ${s.evaluate.toFixed(1)}, latency ${s.latency.toFixed(1)}, fine-tune ${s.finetune.toFixed(0)}, distill ${s.distill.toFixed(0)}); `
        + `about ${Math.round(((performance.now() - t0) / 1000 / (i + 1)) * (total - i - 1) / 60)} min left`);
    }
    const table: ResultsTable = {
      schema: 'rankscope.results/2', model: ctx.model, data: ctx.data, epochs: env?.ok ? ctx.epochs : 0, options,
      baseline: {
        params: model.summary.totalParams, factorizableParams: model.summary.factorizableParams, macs: baseMacs.ok ? baseMacs.total : null,
        fileSize: baseSize, top1: base.metrics.top1 ?? 0, latencyMs: median(originalTimes),
      },
      ...(!baseMacs.ok && { macsNote: baseMacs.reason }),
      rows, skipped: planned.skipped, splits: SPLITS, weighted: WEIGHTED, latencyBatch: Math.min(LATENCY_BATCH, test.size),
      machine: `${process.platform} ${process.arch} (${cpus().length} cores, load average ${loadavg()[0].toFixed(1)} at the end), ONNX Runtime CPU, ${ctx.threads} thread(s)`,
      seconds: (performance.now() - t0) / 1000,
    };
    await writeFileAtomic(join(out, 'results.json'), JSON.stringify(table, null, 2), { signal: io.signal });
    return table;
  } finally {
    await original?.close().catch(() => undefined);
    for (const d of opened.reverse()) await d.close();
    await runner.dispose();
  }
}

interface PlannedRow { cut: number; allocation: Allocation; method: SweepMethod; plan: Plan }

/** Every cut × allocation plan (each used by every method), from training data only. */
async function planRows(model: OnnxModel, spectra: Awaited<ReturnType<typeof computeSpectra>>, options: TableOptions,
  env: { ctx: Context; runner: OrtRunner; train: Dataset; probeSet: Dataset; macs: MacsProfile | { ok: false; reason: string } }):
  Promise<{ rows: PlannedRow[]; skipped: ResultsTable['skipped']; whitening?: WhiteningSource }> {
  const { ctx, runner } = env;
  const { io, out } = ctx;
  const check = graphCheck(model);
  const candidates = model.layers.filter((l) => isCompressible(l) && !check(l));
  let whitening: WhiteningSource | undefined;
  if (options.methods.includes('whitened') || options.allocations.includes('whitened')) whitening = await calibrateOnTraining(model, candidates, env.train, runner, ctx);
  const plans = new Map<string, Plan>();
  const skipped: ResultsTable['skipped'] = [];
  const keep = (cut: number, allocation: Allocation, make: () => Plan) => {
    try {
      plans.set(`${allocation}:${cut}`, make());
    } catch (e) {
      if (!(e instanceof RankscopeError && e.code === 'BUDGET_UNREACHABLE')) throw e;
      skipped.push({ cut, allocation, reason: e.message });
    }
  };
  const extra: Partial<Record<Allocation, () => Promise<object>>> = {
    whitened: async () => ({ whitened: Object.fromEntries([...await whitenedSpectraOf(model, candidates, whitening!, { signal: io.signal })].map(([n, g]) => [n, g.map((x) => Array.from(x))])) }),
    weighted: async () => ({ weights: macWeights(env.macs) }),
  };
  for (const allocation of options.allocations.filter((a) => a !== 'sensitivity')) {
    const more = (await extra[allocation]?.()) ?? {};
    for (const cut of options.cuts) keep(cut, allocation, () => makePlan(model, spectra, { budget: cut, allocation, ...more }, check));
  }
  if (options.allocations.includes('sensitivity')) {
    const ts = performance.now();
    const sweep = await runSweep({ levels: options.cuts, allocations: ['sensitivity'] }, {
      model, spectra, dataset: env.probeSet, runner, batchSize: 64, latency: false, cacheDir: join(out, '.cache', 'sweep'),
      sensitivity: { samples: PROBE_SAMPLES, measure: 'kl' }, signal: io.signal,
    });
    for (const cut of options.cuts) {
      const point = sweep.points.find((p) => p.allocation === 'sensitivity' && p.level === cut);
      if (point?.plan) plans.set(`sensitivity:${cut}`, point.plan);
      else skipped.push({ cut, allocation: 'sensitivity', reason: 'no plan reaches this budget' });
    }
    io.out(`sensitivity probes: ${sweep.calibration?.probes ?? 0} on ${sweep.calibration?.samples ?? 0} training samples (${((performance.now() - ts) / 1000).toFixed(0)} s)`);
  }
  for (const s of skipped) io.out(`−${Math.round(s.cut * 100)} % ${s.allocation}: skipped (${s.reason})`);
  const rows: PlannedRow[] = [];
  for (const cut of options.cuts) {
    for (const allocation of options.allocations) {
      const plan = plans.get(`${allocation}:${cut}`);
      if (plan) for (const method of options.methods) rows.push({ cut, allocation, method, plan });
    }
  }
  return { rows, skipped, whitening };
}

/** 'weighted' allocation weights: 1 / MACs per parameter, scaled to a mean of 1 (all 1 without MACs). */
export function macWeights(macs: MacsProfile | { ok: false }): Record<string, number> {
  if (!macs.ok) return {};
  const raw = macs.layers.filter((l) => l.applications && l.applications > 0).map((l) => [l.layer, 1 / l.applications!] as const);
  const mean = raw.reduce((a, [, w]) => a + w, 0) / (raw.length || 1);
  return Object.fromEntries(raw.map(([n, w]) => [n, w / mean]));
}

async function measureRow(model: OnnxModel, r: PlannedRow, env: {
  ctx: Context; runner: OrtRunner; test: Dataset; original: OrtSession; latencyFeeds: Record<string, WireTensor>;
  whitening?: WhiteningSource; tune: boolean; latencyRuns: number;
}): Promise<TableRow> {
  const { ctx, runner, test } = env;
  const signal = ctx.io.signal;
  const file = join(ctx.out, `${basename(ctx.model, '.onnx')}.cut${Math.round(r.cut * 100)}-${r.allocation}-${r.method}.onnx`);
  let t = performance.now();
  await compressToFile(model, r.plan, file, { signal, ...(r.method === 'whitened' && { whitening: env.whitening }) });
  const compress = (performance.now() - t) / 1000;
  t = performance.now();
  const session = await runner.open(file);
  let top1Svd: number;
  let latency: TableRow['latency'];
  let evaluateSeconds: number;
  let latencySeconds: number;
  try {
    top1Svd = (await evaluate(session, test, { batchSize: 64, signal })).metrics.top1 ?? 0;
    evaluateSeconds = (performance.now() - t) / 1000;
    t = performance.now();
    const [lo, lc] = await compareLatency([env.original, session], env.latencyFeeds, { warmup: 3, runs: env.latencyRuns, rounds: env.latencyRuns });
    latency = { originalMs: lo.medianMs, compressedMs: lc.medianMs, ratio: lc.medianMs / lo.medianMs };
    latencySeconds = (performance.now() - t) / 1000;
  } finally {
    await session.close();
  }
  const macs = await measureMacs(await openOnnxModel(file, { signal }), { runner, dataset: test, signal });
  const row: TableRow = {
    cut: r.cut, allocation: r.allocation, method: r.method, layersCompressed: r.plan.totals.compressed, params: r.plan.totals.modelParamsAfter,
    macs: macs.ok ? macs.total : null, fileSize: (await stat(file)).size, top1Svd, top1Finetuned: null, top1Distilled: null,
    validation: { finetuned: null, distilled: null }, latency,
    seconds: { compress, evaluate: evaluateSeconds, latency: latencySeconds, finetune: 0, distill: 0, total: 0 },
  };
  if (env.tune) {
    for (const teacher of [undefined, ctx.model]) {
      t = performance.now();
      ctx.io.out(`  −${Math.round(r.cut * 100)} % ${r.allocation} ${r.method}: fine-tuning${teacher ? ' with distillation' : ''} (${ctx.epochs} epochs)`);
      const ft = await runFinetune(ctx, file, file.replace(/\.onnx$/, teacher ? '.distilled.onnx' : '.finetuned.onnx'), teacher);
      const tuned = await runner.open(ft.output!);
      const top1 = (await evaluate(tuned, test, { batchSize: 64, signal }).finally(() => tuned.close())).metrics.top1 ?? null;
      const val = { top1: ft.summary.valAccuracyBest, epoch: ft.summary.bestEpoch };
      if (teacher) { row.top1Distilled = top1; row.validation.distilled = val; row.seconds.distill = (performance.now() - t) / 1000; }
      else { row.top1Finetuned = top1; row.validation.finetuned = val; row.seconds.finetune = (performance.now() - t) / 1000; }
    }
  }
  row.seconds.total = row.seconds.compress + row.seconds.evaluate + row.seconds.latency + row.seconds.finetune + row.seconds.distill;
  return row;
}

function median(xs: number[]): number {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

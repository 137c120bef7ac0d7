// The trade-off sweep: for each level (a global budget × an allocation, or an energy threshold)
// make the plan, compress IN MEMORY, evaluate with ONNX Runtime and time it; mark the Pareto
// front. Points are cached on disk by (model hash, plan, data hash, settings), so a re-run or a
// resumed sweep only computes what is new. Each finished point is reported at once (the
// trade-off webview draws points as they arrive).
import { performance } from 'node:perf_hooks';
import { throwIfCancelled, RankscopeError } from '../errors';
import { applyPlan, graphCheck } from '../compress/apply';
import { makePlan, type Plan, type PlanLayer, type SpectrumLike } from '../compress/plan';
import { encodeOnnx, type OnnxModel } from '../formats/onnx';
import { hashFileContent, PointCache } from './cache';
import { FactorBank } from './factorBank';
import type { Batch, Dataset } from './dataset';
import { evaluate } from './evaluate';
import { measureLatency, type Latency, type LatencyOptions } from './latency';
import { MetricAccumulator, score, type EvalMetrics, type ScoreMetric } from './metrics';
import { paretoFront } from './pareto';
import type { OrtRunner } from './runner';
import {
  DEFAULT_FRACTIONS, probeRanks, probesOf, rowShape, sensitivityTemplate, type LayerSensitivity, type SensitivityOptions,
} from './sensitivity';
import { denseParams, factoredParams } from '../compress/policy';

/** The budget allocations a sweep compares ('weighted' needs weights a sweep does not have). */
export const SWEEP_ALLOCATIONS = ['energy', 'uniform', 'sensitivity'] as const;
export type SweepAllocation = (typeof SWEEP_ALLOCATIONS)[number];

export interface SweepSpec {
  /** Global budgets: fraction of the selected layers' parameters to remove. */
  levels?: number[];
  /** Energy thresholds: each layer keeps the smallest rank with this energy. */
  energies?: number[];
  /** For budgets; default ['energy']. */
  allocations?: SweepAllocation[];
  /** Layer names or globs (default: every factorizable layer). */
  layers?: string[];
}

export interface SweepPoint {
  id: string;
  kind: 'original' | 'budget' | 'energy';
  /** The budget or energy threshold (1 for the original). */
  level: number;
  allocation?: SweepAllocation;
  label: string;
  /** All parameters of the model. */
  params: number;
  /** Encoded ONNX bytes (the original: its file size). */
  fileSize: number;
  metrics: EvalMetrics;
  /** The sweep's metric (higher is better; 'kl' is −KL). */
  score: number;
  latency?: Latency;
  /** Compressed layers and their ranks. */
  ranks: Record<string, number>;
  /** The plan this point measured (none for the original). `makePlan(model, spectra, plan.request)`
   *  reproduces it: apply it to write this point's model. */
  plan?: Plan;
  layersCompressed: number;
  /** Seconds spent, when computed (not cached). */
  seconds: { compress: number; evaluate: number; latency: number };
  cached: boolean;
  pareto: boolean;
}

export interface SweepProgress {
  done: number;
  total: number;
  message: string;
}

export interface SweepOptions {
  model: OnnxModel;
  spectra: SpectrumLike[];
  dataset: Dataset;
  runner: OrtRunner;
  metric?: ScoreMetric;
  batchSize?: number;
  output?: string;
  latency?: LatencyOptions | false;
  /** Folder for cached points; none = no cache. */
  cacheDir?: string;
  sensitivity?: SensitivityOptions;
  /** Worker threads for the one-time factorization (default: one per core). */
  factorThreads?: number;
  signal?: AbortSignal;
  onPoint?: (point: SweepPoint) => void;
  onProgress?: (progress: SweepProgress) => void;
}

export interface SweepResult {
  model: string;
  data: string;
  metric: ScoreMetric;
  samples: number;
  original: SweepPoint;
  points: SweepPoint[];
  /** Ids of the Pareto-optimal points (params vs score), the original included. */
  front: string[];
  sensitivity?: LayerSensitivity[];
  /** Wall time split (seconds): compression (the one-time factorization + per point apply + encode), evaluation, latency, sensitivity probes. */
  timing: { total: number; compress: number; evaluate: number; latency: number; sensitivity: number; cachedPoints: number };
}

const CACHE_VERSION = 1;

export async function runSweep(spec: SweepSpec, o: SweepOptions): Promise<SweepResult> {
  const t0 = performance.now();
  const levels = spec.levels ?? [];
  const energies = spec.energies ?? [];
  const allocations = spec.allocations ?? ['energy'];
  if (levels.length === 0 && energies.length === 0) throw new RankscopeError('BAD_ARGUMENT', 'a sweep needs levels (budgets) or energies.', 'e.g. --levels 0.1,0.2,0.3,0.5 or --energies 0.9,0.95,0.99');
  for (const l of levels) if (!(l > 0 && l < 1)) throw new RankscopeError('BAD_ARGUMENT', `budget level ${l} is not in (0, 1).`, 'A level is the fraction of parameters to remove: 0.3 = 30 %.');
  for (const e of energies) if (!(e > 0 && e <= 1)) throw new RankscopeError('BAD_ARGUMENT', `energy ${e} is not in (0, 1].`);
  for (const a of allocations) if (!SWEEP_ALLOCATIONS.includes(a)) throw new RankscopeError('BAD_ARGUMENT', `allocation must be ${SWEEP_ALLOCATIONS.join(', ')}; got '${a}'.`);
  const { model, dataset, runner, signal } = o;
  const metric: ScoreMetric = o.metric ?? (dataset.hasLabels ? 'top1' : 'agreement');
  if ((metric === 'top1' || metric === 'top5') && !dataset.hasLabels) {
    throw new RankscopeError('BAD_ARGUMENT', `metric ${metric} needs labels, and ${dataset.spec.data} has none.`, 'Name the labels array (--labels KEY) or use --metric agreement / kl.');
  }
  const batchSize = o.batchSize ?? 32;
  const latencyOptions = o.latency === false ? undefined : { warmup: 3, runs: 10, ...(o.latency ?? {}) };
  const cache = new PointCache(o.cacheDir);
  const timing = { total: 0, compress: 0, evaluate: 0, latency: 0, sensitivity: 0, cachedPoints: 0 };
  const total = 1 + levels.length * allocations.length + energies.length;
  let done = 0;
  const progress = (message: string) => o.onProgress?.({ done, total, message });

  progress('hashing model and data');
  const [modelHash, dataHash] = await Promise.all([hashFileContent(model.summary.path, signal), dataset.hash(signal)]);
  const settings = { v: CACHE_VERSION, model: modelHash, data: dataHash, output: o.output ?? null, ep: runner.options.ep, batchSize, latency: latencyOptions ?? null };
  const check = graphCheck(model);
  let latencyBatch: Batch | undefined;
  const firstBatch = async () => (latencyBatch ??= await dataset.batch(0, Math.min(batchSize, dataset.size), signal));

  // The original: reference outputs for fidelity, and the baseline point.
  progress('evaluating the original model');
  const originalKey = PointCache.key({ ...settings, original: true });
  let original = await cache.get<SweepPoint>(originalKey);
  let reference = original ? await cache.getFloats(originalKey) : undefined;
  if (!original || !reference) {
    const session = await runner.open(model.summary.path, model.summary.path);
    const te = performance.now();
    const r = await evaluate(session, dataset, { batchSize, output: o.output, keepOutputs: true, signal });
    const evalSeconds = (performance.now() - te) / 1000;
    const tl = performance.now();
    const latency = latencyOptions ? await measureLatency(session, (await firstBatch()).feeds, latencyOptions) : undefined;
    const latencySeconds = (performance.now() - tl) / 1000;
    await session.close();
    timing.evaluate += evalSeconds;
    timing.latency += latencySeconds;
    reference = r.outputs!;
    original = {
      id: 'original', kind: 'original', level: 1, label: 'original', params: model.summary.totalParams, fileSize: model.summary.fileSize,
      // Fidelity of the original to itself, so 'agreement' and 'kl' sweeps have a baseline too.
      metrics: { ...r.metrics, agreement: 1, relativeError: 0, meanKL: 0 }, score: 0, latency, ranks: {}, layersCompressed: 0, seconds: { compress: 0, evaluate: evalSeconds, latency: latencySeconds }, cached: false, pareto: false,
    };
    await cache.put(originalKey, original);
    await cache.putFloats(originalKey, reference);
  } else {
    original = { ...original, cached: true };
    timing.cachedPoints++;
  }
  original.score = scoreOf(original.metrics, metric);
  done++;
  o.onPoint?.(original);

  const bank = new FactorBank(model, signal, o.factorThreads);
  interface Job { id: string; label: string; kind: SweepPoint['kind']; level: number; allocation?: SweepAllocation; plan: Plan; key: string; samples?: number; cached?: SweepPoint }
  const job = async (plan: Plan, id: string, label: string, kind: SweepPoint['kind'], level: number, allocation: SweepAllocation | undefined, samples?: number): Promise<Job> => {
    const active = plan.layers.filter((r) => !r.skipped);
    const key = PointCache.key({ ...settings, samples: samples ?? null, latency: samples ? null : settings.latency, plan: active.map((r) => [r.layer, r.k, r.weightHash]) });
    return { id, label, kind, level, allocation, plan, key, samples, cached: await cache.get<SweepPoint>(key) };
  };
  /** Factorizes, once, what the jobs not in the cache need. */
  const prepare = async (jobs: Job[]) => {
    const missing = jobs.filter((j) => !j.cached).map((j) => j.plan);
    if (missing.length === 0) return;
    progress(`factorizing the layers once for ${missing.length} point${missing.length > 1 ? 's' : ''}`);
    const before = bank.seconds;
    await bank.ensure(missing);
    timing.compress += bank.seconds - before;
  };
  /** Evaluates one job (or takes it from the cache). */
  const runJob = async (j: Job): Promise<SweepPoint> => {
    const active = j.plan.layers.filter((r) => !r.skipped);
    const ranks = Object.fromEntries(active.map((r) => [r.layer, r.k]));
    if (j.cached) {
      timing.cachedPoints++;
      return { ...j.cached, id: j.id, label: j.label, kind: j.kind, level: j.level, allocation: j.allocation, plan: j.plan, score: scoreOf(j.cached.metrics, metric), cached: true, pareto: false };
    }
    throwIfCancelled(signal);
    const tc = performance.now();
    const bytes = encodeOnnx(applyPlan(model, j.plan, { signal, factors: bank.factorsFor(j.plan) }));
    const compressSeconds = (performance.now() - tc) / 1000;
    const te = performance.now();
    const session = await runner.open(bytes, j.label);
    let point: SweepPoint;
    try {
      const r = await evaluate(session, dataset, { batchSize, output: o.output, reference, samples: j.samples, signal });
      const evalSeconds = (performance.now() - te) / 1000;
      const tl = performance.now();
      const latency = latencyOptions && !j.samples ? await measureLatency(session, (await firstBatch()).feeds, latencyOptions) : undefined;
      const latencySeconds = (performance.now() - tl) / 1000;
      point = {
        id: j.id, kind: j.kind, level: j.level, allocation: j.allocation, label: j.label, params: j.plan.totals.modelParamsAfter, fileSize: bytes.length, metrics: r.metrics,
        score: scoreOf(r.metrics, metric), latency, ranks, plan: j.plan, layersCompressed: active.length,
        seconds: { compress: compressSeconds, evaluate: evalSeconds, latency: latencySeconds }, cached: false, pareto: false,
      };
    } finally {
      await session.close().catch(() => undefined);
    }
    timing.compress += compressSeconds;
    timing.evaluate += point.seconds.evaluate;
    timing.latency += point.seconds.latency;
    // The plan is not cached: the key is made from it, and the job has it.
    await cache.put(j.key, { ...point, plan: undefined });
    return point;
  };

  // Sensitivity probes, once, when a sensitivity point needs them.
  let sensitivity: LayerSensitivity[] | undefined;
  const measureSensitivity = async (): Promise<LayerSensitivity[]> => {
    const ts = performance.now();
    const before = { ...timing };
    const template = sensitivityTemplate(model, o.spectra, spec.layers, check);
    const fractions = o.sensitivity?.fractions ?? DEFAULT_FRACTIONS;
    const samples = Math.min(o.sensitivity?.samples ?? 512, dataset.size);
    const measure = o.sensitivity?.measure ?? 'kl';
    // The original's score on the same calibration subset, from its kept outputs.
    let baseScore = 1;
    if (measure === 'top1' || measure === 'top5') {
      const labels = await dataset.allLabels(signal);
      if (!labels) throw new RankscopeError('BAD_ARGUMENT', `sensitivity measure ${measure} needs labels.`, 'Use --sensitivity-measure kl or agreement.');
      const acc = new MetricAccumulator(original!.metrics.classes);
      acc.add(reference!, samples, labels.subarray(0, samples));
      baseScore = acc.result()[measure]!;
    }
    const rows = template.layers.filter((r) => !r.skipped);
    const probes: { row: PlanLayer; k: number; job: Job }[] = [];
    for (const row of rows) {
      for (const k of probeRanks(rowShape(row), fractions)) {
        const plan = makePlan(model, o.spectra, { rank: k, layers: [row.layer] }, check);
        probes.push({ row, k, job: await job(plan, `probe:${row.layer}:${k}`, `${row.layer} @ ${k}`, 'budget', 0, 'sensitivity', samples) });
      }
    }
    await prepare(probes.map((p) => p.job));
    const result: LayerSensitivity[] = rows.map((row) => ({ layer: row.layer, shape: row.shape, groups: row.groups, denseParams: denseParams(rowShape(row)), probes: [] }));
    for (const [i, p] of probes.entries()) {
      progress(`sensitivity: ${p.row.layer} at rank ${p.k} (${i + 1}/${probes.length})`);
      const point = await runJob(p.job);
      const loss = measure === 'kl' ? point.metrics.meanKL ?? 0 : baseScore - (point.metrics[measure] ?? 0);
      result.find((r) => r.layer === p.row.layer)!.probes.push({ k: p.k, params: factoredParams(rowShape(p.row), p.k), loss });
    }
    // Probe time is reported as its own share, not as compression/evaluation of sweep points.
    timing.compress = before.compress;
    timing.evaluate = before.evaluate;
    timing.sensitivity += (performance.now() - ts) / 1000;
    return result;
  };

  // Plans for every point (cheap), then the factors they need (once), then evaluation point by point.
  const jobs: Job[] = [];
  const pct = (x: number) => `${+(x * 100).toFixed(1)} %`;
  for (const level of [...levels].sort((a, b) => a - b)) {
    for (const allocation of allocations) {
      throwIfCancelled(signal);
      const label = `${allocation} −${pct(level)}`;
      let plan: Plan;
      try {
        if (allocation === 'sensitivity') sensitivity ??= await measureSensitivity();
        const probes = allocation === 'sensitivity' ? { probes: probesOf(sensitivity!) } : {};
        plan = makePlan(model, o.spectra, { budget: level, allocation, ...probes, layers: spec.layers }, check);
      } catch (e) {
        // An unreachable budget skips this point, not the sweep.
        if (e instanceof RankscopeError && e.code === 'BUDGET_UNREACHABLE') {
          progress(`${label}: skipped (${e.message})`);
          done++;
          continue;
        }
        throw e;
      }
      jobs.push(await job(plan, `${allocation}:${level}`, label, 'budget', level, allocation));
    }
  }
  for (const energy of [...energies].sort((a, b) => b - a)) {
    const plan = makePlan(model, o.spectra, { energy, layers: spec.layers }, check);
    jobs.push(await job(plan, `energy:${energy}`, `energy ${pct(energy)}`, 'energy', energy, undefined));
  }
  await prepare(jobs);
  const points: SweepPoint[] = [];
  for (const j of jobs) {
    progress(`${j.label}: ${j.cached ? 'from the cache' : 'compressing and evaluating'}`);
    const p = await runJob(j);
    points.push(p);
    done++;
    o.onPoint?.(p);
  }
  const front = paretoFront([original, ...points], (p) => p.params, (p) => p.score);
  for (const p of front) p.pareto = true;
  timing.total = (performance.now() - t0) / 1000;
  progress('done');
  return {
    model: model.summary.path, data: dataset.spec.data, metric, samples: dataset.size, original, points,
    front: front.map((p) => p.id), sensitivity, timing,
  };
}

function scoreOf(m: EvalMetrics, metric: ScoreMetric): number {
  return score(m, metric) ?? Number.NaN;
}

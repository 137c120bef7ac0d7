// The trade-off sweep: for each level (a global budget × an allocation, or an energy threshold)
// make the plan, compress IN MEMORY, evaluate with ONNX Runtime and time it; mark the Pareto
// front. Points are cached on disk by (model hash, plan, data hash, settings), so a re-run or a
// resumed sweep only computes what is new. Each finished point is reported at once (the
// trade-off webview draws points as they arrive), the cheap ones first: the sensitivity probes
// (many small evaluations on a calibration subset) run after every point that does not need them.
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { throwIfCancelled, RankscopeError } from '../errors';
import { applyPlan, graphCheck, whitenedSpectraOf, type WhiteningSource } from '../compress/apply';
import { makePlan, type Plan, type PlanLayer, type SpectrumLike } from '../compress/plan';
import { isSweepAllocation, SWEEP_ALLOCATIONS, SWEEP_METHODS, type SweepAllocation, type SweepMethod } from '../compress/budget';
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
  calibrationIndices, collapseProbeRanks, DEFAULT_CALIBRATION_SAMPLES, DEFAULT_CALIBRATION_SEED, DEFAULT_ENERGY_EPSILON, DEFAULT_FRACTIONS,
  probeRanks, probesOf, rowShape, sensitivityTemplate, type LayerSensitivity, type SensitivityOptions,
} from './sensitivity';
import { denseParams, factoredParams } from '../compress/policy';
import type { Model } from '../model/types';

export { SWEEP_ALLOCATIONS, type SweepAllocation } from '../compress/budget';

export interface SweepSpec {
  /** Global budgets: fraction of the selected layers' parameters to remove. */
  levels?: number[];
  /** Energy thresholds: each layer keeps the smallest rank with this energy. */
  energies?: number[];
  /** For budgets; default ['energy']. */
  allocations?: SweepAllocation[];
  /** Layer names or globs (default: every factorizable layer). */
  layers?: string[];
  /** Factorization methods compared at every level (default ['svd']); 'whitened' needs SweepOptions.whitening. */
  methods?: SweepMethod[];
}

export { SWEEP_METHODS, type SweepMethod } from '../compress/budget';

export interface SweepPoint {
  id: string;
  kind: 'original' | 'budget' | 'energy';
  /** The budget or energy threshold (1 for the original). */
  level: number;
  allocation?: SweepAllocation;
  /** How the factors were made (points of a sweep with methods; absent: plain SVD). */
  method?: SweepMethod;
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
  /** Points finished (or skipped) out of all the sweep's points, the original included. */
  done: number;
  total: number;
  message: string;
  /** A stage inside the sweep with its own count (the sensitivity probes), while it runs. */
  stage?: SweepStage;
}

export interface SweepStage {
  id: 'probes';
  /** e.g. "sensitivity probes on 256 of 405 samples". */
  label: string;
  done: number;
  total: number;
}

/** The one-line text of a progress report (the CLI's status line, the extension's notification):
 *  `[6/13] sensitivity probes on 256 of 405 samples 12/45: fc1 at rank 8`. */
export function progressText(p: Pick<SweepProgress, 'done' | 'total' | 'message'> & { stage?: Omit<SweepStage, 'id'> }): string {
  return `[${p.done}/${p.total}] ${p.stage ? `${p.stage.label} ${p.stage.done}/${p.stage.total}: ` : ''}${p.message}`;
}

/** How the sensitivity probes ran: the calibration subset and how many probes were measured. */
export interface Calibration {
  /** Samples the probes ran on, drawn from `of` with `seed` (all of them when samples = of). */
  samples: number;
  of: number;
  seed: number;
  measure: NonNullable<SensitivityOptions['measure']>;
  /** Probe ranks measured, and those that took a lower rank's loss (kept energy within `energyEpsilon`). */
  probes: number;
  inferred: number;
  energyEpsilon: number;
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
  /** The calibration the 'whitened' method and allocation use (eval/calibration.ts). */
  whitening?: WhiteningSource;
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
  /** How the probes ran, when an allocation needed them. */
  calibration?: Calibration;
  /** Wall time split (seconds): compression (the one-time factorization + per point apply + encode), evaluation, latency, sensitivity probes. */
  timing: { total: number; compress: number; evaluate: number; latency: number; sensitivity: number; cachedPoints: number };
}

const CACHE_VERSION = 1;

/**
 * The sweep, in order: check the request, evaluate the original (reference outputs and the
 * baseline), plan the points that need no probes (and the probes, when an allocation needs
 * them), factorize once what the plans need, evaluate those points; then the probes, then the
 * sensitivity points planned from them; mark the Pareto front.
 */
export async function runSweep(spec: SweepSpec, o: SweepOptions): Promise<SweepResult> {
  const t0 = performance.now();
  const request = checkRequest(spec, o);
  const progress = new Progress(1 + (request.levels.length * request.allocations.length + request.energies.length) * request.methods.length, o.onProgress);
  const points = await PointEvaluator.create(o, request.metric, progress);
  try {
    const original = await points.original();
    progress.advance();
    o.onPoint?.(original);

    const measured: SweepPoint[] = [];
    const runJobs = async (jobs: Job[]) => {
      for (const j of jobs) {
        progress.report(`${j.label}: ${j.cached ? 'from the cache' : 'compressing and evaluating'}`);
        const p = await points.run(j);
        measured.push(p);
        progress.advance();
        o.onPoint?.(p);
      }
    };
    const cheap = await planPoints(spec, request, points, o, progress);
    const needProbes = request.allocations.includes('sensitivity') && request.levels.length > 0;
    const probes = needProbes ? await planProbes(spec, points, o) : undefined;
    await points.factorize([...cheap, ...(probes?.jobs ?? [])]);
    await runJobs(cheap);
    let sensitivity: LayerSensitivity[] | undefined;
    let calibration: Calibration | undefined;
    if (probes) {
      ({ sensitivity, calibration } = await measureSensitivity(probes, points, o, progress));
      const jobs = await planSensitivityPoints(spec, request, sensitivity, points, o, progress);
      await points.factorize(jobs);
      await runJobs(jobs);
    }
    const front = paretoFront([original, ...measured], (p) => p.params, (p) => p.score);
    for (const p of front) p.pareto = true;
    points.timing.total = (performance.now() - t0) / 1000;
    progress.report('done');
    return {
      model: o.model.summary.path, data: o.dataset.spec.data, metric: request.metric, samples: o.dataset.size, original, points: measured,
      front: front.map((p) => p.id), sensitivity, calibration, timing: points.timing,
    };
  } finally {
    await points.close();
  }
}

interface CheckedRequest {
  levels: number[];
  energies: number[];
  allocations: SweepAllocation[];
  methods: SweepMethod[];
  metric: ScoreMetric;
}

/** The sweep's levels, energies, allocations and metric, validated (BAD_ARGUMENT naming the problem). */
function checkRequest(spec: SweepSpec, o: SweepOptions): CheckedRequest {
  const levels = spec.levels ?? [];
  const energies = spec.energies ?? [];
  const allocations = spec.allocations ?? ['energy'];
  if (levels.length === 0 && energies.length === 0) throw new RankscopeError('BAD_ARGUMENT', 'a sweep needs levels (budgets) or energies.', 'e.g. --levels 0.1,0.2,0.3,0.5 or --energies 0.9,0.95,0.99');
  for (const l of levels) if (!(l > 0 && l < 1)) throw new RankscopeError('BAD_ARGUMENT', `budget level ${l} is not in (0, 1).`, 'A level is the fraction of parameters to remove: 0.3 = 30 %.');
  for (const e of energies) if (!(e > 0 && e <= 1)) throw new RankscopeError('BAD_ARGUMENT', `energy ${e} is not in (0, 1].`);
  for (const a of allocations) if (!isSweepAllocation(a)) throw new RankscopeError('BAD_ARGUMENT', `allocation must be ${SWEEP_ALLOCATIONS.join(', ')}; got '${a}'.`);
  const metric: ScoreMetric = o.metric ?? (o.dataset.hasLabels ? 'top1' : 'agreement');
  if ((metric === 'top1' || metric === 'top5') && !o.dataset.hasLabels) {
    throw new RankscopeError('BAD_ARGUMENT', `metric ${metric} needs labels, and ${o.dataset.spec.data} has none.`, 'Name the labels array (--labels KEY) or use --metric agreement / kl.');
  }
  const methods = spec.methods ?? ['svd'];
  for (const m of methods) if (!SWEEP_METHODS.includes(m)) throw new RankscopeError('BAD_ARGUMENT', `method must be ${SWEEP_METHODS.join(', ')}; got '${m}'.`);
  if ((methods.includes('whitened') || allocations.includes('whitened')) && !o.whitening) {
    throw new RankscopeError('BAD_ARGUMENT', 'the whitened method and allocation need a calibration of the model on data.', 'rankscope sweep … --methods svd,whitened calibrates on --data (or --calibration D.npz).');
  }
  return { levels, energies, allocations, methods, metric };
}

/** Points done out of the total, for onProgress. */
class Progress {
  private done = 0;

  constructor(private readonly total: number, private readonly onProgress?: (p: SweepProgress) => void) {}

  report(message: string, stage?: SweepStage): void {
    this.onProgress?.({ done: this.done, total: this.total, message, ...(stage && { stage }) });
  }

  /** One point (or a skipped one) finished. */
  advance(): void {
    this.done++;
  }
}

/** One point to measure: its plan, and the cached result when there is one. */
interface Job {
  id: string;
  label: string;
  kind: SweepPoint['kind'];
  level: number;
  allocation?: SweepAllocation;
  method?: SweepMethod;
  plan: Plan;
  key: string;
  /** Score on the calibration subset, and skip latency (a sensitivity probe). */
  probe?: boolean;
  cached?: SweepPoint;
}

type JobInfo = Pick<Job, 'id' | 'label' | 'kind' | 'level' | 'allocation' | 'probe' | 'method'>;

/** The calibration subset: a view of the data, the original's outputs and labels on it. */
interface CalibrationSet {
  dataset: Dataset;
  reference: Float32Array;
  samples: number;
  seed: number;
}

/**
 * What every point shares: the model, data and runner, the cache and its settings, the
 * original's reference outputs, the factors computed once, and the time accounts.
 */
class PointEvaluator {
  readonly timing = { total: 0, compress: 0, evaluate: 0, latency: 0, sensitivity: 0, cachedPoints: 0 };
  readonly check: ReturnType<typeof graphCheck>;
  private readonly cache: PointCache;
  /** Factors per method: plain SVD, and whitened when the sweep has a calibration. */
  private readonly banks = new Map<SweepMethod, FactorBank>();
  private readonly batchSize: number;
  private readonly latency?: LatencyOptions;
  private latencyBatch?: Batch;
  /** The original's outputs over the whole dataset (fidelity metrics compare against them). */
  private reference?: Float32Array;
  private originalPoint?: SweepPoint;
  private calibrationSet?: CalibrationSet;

  private constructor(readonly o: SweepOptions, readonly metric: ScoreMetric, private readonly progress: Progress, private readonly settings: Record<string, unknown>) {
    this.cache = new PointCache(o.cacheDir);
    this.banks.set('svd', new FactorBank(o.model, o.signal, o.factorThreads));
    if (o.whitening) this.banks.set('whitened', new FactorBank(o.model, o.signal, o.factorThreads, o.whitening));
    this.check = graphCheck(o.model);
    this.batchSize = o.batchSize ?? 32;
    this.latency = latencyOptions(o);
  }

  static async create(o: SweepOptions, metric: ScoreMetric, progress: Progress): Promise<PointEvaluator> {
    progress.report('hashing model and data');
    const [modelHash, dataHash] = await Promise.all([hashFileContent(o.model.summary.path, o.signal), o.dataset.hash(o.signal)]);
    const settings = {
      v: CACHE_VERSION, model: modelHash, data: dataHash, output: o.output ?? null, ep: o.runner.options.ep,
      batchSize: o.batchSize ?? 32, latency: latencyOptions(o) ?? null,
    };
    return new PointEvaluator(o, metric, progress, settings);
  }

  /** The baseline point and the reference outputs (from the cache when there). */
  async original(): Promise<SweepPoint> {
    const { model, dataset, runner, signal } = this.o;
    this.progress.report('evaluating the original model');
    const key = PointCache.key({ ...this.settings, original: true });
    let original = await this.cache.get<SweepPoint>(key);
    this.reference = original ? await this.cache.getFloats(key) : undefined;
    if (!original || !this.reference) {
      const session = await runner.open(model.summary.path, model.summary.path);
      const te = performance.now();
      const r = await evaluate(session, dataset, { batchSize: this.batchSize, output: this.o.output, keepOutputs: true, signal });
      const evalSeconds = (performance.now() - te) / 1000;
      const tl = performance.now();
      const latency = this.latency ? await measureLatency(session, (await this.firstBatch()).feeds, this.latency) : undefined;
      const latencySeconds = (performance.now() - tl) / 1000;
      await session.close();
      this.timing.evaluate += evalSeconds;
      this.timing.latency += latencySeconds;
      this.reference = r.outputs!;
      original = {
        id: 'original', kind: 'original', level: 1, label: baselineLabel(model), params: model.summary.totalParams, fileSize: model.summary.fileSize,
        // Fidelity of the original to itself, so 'agreement' and 'kl' sweeps have a baseline too.
        metrics: { ...r.metrics, agreement: 1, relativeError: 0, meanKL: 0 }, score: 0, latency, ranks: {}, layersCompressed: 0, seconds: { compress: 0, evaluate: evalSeconds, latency: latencySeconds }, cached: false, pareto: false,
      };
      await this.cache.put(key, original);
      await this.cache.putFloats(key, this.reference);
    } else {
      original = { ...original, cached: true };
      this.timing.cachedPoints++;
    }
    original.score = scoreOf(original.metrics, this.metric);
    this.originalPoint = original;
    return original;
  }

  /** The calibration subset the probes run on (call original() first): `samples` drawn with `seed`. */
  calibration(): CalibrationSet {
    if (this.calibrationSet) return this.calibrationSet;
    const { dataset, sensitivity } = this.o;
    const samples = Math.min(sensitivity?.samples ?? DEFAULT_CALIBRATION_SAMPLES, dataset.size);
    const seed = sensitivity?.seed ?? DEFAULT_CALIBRATION_SEED;
    const indices = calibrationIndices(dataset.size, samples, seed);
    const perSample = this.reference!.length / dataset.size;
    const reference = new Float32Array(samples * perSample);
    indices.forEach((row, i) => reference.set(this.reference!.subarray(row * perSample, (row + 1) * perSample), i * perSample));
    this.calibrationSet = { dataset: samples === dataset.size ? dataset : dataset.subset(indices), reference, samples, seed };
    return this.calibrationSet;
  }

  /** The original's score on the calibration subset, from its kept outputs. */
  async originalScoreOnCalibration(measure: 'top1' | 'top5'): Promise<number> {
    const c = this.calibration();
    const labels = await c.dataset.allLabels(this.o.signal);
    if (!labels) throw new RankscopeError('BAD_ARGUMENT', `sensitivity measure ${measure} needs labels.`, 'Use --sensitivity-measure kl or agreement.');
    const acc = new MetricAccumulator(this.originalPoint!.metrics.classes);
    acc.add(c.reference, c.samples, labels.subarray(0, c.samples));
    return acc.result()[measure]!;
  }

  /** A job for `plan`, with its cache key and cached result. */
  async job(plan: Plan, info: JobInfo): Promise<Job> {
    const active = plan.layers.filter((r) => !r.skipped);
    const c = info.probe ? this.calibration() : undefined;
    // Plain SVD points keep the key they always had; whitened ones add the method and calibration.
    const whitened = info.method === 'whitened' ? { method: 'whitened', calibration: this.o.whitening!.calibration.hash, jitter: this.o.whitening!.jitter ?? null, embeddings: this.o.whitening!.embeddings ?? 'uniform' } : {};
    const key = PointCache.key({ ...this.settings, ...whitened, samples: c ? { n: c.samples, seed: c.seed } : null, latency: c ? null : this.settings.latency, plan: active.map((r) => [r.layer, r.k, r.weightHash]) });
    return { ...info, plan, key, cached: await this.cache.get<SweepPoint>(key) };
  }

  /** Closes what the evaluator opened (the calibration subset's view). */
  async close(): Promise<void> {
    if (this.calibrationSet && this.calibrationSet.dataset !== this.o.dataset) await this.calibrationSet.dataset.close();
  }

  /** Factorizes, once, what the jobs not in the cache need (points and probes alike). */
  async factorize(jobs: Job[]): Promise<void> {
    for (const [method, bank] of this.banks) {
      const missing = jobs.filter((j) => !j.cached && (j.method ?? 'svd') === method).map((j) => j.plan);
      if (missing.length === 0) continue;
      this.progress.report(`factorizing the layers once (${method}) for ${missing.length} point${missing.length > 1 ? 's' : ''} and probe${missing.length > 1 ? 's' : ''}`);
      const before = bank.seconds;
      await bank.ensure(missing);
      this.timing.compress += bank.seconds - before;
    }
  }

  /** Compresses in memory, evaluates and times one job (or takes it from the cache). Probe time is not point time. */
  async run(j: Job): Promise<SweepPoint> {
    const { model, dataset, runner, signal } = this.o;
    const active = j.plan.layers.filter((r) => !r.skipped);
    const ranks = Object.fromEntries(active.map((r) => [r.layer, r.k]));
    if (j.cached) {
      this.timing.cachedPoints++;
      return { ...j.cached, id: j.id, label: j.label, kind: j.kind, level: j.level, allocation: j.allocation, ...(j.method && { method: j.method }), plan: j.plan, score: scoreOf(j.cached.metrics, this.metric), cached: true, pareto: false };
    }
    throwIfCancelled(signal);
    const tc = performance.now();
    const method = j.method ?? 'svd';
    const bytes = encodeOnnx(applyPlan(model, j.plan, { signal, factors: this.banks.get(method)!.factorsFor(j.plan), ...(method === 'whitened' && { whitening: this.o.whitening }) }));
    const compressSeconds = (performance.now() - tc) / 1000;
    const te = performance.now();
    const session = await runner.open(bytes, j.label);
    const on = j.probe ? this.calibration() : { dataset, reference: this.reference };
    let point: SweepPoint;
    try {
      const r = await evaluate(session, on.dataset, { batchSize: this.batchSize, output: this.o.output, reference: on.reference, signal });
      const evalSeconds = (performance.now() - te) / 1000;
      const tl = performance.now();
      const latency = this.latency && !j.probe ? await measureLatency(session, (await this.firstBatch()).feeds, this.latency) : undefined;
      const latencySeconds = (performance.now() - tl) / 1000;
      point = {
        id: j.id, kind: j.kind, level: j.level, allocation: j.allocation, ...(j.method && { method: j.method }), label: j.label, params: j.plan.totals.modelParamsAfter, fileSize: bytes.length, metrics: r.metrics,
        score: scoreOf(r.metrics, this.metric), latency, ranks, plan: j.plan, layersCompressed: active.length,
        seconds: { compress: compressSeconds, evaluate: evalSeconds, latency: latencySeconds }, cached: false, pareto: false,
      };
    } finally {
      await session.close().catch(() => undefined);
    }
    if (!j.probe) {
      this.timing.compress += compressSeconds;
      this.timing.evaluate += point.seconds.evaluate;
      this.timing.latency += point.seconds.latency;
    }
    // The plan is not cached: the key is made from it, and the job has it.
    await this.cache.put(j.key, { ...point, plan: undefined });
    return point;
  }

  private async firstBatch(): Promise<Batch> {
    return (this.latencyBatch ??= await this.o.dataset.batch(0, Math.min(this.batchSize, this.o.dataset.size), this.o.signal));
  }
}

/** 'original', or what the swept model is when it is not: a model with factorized layers already. */
export function baselineLabel(model: Model): string {
  const n = model.layers.filter((l) => l.compressed).length;
  return n === 0 ? 'original' : `baseline (already compressed: ${n} layer${n === 1 ? '' : 's'})`;
}

/** A model a sweep can start from, and why it is offered. */
export interface SweepModelChoice {
  path: string;
  why: 'given' | 'task' | 'recorded original' | 'open';
}

/**
 * The models a sweep of the open model could start from, the one to follow first: the task
 * file's `model`, the original(s) an already-compressed open model records in its metadata
 * (the files its factorized layers came from), then the open model itself. Paths compared resolved.
 */
export function sweepModelChoices(open: { path: string; model: Model }, taskModel?: string, exists: (path: string) => boolean = () => true): SweepModelChoice[] {
  const choices: SweepModelChoice[] = [];
  const add = (path: string, why: SweepModelChoice['why']) => {
    const abs = resolve(path);
    if (!choices.some((c) => c.path === abs) && (why === 'open' || exists(abs))) choices.push({ path: abs, why });
  };
  if (taskModel) add(taskModel, 'task');
  for (const l of open.model.layers) if (l.compressed?.sourceFile) add(l.compressed.sourceFile, 'recorded original');
  add(open.path, 'open');
  return choices;
}

function latencyOptions(o: SweepOptions): LatencyOptions | undefined {
  return o.latency === false ? undefined : { warmup: 3, runs: 10, ...(o.latency ?? {}) };
}

const pct = (x: number) => `${+(x * 100).toFixed(1)} %`;

/** A budget point's plan, or undefined (reported, counted) when no allocation reaches the budget. */
function budgetPlan(spec: SweepSpec, level: number, allocation: SweepAllocation, extra: { probes?: ReturnType<typeof probesOf>; whitened?: Record<string, number[][]> }, points: PointEvaluator, o: SweepOptions, progress: Progress): Plan | undefined {
  try {
    return makePlan(o.model, o.spectra, { budget: level, allocation, ...extra, layers: spec.layers }, points.check);
  } catch (e) {
    if (!(e instanceof RankscopeError && e.code === 'BUDGET_UNREACHABLE')) throw e;
    progress.report(`${allocation} −${pct(level)}: skipped (${e.message})`);
    progress.advance();
    return undefined;
  }
}

/**
 * The points that need no probes (cheap to plan and to measure): budgets × the energy and
 * uniform allocations, smallest budget first, then energy thresholds, largest first. A budget
 * no allocation can reach skips that point, not the sweep.
 */
async function planPoints(spec: SweepSpec, request: CheckedRequest, points: PointEvaluator, o: SweepOptions, progress: Progress): Promise<Job[]> {
  const jobs: Job[] = [];
  // The whitened allocation's per-layer output-error spectra come from the calibration (no evaluation).
  const whitened = request.allocations.includes('whitened') && request.levels.length ? await whitenedSpectraFor(spec, points, o) : undefined;
  for (const level of [...request.levels].sort((a, b) => a - b)) {
    for (const allocation of request.allocations.filter((a) => a !== 'sensitivity')) {
      for (const method of request.methods) {
        throwIfCancelled(o.signal);
        const plan = budgetPlan(spec, level, allocation, allocation === 'whitened' ? { whitened } : {}, points, o, progress);
        const t = methodTag(method);
        if (plan) jobs.push(await points.job(plan, { id: `${t.id}${allocation}:${level}`, label: `${allocation} −${pct(level)}${t.label}`, kind: 'budget', level, allocation, ...(spec.methods && { method }) }));
      }
    }
  }
  for (const energy of [...request.energies].sort((a, b) => b - a)) {
    for (const method of request.methods) {
      const plan = makePlan(o.model, o.spectra, { energy, layers: spec.layers }, points.check);
      const t = methodTag(method);
      jobs.push(await points.job(plan, { id: `${t.id}energy:${energy}`, label: `energy ${pct(energy)}${t.label}`, kind: 'energy', level: energy, ...(spec.methods && { method }) }));
    }
  }
  return jobs;
}

/** Plain SVD points keep their ids and labels; other methods' are tagged. */
function methodTag(method: SweepMethod): { id: string; label: string } {
  return method === 'svd' ? { id: '', label: '' } : { id: `${method}:`, label: ` (${method} SVD)` };
}

/** Each selected layer's whitened singular values (for the 'whitened' allocation), from the sweep's calibration. */
async function whitenedSpectraFor(spec: SweepSpec, points: PointEvaluator, o: SweepOptions): Promise<Record<string, number[][]>> {
  const template = sensitivityTemplate(o.model, o.spectra, spec.layers, points.check);
  const layers = template.layers.filter((r) => !r.skipped && o.whitening!.grams.has(r.layer)).map((r) => o.model.layers.find((l) => l.name === r.layer)!);
  const spectra = await whitenedSpectraOf(o.model, layers, o.whitening!, { signal: o.signal, threads: o.factorThreads });
  return Object.fromEntries([...spectra].map(([name, groups]) => [name, groups.map((g) => Array.from(g))]));
}

/** The 'sensitivity' budget points, from the measured probes (smallest budget first). */
async function planSensitivityPoints(spec: SweepSpec, request: CheckedRequest, sensitivity: LayerSensitivity[], points: PointEvaluator, o: SweepOptions, progress: Progress): Promise<Job[]> {
  const jobs: Job[] = [];
  const probes = probesOf(sensitivity);
  for (const level of [...request.levels].sort((a, b) => a - b)) {
    throwIfCancelled(o.signal);
    const plan = budgetPlan(spec, level, 'sensitivity', { probes }, points, o, progress);
    if (plan) jobs.push(await points.job(plan, { id: `sensitivity:${level}`, label: `sensitivity −${pct(level)}`, kind: 'budget', level, allocation: 'sensitivity' }));
  }
  return jobs;
}

interface ProbeRow {
  row: PlanLayer;
  /** Every candidate rank: measured ones carry a job, the others the rank whose loss they take. */
  ranks: { k: number; energyKept: number; from?: number; job?: Job }[];
}

/**
 * The probes to run: each layer alone at the ranks keeping DEFAULT_FRACTIONS of its parameters,
 * less the ranks whose kept energy is within the epsilon of a lower one (collapseProbeRanks).
 */
async function planProbes(spec: SweepSpec, points: PointEvaluator, o: SweepOptions): Promise<{ rows: ProbeRow[]; jobs: Job[] }> {
  const template = sensitivityTemplate(o.model, o.spectra, spec.layers, points.check);
  const fractions = o.sensitivity?.fractions ?? DEFAULT_FRACTIONS;
  const epsilon = o.sensitivity?.energyEpsilon ?? DEFAULT_ENERGY_EPSILON;
  const rows: ProbeRow[] = [];
  const jobs: Job[] = [];
  for (const row of template.layers.filter((r) => !r.skipped)) {
    throwIfCancelled(o.signal);
    const plans = probeRanks(rowShape(row), fractions).map((k) => makePlan(o.model, o.spectra, { rank: k, layers: [row.layer] }, points.check));
    const candidates = plans.map((plan) => ({ k: plan.layers.find((r) => r.layer === row.layer)!.k, energyKept: plan.layers.find((r) => r.layer === row.layer)!.energyKept, plan }));
    const ranks: ProbeRow['ranks'] = [];
    for (const c of collapseProbeRanks(candidates, epsilon)) {
      const plan = candidates.find((x) => x.k === c.k)!.plan;
      const job = c.from === undefined ? await points.job(plan, { id: `probe:${row.layer}:${c.k}`, label: `${row.layer} @ ${c.k}`, kind: 'budget', level: 0, allocation: 'sensitivity', probe: true }) : undefined;
      if (job) jobs.push(job);
      ranks.push({ k: c.k, energyKept: c.energyKept, from: c.from, job });
    }
    rows.push({ row, ranks });
  }
  return { rows, jobs };
}

/**
 * The sensitivity probes, a stage of their own (counted in progress): each layer alone at a few
 * ranks, scored on the calibration subset as the loss against the original. Their wall time is
 * its own share of the timing.
 */
async function measureSensitivity(probes: { rows: ProbeRow[]; jobs: Job[] }, points: PointEvaluator, o: SweepOptions, progress: Progress): Promise<{ sensitivity: LayerSensitivity[]; calibration: Calibration }> {
  const ts = performance.now();
  const measure = o.sensitivity?.measure ?? 'kl';
  const c = points.calibration();
  const baseScore = measure === 'top1' || measure === 'top5' ? await points.originalScoreOnCalibration(measure) : 1;
  const label = `sensitivity probes on ${c.samples === o.dataset.size ? `all ${c.samples}` : `${c.samples} of ${o.dataset.size}`} samples`;
  let done = 0;
  const sensitivity: LayerSensitivity[] = [];
  for (const { row, ranks } of probes.rows) {
    const layer: LayerSensitivity = { layer: row.layer, shape: row.shape, groups: row.groups, denseParams: denseParams(rowShape(row)), probes: [] };
    for (const r of ranks) {
      let loss: number;
      if (r.job) {
        progress.report(`${row.layer} at rank ${r.k}${r.job.cached ? ' (cached)' : ''}`, { id: 'probes', label, done, total: probes.jobs.length });
        const point = await points.run(r.job);
        done++;
        loss = measure === 'kl' ? point.metrics.meanKL ?? 0 : baseScore - (point.metrics[measure] ?? 0);
      } else {
        loss = layer.probes.find((p) => p.k === r.from)!.loss;
      }
      layer.probes.push({ k: r.k, params: factoredParams(rowShape(row), r.k), energyKept: r.energyKept, loss, ...(r.from !== undefined && { from: r.from }) });
    }
    sensitivity.push(layer);
  }
  progress.report('probes done', { id: 'probes', label, done, total: probes.jobs.length });
  points.timing.sensitivity += (performance.now() - ts) / 1000;
  const inferred = probes.rows.reduce((n, r) => n + r.ranks.filter((x) => x.from !== undefined).length, 0);
  return {
    sensitivity,
    calibration: { samples: c.samples, of: o.dataset.size, seed: c.seed, measure, probes: probes.jobs.length, inferred, energyEpsilon: o.sensitivity?.energyEpsilon ?? DEFAULT_ENERGY_EPSILON },
  };
}

function scoreOf(m: EvalMetrics, metric: ScoreMetric): number {
  return score(m, metric) ?? Number.NaN;
}

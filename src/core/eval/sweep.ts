// The trade-off sweep: for each level (a global budget × an allocation, or an energy threshold)
// make the plan, compress IN MEMORY, evaluate with ONNX Runtime and time it; mark the Pareto
// front. Points are cached on disk by (model hash, plan, data hash, settings), so a re-run or a
// resumed sweep only computes what is new. Each finished point is reported at once (the
// trade-off webview draws points as they arrive).
import { performance } from 'node:perf_hooks';
import { throwIfCancelled, RankscopeError } from '../errors';
import { applyPlan, graphCheck, whitenedSpectraOf, type WhiteningSource } from '../compress/apply';
import { makePlan, type Plan, type PlanLayer, type SpectrumLike } from '../compress/plan';
import { isSweepAllocation, SWEEP_ALLOCATIONS, type SweepAllocation } from '../compress/budget';
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

export const SWEEP_METHODS = ['svd', 'whitened'] as const;
export type SweepMethod = (typeof SWEEP_METHODS)[number];

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
  /** The calibration the 'whitened' method and allocation use (eval/calibration.ts). */
  whitening?: WhiteningSource;
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

/**
 * The sweep, in order: check the request, evaluate the original (reference outputs and the
 * baseline), plan every point (probing layer sensitivity first when an allocation needs it),
 * factorize once what the plans need, then evaluate point by point; mark the Pareto front.
 */
export async function runSweep(spec: SweepSpec, o: SweepOptions): Promise<SweepResult> {
  const t0 = performance.now();
  const request = checkRequest(spec, o);
  const progress = new Progress(1 + (request.levels.length * request.allocations.length + request.energies.length) * request.methods.length, o.onProgress);
  const points = await PointEvaluator.create(o, request.metric, progress);
  const original = await points.original();
  progress.advance();
  o.onPoint?.(original);

  const { jobs, sensitivity } = await planPoints(spec, request, points, o, progress);
  await points.factorize(jobs);
  const measured: SweepPoint[] = [];
  for (const j of jobs) {
    progress.report(`${j.label}: ${j.cached ? 'from the cache' : 'compressing and evaluating'}`);
    const p = await points.run(j);
    measured.push(p);
    progress.advance();
    o.onPoint?.(p);
  }
  const front = paretoFront([original, ...measured], (p) => p.params, (p) => p.score);
  for (const p of front) p.pareto = true;
  points.timing.total = (performance.now() - t0) / 1000;
  progress.report('done');
  return {
    model: o.model.summary.path, data: o.dataset.spec.data, metric: request.metric, samples: o.dataset.size, original, points: measured,
    front: front.map((p) => p.id), sensitivity, timing: points.timing,
  };
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

  report(message: string): void {
    this.onProgress?.({ done: this.done, total: this.total, message });
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
  /** Score only the first N samples, and skip latency (a sensitivity probe). */
  samples?: number;
  cached?: SweepPoint;
}

type JobInfo = Pick<Job, 'id' | 'label' | 'kind' | 'level' | 'allocation' | 'samples' | 'method'>;

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
        id: 'original', kind: 'original', level: 1, label: 'original', params: model.summary.totalParams, fileSize: model.summary.fileSize,
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

  /** The original's score on the first `samples` samples, from its kept outputs (call original() first). */
  async originalScoreOn(samples: number, measure: 'top1' | 'top5'): Promise<number> {
    const labels = await this.o.dataset.allLabels(this.o.signal);
    if (!labels) throw new RankscopeError('BAD_ARGUMENT', `sensitivity measure ${measure} needs labels.`, 'Use --sensitivity-measure kl or agreement.');
    const acc = new MetricAccumulator(this.originalPoint!.metrics.classes);
    acc.add(this.reference!, samples, labels.subarray(0, samples));
    return acc.result()[measure]!;
  }

  /** A job for `plan`, with its cache key and cached result. */
  async job(plan: Plan, info: JobInfo): Promise<Job> {
    const active = plan.layers.filter((r) => !r.skipped);
    // Plain SVD points keep the key they always had; whitened ones add the method and calibration.
    const whitened = info.method === 'whitened' ? { method: 'whitened', calibration: this.o.whitening!.calibration.hash, jitter: this.o.whitening!.jitter ?? null } : {};
    const key = PointCache.key({ ...this.settings, ...whitened, samples: info.samples ?? null, latency: info.samples ? null : this.settings.latency, plan: active.map((r) => [r.layer, r.k, r.weightHash]) });
    return { ...info, plan, key, cached: await this.cache.get<SweepPoint>(key) };
  }

  /** Factorizes, once, what the jobs not in the cache need; `account: false` leaves the time out of `compress`. */
  async factorize(jobs: Job[], account = true): Promise<void> {
    for (const [method, bank] of this.banks) {
      const missing = jobs.filter((j) => !j.cached && (j.method ?? 'svd') === method).map((j) => j.plan);
      if (missing.length === 0) continue;
      this.progress.report(`factorizing the layers once (${method}) for ${missing.length} point${missing.length > 1 ? 's' : ''}`);
      const before = bank.seconds;
      await bank.ensure(missing);
      if (account) this.timing.compress += bank.seconds - before;
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
    let point: SweepPoint;
    try {
      const r = await evaluate(session, dataset, { batchSize: this.batchSize, output: this.o.output, reference: this.reference, samples: j.samples, signal });
      const evalSeconds = (performance.now() - te) / 1000;
      const tl = performance.now();
      const latency = this.latency && !j.samples ? await measureLatency(session, (await this.firstBatch()).feeds, this.latency) : undefined;
      const latencySeconds = (performance.now() - tl) / 1000;
      point = {
        id: j.id, kind: j.kind, level: j.level, allocation: j.allocation, ...(j.method && { method: j.method }), label: j.label, params: j.plan.totals.modelParamsAfter, fileSize: bytes.length, metrics: r.metrics,
        score: scoreOf(r.metrics, this.metric), latency, ranks, plan: j.plan, layersCompressed: active.length,
        seconds: { compress: compressSeconds, evaluate: evalSeconds, latency: latencySeconds }, cached: false, pareto: false,
      };
    } finally {
      await session.close().catch(() => undefined);
    }
    if (!j.samples) {
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

function latencyOptions(o: SweepOptions): LatencyOptions | undefined {
  return o.latency === false ? undefined : { warmup: 3, runs: 10, ...(o.latency ?? {}) };
}

/**
 * Plans for every point (cheap): budgets × allocations, smallest budget first, then energy
 * thresholds, largest first. A budget no allocation can reach skips that point, not the sweep.
 * Probes layer sensitivity first when an allocation needs it.
 */
async function planPoints(spec: SweepSpec, request: CheckedRequest, points: PointEvaluator, o: SweepOptions, progress: Progress): Promise<{ jobs: Job[]; sensitivity?: LayerSensitivity[] }> {
  const jobs: Job[] = [];
  let sensitivity: LayerSensitivity[] | undefined;
  let whitened: Record<string, number[][]> | undefined;
  const pct = (x: number) => `${+(x * 100).toFixed(1)} %`;
  // Plain SVD points keep their ids and labels; whitened ones are prefixed.
  const tag = (method: SweepMethod) => (method === 'svd' ? { id: '', label: '' } : { id: `${method}:`, label: ` (${method} SVD)` });
  for (const level of [...request.levels].sort((a, b) => a - b)) {
    for (const allocation of request.allocations) {
      for (const method of request.methods) {
        throwIfCancelled(o.signal);
        const label = `${allocation} −${pct(level)}${tag(method).label}`;
        if (allocation === 'sensitivity') sensitivity ??= await measureSensitivity(spec, points, o, progress);
        if (allocation === 'whitened') whitened ??= await whitenedSpectraFor(spec, points, o);
        const extra = allocation === 'sensitivity' ? { probes: probesOf(sensitivity!) } : allocation === 'whitened' ? { whitened } : {};
        let plan: Plan;
        try {
          plan = makePlan(o.model, o.spectra, { budget: level, allocation, ...extra, layers: spec.layers }, points.check);
        } catch (e) {
          if (!(e instanceof RankscopeError && e.code === 'BUDGET_UNREACHABLE')) throw e;
          progress.report(`${label}: skipped (${e.message})`);
          progress.advance();
          continue;
        }
        jobs.push(await points.job(plan, { id: `${tag(method).id}${allocation}:${level}`, label, kind: 'budget', level, allocation, ...(spec.methods && { method }) }));
      }
    }
  }
  for (const energy of [...request.energies].sort((a, b) => b - a)) {
    for (const method of request.methods) {
      const plan = makePlan(o.model, o.spectra, { energy, layers: spec.layers }, points.check);
      jobs.push(await points.job(plan, { id: `${tag(method).id}energy:${energy}`, label: `energy ${pct(energy)}${tag(method).label}`, kind: 'energy', level: energy, ...(spec.methods && { method }) }));
    }
  }
  return { jobs, sensitivity };
}

/** Each selected layer's whitened singular values (for the 'whitened' allocation), from the sweep's calibration. */
async function whitenedSpectraFor(spec: SweepSpec, points: PointEvaluator, o: SweepOptions): Promise<Record<string, number[][]>> {
  const template = sensitivityTemplate(o.model, o.spectra, spec.layers, points.check);
  const layers = template.layers.filter((r) => !r.skipped && o.whitening!.grams.has(r.layer)).map((r) => o.model.layers.find((l) => l.name === r.layer)!);
  const spectra = await whitenedSpectraOf(o.model, layers, o.whitening!, { signal: o.signal, threads: o.factorThreads });
  return Object.fromEntries([...spectra].map(([name, groups]) => [name, groups.map((g) => Array.from(g))]));
}

/**
 * The sensitivity probes: each layer alone at a few ranks, scored on a calibration subset
 * (the first `samples`) as the loss against the original. Their wall time is its own share.
 */
async function measureSensitivity(spec: SweepSpec, points: PointEvaluator, o: SweepOptions, progress: Progress): Promise<LayerSensitivity[]> {
  const ts = performance.now();
  const template = sensitivityTemplate(o.model, o.spectra, spec.layers, points.check);
  const fractions = o.sensitivity?.fractions ?? DEFAULT_FRACTIONS;
  const samples = Math.min(o.sensitivity?.samples ?? 512, o.dataset.size);
  const measure = o.sensitivity?.measure ?? 'kl';
  const baseScore = measure === 'top1' || measure === 'top5' ? await points.originalScoreOn(samples, measure) : 1;
  const rows = template.layers.filter((r) => !r.skipped);
  const probes: { row: PlanLayer; k: number; job: Job }[] = [];
  for (const row of rows) {
    for (const k of probeRanks(rowShape(row), fractions)) {
      const plan = makePlan(o.model, o.spectra, { rank: k, layers: [row.layer] }, points.check);
      probes.push({ row, k, job: await points.job(plan, { id: `probe:${row.layer}:${k}`, label: `${row.layer} @ ${k}`, kind: 'budget', level: 0, allocation: 'sensitivity', samples }) });
    }
  }
  await points.factorize(probes.map((p) => p.job), false);
  const result: LayerSensitivity[] = rows.map((row) => ({ layer: row.layer, shape: row.shape, groups: row.groups, denseParams: denseParams(rowShape(row)), probes: [] }));
  for (const [i, p] of probes.entries()) {
    progress.report(`sensitivity: ${p.row.layer} at rank ${p.k} (${i + 1}/${probes.length})`);
    const point = await points.run(p.job);
    const loss = measure === 'kl' ? point.metrics.meanKL ?? 0 : baseScore - (point.metrics[measure] ?? 0);
    result.find((r) => r.layer === p.row.layer)!.probes.push({ k: p.k, params: factoredParams(rowShape(p.row), p.k), loss });
  }
  points.timing.sensitivity += (performance.now() - ts) / 1000;
  return result;
}

function scoreOf(m: EvalMetrics, metric: ScoreMetric): number {
  return score(m, metric) ?? Number.NaN;
}

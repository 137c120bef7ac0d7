// Sensitivity-driven rank allocation (the AIMET / ASVD idea). Probe: compress ONE layer at a few
// candidate ranks and measure how much the model loses (mean KL to the original by default — a
// smooth figure even on a small calibration subset — or an accuracy drop). Allocate: choose one
// rank per layer so that the parameters fit the budget and the summed loss is least, solved
// exactly as a multiple-choice knapsack over a fine rank grid whose losses are interpolated
// between the probed ranks. Assumes the layers' losses add up, as AIMET does.
import { RankscopeError } from '../errors';
import { makePlan, energyAt, planTotals, recheckRow, type Plan, type PlanLayer, type SpectrumLike } from '../compress/plan';
import { denseParams, energyCurve, factoredParams, maxRank, type FactorShape } from '../compress/policy';
import type { Layer, Model } from '../model/types';

export interface SensitivityOptions {
  /** Fractions of each layer's dense parameters kept at the probed ranks. */
  fractions?: number[];
  /** Samples of the data the probes run on (the first N). */
  samples?: number;
  /** 'kl' (default): mean KL to the original; or the drop of top1 / top5 / agreement. */
  measure?: 'kl' | 'top1' | 'top5' | 'agreement';
}

export const DEFAULT_FRACTIONS = [0.05, 0.15, 0.3, 0.5, 0.8];

export interface ProbePoint {
  k: number;
  params: number;
  /** Loss of the model with only this layer at rank k (≥ 0 up to noise). */
  loss: number;
}

export interface LayerSensitivity {
  layer: string;
  shape: [number, number];
  groups: number;
  denseParams: number;
  probes: ProbePoint[];
}

/** Energy kept per rank (index k) of each layer, from its spectrum: extrapolates losses below the probes. */
export function energyCurves(spectra: SpectrumLike[], rows: Pick<PlanLayer, 'layer' | 'shape' | 'groups'>[]): Map<string, Float64Array> {
  const byName = new Map(spectra.map((s) => [s.layer, s]));
  const out = new Map<string, Float64Array>();
  for (const row of rows) {
    const s = byName.get(row.layer);
    if (s) out.set(row.layer, energyCurve(s.groups && s.groups.length > 1 ? s.groups : [s.singularValues], maxRank(rowShape(row))));
  }
  return out;
}

/** A plan row's factor shape (per conv group). */
export function rowShape(row: Pick<PlanLayer, 'shape' | 'groups'>): FactorShape {
  return { m: row.shape[0] / row.groups, n: row.shape[1], groups: row.groups };
}

/** The ranks to probe for a layer: those keeping each fraction of its parameters, when they save. */
export function probeRanks(shape: FactorShape, fractions: number[]): number[] {
  const dense = denseParams(shape);
  const ranks = new Set<number>();
  for (const f of fractions) {
    const k = Math.floor((f * shape.m * shape.n) / (shape.m + shape.n));
    if (k >= 1 && k < maxRank(shape) && factoredParams(shape, k) < dense) ranks.add(k);
  }
  return [...ranks].sort((a, b) => a - b);
}

/** A plan that factorizes only `layer` at rank k (a probe). */
export function probePlan(model: Model, spectra: SpectrumLike[], layer: string, k: number, unsupported?: (l: Layer) => string | undefined): Plan {
  return makePlan(model, spectra, { rank: k, layers: [layer] }, unsupported);
}

/**
 * Loss per candidate option of a layer on a fine grid: dense (0 loss), and ranks with the loss
 * interpolated between probes. Below the smallest probe (when the energy curve is known) the loss
 * is extrapolated in proportion to the discarded energy, 1 − E(k): a truncation's error grows with it.
 */
function options(s: LayerSensitivity, step: number, curve?: Float64Array): { k: number; params: number; loss: number }[] {
  const shape: FactorShape = { m: s.shape[0] / s.groups, n: s.shape[1], groups: s.groups };
  const out = [{ k: 0, params: s.denseParams, loss: 0 }]; // k 0 = kept dense
  if (s.probes.length === 0) return out;
  const probes = [...s.probes].sort((a, b) => a.k - b.k);
  const first = probes[0];
  // Known points: the probes, and the rank where factorizing stops saving (loss → 0 there).
  const kEnd = Math.floor((shape.m * shape.n) / (shape.m + shape.n));
  const known = [...probes.map((p) => ({ k: p.k, loss: Math.max(0, p.loss) })), { k: Math.max(kEnd, probes[probes.length - 1].k + 1), loss: 0 }];
  if (curve) {
    const discardedAtFirst = Math.max(1e-12, 1 - curve[first.k]);
    for (let k = Math.min(step, first.k); k < first.k; k += step) {
      out.push({ k, params: factoredParams(shape, k), loss: Math.max(0, first.loss) * Math.max(1, (1 - curve[k]) / discardedAtFirst) });
    }
  }
  for (let k = first.k; k < kEnd; k += step) {
    const params = factoredParams(shape, k);
    if (params >= s.denseParams) break;
    let i = 0;
    while (i < known.length - 2 && known[i + 1].k <= k) i++;
    const a = known[i];
    const b = known[i + 1];
    const t = b.k === a.k ? 0 : Math.min(1, Math.max(0, (k - a.k) / (b.k - a.k)));
    out.push({ k, params, loss: a.loss + t * (b.loss - a.loss) });
  }
  return out;
}

/**
 * Ranks per layer (0 = keep dense) whose parameters total ≤ (1 − budget) of the layers' dense
 * parameters, with the least summed loss. Exact over the grid up to the parameter resolution.
 */
export function allocateBySensitivity(layers: LayerSensitivity[], budget: number, curves?: Map<string, Float64Array>, resolution = 4000): Map<string, number> {
  if (!(budget > 0 && budget < 1)) throw new RankscopeError('BAD_ARGUMENT', `budget must be a fraction in (0, 1); got ${budget}.`);
  const total = layers.reduce((s, l) => s + l.denseParams, 0);
  const target = (1 - budget) * total;
  const opts = layers.map((l) => {
    const full = maxRank({ m: l.shape[0] / l.groups, n: l.shape[1], groups: l.groups });
    return options(l, Math.max(1, Math.floor(full / 64)), curves?.get(l.layer));
  });
  // Costs rounded to the nearest unit keep exact fits; if rounding let the total slip over the
  // target, solve again with costs rounded up (always feasible in real parameters).
  const nearest = solveKnapsack(opts, target, resolution, Math.round);
  const fits = nearest && nearest.reduce((s, o, i) => s + opts[i][o].params, 0) <= target;
  const picks = fits ? nearest : solveKnapsack(opts, target, resolution, (x) => Math.ceil(x - 1e-9));
  if (!picks) {
    const smallest = opts.reduce((s, o) => s + Math.min(...o.map((x) => x.params)), 0);
    throw new RankscopeError('BAD_ARGUMENT', `budget ${budget} is out of reach for sensitivity allocation: the smallest probed ranks keep ${(smallest / total * 100).toFixed(1)} % of the parameters.`,
      'Choose a smaller budget, or probe smaller fractions.');
  }
  return new Map(layers.map((l, i) => [l.layer, opts[i][picks[i]].k]));
}

/** Multiple-choice knapsack: one option per layer, Σ cost ≤ target, least Σ loss; option index per layer. */
function solveKnapsack(opts: { params: number; loss: number }[][], target: number, resolution: number, round: (x: number) => number): number[] | undefined {
  const unit = target / resolution;
  const B = resolution;
  // dp[b] = least loss of the layers so far within b units; choice[i][b] = option taken.
  let dp = new Float64Array(B + 1); // no layers: zero loss at any budget
  const choice: Int32Array[] = [];
  for (const layerOptions of opts) {
    const next = new Float64Array(B + 1).fill(Infinity);
    const pick = new Int32Array(B + 1).fill(-1);
    const costs = layerOptions.map((o) => round(o.params / unit));
    for (let b = 0; b <= B; b++) {
      for (let o = 0; o < layerOptions.length; o++) {
        if (costs[o] > b) continue;
        const v = dp[b - costs[o]] + layerOptions[o].loss;
        if (v < next[b]) { next[b] = v; pick[b] = o; }
      }
    }
    dp = next;
    choice.push(pick);
  }
  if (!Number.isFinite(dp[B])) return undefined;
  const picks = new Array<number>(opts.length);
  let b = B;
  for (let i = opts.length - 1; i >= 0; i--) {
    picks[i] = choice[i][b];
    b -= round(opts[i][picks[i]].params / unit);
  }
  return picks;
}

/**
 * The layers sensitivity allocation works on: a rank-1 plan over the selection (same graph checks
 * as any plan); its non-skipped rows are the layers that can be factorized and save at some rank.
 */
export function sensitivityTemplate(model: Model, spectra: SpectrumLike[], layers: string[] | undefined, unsupported?: (l: Layer) => string | undefined): Plan {
  return makePlan(model, spectra, { rank: 1, layers }, unsupported);
}

/** The template with the given ranks set (0 = keep dense), as a budget plan with allocation 'sensitivity'. */
export function planWithRanks(model: Model, spectra: SpectrumLike[], template: Plan, ranks: Map<string, number>, budget: number, weights: Record<string, number> = {}): Plan {
  const bySpectrum = new Map(spectra.map((s) => [s.layer, s]));
  const policy = { budget, allocation: 'sensitivity' as const };
  const rows: PlanLayer[] = template.layers.map((row) => {
    if (row.skipped) return { ...row, policy };
    const k = ranks.get(row.layer) ?? 0;
    if (k === 0) return { ...row, policy, k: row.currentRank ?? 0, paramsAfter: row.paramsBefore, energyKept: 1, skipped: true, reason: 'the sensitivity allocation keeps it dense' };
    const s = bySpectrum.get(row.layer)!;
    const energy = energyAt(s.groups && s.groups.length > 1 ? s.groups : [s.singularValues], rowShape(row), k);
    const updated: PlanLayer = { ...row, policy, k, energyKept: energy };
    const c = recheckRow(updated, energy);
    return c.skipped ? { ...updated, skipped: true, reason: c.reason, paramsAfter: row.paramsBefore } : { ...updated, paramsAfter: c.paramsAfter, energyKept: c.energyKept };
  });
  const request = { budget, allocation: 'sensitivity' as const, sensitivity: weights, ...(template.request.layers ? { layers: template.request.layers } : {}) };
  return { ...template, request, layers: rows, totals: planTotals(model, rows) };
}

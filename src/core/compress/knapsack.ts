// The 'sensitivity' budget allocation (the AIMET / ASVD idea): given, for each layer, the loss of
// the model with ONLY that layer factorized at a few probed ranks (EVAL's sweep measures them,
// see eval/sensitivity.ts), choose one rank per layer so that the parameters fit the budget and
// the summed loss is least. Solved exactly as a multiple-choice knapsack over a fine rank grid
// whose losses are interpolated between the probed ranks. Assumes the layers' losses add up, as
// AIMET does. Pure: the probes travel in the plan's request, so makePlan reproduces the plan.
import { RankscopeError } from '../errors';
import { denseParams, factoredParams, maxRank, type FactorShape } from './policy';

/** The loss of the model with only one layer at rank k (≥ 0 up to noise). */
export interface ProbePoint {
  k: number;
  /** Informational: the layer's parameters at rank k. */
  params?: number;
  loss: number;
}

/** One layer as the allocation sees it. */
export interface LayerProbes {
  layer: string;
  /** [out, in] (convs: [out, in/groups·∏kernel]), as in a plan row. */
  shape: [number, number];
  groups: number;
  denseParams: number;
  probes: ProbePoint[];
}

/**
 * Loss per candidate option of a layer on a fine grid: dense (0 loss), and ranks with the loss
 * interpolated between probes. Below the smallest probe (when the energy curve is known) the loss
 * is extrapolated in proportion to the discarded energy, 1 − E(k): a truncation's error grows with it.
 */
function options(s: LayerProbes, step: number, curve?: Float64Array): { k: number; params: number; loss: number }[] {
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
 * `curves[layer]` (energy kept per rank) lets ranks below the smallest probe be chosen.
 * An unreachable budget is BUDGET_UNREACHABLE.
 */
export function allocateBySensitivity(layers: LayerProbes[], budget: number, curves?: Map<string, Float64Array>, resolution = 4000): Map<string, number> {
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
    throw new RankscopeError('BUDGET_UNREACHABLE', `budget ${budget} is out of reach for sensitivity allocation: the smallest probed ranks keep ${(smallest / total * 100).toFixed(1)} % of the parameters.`,
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

/** A layer's probes as LayerProbes, from its factor shape (per conv group). */
export function layerProbes(layer: string, shape: FactorShape, probes: ProbePoint[]): LayerProbes {
  return { layer, shape: [shape.m * shape.groups, shape.n], groups: shape.groups, denseParams: denseParams(shape), probes };
}

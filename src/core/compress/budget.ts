// Whole-model budget: "cut the factorizable parameters by X %" turned into per-layer ranks.
// Greedy by energy kept per parameter spent: every layer starts at the smallest rank, then the
// move with the best (energy gained) / (parameters spent) ratio is taken while it fits. Each
// layer's σ² are descending, so its marginal gains shrink and greedy is near-optimal.
import { RankscopeError } from '../errors';
import { decide, denseParams, energyCurve, factoredParams, maxRank, type FactorShape, type GroupSpectra, type RankChoice } from './policy';

/** How a budget is spread over layers; the one list every option, task file and view checks against. */
export const ALLOCATIONS = ['energy', 'uniform', 'sensitivity'] as const;
export type Allocation = (typeof ALLOCATIONS)[number];

export function isAllocation(x: unknown): x is Allocation {
  return ALLOCATIONS.includes(x as Allocation);
}

export interface BudgetRequest {
  /** Fraction of the selected layers' weight parameters to remove (0 < X < 1). */
  budget: number;
  /** 'energy' (default): greedy by energy per parameter; 'uniform': every layer keeps 1−X of its
   *  parameters; 'sensitivity': greedy with each layer's gain weighted by `sensitivity[layer]`. */
  allocation?: Allocation;
  /** Per-layer weights for 'sensitivity' (e.g. accuracy lost when the layer alone is compressed). */
  sensitivity?: Record<string, number>;
  /** Ranks move in steps of this (and are multiples of it). */
  roundTo?: number;
}

export interface BudgetLayer {
  name: string;
  shape: FactorShape;
  spectra: GroupSpectra;
}

export function validateBudget(request: BudgetRequest): void {
  const { budget, allocation = 'energy', roundTo } = request;
  if (!(Number.isFinite(budget) && budget > 0 && budget < 1)) {
    throw new RankscopeError('BAD_ARGUMENT', `budget must be a fraction in (0, 1) (e.g. 0.5 or 50%); got ${budget}.`);
  }
  if (!isAllocation(allocation)) {
    throw new RankscopeError('BAD_ARGUMENT', `allocation must be one of ${ALLOCATIONS.join(', ')}; got ${allocation}.`);
  }
  if (allocation === 'sensitivity' && !request.sensitivity) {
    throw new RankscopeError('BAD_ARGUMENT', 'allocation "sensitivity" needs a sensitivity weight per layer.');
  }
  if (roundTo !== undefined && !(Number.isInteger(roundTo) && roundTo >= 1)) {
    throw new RankscopeError('BAD_ARGUMENT', `roundTo must be an integer ≥ 1; got ${roundTo}.`);
  }
}

/** Per-layer rank choices whose parameters total ≤ (1 − budget) of the layers' dense parameters. */
export function allocateBudget(layers: BudgetLayer[], request: BudgetRequest): Map<string, RankChoice> {
  validateBudget(request);
  return request.allocation === 'uniform' ? allocateUniform(layers, request) : allocateGreedy(layers, request);
}

function allocateUniform(layers: BudgetLayer[], request: BudgetRequest): Map<string, RankChoice> {
  const keep = 1 - request.budget;
  const step = request.roundTo ?? 1;
  const result = new Map<string, RankChoice>();
  for (const layer of layers) {
    const { m, n } = layer.shape;
    const k = Math.min(maxRank(layer.shape), Math.floor(Math.floor((keep * m * n) / (m + n)) / step) * step);
    const curve = energyCurve(layer.spectra, maxRank(layer.shape));
    result.set(layer.name, k < 1
      ? { k: 0, energyKept: 1, paramsBefore: denseParams(layer.shape), paramsAfter: denseParams(layer.shape), skipped: true, reason: `too small to keep ${keep} of its parameters at rank ≥ ${step}` }
      : decide(layer.shape, k, curve[k], false));
  }
  return result;
}

interface LayerState {
  layer: BudgetLayer;
  curve: Float64Array;
  weight: number;
  k: number;
  dense: boolean;
  /** No further move fits (or the layer is already dense). */
  done: boolean;
}

function allocateGreedy(layers: BudgetLayer[], request: BudgetRequest): Map<string, RankChoice> {
  const step = request.roundTo ?? 1;
  const totalDense = layers.reduce((sum, l) => sum + denseParams(l.shape), 0);
  const target = (1 - request.budget) * totalDense;
  const states: LayerState[] = layers.map((layer) => {
    const full = maxRank(layer.shape);
    const weight = request.allocation === 'sensitivity' ? request.sensitivity?.[layer.name] ?? 1 : 1;
    // A layer that cannot save at the smallest rank stays dense and costs its full size.
    const dense = step > full || factoredParams(layer.shape, step) >= denseParams(layer.shape);
    return { layer, curve: energyCurve(layer.spectra, full), weight, k: dense ? full : step, dense, done: dense };
  });
  const cost = (s: LayerState) => (s.dense ? denseParams(s.layer.shape) : factoredParams(s.layer.shape, s.k));
  let used = states.reduce((sum, s) => sum + cost(s), 0);
  if (used > target) {
    throw new RankscopeError('BAD_ARGUMENT',
      `budget ${request.budget} is out of reach: even rank ${step} in every layer keeps ${(used / totalDense * 100).toFixed(1)} % of the parameters.`,
      'Choose a smaller budget or fewer layers.');
  }
  // The next move of a layer: k → k+step, or straight to dense once a factorization would not save.
  const nextMove = (s: LayerState) => {
    const full = maxRank(s.layer.shape);
    const k = Math.min(full, s.k + step);
    const goDense = factoredParams(s.layer.shape, k) >= denseParams(s.layer.shape);
    const spend = goDense ? denseParams(s.layer.shape) - cost(s) : factoredParams(s.layer.shape, k) - cost(s);
    const gain = s.weight * ((goDense ? 1 : s.curve[k]) - s.curve[s.k]);
    return { k, goDense, spend, ratio: gain / Math.max(spend, 1) };
  };
  const moves = states.map((s) => (s.done ? undefined : nextMove(s)));
  for (;;) {
    let best = -1;
    for (let i = 0; i < states.length; i++) {
      const move = moves[i];
      if (move && (best < 0 || move.ratio > moves[best]!.ratio)) best = i;
    }
    if (best < 0) break;
    const s = states[best];
    const move = moves[best]!;
    if (used + move.spend > target || move.ratio <= 0) {
      // This layer's later moves cost at least as much: it is finished.
      moves[best] = undefined;
      continue;
    }
    used += move.spend;
    if (move.goDense) {
      s.dense = true;
      moves[best] = undefined;
    } else {
      s.k = move.k;
      moves[best] = nextMove(s);
    }
  }
  const result = new Map<string, RankChoice>();
  for (const s of states) {
    const before = denseParams(s.layer.shape);
    result.set(s.layer.name, s.dense
      ? { k: maxRank(s.layer.shape), energyKept: 1, paramsBefore: before, paramsAfter: before, skipped: true, reason: 'the budget allocation keeps it dense' }
      : decide(s.layer.shape, s.k, s.curve[s.k], false));
  }
  return result;
}

/** Σ energy kept over layers: the figure the greedy allocation maximises. */
export function totalEnergyKept(choices: Iterable<RankChoice>): number {
  let sum = 0;
  for (const c of choices) sum += c.energyKept;
  return sum;
}

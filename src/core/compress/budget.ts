// Whole-model budget: "cut the factorizable parameters by X %" turned into per-layer ranks.
// 'energy' is greedy by energy kept per parameter spent: every layer starts at the smallest rank,
// then the move with the best (energy gained) / (parameters spent) ratio is taken while it fits.
// Each layer's σ² are descending, so its marginal gains shrink and greedy is near-optimal.
// 'weighted' is the same greedy with each layer's gain scaled by a given weight; 'sensitivity' is
// the knapsack over measured per-layer losses (knapsack.ts); 'uniform' cuts every layer alike;
// 'whitened' is the energy greedy over each layer's WHITENED singular values (σ of W·S, S·Sᵀ = the
// input Gram; compress/whitened.ts): a layer's energy share kept is then 1 − its normalized output
// error ‖(W − AB)X‖²/‖WX‖² on the calibration data, so the greedy minimizes the summed normalized
// output error with no evaluation at all. The losses are convex in the rank (σ² descending), so
// the greedy by gain per parameter is near-optimal (exact on the tests' brute-forced examples).
import { RankscopeError } from '../errors';
import { allocateBySensitivity, layerProbes, type ProbePoint } from './knapsack';
import { decide, denseParams, energyCurve, factoredParams, maxRank, type FactorShape, type GroupSpectra, type RankChoice } from './policy';

/** How a budget is spread over layers; the one list every option, task file and view checks against. */
export const ALLOCATIONS = ['energy', 'uniform', 'weighted', 'sensitivity', 'whitened'] as const;
export type Allocation = (typeof ALLOCATIONS)[number];

export function isAllocation(x: unknown): x is Allocation {
  return ALLOCATIONS.includes(x as Allocation);
}

/** The allocations a sweep compares ('weighted' needs per-layer weights a sweep does not have;
 *  'whitened' needs the sweep's calibration). */
export const SWEEP_ALLOCATIONS = ['energy', 'uniform', 'sensitivity', 'whitened'] as const satisfies readonly Allocation[];
/** A sweep also takes 'whitened' when it has a calibration (not in the default list: it needs data beyond the evaluation's). */
export type SweepAllocation = (typeof SWEEP_ALLOCATIONS)[number] | 'whitened';

/** How a sweep's factors are made: plain SVD of W, or whitened SVD (of W·S; compress/whitened.ts). */
export const SWEEP_METHODS = ['svd', 'whitened'] as const;
export type SweepMethod = (typeof SWEEP_METHODS)[number];

export function isSweepAllocation(x: unknown): x is SweepAllocation {
  return SWEEP_ALLOCATIONS.includes(x as (typeof SWEEP_ALLOCATIONS)[number]) || x === 'whitened';
}

export interface BudgetRequest {
  /** Fraction of the selected layers' weight parameters to remove (0 < X < 1). */
  budget: number;
  /** 'energy' (default): greedy by energy per parameter; 'uniform': every layer keeps 1−X of its
   *  parameters; 'weighted': the energy greedy with each layer's gain scaled by `weights[layer]`;
   *  'sensitivity': the least summed measured loss (`probes`), solved as a knapsack. */
  allocation?: Allocation;
  /** Per-layer gain weights for 'weighted' (missing layers weigh 1). */
  weights?: Record<string, number>;
  /** For 'sensitivity': the layers the budget is spread over, each with its probed losses (the
   *  loss of the model with only that layer at rank k). Selected layers not named stay dense. */
  probes?: Record<string, ProbePoint[]>;
  /** For 'whitened': each layer's whitened singular values per group (descending). Layers not named stay dense. */
  whitened?: Record<string, number[][]>;
  /** Ranks move in steps of this (and are multiples of it); not for 'sensitivity'. */
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
  if (allocation === 'weighted' && !request.weights) {
    throw new RankscopeError('BAD_ARGUMENT', 'allocation "weighted" needs a weight per layer (weights).');
  }
  if (allocation === 'sensitivity' && !request.probes) {
    throw new RankscopeError('BAD_ARGUMENT', 'allocation "sensitivity" needs the per-layer probes (probes).', 'A sweep measures them: rankscope sweep --allocation sensitivity.');
  }
  if (allocation === 'whitened' && !request.whitened) {
    throw new RankscopeError('BAD_ARGUMENT', 'allocation "whitened" needs each layer\'s whitened singular values (whitened).', 'They come from a calibration pass: rankscope compress --allocation whitened --data D.npz.');
  }
  if (allocation === 'sensitivity' && roundTo !== undefined) {
    throw new RankscopeError('BAD_ARGUMENT', 'roundTo does not apply to the sensitivity allocation.');
  }
  if (roundTo !== undefined && !(Number.isInteger(roundTo) && roundTo >= 1)) {
    throw new RankscopeError('BAD_ARGUMENT', `roundTo must be an integer ≥ 1; got ${roundTo}.`);
  }
}

/** Per-layer rank choices whose parameters total ≤ (1 − budget) of the layers' dense parameters. */
export function allocateBudget(layers: BudgetLayer[], request: BudgetRequest): Map<string, RankChoice> {
  validateBudget(request);
  switch (request.allocation ?? 'energy') {
    case 'uniform': return allocateUniform(layers, request);
    case 'sensitivity': return allocateByProbes(layers, request);
    case 'whitened': return allocateByWhitenedLoss(layers, request);
    default: return allocateGreedy(layers, request);
  }
}

/** The knapsack over the probed layers; a layer without probes keeps its dense weight. */
function allocateByProbes(layers: BudgetLayer[], request: BudgetRequest): Map<string, RankChoice> {
  const probed = layers.filter((l) => request.probes![l.name] !== undefined);
  const curves = new Map(probed.map((l) => [l.name, energyCurve(l.spectra, maxRank(l.shape))]));
  const ranks = allocateBySensitivity(probed.map((l) => layerProbes(l.name, l.shape, request.probes![l.name])), request.budget, curves);
  const result = new Map<string, RankChoice>();
  for (const layer of layers) {
    const k = ranks.get(layer.name) ?? 0;
    const before = denseParams(layer.shape);
    if (k > 0) result.set(layer.name, decide(layer.shape, k, curves.get(layer.name)![k], false));
    else {
      // Unprobed layers are those the probes left out, usually because no rank saves parameters.
      const atOne = decide(layer.shape, 1, 0, false);
      const reason = ranks.has(layer.name) ? 'the sensitivity allocation keeps it dense' : atOne.skipped ? atOne.reason : 'not probed: kept dense';
      result.set(layer.name, { k: 0, energyKept: 1, paramsBefore: before, paramsAfter: before, skipped: true, reason });
    }
  }
  return result;
}

/** The energy greedy over whitened spectra; a layer without them keeps its dense weight. */
function allocateByWhitenedLoss(layers: BudgetLayer[], request: BudgetRequest): Map<string, RankChoice> {
  const spectra = request.whitened!;
  const known = layers.filter((l) => spectra[l.name] !== undefined).map((l) => ({ ...l, spectra: spectra[l.name] }));
  const dense = layers.filter((l) => spectra[l.name] === undefined);
  // Dense layers still count in the budget's base: the cut is of all the selected layers.
  const keep = dense.reduce((s, l) => s + denseParams(l.shape), 0);
  const total = layers.reduce((s, l) => s + denseParams(l.shape), 0);
  const knownTotal = total - keep;
  if (knownTotal <= 0) throw new RankscopeError('BAD_ARGUMENT', 'allocation "whitened": no selected layer has whitened singular values.');
  const budget = 1 - ((1 - request.budget) * total - keep) / knownTotal;
  if (!(budget > 0 && budget < 1)) {
    throw new RankscopeError('BUDGET_UNREACHABLE', `budget ${request.budget} is out of reach: the layers without calibration keep ${(keep / total * 100).toFixed(1)} % of the parameters.`, 'Calibrate every selected layer.');
  }
  const result = allocateGreedy(known, { ...request, budget, allocation: 'energy' });
  for (const l of dense) result.set(l.name, { k: 0, energyKept: 1, paramsBefore: denseParams(l.shape), paramsAfter: denseParams(l.shape), skipped: true, reason: 'no calibration Gram: kept dense' });
  return new Map(layers.map((l) => [l.name, result.get(l.name)!]));
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
    const weight = request.allocation === 'weighted' ? request.weights?.[layer.name] ?? 1 : 1;
    // A layer that cannot save at the smallest rank stays dense and costs its full size.
    const dense = step > full || factoredParams(layer.shape, step) >= denseParams(layer.shape);
    return { layer, curve: energyCurve(layer.spectra, full), weight, k: dense ? full : step, dense, done: dense };
  });
  const cost = (s: LayerState) => (s.dense ? denseParams(s.layer.shape) : factoredParams(s.layer.shape, s.k));
  let used = states.reduce((sum, s) => sum + cost(s), 0);
  if (used > target) {
    throw new RankscopeError('BUDGET_UNREACHABLE',
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

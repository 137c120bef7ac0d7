// Rank policies: how many singular triplets a layer keeps. Pure functions of the layer's
// singular values and shape, so plans are cheap to recompute (EVAL's sweep calls them per point)
// and the spectrum webview runs the same math live under the cut line (browser-safe: the only
// import is errors.ts).
import { RankscopeError } from '../errors';

/** Exactly one of rank / energy / rankRatio / paramRatio, plus the shared options. */
export interface RankPolicy {
  /** A fixed rank k. */
  rank?: number;
  /** Smallest k whose cumulative σ² share is ≥ energy (0 < τ ≤ 1). */
  energy?: number;
  /** k = ⌈ρ·min(m,n)⌉ (0 < ρ ≤ 1). */
  rankRatio?: number;
  /** The layer keeps ≤ β of its weight parameters (0 < β < 1). */
  paramRatio?: number;
  /** Round k up to a multiple of this (hardware-friendly shapes); down for paramRatio so β holds. */
  roundTo?: number;
  /** Write the factorization even when it does not save parameters. */
  force?: boolean;
}

/**
 * A layer as the policies see it: `groups` independent blocks of m×n (convs factorize per group
 * with one k for all groups; every other layer has groups = 1).
 */
export interface FactorShape {
  m: number;
  n: number;
  groups: number;
}

/** Singular values per group (descending), one array for ungrouped layers (plain arrays in the webviews). */
export type GroupSpectra = readonly ArrayLike<number>[];

export interface RankChoice {
  k: number;
  energyKept: number;
  paramsBefore: number;
  paramsAfter: number;
  /** Set when the layer is left dense; says why. */
  skipped?: boolean;
  reason?: string;
}

export const POLICY_KEYS = ['rank', 'energy', 'rankRatio', 'paramRatio'] as const;
export type PolicyKey = (typeof POLICY_KEYS)[number];

/** The one policy key set, validated; throws BAD_ARGUMENT naming the problem. */
export function policyKind(policy: RankPolicy): PolicyKey {
  const set = POLICY_KEYS.filter((key) => policy[key] !== undefined);
  if (set.length !== 1) {
    throw new RankscopeError('BAD_ARGUMENT', `A rank policy needs exactly one of ${POLICY_KEYS.join(', ')}; got ${set.length ? set.join(', ') : 'none'}.`,
      'Pass one of --rank, --energy, --rank-ratio, --param-ratio or --budget.');
  }
  const key = set[0];
  const value = policy[key]!;
  const ok = key === 'rank' ? Number.isInteger(value) && value >= 1
    : key === 'energy' || key === 'rankRatio' ? value > 0 && value <= 1
    : value > 0 && value < 1;
  if (!Number.isFinite(value) || !ok) {
    const range = key === 'rank' ? 'an integer ≥ 1' : key === 'paramRatio' ? 'in (0, 1)' : 'in (0, 1]';
    throw new RankscopeError('BAD_ARGUMENT', `${key} must be ${range}; got ${value}.`);
  }
  if (policy.roundTo !== undefined && !(Number.isInteger(policy.roundTo) && policy.roundTo >= 1)) {
    throw new RankscopeError('BAD_ARGUMENT', `roundTo must be an integer ≥ 1; got ${policy.roundTo}.`);
  }
  return key;
}

/**
 * A layer's FactorShape from its matrix view (Layer.shape) and conv groups (Layer.groups; the
 * webviews' series carry the same two). One rule for every caller: m = out/groups, n = in.
 */
export function layerFactorShape(layer: { readonly shape: readonly number[]; readonly groups?: number }): FactorShape {
  const groups = layer.groups ?? 1;
  return { m: layer.shape[0] / groups, n: layer.shape[1], groups };
}

export function denseParams(shape: FactorShape): number {
  return shape.groups * shape.m * shape.n;
}

export function factoredParams(shape: FactorShape, k: number): number {
  return shape.groups * k * (shape.m + shape.n);
}

/** Largest rank that still saves parameters, k(m+n) < mn (0 when none does). */
export function breakEvenRank(shape: FactorShape): number {
  return Math.max(0, Math.min(maxRank(shape), Math.ceil((shape.m * shape.n) / (shape.m + shape.n)) - 1));
}

/** Largest rank a layer can take: min(m, n). */
export function maxRank(shape: FactorShape): number {
  return Math.min(shape.m, shape.n);
}

/** Cumulative energy share kept at each rank: curve[k] = Σ_g Σ_{i<k} σ²_gi / Σ σ² (curve[0] = 0). */
export function energyCurve(spectra: GroupSpectra, maxK: number): Float64Array {
  const curve = new Float64Array(maxK + 1);
  let total = 0;
  for (const sv of spectra) for (let i = 0; i < sv.length; i++) total += sv[i] * sv[i];
  for (const sv of spectra) {
    for (let i = 0; i < maxK; i++) {
      const s = i < sv.length ? sv[i] : 0;
      curve[i + 1] += s * s;
    }
  }
  for (let k = 1; k <= maxK; k++) curve[k] += curve[k - 1];
  for (let k = 0; k <= maxK; k++) curve[k] = total > 0 ? Math.min(1, curve[k] / total) : 1;
  return curve;
}

/** Applies `policy` to one layer. Never throws for a valid policy: unsuitable layers are `skipped` with a reason. */
export function chooseRank(policy: RankPolicy, shape: FactorShape, spectra: GroupSpectra): RankChoice {
  const kind = policyKind(policy);
  const full = maxRank(shape);
  const curve = energyCurve(spectra, full);
  const value = policy[kind]!;
  let k: number;
  switch (kind) {
    case 'rank': k = value; break;
    case 'rankRatio': k = Math.ceil(value * full - 1e-9); break;
    case 'paramRatio': k = Math.floor((value * shape.m * shape.n) / (shape.m + shape.n)); break;
    case 'energy': k = smallestRankWithEnergy(curve, value); break;
  }
  if (policy.roundTo && policy.roundTo > 1) {
    const step = policy.roundTo;
    k = kind === 'paramRatio' ? Math.floor(k / step) * step : Math.ceil(k / step) * step;
  }
  const paramsBefore = denseParams(shape);
  if (k < 1) {
    return { k: 0, energyKept: 1, paramsBefore, paramsAfter: paramsBefore, skipped: true, reason: `${kind} ${value} leaves no rank (k < 1)` };
  }
  if (k > full) {
    if (kind === 'rank') {
      return { k, energyKept: 1, paramsBefore, paramsAfter: paramsBefore, skipped: true, reason: `rank ${k} exceeds min(m,n) = ${full}` };
    }
    k = full; // rounding up past the full rank: keep everything
  }
  return decide(shape, k, curve[k], policy.force === true);
}

/** The parameter test every policy ends with: k(m+n) ≥ mn saves nothing, so skip unless forced. */
export function decide(shape: FactorShape, k: number, energyKept: number, force: boolean): RankChoice {
  const paramsBefore = denseParams(shape);
  const paramsAfter = factoredParams(shape, k);
  if (paramsAfter >= paramsBefore && !force) {
    return {
      k, energyKept, paramsBefore, paramsAfter: paramsBefore, skipped: true,
      reason: `rank ${k} saves no parameters (k(m+n) = ${paramsAfter / shape.groups} ≥ mn = ${shape.m * shape.n}); use force to write it anyway`,
    };
  }
  return { k, energyKept, paramsBefore, paramsAfter };
}

/** Smallest k with curve[k] ≥ τ (tolerating rounding in the cumulative sum). */
export function smallestRankWithEnergy(curve: Float64Array, tau: number): number {
  const target = tau - 1e-12;
  let lo = 1;
  let hi = curve.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (curve[mid] >= target) hi = mid;
    else lo = mid + 1;
  }
  return Math.max(1, hi);
}

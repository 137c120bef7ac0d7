// Sensitivity probes (the AIMET / ASVD idea): compress ONE layer at a few candidate ranks and
// measure how much the model loses (mean KL to the original by default — a smooth figure even on
// a small calibration subset — or an accuracy drop). The sweep runs the probes; the allocation
// over them is COMPRESS's 'sensitivity' budget (compress/knapsack.ts), whose request carries the
// probes, so a plan made from them is reproduced by makePlan.
import { makePlan, type Plan, type PlanLayer, type SpectrumLike } from '../compress/plan';
import type { LayerProbes, ProbePoint } from '../compress/knapsack';
import { denseParams, factoredParams, maxRank, type FactorShape } from '../compress/policy';
import type { Layer, Model } from '../model/types';

export interface SensitivityOptions {
  /** Fractions of each layer's dense parameters kept at the probed ranks. */
  fractions?: number[];
  /** Size of the calibration subset the probes run on: samples drawn at random (seeded) from the data. */
  samples?: number;
  /** Seed of the calibration subset's draw (the same seed, data size and count give the same samples). */
  seed?: number;
  /** Probe ranks of a layer whose kept energy is within this of a lower probed rank's are not
   *  measured: they take that rank's loss (the spectrum says the extra rank changes little). */
  energyEpsilon?: number;
  /** 'kl' (default): mean KL to the original; or the drop of top1 / top5 / agreement. */
  measure?: 'kl' | 'top1' | 'top5' | 'agreement';
}

export const DEFAULT_FRACTIONS = [0.05, 0.15, 0.3, 0.5, 0.8];
/** The calibration subset: a few hundred samples keep the KL estimate smooth at a fraction of the cost. */
export const DEFAULT_CALIBRATION_SAMPLES = 256;
export const DEFAULT_CALIBRATION_SEED = 0;
export const DEFAULT_ENERGY_EPSILON = 0.002;

export type { ProbePoint };

/** One probe of a layer: its rank, parameters, kept energy and loss; `from` when the loss is that
 *  of the lower rank `from` (not measured: the kept energies differ by less than the epsilon). */
export type SensitivityProbe = Required<ProbePoint> & { energyKept: number; from?: number };

/** A probed layer: its shape and the loss at each probed rank. */
export type LayerSensitivity = Omit<LayerProbes, 'probes'> & { probes: SensitivityProbe[] };

/**
 * `count` sample indices out of `size`, drawn without replacement by a seeded generator
 * (xorshift32, Fisher–Yates on the first `count` positions), ascending. All when count ≥ size.
 */
export function calibrationIndices(size: number, count: number, seed: number): Int32Array {
  if (count >= size) return Int32Array.from({ length: size }, (_, i) => i);
  let state = (seed >>> 0) ^ 0x9e3779b9 || 1;
  const next = () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 2 ** 32;
  };
  const pool = Int32Array.from({ length: size }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (size - i));
    const t = pool[i]; pool[i] = pool[j]; pool[j] = t;
  }
  return pool.slice(0, count).sort();
}

/**
 * Which candidate probe ranks to measure: ascending by rank, a rank is measured when its kept
 * energy exceeds that of the last measured rank by at least `epsilon`; otherwise it takes that
 * rank's loss (`from`). The smallest rank is always measured.
 */
export function collapseProbeRanks(candidates: { k: number; energyKept: number }[], epsilon: number): { k: number; energyKept: number; from?: number }[] {
  const sorted = [...candidates].sort((a, b) => a.k - b.k);
  let last: { k: number; energyKept: number } | undefined;
  return sorted.map((c) => {
    if (last && c.energyKept - last.energyKept < epsilon) return { ...c, from: last.k };
    last = c;
    return { ...c };
  });
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
 * The layers the probes cover: a rank-1 plan over the selection (same graph checks as any plan);
 * its non-skipped rows are the layers that can be factorized and save at some rank.
 */
export function sensitivityTemplate(model: Model, spectra: SpectrumLike[], layers: string[] | undefined, unsupported?: (l: Layer) => string | undefined): Plan {
  return makePlan(model, spectra, { rank: 1, layers }, unsupported);
}

/** The probes as a 'sensitivity' budget request carries them: layer → [{k, loss}]. */
export function probesOf(layers: LayerSensitivity[]): Record<string, ProbePoint[]> {
  return Object.fromEntries(layers.map((l) => [l.layer, l.probes.map((p) => ({ k: p.k, loss: p.loss }))]));
}

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
  /** Samples of the data the probes run on (the first N). */
  samples?: number;
  /** 'kl' (default): mean KL to the original; or the drop of top1 / top5 / agreement. */
  measure?: 'kl' | 'top1' | 'top5' | 'agreement';
}

export const DEFAULT_FRACTIONS = [0.05, 0.15, 0.3, 0.5, 0.8];

export type { ProbePoint };

/** A probed layer: its shape and the loss at each probed rank. */
export type LayerSensitivity = LayerProbes & { probes: Required<ProbePoint>[] };

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

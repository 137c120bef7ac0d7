// What a cut at rank k means for one layer, computed in the webview from the σ it already holds
// so the numbers follow the cut line live while dragging. The math is the compress core's
// (src/core/compress/policy.ts): each of the `groups` matrices (rows = out/groups, cols = in)
// becomes A (rows×k) · B (k×cols), one k for all groups, energy pooled over the groups.
import {
  breakEvenRank, denseParams, energyCurve as energyByRank, factoredParams, layerFactorShape, maxRank as largestRank,
  smallestRankWithEnergy, type FactorShape, type GroupSpectra,
} from '../../src/core/compress/policy';
import type { SpectrumSeries } from './protocol';

export interface CutSummary {
  rank: number;
  /** Largest rank allowed (min(rows, cols) per group). */
  maxRank: number;
  paramsBefore: number;
  paramsAfter: number;
  /** paramsBefore − paramsAfter (negative: the factorized layer would be larger). */
  saved: number;
  /** Σ of the kept σ² over Σ σ², over all groups. */
  energyKept: number;
  /** Largest rank that still saves parameters (0 when none does). */
  breakEvenRank: number;
}

function shapeOf(s: SpectrumSeries): FactorShape {
  return layerFactorShape({ shape: s.shape, groups: Math.max(1, s.groups) });
}

function spectraOf(s: SpectrumSeries): GroupSpectra {
  return s.groups > 1 && s.groupSingularValues?.length ? s.groupSingularValues : [s.singularValues];
}

/** Energy kept at ranks 0…maxRank (the policies' curve: curve[k]). */
function curveOf(s: SpectrumSeries): Float64Array {
  return energyByRank(spectraOf(s), maxRank(s));
}

export function maxRank(s: SpectrumSeries): number {
  return largestRank(shapeOf(s));
}

export function summarizeCut(s: SpectrumSeries, rank: number): CutSummary {
  const shape = shapeOf(s);
  const max = largestRank(shape);
  const k = Math.min(Math.max(1, Math.round(rank)), max);
  const paramsBefore = denseParams(shape);
  const paramsAfter = factoredParams(shape, k);
  return {
    rank: k,
    maxRank: max,
    paramsBefore,
    paramsAfter,
    saved: paramsBefore - paramsAfter,
    energyKept: curveOf(s)[k],
    breakEvenRank: breakEvenRank(shape),
  };
}

/** Energy kept at each rank 1..maxRank (per-group ranks for grouped convs, like summarizeCut). */
export function energyCurve(s: SpectrumSeries): number[] {
  return Array.from(curveOf(s).subarray(1));
}

/** Smallest rank keeping at least `fraction` of the energy (the energy policy's rank). */
export function rankForEnergy(s: SpectrumSeries, fraction: number): number {
  return smallestRankWithEnergy(curveOf(s), fraction);
}

/** CSV of the drawn series: index, then σ and cumulative energy per layer (RFC 4180 quoting). */
export function spectrumCsv(series: readonly SpectrumSeries[]): string {
  const quote = (s: string): string => (/[",\r\n]/.test(s) || /^[=+\-@\t]/.test(s) ? `"${(/^[=+\-@\t]/.test(s) ? `'${s}` : s).replace(/"/g, '""')}"` : s);
  const header = ['index', ...series.flatMap((s) => [`${s.layer} sigma`, `${s.layer} energy`])].map(quote).join(',');
  const energies = series.map((s) => energyCurve(s));
  const n = Math.max(0, ...series.map((s) => s.singularValues.length));
  const rows: string[] = [header];
  for (let i = 0; i < n; i++) {
    const cells = [String(i + 1)];
    series.forEach((s, j) => {
      const v = s.singularValues[i];
      const e = energies[j]![i];
      cells.push(v === undefined ? '' : String(v), e === undefined ? '' : String(e));
    });
    rows.push(cells.join(','));
  }
  return rows.join('\r\n') + '\r\n';
}

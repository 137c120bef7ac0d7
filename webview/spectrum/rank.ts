// What a cut at rank k means for one layer, computed in the webview from the σ it already holds
// so the numbers follow the cut line live while dragging. Same accounting as the compress core:
// each of the `groups` matrices (rows = out/groups, cols = in) becomes A (rows×k) · B (k×cols).
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

function groupsOf(s: SpectrumSeries): number[][] {
  return s.groups > 1 && s.groupSingularValues?.length ? s.groupSingularValues : [s.singularValues];
}

export function maxRank(s: SpectrumSeries): number {
  const rows = s.shape[0] / Math.max(1, s.groups);
  return Math.min(rows, s.shape[1]);
}

export function summarizeCut(s: SpectrumSeries, rank: number): CutSummary {
  const groups = Math.max(1, s.groups);
  const rows = s.shape[0] / groups;
  const cols = s.shape[1];
  const max = Math.min(rows, cols);
  const k = Math.min(Math.max(1, Math.round(rank)), max);
  let kept = 0;
  let total = 0;
  for (const sv of groupsOf(s)) {
    for (let i = 0; i < sv.length; i++) {
      const e = sv[i]! * sv[i]!;
      total += e;
      if (i < k) kept += e;
    }
  }
  const paramsBefore = s.shape[0] * s.shape[1];
  const paramsAfter = groups * k * (rows + cols);
  return {
    rank: k,
    maxRank: max,
    paramsBefore,
    paramsAfter,
    saved: paramsBefore - paramsAfter,
    energyKept: total > 0 ? kept / total : 1,
    breakEvenRank: Math.min(max, Math.ceil((rows * cols) / (rows + cols)) - 1),
  };
}

/** Cumulative energy after each index: out[i] = Σ_{j≤i} σ_j² / Σ σ² (single-matrix view). */
export function cumulativeEnergy(sv: readonly number[]): number[] {
  let total = 0;
  for (const v of sv) total += v * v;
  const out = new Array<number>(sv.length);
  let acc = 0;
  for (let i = 0; i < sv.length; i++) {
    acc += sv[i]! * sv[i]!;
    out[i] = total > 0 ? acc / total : 1;
  }
  return out;
}

/** Energy kept at each rank 1..maxRank (per-group ranks for grouped convs, like summarizeCut). */
export function energyCurve(s: SpectrumSeries): number[] {
  const groups = groupsOf(s);
  if (groups.length === 1) return cumulativeEnergy(groups[0]!).slice(0, maxRank(s));
  let total = 0;
  for (const sv of groups) for (const v of sv) total += v * v;
  const out = new Array<number>(maxRank(s)).fill(0);
  for (const sv of groups) {
    let acc = 0;
    for (let i = 0; i < out.length; i++) {
      acc += (sv[i] ?? 0) ** 2;
      out[i]! += total > 0 ? acc / total : 1 / groups.length;
    }
  }
  return out;
}

/** Smallest rank keeping at least `fraction` of the energy. */
export function rankForEnergy(s: SpectrumSeries, fraction: number): number {
  const max = maxRank(s);
  // Grouped energy is monotone in k, so a binary search over summarizeCut is exact.
  let lo = 1;
  let hi = max;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (summarizeCut(s, mid).energyKept >= fraction - 1e-12) hi = mid;
    else lo = mid + 1;
  }
  return lo;
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

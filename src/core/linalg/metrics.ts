// Per-layer spectrum metrics, from the singular values alone.
import { fitPowerLaw } from './powerLaw';

export interface SpectrumMetrics {
  /** ‖W‖_F = √Σσ². */
  frobenius: number;
  /** ‖W‖₂ = σ_max. */
  spectral: number;
  /** ‖W‖_F² / σ_max² (0 for a zero matrix). */
  stableRank: number;
  /** Roy & Vetterli: exp of the entropy of p_i = σ_i / Σσ. */
  effectiveRank: number;
  /** Smallest k keeping that fraction of the energy Σσ². */
  energyRank: { '0.9': number; '0.95': number; '0.99': number };
  /** σ > σ_max·max(m, n)·ε₃₂: numpy's matrix_rank for float32 weights (what every layer is widened to). */
  numericalRank: number;
  /** Power-law exponent of the eigenvalues of WᵀW (WeightWatcher's alpha); undefined below 50 eigenvalues. */
  alpha?: number;
  /** KS distance of that fit. */
  alphaKs?: number;
  /** Why alpha is undefined. */
  alphaReason?: string;
}

export const ENERGY_LEVELS = ['0.9', '0.95', '0.99'] as const;

/** `sv` descending, as singularValues returns it; shape = [rows, cols] of the matrix. */
export function spectrumMetrics(sv: ArrayLike<number>, shape: readonly [number, number]): SpectrumMetrics {
  const n = sv.length;
  const spectral = n > 0 ? sv[0] : 0;
  let energy = 0;
  let l1 = 0;
  for (let i = 0; i < n; i++) {
    energy += sv[i] * sv[i];
    l1 += sv[i];
  }
  let entropy = 0;
  if (l1 > 0) {
    for (let i = 0; i < n; i++) {
      const p = sv[i] / l1;
      if (p > 0) entropy -= p * Math.log(p);
    }
  }
  const energyRank = { '0.9': 0, '0.95': 0, '0.99': 0 };
  for (const level of ENERGY_LEVELS) energyRank[level] = rankForEnergy(sv, energy, Number(level));
  // float32 ε: the weights carry no more precision, and the Gram route's noise floor (~1e-7·σ_max) sits below it.
  const tolerance = spectral * Math.max(shape[0], shape[1]) * 2 ** -23;
  let numericalRank = 0;
  while (numericalRank < n && sv[numericalRank] > tolerance) numericalRank++;
  const eigenvalues = Array.from(sv, (s) => s * s);
  const fit = fitPowerLaw(eigenvalues);
  return {
    frobenius: Math.sqrt(energy),
    spectral,
    stableRank: spectral > 0 ? energy / (spectral * spectral) : 0,
    effectiveRank: l1 > 0 ? Math.exp(entropy) : 0,
    energyRank,
    numericalRank,
    ...(fit.alpha !== undefined ? { alpha: fit.alpha, alphaKs: fit.ks } : { alphaReason: fit.reason }),
  };
}

/** Smallest k with Σ_{i<k} σ_i² ≥ fraction·total (0 for a zero matrix). */
export function rankForEnergy(sv: ArrayLike<number>, total: number, fraction: number): number {
  if (total <= 0) return 0;
  const target = fraction * total * (1 - 1e-12); // forgive rounding at exact thresholds
  let kept = 0;
  for (let k = 0; k < sv.length; k++) {
    kept += sv[k] * sv[k];
    if (kept >= target) return k + 1;
  }
  return sv.length;
}

// Heavy-tail exponent of a layer's eigenvalue spectrum, as WeightWatcher reports it: a
// Clauset–Shalizi–Newman power-law fit p(x) ∝ x^−α for x ≥ xmin to the eigenvalues λ = σ² of
// WᵀW, α by maximum likelihood, xmin by the smallest Kolmogorov–Smirnov distance.

export interface PowerLawFit {
  alpha?: number;
  /** KS distance of the chosen fit. */
  ks?: number;
  xmin?: number;
  /** Samples in the fitted tail. */
  tailSize?: number;
  /** Why alpha is undefined. */
  reason?: string;
}

/** Fewer eigenvalues than this and the fit says nothing useful. */
export const MIN_EIGENVALUES = 50;
/** Smallest tail a candidate xmin may leave: tiny tails give spuriously small KS distances. */
const MIN_TAIL = 10;

/** Fits x ≥ xmin (positive samples only; zeros are rank deficiency, not part of the law). */
export function fitPowerLaw(samples: ArrayLike<number>): PowerLawFit {
  const x = Float64Array.from(samples).filter((v) => v > 0 && Number.isFinite(v)).sort();
  if (samples.length < MIN_EIGENVALUES) {
    return { reason: `only ${samples.length} eigenvalues; a power-law fit needs at least ${MIN_EIGENVALUES}` };
  }
  if (x.length < MIN_EIGENVALUES) {
    return { reason: `only ${x.length} nonzero eigenvalues; a power-law fit needs at least ${MIN_EIGENVALUES}` };
  }
  const N = x.length;
  // suffixLog[t] = Σ_{i ≥ t} ln x_i
  const logs = x.map(Math.log);
  const suffixLog = new Float64Array(N + 1);
  for (let i = N - 1; i >= 0; i--) suffixLog[i] = suffixLog[i + 1] + logs[i];
  let best: PowerLawFit | undefined;
  for (let t = 0; t <= N - MIN_TAIL; t++) {
    if (t > 0 && x[t] === x[t - 1]) continue; // same xmin as before
    const n = N - t;
    const lnMin = logs[t];
    const sumLog = suffixLog[t] - n * lnMin;
    if (sumLog <= 0) continue;
    const alpha = 1 + n / sumLog;
    // KS: max |empirical CDF − (1 − (x/xmin)^(1−α))| over the tail, both sides of each step.
    let ks = 0;
    for (let i = 0; i < n; i++) {
      const model = 1 - Math.exp((1 - alpha) * (logs[t + i] - lnMin));
      const d = Math.max(Math.abs((i + 1) / n - model), Math.abs(i / n - model));
      if (d > ks) ks = d;
      if (best?.ks !== undefined && ks >= best.ks) break; // cannot win any more
    }
    if (best?.ks === undefined || ks < best.ks) best = { alpha, ks, xmin: x[t], tailSize: n };
  }
  return best ?? { reason: 'no candidate xmin gave a valid fit' };
}

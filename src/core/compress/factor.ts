// Balanced low-rank factors of one matrix: W (m×n) ≈ A (m×k) · B (k×n) with A = U√Σ, B = √ΣVᵀ.
// Balanced so both factors have the same scale (better conditioned for fp16 and for fine-tuning).
import { progressiveTriplets } from '../linalg/leading';

export interface Triplets {
  /** m×k, row-major. */
  u: Float64Array;
  s: Float64Array;
  /** n×k, row-major. */
  v: Float64Array;
}

export interface Factors {
  m: number;
  n: number;
  k: number;
  /** m×k, row-major. */
  a: Float64Array;
  /** k×n, row-major. */
  b: Float64Array;
  /** Σ of the kept σ² over ‖W‖²_F. */
  energyKept: number;
}

export function balancedFactors(t: Triplets, m: number, n: number, k: number, totalEnergy: number): Factors {
  const a = new Float64Array(m * k);
  const b = new Float64Array(k * n);
  let kept = 0;
  for (let j = 0; j < k; j++) {
    const root = Math.sqrt(Math.max(0, t.s[j]));
    kept += t.s[j] * t.s[j];
    for (let i = 0; i < m; i++) a[i * k + j] = t.u[i * k + j] * root;
    for (let i = 0; i < n; i++) b[j * n + i] = t.v[i * k + j] * root;
  }
  return { m, n, k, a, b, energyKept: totalEnergy > 0 ? Math.min(1, kept / totalEnergy) : 1 };
}

/** The rank-k balanced factors inside rank-K ones; energy from ‖A[:, j]‖² = σⱼ. */
export function truncateFactors(f: Factors & { total: number }, k: number): Factors & { total: number } {
  if (k === f.k) return f;
  const { m, n, k: K } = f;
  const a = new Float64Array(m * k);
  let kept = 0;
  const sigma = new Float64Array(k);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < k; j++) {
      const v = f.a[i * K + j];
      a[i * k + j] = v;
      sigma[j] += v * v;
    }
  }
  for (let j = 0; j < k; j++) kept += sigma[j] * sigma[j];
  return { m, n, k, a, b: f.b.slice(0, k * n), total: f.total, energyKept: f.total > 0 ? Math.min(1, kept / f.total) : 1 };
}

/**
 * Factorizes one m×n row-major matrix to rank k with LINALG's truncated SVD: only the top k
 * triplets (the leading route for large layers and small k, else the full one). `total` is ‖W‖²_F.
 */
export function factorize(data: Float32Array | Float64Array, m: number, n: number, k: number, label?: string): Factors & { total: number } {
  const triplets = progressiveTriplets(data, m, n, () => k, label, { firstBlock: 2 * k });
  return { ...balancedFactors(triplets, m, n, k, triplets.totalEnergy), total: triplets.totalEnergy };
}

/** The factors of Wᵀ ≈ A·B as factors of W ≈ Bᵀ·Aᵀ (a worker given a weight as stored, transposed). */
export function transposeFactors(f: Factors): Factors {
  const { m, n, k } = f;
  const a = new Float64Array(n * k), b = new Float64Array(k * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) a[i * k + j] = f.b[j * n + i];
  for (let j = 0; j < k; j++) for (let i = 0; i < m; i++) b[j * m + i] = f.a[i * k + j];
  return { m: n, n: m, k, a, b, energyKept: f.energyKept };
}

/** A·B as a row-major m×n matrix (restore, and re-factorizing a compressed layer). */
export function multiply(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const row = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const bRow = p * n;
      for (let j = 0; j < n; j++) out[row + j] += aip * b[bRow + j];
    }
  }
  return out;
}

// Symmetric eigenproblem in two steps: Householder reduction to tridiagonal form (in the WASM
// kernel memory, blockedTridiagonal.ts), then implicit QL on the tridiagonal (here).
// Values only by default; eigenvectors when asked (QL rotations + back-transformation).
import { kernels } from './wasm';

export interface Tridiagonal {
  /** Diagonal, length n. */
  d: Float64Array;
  /** Subdiagonal: e[k] couples k and k+1; e[n-1] = 0. */
  e: Float64Array;
  /** Reflectors H_k = I − tau[k]·v_k·v_kᵀ (v_k stored as row k of an n×n block at `vOffset`, in doubles). */
  reflectors?: { vOffset: number; tau: Float64Array };
}

/**
 * Eigenvalues of the symmetric tridiagonal (d, e) by implicit QL with Wilkinson-like shifts
 * (EISPACK tql2, as in JAMA). d is overwritten with the eigenvalues (unsorted), e destroyed.
 * With `zt` (float64 index of an n×n row-major identity in kernel memory), also accumulates
 * eigenvectors: row i of zt ends as the eigenvector of d[i]. With `width` < n, zt is n rows of
 * that width holding Mᵀ for some M (width×n): row i ends as M·(the eigenvector of d[i]), the same
 * rotations on fewer entries (M = the rows of an orthogonal Q gives those entries of Q·eigenvector).
 * Bounded: after `maxIterations` QL steps in all (LAPACK's dsteqr allows 30 per eigenvalue; about
 * 2 are needed) it stops and returns false, leaving d, e and zt unusable; true when it converged.
 */
export function tridiagonalEigen(d: Float64Array, e: Float64Array, zt?: number, maxIterations = QL_ITERATIONS_PER_VALUE * d.length, width = d.length): boolean {
  const n = d.length;
  if (n === 0) return true;
  const k = kernels();
  const eps = 2 ** -52;
  let f = 0;
  let tst1 = 0;
  e[n - 1] = 0;
  let iterations = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]) > eps * tst1) m++;
    if (m > l) {
      do {
        if (++iterations > maxIterations) return false;
        let g = d[l];
        let p = (d[l + 1] - g) / (2 * e[l]);
        let r = pythag(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l] / (p + r);
        d[l + 1] = e[l] * (p + r);
        const dl1 = d[l + 1];
        let h = g - d[l];
        for (let i = l + 2; i < n; i++) d[i] -= h;
        f += h;
        p = d[m];
        let c = 1, c2 = 1, c3 = 1, s = 0, s2 = 0;
        const el1 = e[l + 1];
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = pythag(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * d[i] - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]);
          if (zt !== undefined) k.rotateRows((zt + i * width) * 8, (zt + (i + 1) * width) * 8, width, c, s);
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
  return true;
}

/** The QL budget per eigenvalue (LAPACK dsteqr's MAXIT). */
export const QL_ITERATIONS_PER_VALUE = 30;

/**
 * All eigenvalues of the tridiagonal (d, e), unsorted: implicit QL, and bisection where QL runs
 * out of its iteration budget. d and e are left untouched.
 */
export function tridiagonalEigenvalues(d: Float64Array, e: Float64Array, maxQlIterations?: number): Float64Array {
  const values = d.slice();
  if (tridiagonalEigen(values, e.slice(), undefined, maxQlIterations)) return values;
  return bisectionEigenvalues(d, e);
}

/**
 * All eigenvalues of the tridiagonal (d, e) (e[i] couples i and i+1), ascending, by bisection on
 * Sturm counts (LAPACK dstebz): slow (O(n²·60)) but it cannot fail to converge, which is why it
 * backs QL. Each value is found to within 4ε·‖T‖, each search is at most BISECTION_STEPS halvings.
 */
export function bisectionEigenvalues(d: Float64Array, e: Float64Array): Float64Array {
  const n = d.length;
  const eps = 2 ** -52;
  const e2 = new Float64Array(n);
  let lo = Infinity, hi = -Infinity, maxE2 = 0;
  for (let i = 0; i < n; i++) {
    const off = (i > 0 ? Math.abs(e[i - 1]) : 0) + (i < n - 1 ? Math.abs(e[i]) : 0);
    lo = Math.min(lo, d[i] - off);
    hi = Math.max(hi, d[i] + off);
    if (i < n - 1) {
      e2[i] = e[i] * e[i];
      maxE2 = Math.max(maxE2, e2[i]);
    }
  }
  const values = new Float64Array(n);
  const norm = Math.max(Math.abs(lo), Math.abs(hi));
  if (n === 0 || norm === 0) return values;
  // Pivots smaller than this are replaced by it (dstebz's PIVMIN), so a count never divides by 0.
  const pivmin = 2 ** -1022 * Math.max(1, maxE2);
  const tolerance = 4 * eps * norm;
  // Gershgorin bounds, widened so that every eigenvalue lies strictly inside.
  const widen = 2 * eps * n * norm + 2 * pivmin;
  lo -= widen;
  hi += widen;
  /** How many eigenvalues are < x (the negative pivots of the LDLᵀ of T − x·I). */
  const below = (x: number): number => {
    let count = 0;
    let q = d[0] - x;
    if (Math.abs(q) < pivmin) q = -pivmin;
    if (q < 0) count++;
    for (let i = 1; i < n; i++) {
      q = d[i] - x - e2[i - 1] / q;
      if (Math.abs(q) < pivmin) q = -pivmin;
      if (q < 0) count++;
    }
    return count;
  };
  for (let j = 0; j < n; j++) {
    // Invariant: below(a) ≤ j < below(b), i.e. the (j+1)-th smallest value lies in [a, b).
    let a = lo, b = hi;
    for (let step = 0; step < BISECTION_STEPS && b - a > tolerance; step++) {
      const mid = a + (b - a) / 2;
      if (mid <= a || mid >= b) break; // adjacent doubles
      if (below(mid) > j) b = mid;
      else a = mid;
    }
    values[j] = a + (b - a) / 2;
  }
  return values;
}

/** Halvings from the Gershgorin interval to 4ε·‖T‖ take about 52; well past that the interval is already two adjacent doubles. */
const BISECTION_STEPS = 128;

/** √(a² + b²): Math.hypot is several times slower in V8 and this is the QL's inner loop; fall back to it only where squaring over- or underflows. */
function pythag(a: number, b: number): number {
  const r = Math.sqrt(a * a + b * b);
  return r < Infinity && r > 1e-150 ? r : Math.hypot(a, b);
}

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
 * eigenvectors: row i of zt ends as the eigenvector of d[i].
 */
export function tridiagonalEigen(d: Float64Array, e: Float64Array, zt?: number): void {
  const n = d.length;
  if (n === 0) return;
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
        if (++iterations > 60 * n) throw new Error('tridiagonal QL did not converge');
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
          if (zt !== undefined) k.rotateRows((zt + i * n) * 8, (zt + (i + 1) * n) * 8, n, c, s);
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    d[l] += f;
    e[l] = 0;
  }
}

/** √(a² + b²): Math.hypot is several times slower in V8 and this is the QL's inner loop; fall back to it only where squaring over- or underflows. */
function pythag(a: number, b: number): number {
  const r = Math.sqrt(a * a + b * b);
  return r < Infinity && r > 1e-150 ? r : Math.hypot(a, b);
}

// Blocked (level-3) Householder tridiagonalization, as LAPACK's dsytrd/dlatrd (lower): the
// reflectors of a panel of PANEL columns are built one by one against the matrix as it was at the
// panel's start (a read-only symmetric matrix–vector product, then O(n·PANEL) corrections from the
// panel's earlier reflectors), and the trailing matrix gets their rank-2·PANEL update at once
// (A −= V·Wᵀ + W·Vᵀ) on the packed register tiles of gemmPacked. Half the flops become
// cache-blocked matrix products and the matrix is no longer written back at every column, so cost
// follows the flop count on layers whose Gram is far larger than the caches. Same reflectors (same
// v, τ normalization) as tridiagonalize, so the back-transformation is shared.
import { ceil4, lowerUpdate, tileSlack } from './gram';
import { runTasks, teamSize } from './team';
import type { Tridiagonal } from './tridiagonal';
import { kernels, kernelMemory } from './wasm';

/** Below this trailing order a column's matrix–vector product (under ~0.5 ms) is not worth a round trip to the helper. */
const SPLIT_SYMV_MIN = 1024;

/**
 * Columns per panel: half the rank of each trailing update. The panel's corrections cost
 * O(n²·PANEL) at level 2: at n = 768 panels of 16 took 38.5–38.6 ms against 42.4–43.0 ms for 32
 * (one thread, fused kernels); at n = 2048 and 4096 the two are within 2 %.
 */
export const PANEL = 16;

/** Work space (doubles) tridiagonalizeBlocked needs at `work`. */
export function blockedWorkDoubles(n: number): number {
  return 2 * PANEL * n + 3 * n + 2 * PANEL + 2 * PANEL * ceil4(n) + 16;
}

/**
 * Reduces the symmetric matrix whose lower triangle is stored row-major at float64 index `a` of
 * kernel memory (n×n, destroyed, with tileSlack(n) spare doubles after it) to tridiagonal
 * T = Qᵀ·A·Q, Q = H_0·H_1⋯H_{n-3}. Work space: blockedWorkDoubles(n) at `work`; with
 * `keepReflectors`, v_k is stored as row k of an n×n block at `vOffset` (as tridiagonalize does).
 */
export function tridiagonalizeBlocked(a: number, n: number, work: number, keepReflectors = false, vOffset = 0): Tridiagonal {
  const K = kernels();
  const n4 = ceil4(n);
  const VT = (work + 1) & ~1; // PANEL rows of reflectors v_t (zero outside their support)
  const WT = VT + PANEL * n; // PANEL rows of w_t = τ·A·v − (τ²/2)(vᵀA·v)·v
  const P = WT + PANEL * n;
  const V = P + n;
  const P2 = V + n; // the helper's share of p
  const CV = P2 + n, CW = CV + PANEL; // the panel's coefficients V[col, :], W[col, :] or Vᵀv, Wᵀv
  const PV = (CW + PANEL + 1) & ~1; // packed strips of VT, then of WT, for the trailing update
  const PW = PV + PANEL * n4;
  const F = kernelMemory(Math.max(PW + PANEL * n4, a + n * n + tileSlack(n), keepReflectors ? vOffset + n * n : 0));
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const tau = new Float64Array(n);
  if (keepReflectors) F.fill(0, vOffset, vOffset + n * n);
  /** p = A·v on the block [lo, n), rows split (by area) between the team's threads when worth it. */
  const symv = (lo: number) => {
    F.fill(0, P + lo, P + n);
    if (teamSize() === 1 || n - lo < SPLIT_SYMV_MIN) {
      K.symvLower(n, lo, lo, n, a * 8, V * 8, P * 8);
      return;
    }
    const rs = lo + Math.round((n - lo) / Math.SQRT2);
    F.fill(0, P2 + lo, P2 + n);
    runTasks([[['symvLower', n, lo, lo, rs, a * 8, V * 8, P * 8]], [['symvLower', n, lo, rs, n, a * 8, V * 8, P2 * 8]]]);
    for (let i = lo; i < n; i++) F[P + i] += F[P2 + i];
  };
  for (let c0 = 0; c0 < n - 1; c0 += PANEL) {
    const width = Math.min(PANEL, n - 1 - c0);
    F.fill(0, VT, P);
    for (let t = 0; t < width; t++) {
      const col = c0 + t;
      // Column col as the panel's earlier reflectors leave it (rows ≥ col), gathered into V:
      // a_col −= V·(W[col, :])ᵀ + W·(V[col, :])ᵀ. The matrix itself need not keep it.
      for (let i = col; i < n; i++) F[V + i] = F[a + i * n + col];
      if (t > 0) {
        for (let s = 0; s < t; s++) {
          F[CW + s] = F[WT + s * n + col];
          F[CV + s] = F[VT + s * n + col];
        }
        K.axpyRows(t, n - col, (VT + col) * 8, n, CW * 8, (V + col) * 8);
        K.axpyRows(t, n - col, (WT + col) * 8, n, CV * 8, (V + col) * 8);
      }
      d[col] = F[V + col];
      let sigma = 0;
      for (let i = col + 1; i < n; i++) sigma += F[V + i] * F[V + i];
      const x0 = F[V + col + 1];
      if (col === n - 2 || sigma === 0) {
        e[col] = x0;
        continue; // H = I: v_t = w_t = 0
      }
      const norm = Math.sqrt(sigma);
      const alpha = x0 >= 0 ? -norm : norm;
      e[col] = alpha;
      const v0 = x0 - alpha;
      F[V + col + 1] = v0;
      const t2 = 2 / (sigma - x0 * x0 + v0 * v0);
      // p = A·v with the panel-start matrix, then the earlier reflectors' share: −V(Wᵀv) − W(Vᵀv).
      symv(col + 1);
      if (t > 0) {
        const lo = col + 1;
        K.dotRows(t, n - lo, (WT + lo) * 8, n, (V + lo) * 8, CW * 8);
        K.dotRows(t, n - lo, (VT + lo) * 8, n, (V + lo) * 8, CV * 8);
        K.axpyRows(t, n - lo, (VT + lo) * 8, n, CW * 8, (P + lo) * 8);
        K.axpyRows(t, n - lo, (WT + lo) * 8, n, CV * 8, (P + lo) * 8);
      }
      let kv = 0;
      for (let i = col + 1; i < n; i++) {
        F[P + i] *= t2;
        kv += F[V + i] * F[P + i];
      }
      kv *= t2 / 2;
      const vt = VT + t * n, wt = WT + t * n;
      for (let i = col + 1; i < n; i++) {
        F[vt + i] = F[V + i];
        F[wt + i] = F[P + i] - kv * F[V + i];
      }
      if (keepReflectors) {
        tau[col] = t2;
        F.copyWithin(vOffset + col * n + col + 1, V + col + 1, V + n);
      }
    }
    // The trailing block [r0, n): A −= V·Wᵀ + W·Vᵀ, lower-triangle tiles, block columns of NC.
    const r0 = c0 + width;
    const rest = ceil4(n - r0);
    K.packStrips((VT + r0) * 8, n, PANEL, n - r0, PV * 8);
    K.packStrips((WT + r0) * 8, n, PANEL, n - r0, PW * 8);
    lowerUpdate(PANEL, rest, PV, PW, a + r0 * n + r0, n, -1, { pa: PW, pb: PV });
  }
  d[n - 1] = F[a + (n - 1) * n + n - 1];
  return { d, e, reflectors: keepReflectors ? { vOffset, tau } : undefined };
}

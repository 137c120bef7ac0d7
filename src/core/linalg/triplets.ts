// Top-k singular triplets W ≈ U_k·Σ_k·V_kᵀ for factorization, at any k up to min(m, n).
// Eigenvectors of the float64 Gram matrix of the smaller side give one set of singular vectors;
// the other is W·v (or Wᵀ·u) normalized. Then U_k·Σ_k·V_kᵀ = W·V_k·V_kᵀ up to O(δσ) per
// component, so the reconstruction error is the projection residual, accurate even where small σ
// are not. The Gram's eigenvectors: for k ≤ n/6 only the top k, by inverse iteration on the
// tridiagonal and the reflectors' back-transformation (O(n²k)); else all of them by QL (O(n³)).
// Small matrices use one-sided Jacobi. Every route is bounded and falls back to the next:
// inverse iteration → QL with vectors → Jacobi on W, and Jacobi (small) → the Gram route.
import { RankscopeError } from '../errors';
import { blockedWorkDoubles, PANEL, tridiagonalizeBlocked } from './blockedTridiagonal';
import { ceil4, gramToKernelMemory, type GramLayout } from './gram';
import { tridiagonalEigenvectors } from './inverseIteration';
import { jacobiSvd } from './jacobi';
import { crossProductOrt } from './ortGemm';
import { multiplyAdd, productWork } from './product';
import { applyReflectorsBlocked } from './reflectors';
import { checkKernelMemory, checkMatrix, SMALL_SIDE, sqrtDescending, type MatrixData, type SolverLimits } from './singularValues';
import type { ValueScan } from './scale';
import { runKernelCalls, runTasks, teamSize, type Task } from './team';
import { tridiagonalEigen, tridiagonalEigenvalues } from './tridiagonal';
import { kernels, kernelMemory } from './wasm';

export interface SingularTriplets {
  /** rows×k, row-major; unit columns (zero where σ and W·v are 0). */
  u: Float64Array;
  /** k values, descending. */
  s: Float64Array;
  /** cols×k, row-major; orthonormal columns. */
  v: Float64Array;
  /** All min(rows, cols) singular values, descending (the same as singularValues gives); absent for k = 0. */
  all?: Float64Array;
}

/**
 * Picks k from all singular values (descending): lets a caller apply a rank policy between the
 * values and the vectors, so one Gram and one tridiagonalization serve both.
 */
export type RankChooser = (singularValues: Float64Array) => number;

/** Top-k triplets; `k` may be a RankChooser called with all singular values once they are known. */
export function topSingularTriplets(data: MatrixData, rows: number, cols: number, k: number | RankChooser, label = 'matrix'): SingularTriplets {
  return checkedTriplets(data, rows, cols, k, label, checkMatrix(data, rows, cols, label));
}

/** topSingularTriplets for a matrix checkMatrix has passed (`scan` is its result: no second pass over the values). */
export function checkedTriplets(data: MatrixData, rows: number, cols: number, k: number | RankChooser, label: string, scan: ValueScan): SingularTriplets {
  const r = Math.min(rows, cols);
  const checkRank = (rank: number) => {
    if (!Number.isInteger(rank) || rank < 0 || rank > r) {
      throw new RankscopeError('BAD_ARGUMENT', `${label}: rank ${rank} is out of range for a ${rows}×${cols} matrix (0…${r}).`);
    }
    return rank;
  };
  if (typeof k === 'number' && checkRank(k) === 0) return { u: new Float64Array(0), s: new Float64Array(0), v: new Float64Array(0) };
  checkKernelMemory(tripletsMemory(rows, cols, typeof k === 'number' ? k : r), rows, cols, label);
  const choose = typeof k === 'number' ? () => k : (all: Float64Array) => checkRank(k(all));
  if (r >= SMALL_SIDE) return tripletsViaGram(data, rows, cols, choose, 'auto', {}, label, scan.maxAbs);
  return tripletsJacobi(data, rows, cols, choose) ?? tripletsViaGram(data, rows, cols, choose, 'auto', {}, label, scan.maxAbs);
}

/** Doubles of kernel memory the full route needs for at most `most` triplets. */
export function tripletsMemory(rows: number, cols: number, most: number): number {
  const r = Math.min(rows, cols), m = Math.max(rows, cols);
  return m * r + 3 * r * r + most * r + r * (most + 1) + m * (most + 1) + 8 * r + 2 * PANEL * r;
}

/**
 * Above this share of n, all eigenvectors by QL cost about as much as k inverse iterations with
 * their re-orthogonalization (O(n·k²)) and checks (measured on 768×768: even at k ≈ 150).
 */
const INVERSE_ITERATION_MAX_SHARE = 1 / 6;

/**
 * Which route computes the Gram eigenvectors: 'inverse' (top k by inverse iteration on the
 * tridiagonal, O(n·k) + O(n²·k) back-transform), 'full' (all of them by QL, O(n³)), or 'auto'
 * (inverse for k ≤ n/6, falling back to full when its check fails). Exposed for tests.
 */
export type EigenvectorRoute = 'auto' | 'inverse' | 'full';

/** From this many vectors on, the back-transformation runs blocked (compact WY, level 3). */
const BLOCKED_BACK_TRANSFORM_MIN = 48;

/**
 * Exposed for tests on every shape; `limits` lowers the iteration budgets to drive the fallbacks.
 * `maxAbs`: the largest |w| when the caller has scanned W already.
 */
export function tripletsViaGram(data: MatrixData, rows: number, cols: number, rank: number | RankChooser, route: EigenvectorRoute = 'auto',
  limits: SolverLimits = {}, label = 'matrix', maxAbs?: number): SingularTriplets {
  const n = Math.min(rows, cols);
  return tripletsFromGram(data, gramToKernelMemory(data, rows, cols, blockedWorkDoubles(n) + 2 * n * n, true, undefined, maxAbs), rank, route, limits, label);
}

/**
 * The full route from the Gram layout of `data` already in kernel memory (X kept); G is destroyed.
 * `data` itself is only read by the last fallback (Jacobi on W).
 */
export function tripletsFromGram(data: MatrixData, probe: GramLayout, rank: number | RankChooser, route: EigenvectorRoute = 'auto',
  limits: SolverLimits = {}, label = 'matrix'): SingularTriplets {
  const n = probe.n;
  const rows = probe.tall ? probe.m : n, cols = probe.tall ? n : probe.m;
  // Layout after X and G: work, reflectors (n²), eigenvectors of T (n², full route), then the
  // selected rows (k·n) last, so memory can grow once k is known.
  const work = probe.end, refl = work + blockedWorkDoubles(n), zt = refl + n * n, sel = zt + n * n;
  const { d, e, reflectors } = tridiagonalizeBlocked(probe.g, n, work, true, refl);
  const eigenvalues = tridiagonalEigenvalues(d, e, limits.qlIterations);
  const descending = Float64Array.from(eigenvalues).sort().reverse();
  const all = sqrtDescending(eigenvalues, probe.scale);
  const k = typeof rank === 'number' ? rank : rank(all);
  if (k === 0) return { u: new Float64Array(0), s: new Float64Array(0), v: new Float64Array(0), all };
  const values = descending.slice(0, k);
  const triedInverse = route === 'inverse' || (route === 'auto' && k <= INVERSE_ITERATION_MAX_SHARE * n);
  let inverse = triedInverse ? tridiagonalEigenvectors(d, e, values) : undefined;
  if (route === 'inverse' && !inverse) throw new Error('inverse iteration failed its check');
  const F = kernelMemory(sel + k * n);
  if (!inverse) {
    // All eigenvectors of T by QL (rows of zt), then the k of the largest eigenvalues.
    F.fill(0, zt, zt + n * n);
    for (let i = 0; i < n; i++) F[zt + i * n + i] = 1;
    const dq = d.slice(), eq = e.slice();
    if (tridiagonalEigen(dq, eq, zt, limits.qlIterations)) {
      const full = Array.from(dq.keys()).sort((a, b) => dq[b] - dq[a]).slice(0, k);
      full.forEach((src, t) => {
        values[t] = dq[src];
        F.copyWithin(sel + t * n, zt + src * n, zt + src * n + n);
      });
    } else {
      // QL ran out of iterations: inverse iteration if not tried yet, else Jacobi on W itself.
      inverse = triedInverse ? undefined : tridiagonalEigenvectors(d, e, values);
      if (!inverse) {
        const jacobi = tripletsJacobi(data, rows, cols, () => k, limits);
        if (!jacobi) throw new RankscopeError('NUMERIC', `${label}: the singular vectors of a ${rows}×${cols} matrix did not converge.`, 'Report this matrix (it is a solver bug).');
        return { ...jacobi, all };
      }
    }
  }
  if (inverse) F.set(inverse, sel);
  // Eigenvectors of G = Q·z, Q = H_0⋯H_{n-3}: apply the last reflector first.
  // Each row is independent: with a team, row pieces each take all reflectors.
  const { tau } = reflectors!;
  const backTransform = (r0: number, r1: number): Task => {
    const calls: Task = [];
    for (let c = n - 3; c >= 0; c--) if (tau[c] !== 0) calls.push(['reflectRows', (sel + r0 * n) * 8, r1 - r0, n, (refl + c * n) * 8, c + 1, tau[c]]);
    return calls;
  };
  if (k >= BLOCKED_BACK_TRANSFORM_MIN) applyReflectorsBlocked(sel, k, n, refl, tau, sel + k * n);
  else if (teamSize() === 1 || k < 2) runKernelCalls(backTransform(0, k));
  else runTasks([backTransform(0, k >> 1), backTransform(k >> 1, k)]);
  return fromGramEigenvectors(probe, sel, values, all);
}

/**
 * The triplets from k unit eigenvectors of the Gram matrix (rows of a k×n block at `sel` in kernel
 * memory, after everything else the caller keeps there) and their eigenvalues: σ = √λ, the Gram
 * side as they are, the other side X·v normalized. Shared by the full and the leading routes.
 */
export function fromGramEigenvectors(probe: GramLayout, sel: number, values: Float64Array, all?: Float64Array): SingularTriplets {
  const { n, m, xt } = probe;
  const k = values.length;
  // Gram eigenvectors as columns Z (n×kp), then the other side C = X·Z (m×kp; X = W when tall,
  // Wᵀ when wide). X in kernel memory: kp = k padded to the 4-wide tiles, the product blocked
  // there. X kept as Xᵀ chunks (ONNX Runtime's Gram route): Z and C in plain memory, and each
  // chunk gives its rows of C in one product, chunkᵀ·Z, read where it is.
  const kp = xt ? k : ceil4(k);
  let Z: Float64Array, C: Float64Array;
  if (xt) {
    const F = kernelMemory(0);
    Z = new Float64Array(n * k);
    for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) Z[j * k + t] = F[sel + t * n + j];
    C = new Float64Array(m * k);
    for (const chunk of xt) crossProductOrt(n, chunk.rows, k, chunk.data, Z, C.subarray(chunk.r0 * k, (chunk.r0 + chunk.rows) * k));
  } else {
    const z = (sel + k * n + 1) & ~1;
    const c = (z + n * kp + 1) & ~1;
    const work = c + ceil4(m) * kp;
    let F = kernelMemory(work + productWork(m, kp));
    F.fill(0, z, work);
    for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) F[z + j * kp + t] = F[sel + t * n + j];
    multiplyAdd(m, n, kp, probe.x, n, z, kp, c, kp, work);
    F = kernelMemory(0);
    Z = F.subarray(z, z + n * kp);
    C = F.subarray(c, c + m * kp);
  }
  // Normalize C's columns: their norms are ‖W·v_t‖; σ itself comes from the eigenvalue (sorted,
  // consistent with singularValues), the direction from W·v.
  const norms = new Float64Array(k);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) norms[t] += C[i * kp + t] ** 2;
  const scale = norms.map((x) => (x > 0 ? 1 / Math.sqrt(x) : 0));
  const other = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) other[i * k + t] = C[i * kp + t] * scale[t];
  // Z is kernel memory (a view) or already n×k plain.
  let gramSide = Z;
  if (!xt) {
    gramSide = new Float64Array(n * k);
    for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) gramSide[j * k + t] = Z[j * kp + t];
  }
  const s = values.map((l) => Math.sqrt(Math.max(l, 0)) / probe.scale);
  return probe.tall ? { u: other, s, v: gramSide, all } : { u: gramSide, s, v: other, all };
}

/**
 * All eigenpairs of a small dense symmetric matrix (lower triangle, n×n row-major at `a` in kernel
 * memory, destroyed, with tileSlack(n) after it): values descending, and their unit eigenvectors
 * as the rows of an n×n block written at `out` (with `vectors` < n: those of the largest values only).
 * Work: symmetricEigenWork(n) doubles at `work`.
 * Undefined when QL runs out of iterations (the caller takes another route).
 */
export function symmetricEigen(a: number, n: number, work: number, out: number, vectors = n): Float64Array | undefined {
  const refl = work + blockedWorkDoubles(n);
  const zt = refl + n * n;
  const { d, e, reflectors } = tridiagonalizeBlocked(a, n, work, true, refl);
  const F = kernelMemory(Math.max(zt + n * n, out + n * n));
  F.fill(0, zt, zt + n * n);
  for (let i = 0; i < n; i++) F[zt + i * n + i] = 1;
  if (!tridiagonalEigen(d, e, zt)) return undefined;
  const order = Array.from(d.keys()).sort((x, y) => d[y] - d[x]);
  order.slice(0, vectors).forEach((src, t) => F.copyWithin(out + t * n, zt + src * n, zt + src * n + n));
  // Back from the tridiagonal basis: only the rows asked for (the reflections are the n³ part).
  const { tau } = reflectors!;
  const K = kernels();
  for (let c = n - 3; c >= 0; c--) if (tau[c] !== 0) K.reflectRows(out * 8, vectors, n, (refl + c * n) * 8, c + 1, tau[c]);
  return Float64Array.from(order, (i) => d[i]);
}

/**
 * symmetricEigen's values with only the last `tail` entries of each eigenvector (tail ≤ n/2), as
 * rows of `tail` at `out` in the same order. QL's rotations then act on `tail` entries instead of
 * n, and the reflectors build just the last `tail` rows of the reduction's Q (Qᵀ·e_i, H_0 first).
 */
export function symmetricEigenTails(a: number, n: number, tail: number, work: number, out: number): Float64Array | undefined {
  const refl = work + blockedWorkDoubles(n);
  const rows = refl + n * n, mt = rows + tail * n;
  const { d, e, reflectors } = tridiagonalizeBlocked(a, n, work, true, refl);
  const F = kernelMemory(Math.max(mt + n * tail, out + n * tail));
  F.fill(0, rows, rows + tail * n);
  for (let i = 0; i < tail; i++) F[rows + i * n + n - tail + i] = 1;
  const { tau } = reflectors!;
  const K = kernels();
  for (let c = 0; c <= n - 3; c++) if (tau[c] !== 0) K.reflectRows(rows * 8, tail, n, (refl + c * n) * 8, c + 1, tau[c]);
  // Mᵀ (n × tail) from those rows M (tail × n): QL rotates its rows. (No kernel call below grows the memory.)
  for (let i = 0; i < tail; i++) for (let j = 0; j < n; j++) F[mt + j * tail + i] = F[rows + i * n + j];
  if (!tridiagonalEigen(d, e, mt, undefined, tail)) return undefined;
  const order = Array.from(d.keys()).sort((x, y) => d[y] - d[x]);
  order.forEach((src, t) => F.copyWithin(out + t * tail, mt + src * tail, mt + src * tail + tail));
  return Float64Array.from(order, (i) => d[i]);
}

export const symmetricEigenWork = (n: number) => blockedWorkDoubles(n) + 2 * n * n;

/** Top triplets from one-sided Jacobi (small sides, and the Gram route's last fallback); undefined when Jacobi runs out of sweeps. */
function tripletsJacobi(data: MatrixData, rows: number, cols: number, choose: RankChooser, limits: SolverLimits = {}): SingularTriplets | undefined {
  const svd = jacobiSvd(data, rows, cols, true, limits.jacobiSweeps);
  if (!svd) return undefined;
  const r = svd.s.length;
  const k = choose(svd.s);
  const firstColumns = (m: Float64Array, count: number) => {
    const out = new Float64Array(count * k);
    for (let i = 0; i < count; i++) for (let t = 0; t < k; t++) out[i * k + t] = m[i * r + t];
    return out;
  };
  return { u: firstColumns(svd.u!, rows), s: svd.s.slice(0, k), v: firstColumns(svd.v!, cols), all: svd.s };
}

/** Exposed for tests: the small-side route with its budget lowered. */
export function tripletsViaJacobi(data: MatrixData, rows: number, cols: number, k: number, limits: SolverLimits = {}): SingularTriplets {
  return tripletsJacobi(data, rows, cols, () => k, limits) ?? tripletsViaGram(data, rows, cols, k, 'auto', limits);
}

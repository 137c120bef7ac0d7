// Top-k singular triplets W ≈ U_k·Σ_k·V_kᵀ for factorization, at any k up to min(m, n).
// Eigenvectors of the float64 Gram matrix of the smaller side give one set of singular vectors;
// the other is W·v (or Wᵀ·u) normalized. Then U_k·Σ_k·V_kᵀ = W·V_k·V_kᵀ up to O(δσ) per
// component, so the reconstruction error is the projection residual, accurate even where small σ
// are not. The Gram's eigenvectors: for k ≤ n/6 only the top k, by inverse iteration on the
// tridiagonal and the reflectors' back-transformation (O(n²k)); else all of them by QL (O(n³)).
// Small matrices use ml-matrix's SVD.
import { SingularValueDecomposition } from 'ml-matrix';
import { RankscopeError } from '../errors';
import { ceil4, gramToKernelMemory, type GramLayout } from './gram';
import { multiplyBlocked, productWork } from './product';
import { applyReflectorsBlocked } from './reflectors';
import { tridiagonalEigen } from './tridiagonal';
import { blockedWorkDoubles, PANEL, tridiagonalizeBlocked } from './blockedTridiagonal';
import { tridiagonalEigenvectors } from './inverseIteration';
import { checkKernelMemory, checkMatrix, SMALL_SIDE, sqrtDescending, toMatrix, type MatrixData } from './singularValues';
import { runKernelCalls, runTasks, teamSize, type Task } from './team';
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
  checkMatrix(data, rows, cols, label);
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
  return r < SMALL_SIDE ? tripletsReference(data, rows, cols, choose) : tripletsViaGram(data, rows, cols, choose);
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

/** Exposed for tests on every shape. */
export function tripletsViaGram(data: MatrixData, rows: number, cols: number, rank: number | RankChooser, route: EigenvectorRoute = 'auto'): SingularTriplets {
  const n = Math.min(rows, cols);
  return tripletsFromGram(gramToKernelMemory(data, rows, cols, blockedWorkDoubles(n) + 2 * n * n), rank, route);
}

/** The full route from a Gram layout already in kernel memory (X kept); G is destroyed. */
export function tripletsFromGram(probe: GramLayout, rank: number | RankChooser, route: EigenvectorRoute = 'auto'): SingularTriplets {
  const n = probe.n;
  // Layout after X and G: work, reflectors (n²), eigenvectors of T (n², full route), then the
  // selected rows (k·n) last, so memory can grow once k is known.
  const workSize = blockedWorkDoubles(n);
  const work = probe.end, refl = work + workSize, zt = refl + n * n, sel = zt + n * n;
  const { d, e, reflectors } = tridiagonalizeBlocked(probe.g, n, work, true, refl);
  const d0 = d.slice(), e0 = e.slice();
  tridiagonalEigen(d, e);
  const descending = Float64Array.from(d).sort().reverse();
  const all = sqrtDescending(d);
  const k = typeof rank === 'number' ? rank : rank(all);
  if (k === 0) return { u: new Float64Array(0), s: new Float64Array(0), v: new Float64Array(0), all };
  const values = descending.slice(0, k);
  const inverse = route === 'inverse' || (route === 'auto' && k <= INVERSE_ITERATION_MAX_SHARE * n)
    ? tridiagonalEigenvectors(d0, e0, values) : undefined;
  if (route === 'inverse' && !inverse) throw new Error('inverse iteration failed its check');
  const F = kernelMemory(sel + k * n);
  if (inverse) {
    F.set(inverse, sel);
  } else {
    // All eigenvectors of T by QL (rows of zt), then the k of the largest eigenvalues.
    F.fill(0, zt, zt + n * n);
    for (let i = 0; i < n; i++) F[zt + i * n + i] = 1;
    d.set(d0);
    e.set(e0);
    tridiagonalEigen(d, e, zt);
    const full = Array.from(d.keys()).sort((a, b) => d[b] - d[a]).slice(0, k);
    full.forEach((src, t) => {
      values[t] = d[src];
      F.copyWithin(sel + t * n, zt + src * n, zt + src * n + n);
    });
  }
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
 * side as they are, the other side X·v normalized. Shared by the full and the randomized routes.
 */
export function fromGramEigenvectors(probe: GramLayout, sel: number, values: Float64Array, all?: Float64Array): SingularTriplets {
  const { n, m } = probe;
  const k = values.length;
  const tall = probe.tall;
  // Gram eigenvectors as columns Z (n×kp, kp = k padded to the 4-wide tiles), then the other
  // side C = X·Z (X = W when tall, Wᵀ when wide: already in kernel memory), blocked.
  const kp = ceil4(k);
  const z = (sel + k * n + 1) & ~1;
  const c = (z + n * kp + 1) & ~1;
  const work = c + ceil4(m) * kp;
  const F = kernelMemory(work + productWork(m, kp));
  F.fill(0, z, work);
  for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) F[z + j * kp + t] = F[sel + t * n + j];
  multiplyBlocked(m, n, kp, probe.x, n, z, kp, c, kp, work);
  // Normalize C's columns: their norms are ‖W·v_t‖; σ itself comes from the eigenvalue (sorted,
  // consistent with singularValues), the direction from W·v.
  const norms = new Float64Array(k);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) norms[t] += F[c + i * kp + t] ** 2;
  const scale = norms.map((x) => (x > 0 ? 1 / Math.sqrt(x) : 0));
  const other = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) other[i * k + t] = F[c + i * kp + t] * scale[t];
  const gramSide = new Float64Array(n * k);
  for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) gramSide[j * k + t] = F[z + j * kp + t];
  const s = values.map((l) => Math.sqrt(Math.max(l, 0)));
  return tall ? { u: other, s, v: gramSide, all } : { u: gramSide, s, v: other, all };
}

/**
 * All eigenpairs of a small dense symmetric matrix (lower triangle, n×n row-major at `a` in kernel
 * memory, destroyed, with tileSlack(n) after it): values descending, and their unit eigenvectors
 * as the rows of an n×n block written at `out`. Work: symmetricEigenWork(n) doubles at `work`.
 */
export function symmetricEigen(a: number, n: number, work: number, out: number): Float64Array {
  const refl = work + blockedWorkDoubles(n);
  const zt = refl + n * n;
  const { d, e, reflectors } = tridiagonalizeBlocked(a, n, work, true, refl);
  const F = kernelMemory(Math.max(zt + n * n, out + n * n));
  F.fill(0, zt, zt + n * n);
  for (let i = 0; i < n; i++) F[zt + i * n + i] = 1;
  tridiagonalEigen(d, e, zt);
  const { tau } = reflectors!;
  const K = kernels();
  for (let c = n - 3; c >= 0; c--) if (tau[c] !== 0) K.reflectRows(zt * 8, n, n, (refl + c * n) * 8, c + 1, tau[c]);
  const order = Array.from(d.keys()).sort((x, y) => d[y] - d[x]);
  order.forEach((src, t) => F.copyWithin(out + t * n, zt + src * n, zt + src * n + n));
  return Float64Array.from(order, (i) => d[i]);
}

export const symmetricEigenWork = (n: number) => blockedWorkDoubles(n) + 2 * n * n;

function tripletsReference(data: MatrixData, rows: number, cols: number, choose: RankChooser): SingularTriplets {
  const svd = new SingularValueDecomposition(toMatrix(data, rows, cols), { autoTranspose: true });
  const all = Float64Array.from(svd.diagonal).sort().reverse();
  const k = choose(all);
  const order = svd.diagonal.map((_, i) => i).sort((a, b) => svd.diagonal[b] - svd.diagonal[a]).slice(0, k);
  const U = svd.leftSingularVectors, V = svd.rightSingularVectors;
  const u = new Float64Array(rows * k), v = new Float64Array(cols * k), s = new Float64Array(k);
  order.forEach((src, t) => {
    s[t] = svd.diagonal[src];
    for (let i = 0; i < rows; i++) u[i * k + t] = U.get(i, src);
    for (let j = 0; j < cols; j++) v[j * k + t] = V.get(j, src);
  });
  return { u, s, v, all };
}

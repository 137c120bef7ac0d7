// Top-k singular triplets W ≈ U_k·Σ_k·V_kᵀ for factorization, at any k up to min(m, n).
// Eigenvectors of the float64 Gram matrix of the smaller side give one set of singular vectors;
// the other is W·v (or Wᵀ·u) normalized. Then U_k·Σ_k·V_kᵀ = W·V_k·V_kᵀ up to O(δσ) per
// component, so the reconstruction error is the projection residual, accurate even where small σ
// are not. Small matrices use ml-matrix's SVD.
import { SingularValueDecomposition } from 'ml-matrix';
import { RankscopeError } from '../errors';
import { gramToKernelMemory } from './gram';
import { tridiagonalize, tridiagonalEigen } from './tridiagonal';
import { checkKernelMemory, checkMatrix, SMALL_SIDE, toMatrix, type MatrixData } from './singularValues';
import { kernels, kernelMemory } from './wasm';

export interface SingularTriplets {
  /** rows×k, row-major; unit columns (zero where σ and W·v are 0). */
  u: Float64Array;
  /** k values, descending. */
  s: Float64Array;
  /** cols×k, row-major; orthonormal columns. */
  v: Float64Array;
}

export function topSingularTriplets(data: MatrixData, rows: number, cols: number, k: number, label = 'matrix'): SingularTriplets {
  checkMatrix(data, rows, cols, label);
  const r = Math.min(rows, cols);
  if (!Number.isInteger(k) || k < 0 || k > r) {
    throw new RankscopeError('BAD_ARGUMENT', `${label}: rank ${k} is out of range for a ${rows}×${cols} matrix (0…${r}).`);
  }
  if (k === 0) return { u: new Float64Array(0), s: new Float64Array(0), v: new Float64Array(0) };
  const m = Math.max(rows, cols);
  checkKernelMemory(m * r + 3 * r * r + k * r + r * (k + 1) + m * (k + 1) + 8 * r, rows, cols, label);
  return r < SMALL_SIDE ? tripletsReference(data, rows, cols, k) : tripletsViaGram(data, rows, cols, k);
}

/** Exposed for tests on every shape. */
export function tripletsViaGram(data: MatrixData, rows: number, cols: number, k: number): SingularTriplets {
  const tall = rows >= cols;
  const n = Math.min(rows, cols);
  // Layout after X and G: work (4n), reflectors (n²), eigenvectors of T (n²), selected rows (k·n).
  const probe = gramToKernelMemory(data, rows, cols, 4 * n + 2 * n * n + k * n);
  const work = probe.end, refl = work + 4 * n, zt = refl + n * n, sel = zt + n * n;
  const { d, e, reflectors } = tridiagonalize(probe.g, n, work, true, refl);
  let F = kernelMemory(sel + k * n);
  F.fill(0, zt, zt + n * n);
  for (let i = 0; i < n; i++) F[zt + i * n + i] = 1;
  tridiagonalEigen(d, e, zt);
  const order = Array.from(d.keys()).sort((a, b) => d[b] - d[a]).slice(0, k);
  F = kernelMemory(sel + k * n);
  order.forEach((src, t) => F.copyWithin(sel + t * n, zt + src * n, zt + src * n + n));
  // Eigenvectors of G = Q·z, Q = H_0⋯H_{n-3}: apply the last reflector first.
  const { tau } = reflectors!;
  const K = kernels();
  for (let c = n - 3; c >= 0; c--) {
    if (tau[c] !== 0) K.reflectRows(sel * 8, k, n, (refl + c * n) * 8, c + 1, tau[c]);
  }
  // Gram eigenvectors as columns Z (n×kp, kp = k padded to even for the SIMD pairs), then the
  // other side C = X·Z in WASM (X = W when tall, Wᵀ when wide: already in kernel memory).
  const kp = k + (k & 1);
  const m = probe.m;
  const z = (sel + k * n + 1) & ~1;
  const c = (z + n * kp + 1) & ~1;
  F = kernelMemory(c + m * kp);
  F.fill(0, z, c + m * kp);
  for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) F[z + j * kp + t] = F[sel + t * n + j];
  K.matmulAdd(m, n, kp, probe.x * 8, z * 8, c * 8);
  // Normalize C's columns: their norms are ‖W·v_t‖; σ itself comes from the eigenvalue (sorted,
  // consistent with singularValues), the direction from W·v.
  const norms = new Float64Array(k);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) norms[t] += F[c + i * kp + t] ** 2;
  const scale = norms.map((x) => (x > 0 ? 1 / Math.sqrt(x) : 0));
  const other = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) other[i * k + t] = F[c + i * kp + t] * scale[t];
  const gramSide = new Float64Array(n * k);
  for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) gramSide[j * k + t] = F[z + j * kp + t];
  const s = Float64Array.from(order, (src) => Math.sqrt(Math.max(d[src], 0)));
  return tall ? { u: other, s, v: gramSide } : { u: gramSide, s, v: other };
}

function tripletsReference(data: MatrixData, rows: number, cols: number, k: number): SingularTriplets {
  const svd = new SingularValueDecomposition(toMatrix(data, rows, cols), { autoTranspose: true });
  const order = svd.diagonal.map((_, i) => i).sort((a, b) => svd.diagonal[b] - svd.diagonal[a]).slice(0, k);
  const U = svd.leftSingularVectors, V = svd.rightSingularVectors;
  const u = new Float64Array(rows * k), v = new Float64Array(cols * k), s = new Float64Array(k);
  order.forEach((src, t) => {
    s[t] = svd.diagonal[src];
    for (let i = 0; i < rows; i++) u[i * k + t] = U.get(i, src);
    for (let j = 0; j < cols; j++) v[j * k + t] = V.get(j, src);
  });
  return { u, s, v };
}

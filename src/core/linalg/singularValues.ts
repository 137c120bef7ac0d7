// All min(m, n) singular values of a matrix, largest first.
// Fast path (any size): float64 Gram of the smaller side (cache-blocked) → tridiagonal (blocked,
// level-3) → implicit QL, σ = √λ, with the hot loops in WASM SIMD. Small matrices go to one-sided
// Jacobi (jacobi.ts).
// Accuracy of the fast path: |δσ| ≲ √(n·ε)·σ_max ≈ 1e-7·σ_max, inside the 1e-5·σ_max bar.
// Every iterative step is bounded and has a fallback that still gives the right values:
// Jacobi → Gram route; QL → bisection (which cannot fail to converge).
import { RankscopeError } from '../errors';
import { gramToKernelMemory } from './gram';
import { blockedWorkDoubles, tridiagonalizeBlocked } from './blockedTridiagonal';
import { jacobiSvd } from './jacobi';
import { tridiagonalEigenvalues } from './tridiagonal';
import { scanValues, type ValueScan } from './scale';
import { MAX_KERNEL_BYTES } from './wasm';

export type MatrixData = Float32Array | Float64Array;

/** Below this smaller side, one-sided Jacobi is fast enough and the most accurate. */
export const SMALL_SIDE = 32;

/** Iteration budgets, lowered only by tests to drive the fallbacks. */
export interface SolverLimits {
  /** Total implicit-QL steps (default 30 per eigenvalue). */
  qlIterations?: number;
  /** Jacobi sweeps (default 30). */
  jacobiSweeps?: number;
}

/**
 * Checks the shape and that every value is finite, in one pass that also gives the largest |w|
 * (for the exact rescaling before squares) and ‖W‖²_F (a policy's total energy).
 */
export function checkMatrix(data: MatrixData, rows: number, cols: number, label = 'matrix'): ValueScan {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || rows * cols !== data.length) {
    throw new RankscopeError('SHAPE_MISMATCH', `${label}: ${data.length} values do not form a ${rows}×${cols} matrix.`);
  }
  const scan = scanValues(data);
  if (Number.isFinite(scan.sumSquares)) return scan;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      const what = Number.isNaN(data[i]) ? 'NaN' : 'Inf';
      throw new RankscopeError('NUMERIC', `${label} contains ${what} (at row ${Math.floor(i / cols)}, column ${i % cols}); singular values need finite weights.`,
        'Check the model export or the training run that produced these weights.');
    }
  }
  return scan; // finite float64 weights beyond 1e154: Σ w² itself overflows (the Gram is rescaled, σ are fine)
}

/** A clear error, before any work, when a matrix needs more kernel memory than WASM can give. */
export function checkKernelMemory(doubles: number, rows: number, cols: number, label = 'matrix'): void {
  if (doubles * 8 > MAX_KERNEL_BYTES) {
    throw new RankscopeError('UNSUPPORTED', `${label}: a ${rows}×${cols} matrix needs ${(doubles * 8 / 2 ** 30).toFixed(1)} GiB of working memory; the SVD kernels are limited to ${MAX_KERNEL_BYTES / 2 ** 30} GiB.`,
      'Select smaller layers with --layer / the layers option.');
  }
}

/** All min(rows, cols) singular values, descending. `label` names the layer in errors. */
export function singularValues(data: MatrixData, rows: number, cols: number, label?: string): Float64Array {
  const { maxAbs } = checkMatrix(data, rows, cols, label);
  if (Math.min(rows, cols) === 0) return new Float64Array(0);
  checkKernelMemory(2 * Math.min(rows, cols) ** 2, rows, cols, label); // G, plus the streamed chunk of W
  return Math.min(rows, cols) < SMALL_SIDE ? singularValuesJacobi(data, rows, cols) : singularValuesViaGram(data, rows, cols, {}, maxAbs);
}

/** The fast path, exposed for tests on every shape. */
export function singularValuesViaGram(data: MatrixData, rows: number, cols: number, limits: SolverLimits = {}, maxAbs?: number): Float64Array {
  const { n, g, end, scale } = gramToKernelMemory(data, rows, cols, blockedWorkDoubles(Math.min(rows, cols)), false, undefined, maxAbs);
  const { d, e } = tridiagonalizeBlocked(g, n, end);
  return sqrtDescending(tridiagonalEigenvalues(d, e, limits.qlIterations), scale);
}

/** One-sided Jacobi, for small matrices; the Gram route if Jacobi runs out of sweeps. Exposed for tests. */
export function singularValuesJacobi(data: MatrixData, rows: number, cols: number, limits: SolverLimits = {}): Float64Array {
  return jacobiSvd(data, rows, cols, false, limits.jacobiSweeps)?.s ?? singularValuesViaGram(data, rows, cols, limits);
}

/** The spectrum of a block-diagonal operator (a grouped conv): all groups' values, descending. */
export function mergeDescending(groups: Float64Array[]): Float64Array {
  if (groups.length === 1) return groups[0];
  const all = new Float64Array(groups.reduce((n, g) => n + g.length, 0));
  let at = 0;
  for (const g of groups) {
    all.set(g, at);
    at += g.length;
  }
  return all.sort().reverse();
}

/** σ = √max(λ, 0) / scale, largest first (rounding can leave tiny negative λ for zero σ). */
export function sqrtDescending(eigenvalues: Float64Array, scale = 1): Float64Array {
  const s = eigenvalues.map((l) => Math.sqrt(Math.max(l, 0)) / scale);
  return s.sort().reverse();
}

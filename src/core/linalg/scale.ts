// Exact rescaling of a matrix before it is squared (Gram products, Jacobi's column norms), so that
// neither tiny (1e-200) nor huge (1e200) float64 weights over- or underflow on the way.
import type { MatrixData } from './singularValues';

/**
 * A power of two that brings the largest |w| into [0.5, 1) (1 for a zero matrix): scaling by it is
 * exact, and afterwards sums of squares of the entries stay far from overflow and underflow.
 * float32 weights need none (1): squared in float64 they stay inside its normal range
 * (3.4e38² ≈ 1.2e77, 1.4e-45² ≈ 2e-90, and sums of up to 2³¹ of them), so their copies skip the
 * multiply. `max` is the largest |w| when the caller has it already (checkMatrix's scan).
 */
export function powerOfTwoScale(data: MatrixData, max?: number): number {
  if (data instanceof Float32Array) return 1;
  max ??= scanValues(data).maxAbs;
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const exponent = Math.floor(Math.log2(max)) + 1;
  // Clamped: 2^-exponent itself would overflow for subnormal maxima; 2^±1000 is still ample.
  return 2 ** Math.max(-1000, Math.min(1000, -exponent));
}

/** What one pass over a matrix's values gives. */
export interface ValueScan {
  /** The largest |w| (NaN when an entry is NaN). */
  maxAbs: number;
  /** Σ w², in float64: NaN or Inf when an entry is not finite (or, for float64 weights, when the squares overflow). */
  sumSquares: number;
}

/** The largest |w| and Σ w² in one pass; two accumulators each, so the adds do not wait on each other. */
export function scanValues(data: MatrixData): ValueScan {
  let s0 = 0, s1 = 0, m0 = 0, m1 = 0;
  const even = data.length & ~1;
  for (let i = 0; i < even; i += 2) {
    const x = data[i], y = data[i + 1];
    s0 += x * x;
    s1 += y * y;
    m0 = Math.max(m0, Math.abs(x));
    m1 = Math.max(m1, Math.abs(y));
  }
  if (even < data.length) {
    const x = data[even];
    s0 += x * x;
    m0 = Math.max(m0, Math.abs(x));
  }
  return { maxAbs: Math.max(m0, m1), sumSquares: s0 + s1 };
}

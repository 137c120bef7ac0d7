// Exact rescaling of a matrix before it is squared (Gram products, Jacobi's column norms), so that
// neither tiny (1e-200) nor huge (1e200) float64 weights over- or underflow on the way.
import type { MatrixData } from './singularValues';

/**
 * A power of two that brings the largest |w| into [0.5, 1) (1 for a zero matrix): scaling by it is
 * exact, and afterwards sums of squares of the entries stay far from overflow and underflow.
 */
export function powerOfTwoScale(data: MatrixData): number {
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a > max) max = a;
  }
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const exponent = Math.floor(Math.log2(max)) + 1;
  // Clamped: 2^-exponent itself would overflow for subnormal maxima; 2^±1000 is still ample.
  return 2 ** Math.max(-1000, Math.min(1000, -exponent));
}

// Singular value decomposition by one-sided (Hestenes) Jacobi. X is W, or Wᵀ when W is wide, so
// that the smaller side n is X's column count. A Householder QR first (X = Q·R) leaves the n×n
// triangle R; Jacobi rotates pairs of R's columns until every pair is orthogonal; then σ_j = ‖r_j‖,
// the accumulated rotations give one set of singular vectors and Q·r_j/σ_j the other.
// O(m·n² + sweeps·n³) with 5–10 sweeps in practice, and accurate to a few ulps of σ_max for every
// value (no squaring, unlike the Gram route): the route for small sides and the Gram route's last
// fallback. Bounded: after `maxSweeps` sweeps it gives up (undefined) so the caller can take
// another route; it never loops on.
import type { MatrixData } from './singularValues';
import { powerOfTwoScale } from './scale';

/** LAPACK's dgesvj gives up after 30 sweeps as well; converging runs need 5–10. */
export const JACOBI_MAX_SWEEPS = 30;
const EPS = 2 ** -52;

export interface JacobiSvd {
  /** All min(rows, cols) singular values, descending. */
  s: Float64Array;
  /** rows×r, row-major, unit columns (zero where σ is 0); with `vectors` only. */
  u?: Float64Array;
  /** cols×r, row-major, orthonormal columns; with `vectors` only. */
  v?: Float64Array;
}

/** The SVD of the rows×cols row-major `data`, or undefined when `maxSweeps` sweeps did not converge. */
export function jacobiSvd(data: MatrixData, rows: number, cols: number, vectors: boolean, maxSweeps = JACOBI_MAX_SWEEPS): JacobiSvd | undefined {
  const tall = rows >= cols;
  const n = tall ? cols : rows;
  const m = tall ? rows : cols;
  if (n === 0) return { s: new Float64Array(0), u: vectors ? new Float64Array(0) : undefined, v: vectors ? new Float64Array(0) : undefined };
  // X column-major (column j at j·m), scaled by a power of two (exact) so that squares and sums
  // of squares can neither overflow nor lose the matrix to underflow, whatever the scale of W.
  const scale = powerOfTwoScale(data);
  const x = new Float64Array(m * n);
  if (tall) {
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) x[j * m + i] = data[i * cols + j] * scale;
  } else {
    for (let j = 0; j < rows; j++) for (let i = 0; i < cols; i++) x[j * m + i] = data[j * cols + i] * scale;
  }
  const tau = householderQr(x, m, n);
  // R (n×n column-major, upper triangle) is what Jacobi works on.
  const r = new Float64Array(n * n);
  for (let j = 0; j < n; j++) for (let i = 0; i <= j; i++) r[j * n + i] = x[j * m + i];
  // Rotations of R's columns, accumulated (column-major n×n, starts as I).
  const rot = vectors ? new Float64Array(n * n) : undefined;
  if (rot) for (let j = 0; j < n; j++) rot[j * n + j] = 1;
  if (!orthogonalizeColumns(r, n, rot, maxSweeps)) return undefined;
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += r[j * n + i] ** 2;
    norms[j] = Math.sqrt(sum);
  }
  const order = Array.from(norms.keys()).sort((a, b) => norms[b] - norms[a]);
  const s = Float64Array.from(order, (j) => norms[j] / scale);
  if (!rot) return { s };
  // X·Rot = Q·[R·Rot; 0] = U_x·Σ with U_x = Q·[r_j/σ_j; 0]. Tall: W = U_x·Σ·Rotᵀ. Wide: Wᵀ = U_x·Σ·Rotᵀ, so W = Rot·Σ·U_xᵀ.
  const ux = new Float64Array(m * n); // column-major m×n, in the sorted order
  order.forEach((j, t) => {
    const inv = norms[j] > 0 ? 1 / norms[j] : 0;
    for (let i = 0; i < n; i++) ux[t * m + i] = r[j * n + i] * inv;
  });
  applyQ(x, tau, m, n, ux);
  const fromX = new Float64Array(m * n); // m×n row-major
  const fromRot = new Float64Array(n * n); // n×n row-major
  order.forEach((j, t) => {
    for (let i = 0; i < m; i++) fromX[i * n + t] = ux[t * m + i];
    for (let i = 0; i < n; i++) fromRot[i * n + t] = rot[j * n + i];
  });
  return tall ? { s, u: fromX, v: fromRot } : { s, u: fromRot, v: fromX };
}

/**
 * Cyclic one-sided Jacobi on the n columns (length n, column-major) of `a`, rotations also applied
 * to `rot`. False when `maxSweeps` sweeps end with a pair still not orthogonal.
 */
function orthogonalizeColumns(a: Float64Array, n: number, rot: Float64Array | undefined, maxSweeps: number): boolean {
  // A pair counts as orthogonal when |a_p·a_q| ≤ n·ε·‖a_p‖‖a_q‖: the rounding error of the dot
  // product itself, so a converged pair is never rotated by noise again.
  const tolerance = n * EPS;
  // A column with ‖a‖ ≤ ε·‖A‖_F is rounding noise (its σ is below what any backward-stable SVD
  // resolves). Rotating it against a column it is nearly parallel to only shrinks it by ε per
  // sweep, for dozens of sweeps (a constant matrix does this), so it is left alone.
  let frobenius2 = 0;
  for (let i = 0; i < a.length; i++) frobenius2 += a[i] * a[i];
  const negligible = EPS * EPS * frobenius2;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const P = p * n, Q = q * n;
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < n; i++) {
          const x = a[P + i], y = a[Q + i];
          alpha += x * x;
          beta += y * y;
          gamma += x * y;
        }
        if (gamma === 0 || alpha <= negligible || beta <= negligible) continue;
        if (Math.abs(gamma) <= tolerance * Math.sqrt(alpha) * Math.sqrt(beta)) continue;
        rotated = true;
        // The rotation that zeroes the pair's dot product, the smaller of the two angles (Rutishauser).
        const zeta = (beta - alpha) / (2 * gamma);
        const root = Math.abs(zeta) > 1e150 ? Math.abs(zeta) : Math.sqrt(1 + zeta * zeta);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + root);
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotateColumns(a, P, Q, n, c, s);
        if (rot) rotateColumns(rot, P, Q, n, c, s);
      }
    }
    if (!rotated) return true;
  }
  return false;
}

/** x_p ← c·x_p − s·x_q, x_q ← s·x_p + c·x_q for the columns at offsets P and Q. */
function rotateColumns(x: Float64Array, P: number, Q: number, len: number, c: number, s: number): void {
  for (let i = 0; i < len; i++) {
    const a = x[P + i], b = x[Q + i];
    x[P + i] = c * a - s * b;
    x[Q + i] = s * a + c * b;
  }
}

/**
 * Householder QR in place of the column-major m×n `x` (m ≥ n): R in the upper triangle, reflector
 * j (I − τ_j·v·vᵀ, v_j = 1 implicit) below the diagonal of column j. Returns τ.
 */
function householderQr(x: Float64Array, m: number, n: number): Float64Array {
  const tau = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const J = j * m;
    let sigma = 0;
    for (let i = j + 1; i < m; i++) sigma += x[J + i] ** 2;
    if (sigma === 0) continue; // already triangular in this column: H = I
    const x0 = x[J + j];
    const norm = Math.sqrt(x0 * x0 + sigma);
    const beta = x0 <= 0 ? norm : -norm;
    const v0 = x0 - beta;
    tau[j] = -v0 / beta;
    for (let i = j + 1; i < m; i++) x[J + i] /= v0;
    x[J + j] = beta;
    for (let c = j + 1; c < n; c++) {
      const C = c * m;
      let dot = x[C + j];
      for (let i = j + 1; i < m; i++) dot += x[J + i] * x[C + i];
      dot *= tau[j];
      x[C + j] -= dot;
      for (let i = j + 1; i < m; i++) x[C + i] -= dot * x[J + i];
    }
  }
  return tau;
}

/** y ← Q·y for the n columns (length m, column-major) of y, Q = H_0⋯H_{n-1} from householderQr. */
function applyQ(x: Float64Array, tau: Float64Array, m: number, n: number, y: Float64Array): void {
  for (let j = n - 1; j >= 0; j--) {
    if (tau[j] === 0) continue;
    const J = j * m;
    for (let c = 0; c < n; c++) {
      const C = c * m;
      let dot = y[C + j];
      for (let i = j + 1; i < m; i++) dot += x[J + i] * y[C + i];
      dot *= tau[j];
      y[C + j] -= dot;
      for (let i = j + 1; i < m; i++) y[C + i] -= dot * x[J + i];
    }
  }
}

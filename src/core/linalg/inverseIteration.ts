// Eigenvectors of a symmetric tridiagonal matrix for a few known eigenvalues, by inverse
// iteration (as LAPACK's dstein): O(n) per solve instead of the O(n³) of accumulating all
// eigenvectors in QL. Vectors of eigenvalues closer than 1e-3·‖T‖ (a chained cluster) are
// re-orthogonalized against each other. The result is verified (residual and orthogonality);
// callers fall back to the full QL route when it is not good enough.

/** Closer eigenvalues than this share of ‖T‖ are one cluster (dstein's ORTOL). */
const CLUSTER = 1e-3;
const ITERATIONS = 3;
const EPS = 2 ** -52;

/**
 * Unit eigenvectors of the tridiagonal (d, e) (e[i] couples i and i+1; e[n-1] ignored) for
 * `values` (eigenvalues of it, descending), as rows of a values.length×n row-major array.
 * Returns undefined when a vector fails the residual or orthogonality check.
 */
export function tridiagonalEigenvectors(d: Float64Array, e: Float64Array, values: Float64Array): Float64Array | undefined {
  const n = d.length;
  const k = values.length;
  let norm = 0; // ‖T‖_1
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i]) + Math.abs(i > 0 ? e[i - 1] : 0) + Math.abs(i < n - 1 ? e[i] : 0));
  const out = new Float64Array(k * n);
  if (norm === 0) {
    for (let t = 0; t < k; t++) out[t * n + t] = 1;
    return out;
  }
  const tiny = EPS * norm;
  const lu = new TridiagonalLU(n);
  const x = new Float64Array(n);
  let seed = 0x2545f491;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 31 - 1;
  };
  let clusterStart = 0;
  let shift = Infinity;
  for (let t = 0; t < k; t++) {
    if (t > 0 && values[t - 1] - values[t] > CLUSTER * norm) clusterStart = t;
    // Equal shifts would repeat the same solve: step below the previous one by a few ulps.
    const pert = 10 * EPS * Math.max(Math.abs(values[t]), tiny);
    shift = t > 0 && shift - values[t] < pert ? shift - pert : values[t];
    lu.factor(d, e, shift, tiny);
    for (let i = 0; i < n; i++) x[i] = random();
    for (let it = 0; it < ITERATIONS; it++) {
      if (!lu.solve(x)) return undefined;
      normalize(x);
      for (let pass = 0; pass < 2; pass++) {
        for (let s = clusterStart; s < t; s++) {
          let dot = 0;
          for (let i = 0; i < n; i++) dot += x[i] * out[s * n + i];
          for (let i = 0; i < n; i++) x[i] -= dot * out[s * n + i];
        }
      }
      if (!normalize(x)) return undefined;
    }
    out.set(x, t * n);
  }
  return verified(d, e, values, out, norm) ? out : undefined;
}

function normalize(x: Float64Array): boolean {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  if (!(s > 0 && s < Infinity)) return false;
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < x.length; i++) x[i] *= inv;
  return true;
}

/** ‖T·x − λ·x‖ ≤ ~n·ε·‖T‖ for each vector, and |xᵢ·xⱼ − δᵢⱼ| ≤ 1e-9 for every pair. */
function verified(d: Float64Array, e: Float64Array, values: Float64Array, vectors: Float64Array, norm: number): boolean {
  const n = d.length;
  const k = values.length;
  const tolerance = Math.max(1e-11, 64 * n * EPS) * norm;
  for (let t = 0; t < k; t++) {
    const x = vectors.subarray(t * n, t * n + n);
    let r = 0;
    for (let i = 0; i < n; i++) {
      const y = (d[i] - values[t]) * x[i] + (i > 0 ? e[i - 1] * x[i - 1] : 0) + (i < n - 1 ? e[i] * x[i + 1] : 0);
      r += y * y;
    }
    if (!(Math.sqrt(r) <= tolerance)) return false;
  }
  for (let a = 0; a < k; a++) {
    for (let b = 0; b < a; b++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += vectors[a * n + i] * vectors[b * n + i];
      if (!(Math.abs(dot) <= 1e-9)) return false;
    }
  }
  return true;
}

/**
 * LU with partial pivoting of T − λI (LAPACK dlagtf): U has two superdiagonals (u2, u3) when rows
 * were swapped. Pivots smaller than `tiny` become ±tiny, so shifts at an eigenvalue solve.
 */
class TridiagonalLU {
  private readonly u1: Float64Array;
  private readonly u2: Float64Array;
  private readonly u3: Float64Array;
  private readonly mult: Float64Array;
  private readonly swapped: Uint8Array;

  constructor(private readonly n: number) {
    this.u1 = new Float64Array(n);
    this.u2 = new Float64Array(n);
    this.u3 = new Float64Array(n);
    this.mult = new Float64Array(n);
    this.swapped = new Uint8Array(n);
  }

  factor(d: Float64Array, e: Float64Array, shift: number, tiny: number): void {
    const { n, u1, u2, u3, mult, swapped } = this;
    for (let i = 0; i < n; i++) {
      u1[i] = d[i] - shift;
      u2[i] = i < n - 1 ? e[i] : 0;
      u3[i] = 0;
    }
    // Row i holds (u1[i], u2[i]) at columns i, i+1; row i+1 is still (e[i], u1[i+1], u2[i+1]).
    for (let i = 0; i < n - 1; i++) {
      const below = e[i];
      if (Math.abs(u1[i]) >= Math.abs(below)) {
        swapped[i] = 0;
        if (u1[i] === 0) u1[i] = tiny;
        mult[i] = below / u1[i];
        u1[i + 1] -= mult[i] * u2[i];
      } else {
        swapped[i] = 1;
        const l = u1[i] / below;
        const oldU2 = u2[i];
        mult[i] = l;
        u1[i] = below;
        u2[i] = u1[i + 1];
        u3[i] = u2[i + 1];
        u1[i + 1] = oldU2 - l * u2[i];
        u2[i + 1] = -l * u3[i];
      }
    }
    for (let i = 0; i < n; i++) if (Math.abs(u1[i]) < tiny) u1[i] = u1[i] < 0 ? -tiny : tiny;
  }

  /** x ← (T − λI)⁻¹·x, scaled down first where the solve would overflow. False when it is not finite. */
  solve(x: Float64Array): boolean {
    const { n, u1, u2, u3, mult, swapped } = this;
    for (let i = 0; i < n - 1; i++) {
      if (swapped[i]) {
        const t = x[i];
        x[i] = x[i + 1];
        x[i + 1] = t - mult[i] * x[i];
      } else {
        x[i + 1] -= mult[i] * x[i];
      }
    }
    x[n - 1] /= u1[n - 1];
    if (n > 1) x[n - 2] = (x[n - 2] - u2[n - 2] * x[n - 1]) / u1[n - 2];
    for (let i = n - 3; i >= 0; i--) {
      x[i] = (x[i] - u2[i] * x[i + 1] - u3[i] * x[i + 2]) / u1[i];
      // Tiny pivots make x grow fast; rescale before it can overflow (direction is all we need).
      if (Math.abs(x[i]) > 1e150) {
        for (let j = 0; j < n; j++) x[j] *= 1e-150;
      }
    }
    for (let i = 0; i < n; i++) if (!Number.isFinite(x[i])) return false;
    return true;
  }
}

// The Gram matrix of a layer's smaller side, in float64, in the WASM kernel memory:
// WᵀW (n = cols) when rows ≥ cols, W·Wᵀ (n = rows) otherwise. float64 because the small
// singular values come out as √λ: an error δ in λ becomes √δ in σ, which float32 cannot afford.
import { kernels, kernelMemory } from './wasm';

/** Bytes of G updated per pass over X: fits a 512 KiB L2 with room for X's four rows. */
const L2_BLOCK_BYTES = 256 * 1024;

export interface GramLayout {
  /** Order of the Gram matrix: min(rows, cols). */
  n: number;
  /** The other side. */
  m: number;
  /** float64 index of the matrix (X, m padded to a multiple of 4 rows × n) in kernel memory. */
  x: number;
  /** float64 index of G (n×n row-major, lower triangle filled). */
  g: number;
  /** First free float64 index after G. */
  end: number;
}

/** Copies W (widened, transposed when wide) into kernel memory and forms its Gram matrix there. */
export function gramToKernelMemory(data: Float32Array | Float64Array, rows: number, cols: number, extraDoubles = 0): GramLayout {
  const tall = rows >= cols;
  const n = tall ? cols : rows;
  const m = tall ? rows : cols;
  const mPadded = Math.ceil(m / 4) * 4;
  const x = 0;
  // One spare element after X and after G: the kernel's last pair may read/write one past a row.
  const g = (mPadded * n + 2) & ~1; // even index: 16-byte aligned SIMD pairs
  const end = (g + n * n + 2) & ~1;
  const F = kernelMemory(end + extraDoubles);
  if (tall) {
    F.set(data, x);
  } else {
    // X = Wᵀ: X[k, i] = W[i, k]. Blocked transpose keeps both sides in cache.
    const B = 64;
    for (let i0 = 0; i0 < rows; i0 += B) {
      const i1 = Math.min(rows, i0 + B);
      for (let k0 = 0; k0 < cols; k0 += B) {
        const k1 = Math.min(cols, k0 + B);
        for (let k = k0; k < k1; k++) {
          const dst = x + k * n;
          for (let i = i0; i < i1; i++) F[dst + i] = data[i * cols + k];
        }
      }
    }
  }
  F.fill(0, x + m * n, end);
  // Row blocks of G of about L2_BLOCK_BYTES (the triangle's rows grow, so blocks shrink).
  const k = kernels();
  for (let i0 = 0; i0 < n;) {
    let i1 = i0;
    let bytes = 0;
    while (i1 < n && (i1 === i0 || bytes + (i1 + 1) * 8 <= L2_BLOCK_BYTES)) bytes += (++i1) * 8;
    k.gramLower(mPadded, n, x * 8, g * 8, i0, i1);
    i0 = i1;
  }
  return { n, m, x, g, end };
}

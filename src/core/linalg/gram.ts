// The Gram matrix of a layer's smaller side, in float64, in the WASM kernel memory:
// WᵀW (n = cols) when rows ≥ cols, W·Wᵀ (n = rows) otherwise. float64 because the small
// singular values come out as √λ: an error δ in λ becomes √δ in σ, which float32 cannot afford.
// X is W scaled by a power of two (exact) so the squares neither over- nor underflow.
import { kernels, kernelMemory } from './wasm';
import { powerOfTwoScale } from './scale';

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
  /** X = scale·W (or scale·Wᵀ), a power of two: σ(W) = √λ(G) / scale. */
  scale: number;
}

/** Rows of X copied into kernel memory per pass when X is not kept (bounds memory for huge layers). */
const CHUNK_DOUBLES = 4 * 1024 * 1024;

/**
 * Forms the Gram matrix of W's smaller side in kernel memory. With `keepX` (needed to compute
 * the other singular vectors), X = W or Wᵀ stays in memory before G; otherwise X streams
 * through a bounded chunk after G and the `extraDoubles` work space, so only G (n²) must fit.
 */
export function gramToKernelMemory(data: Float32Array | Float64Array, rows: number, cols: number, extraDoubles = 0, keepX = true, chunkDoubles = CHUNK_DOUBLES): GramLayout {
  const tall = rows >= cols;
  const n = tall ? cols : rows;
  const m = tall ? rows : cols;
  const chunkRows = keepX ? Math.ceil(m / 4) * 4 : Math.max(4, Math.min(Math.ceil(m / 4) * 4, Math.floor(chunkDoubles / n / 4) * 4));
  // One spare element after X and after G: the kernel's last pair may read/write one past a row.
  // Even indices keep the SIMD pairs 16-byte aligned.
  const xSize = (chunkRows * n + 2) & ~1;
  const gSize = (n * n + 2) & ~1;
  const x = keepX ? 0 : gSize + ((extraDoubles + 1) & ~1);
  const g = keepX ? xSize : 0;
  const end = g + gSize;
  const F = kernelMemory(Math.max(end + extraDoubles, x + xSize));
  F.fill(0, g, end);
  const k = kernels();
  const scale = powerOfTwoScale(data);
  for (let r0 = 0; r0 < m; r0 += chunkRows) {
    const r1 = Math.min(m, r0 + chunkRows);
    copyRowsOfX(F, x, data, rows, cols, tall, r0, r1);
    if (scale !== 1) for (let i = x, end = x + (r1 - r0) * n; i < end; i++) F[i] *= scale;
    F.fill(0, x + (r1 - r0) * n, x + xSize); // padding rows and the spare element
    const passRows = Math.ceil((r1 - r0) / 4) * 4;
    // Row blocks of G of about L2_BLOCK_BYTES (the triangle's rows grow, so blocks shrink).
    for (let i0 = 0; i0 < n;) {
      let i1 = i0;
      let bytes = 0;
      while (i1 < n && (i1 === i0 || bytes + (i1 + 1) * 8 <= L2_BLOCK_BYTES)) bytes += (++i1) * 8;
      k.gramLower(passRows, n, x * 8, g * 8, i0, i1);
      i0 = i1;
    }
  }
  return { n, m, x, g, end, scale };
}

/** X rows [r0, r1) to kernel memory at `at`: rows of W when tall, columns of W (rows of Wᵀ) when wide. */
function copyRowsOfX(F: Float64Array, at: number, data: Float32Array | Float64Array, rows: number, cols: number, tall: boolean, r0: number, r1: number): void {
  if (tall) {
    F.set(data.subarray(r0 * cols, r1 * cols), at);
    return;
  }
  // X[k, i] = W[i, k], k in [r0, r1). Blocked transpose keeps both sides in cache.
  const n = rows;
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let k0 = r0; k0 < r1; k0 += B) {
      const k1 = Math.min(r1, k0 + B);
      for (let kk = k0; kk < k1; kk++) {
        const dst = at + (kk - r0) * n;
        for (let i = i0; i < i1; i++) F[dst + i] = data[i * cols + kk];
      }
    }
  }
}

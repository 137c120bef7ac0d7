// A plain matrix product on the packed register tiles of gemmPacked, cache-blocked like the Gram
// (KC-deep panels, NC-wide column blocks), its rows split across the team: C += A·B; or, for
// large products, through ONNX Runtime (multiplyAdd).
import { ceil4, KC, NC } from './gram';
import { ortGemmAvailable, productOrt } from './ortGemm';
import { splitRows } from './team';
import { kernelMemory, kernels } from './wasm';

const NO_SKIP = 1 << 30;

/** Doubles of work space multiplyBlocked needs for an m×·×N product. */
export const productWork = (m: number, N: number) => KC * (ceil4(m) + ceil4(N)) + 2;

/**
 * C (row stride ldc, room for ceil4(m) rows and ceil4(N) columns: edge tiles add exact zeros
 * there) += A (m×n, row stride lda) · B (n×N, row stride ldb), all float64 indices in kernel
 * memory; productWork(m, N) doubles at `work`.
 */
export function multiplyBlocked(m: number, n: number, N: number, a: number, lda: number, b: number, ldb: number, c: number, ldc: number, work: number): void {
  const K = kernels();
  const m4 = ceil4(m), N4 = ceil4(N);
  const pa = (work + 1) & ~1, pb = pa + KC * m4;
  for (let p0 = 0; p0 < n; p0 += KC) {
    const kc = Math.min(KC, n - p0);
    K.packRowStrips((a + p0) * 8, lda, m, kc, pa * 8);
    K.packStrips((b + p0 * ldb) * 8, ldb, kc, N, pb * 8);
    for (let j0 = 0; j0 < N4; j0 += NC) {
      const cols = Math.min(NC, N4 - j0);
      splitRows(m4, (r0, r1) => ['gemmPacked', kc, r1 - r0, cols, (pa + r0 * kc) * 8, (pb + j0 * kc) * 8, (c + r0 * ldc + j0) * 8, ldc, NO_SKIP, 1]);
    }
  }
}

/** From this many multiply-adds (m·n·N) a product goes through ONNX Runtime (ortGemm.ts); below, its copies are not repaid. */
export const ORT_PRODUCT_MIN_MACS = 2 ** 23;

/**
 * C += A·B as multiplyBlocked (same arguments), through ONNX Runtime's GEMM when the product is
 * large enough and ORT is available.
 */
export function multiplyAdd(m: number, n: number, N: number, a: number, lda: number, b: number, ldb: number, c: number, ldc: number, work: number): void {
  if (!multiplyAddOrt(m, n, N, a, lda, b, ldb, c, ldc)) multiplyBlocked(m, n, N, a, lda, b, ldb, c, ldc, work);
}

/**
 * C += A·B (kernel-memory indices and row strides) through ONNX Runtime: A's rows copied out in
 * blocks, B once, C's rows added back. False (nothing done) when the product is below
 * ORT_PRODUCT_MIN_MACS or ORT is not available: the caller runs its WASM kernels.
 */
function multiplyAddOrt(m: number, n: number, N: number, a: number, lda: number, b: number, ldb: number, c: number, ldc: number): boolean {
  if (m * n * N < ORT_PRODUCT_MIN_MACS || !ortGemmAvailable()) return false;
  const bPlain = new Float64Array(n * N);
  let F = kernelMemory(0);
  for (let i = 0; i < n; i++) bPlain.set(F.subarray(b + i * ldb, b + i * ldb + N), i * N);
  return productOrt(m, n, N, (r0, rows, out) => {
    F = kernelMemory(0);
    for (let i = 0; i < rows; i++) out.set(F.subarray(a + (r0 + i) * lda, a + (r0 + i) * lda + n), i * n);
  }, bPlain, (r0, rows, out) => {
    F = kernelMemory(0);
    for (let i = 0; i < rows; i++) {
      const row = c + (r0 + i) * ldc, src = i * N;
      for (let j = 0; j < N; j++) F[row + j] += out[src + j];
    }
  });
}

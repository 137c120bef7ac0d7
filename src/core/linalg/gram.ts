// The Gram matrix of a layer's smaller side, in float64, in the WASM kernel memory:
// WᵀW (n = cols) when rows ≥ cols, W·Wᵀ (n = rows) otherwise. float64 because the small
// singular values come out as √λ: an error δ in λ becomes √δ in σ, which float32 cannot afford.
// X is W scaled by a power of two (exact) so the squares neither over- nor underflow (float64
// weights; float32 ones cannot, scale.ts).
import { gramOrt, ortGemmAvailable } from './ortGemm';
import { powerOfTwoScale } from './scale';
import { scratch } from './scratch';
import { runTasks, teamSize, type KernelCall, type Task } from './team';
import { kernels, kernelMemory } from './wasm';

/**
 * Cache blocking of the Gram product (GEMM-style, on the packed 4×4 tiles of gemmPacked): KC rows
 * of X per packed panel (one strip, KC×4 doubles = 8 KiB, stays in L1 while a row of tiles is
 * computed), NC columns of G per block (the packed block, KC×NC doubles = 1 MiB, stays in L2 while
 * every row strip below it streams by). So the flops per byte from memory grow with the block,
 * not with the matrix: cost follows the flop count.
 */
export const KC = 256;
export const NC = 512;

/** n rounded up to the 4-wide tiles. */
export const ceil4 = (n: number) => (n + 3) & ~3;

/**
 * Doubles of slack a symmetric n×n matrix needs after its n² values for tiled updates of its
 * lower triangle: the edge tiles write exact zeros up to 3 rows and columns past the end.
 */
export const tileSlack = (n: number) => 4 * n + 16;

/**
 * The gemmPacked calls for the lower-triangle tiles of rows [r0, r1) of C += alpha·AᵀB, C of
 * order `order` (a multiple of 4) at float64 index c with row stride ldc, from packed strips
 * (kc deep) at pa and pb; one call per block column of NC.
 */
export function lowerTileCalls(kc: number, order: number, r0: number, r1: number, pa: number, pb: number, c: number, ldc: number, alpha: number): KernelCall[] {
  const calls: KernelCall[] = [];
  for (let j0 = 0; j0 < r1; j0 += NC) {
    const row = Math.max(r0, j0);
    if (row >= r1) continue;
    calls.push(['gemmPacked', kc, r1 - row, Math.min(NC, order - j0), (pa + row * kc) * 8, (pb + j0 * kc) * 8, (c + row * ldc + j0) * 8, ldc, row - j0, alpha]);
  }
  return calls;
}

/** Row pieces of a lower triangle with equal areas (boundaries multiples of 4): r_t = order·√(t/pieces). */
export function trianglePieces(order: number, pieces: number): number[] {
  const cuts = [0];
  for (let t = 1; t < pieces; t++) {
    const r = Math.floor((order * Math.sqrt(t / pieces)) / 4) * 4;
    if (r > cuts[cuts.length - 1] && r < order) cuts.push(r);
  }
  cuts.push(order);
  return cuts;
}

/** Row pieces per symmetric update when a team shares it: enough for the claiming to balance. */
const UPDATE_PIECES = 8;

/**
 * A symmetric rank-kc update of C's lower triangle (C += alpha·AᵀB, plus alpha·A'ᵀB' with `also`),
 * as row pieces of equal area that the team's threads claim.
 */
export function lowerUpdate(kc: number, order: number, pa: number, pb: number, c: number, ldc: number, alpha: number, also?: { pa: number; pb: number }): void {
  const cuts = trianglePieces(order, teamSize() === 2 ? UPDATE_PIECES : 1);
  const tasks: Task[] = [];
  for (let t = 0; t + 1 < cuts.length; t++) {
    tasks.push([
      ...lowerTileCalls(kc, order, cuts[t], cuts[t + 1], pa, pb, c, ldc, alpha),
      ...(also ? lowerTileCalls(kc, order, cuts[t], cuts[t + 1], also.pa, also.pb, c, ldc, alpha) : []),
    ]);
  }
  runTasks(tasks);
}

export interface GramLayout {
  /** Order of the Gram matrix: min(rows, cols). */
  n: number;
  /** The other side. */
  m: number;
  /** X = W and G = WᵀW (rows ≥ cols; rows > cols through ONNX Runtime); else X = Wᵀ and G = W·Wᵀ. */
  tall: boolean;
  /** float64 index of the matrix (X, m padded to a multiple of 4 rows × n) in kernel memory; −1 through ONNX Runtime (X is then kept as `xt`, if at all). */
  x: number;
  /**
   * X kept for ONNX Runtime (the Gram route through it): Xᵀ as plain float64 column chunks, each
   * n×rows row-major (Xᵀ's columns r0…r0+rows−1), the very buffers the Gram was computed from.
   */
  xt?: XtChunk[];
  /** float64 index of G (n×n row-major, lower triangle filled). */
  g: number;
  /** First free float64 index after G. */
  end: number;
  /** X = scale·W (or scale·Wᵀ), a power of two: σ(W) = √λ(G) / scale. */
  scale: number;
}

/** Columns r0…r0+rows−1 of Xᵀ (n×rows, row-major, plain memory: what ONNX Runtime reads). */
export interface XtChunk {
  r0: number;
  rows: number;
  data: Float64Array;
}

/** Rows of X copied into kernel memory per pass when X is not kept (bounds memory for huge layers). */
const CHUNK_DOUBLES = 4 * 1024 * 1024;

/**
 * From this many multiply-adds (m·n²) the Gram goes through ONNX Runtime's GEMM (ortGemm.ts);
 * below, its copies and call overhead are not repaid (measured: bench/gemm.bench.ts).
 */
export const ORT_GRAM_MIN_MACS = 2 ** 25;

/**
 * Forms the Gram matrix of W's smaller side in kernel memory. With `keepX` (needed to compute
 * the other singular vectors), X = W or Wᵀ stays in memory before G (through ONNX Runtime, as
 * the plain Xᵀ chunks the Gram read: `xt`); otherwise X streams
 * through a bounded chunk after G and the `extraDoubles` work space, so only G (n²) must fit.
 * `maxAbs` (the largest |w|) saves a pass when the caller has scanned W already (checkMatrix).
 */
export function gramToKernelMemory(data: Float32Array | Float64Array, rows: number, cols: number, extraDoubles = 0, keepX = true,
  chunkDoubles = CHUNK_DOUBLES, maxAbs?: number): GramLayout {
  const tall = rows >= cols;
  const n = tall ? cols : rows;
  const m = tall ? rows : cols;
  const scale = powerOfTwoScale(data, maxAbs);
  if (m * n * n >= ORT_GRAM_MIN_MACS && ortGemmAvailable()) return gramByOrt(data, rows, cols, extraDoubles, keepX, chunkDoubles, scale);
  const n4 = ceil4(n);
  const chunkRows = keepX ? ceil4(m) : Math.max(4, Math.min(ceil4(m), Math.floor(chunkDoubles / n / 4) * 4));
  // One spare element after X; even indices keep the SIMD pairs 16-byte aligned. G is computed
  // with row stride n4 (whole tiles), then compacted to n×n in place, with tileSlack after it.
  const xSize = (chunkRows * n + 2) & ~1;
  const gSize = (n4 * n4 + tileSlack(n4) + 2) & ~1;
  const x = keepX ? 0 : gSize + ((extraDoubles + 1) & ~1);
  const g = keepX ? xSize : 0;
  const end = g + gSize;
  const pack = (Math.max(end + extraDoubles, x + xSize) + 1) & ~1; // packed panel, only during the product
  const F = kernelMemory(pack + KC * n4);
  F.fill(0, g, end);
  const k = kernels();
  for (let r0 = 0; r0 < m; r0 += chunkRows) {
    const r1 = Math.min(m, r0 + chunkRows);
    copyRowsOfX(F, x, data, rows, cols, tall, r0, r1, scale);
    F.fill(0, x + (r1 - r0) * n, x + xSize); // padding rows and the spare element
    for (let p0 = r0; p0 < r1; p0 += KC) {
      const kc = Math.min(KC, r1 - p0);
      k.packStrips((x + (p0 - r0) * n) * 8, n, kc, n, pack * 8);
      lowerUpdate(kc, n4, pack, pack, g, n4, 1); // G += panelᵀ·panel, lower tiles
    }
  }
  for (let i = 1; i < n; i++) F.copyWithin(g + i * n, g + i * n4, g + i * n4 + n);
  return { n, m, tall, x, g, end, scale };
}

/**
 * The same layout through ONNX Runtime (ortGemm.ts): Xᵀ in column chunks from W, G's lower
 * triangle (and diagonal blocks) copied into place at the end. A square W counts as wide: Xᵀ's
 * rows are then pieces of W's rows (scaled copies, no transpose). X is kept as those chunks (`xt`),
 * which the other side's product reads as they are: no copy of X in kernel memory.
 */
function gramByOrt(data: Float32Array | Float64Array, rows: number, cols: number, extraDoubles: number, keepX: boolean, chunkDoubles: number, scale: number): GramLayout {
  const tall = rows > cols;
  const n = tall ? cols : rows;
  const m = tall ? rows : cols;
  const gSize = (ceil4(n) ** 2 + tileSlack(ceil4(n)) + 2) & ~1;
  const g = 0, end = gSize;
  const F = kernelMemory(end + extraDoubles);
  F.fill(0, g, end);
  // Kept chunks are one reused buffer: like the layout's kernel memory, they last until the next Gram on this thread.
  const xt: XtChunk[] | undefined = keepX ? [] : undefined;
  const whole = keepX ? scratch('gram.keptXt', n * m) : undefined;
  gramOrt(m, n, (r0, r, out) => {
    if (tall) transpose(data, r0 * cols, cols, r, n, out, scale);
    else for (let i = 0; i < n; i++) scaleInto(out, i * r, data.subarray(i * cols + r0, i * cols + r0 + r), scale);
  }, (i, row) => F.set(row, g + i * n), chunkDoubles, xt && ((r0, r) => {
    const chunk = { r0, rows: r, data: whole!.subarray(n * r0, n * (r0 + r)) };
    xt.push(chunk);
    return chunk.data;
  }));
  return { n, m, tall, x: -1, xt, g, end, scale };
}

/** X rows [r0, r1), times `scale`, into `F` at `at`: rows of W when tall, columns of W (rows of Wᵀ) when wide. */
function copyRowsOfX(F: Float64Array, at: number, data: Float32Array | Float64Array, rows: number, cols: number, tall: boolean, r0: number, r1: number, scale: number): void {
  if (tall) scaleInto(F, at, data.subarray(r0 * cols, r1 * cols), scale);
  else transpose(data, r0, cols, rows, r1 - r0, F, scale, at); // X[k, i] = W[i, k], k in [r0, r1)
}

/**
 * out[at + j·rows + i] = scale·src[offset + i·ld + j] for i < rows, j < cols, in strips of 16 rows:
 * each output row gets 16 contiguous writes while the strip's 16 source rows stay in cache
 * (measured faster than square 64×64 blocks: 5.5 against 6.9 ms for 3072×768).
 */
function transpose(src: Float32Array | Float64Array, offset: number, ld: number, rows: number, cols: number, out: Float64Array, scale = 1, at = 0): void {
  const S = 16;
  for (let i0 = 0; i0 < rows; i0 += S) {
    const i1 = Math.min(rows, i0 + S);
    for (let j = 0; j < cols; j++) {
      const o = at + j * rows;
      for (let i = i0; i < i1; i++) out[o + i] = src[offset + i * ld + j] * scale;
    }
  }
}

function scaleInto(out: Float64Array, at: number, src: Float32Array | Float64Array, scale: number): void {
  out.set(src, at);
  if (scale !== 1) for (let i = at, end = at + src.length; i < end; i++) out[i] *= scale;
}

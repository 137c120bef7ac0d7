// The leading eigenpairs of the Gram matrix G by block Lanczos with full re-orthogonalization:
// a Krylov basis V = [Q_0 Q_1 …] of b-wide blocks from a random start block (a block method, so
// eigenvalues of multiplicity up to b are found), each new block G·Q_j orthogonalized against all
// of V by block classical Gram–Schmidt twice and made orthonormal by Cholesky-QR twice; the
// projection T = VᵀGV (block tridiagonal up to rounding, kept dense) gives the Ritz pairs, whose
// residuals ‖G·z − θ·z‖ = ‖B_{j+1}·(the last b entries of z's coefficients)‖ cost nothing extra.
// The basis is held transposed (one basis vector per row, row stride n4). On the packed WASM tiles
// G·Q_j is computed as Q_jᵀ·G (G symmetric, packed once); through ONNX Runtime G is the streamed
// left operand of G·Q_j and the basis that of V·Y and Vᵀ·C, so GEMM packs only the small blocks.
import { ceil4, KC, NC, tileSlack, type GramLayout } from './gram';
import { crossProductOrt, ortGemmAvailable, productPlainOrt } from './ortGemm';
import { multiplyAdd, ORT_PRODUCT_MIN_MACS } from './product';
import { scratch } from './scratch';
import { splitRows } from './team';
import { symmetricEigen, symmetricEigenTails, symmetricEigenWork } from './triplets';
import { kernels, kernelMemory } from './wasm';

const NO_SKIP = 1 << 30;

/**
 * From this many multiply-adds per G·Q (n²·b) that product goes through ONNX Runtime: at n = 768,
 * b = 8 (4.7 M) a 768×768 energy-0.9 job took 50 against 54–55 ms (medians of 25) on the WASM tiles.
 */
const ORT_LANCZOS_MIN_MACS = 2 ** 22;

export interface RitzPairs {
  /** Ritz values of G on span(V), descending (G's own scale). */
  values: Float64Array;
  /** ‖G·z − θ·z‖ for each. */
  residuals: Float64Array;
}

/** Doubles of kernel memory after probe.end that a BlockLanczos (block b, at most `dmax` basis vectors) and `pairs` Ritz vectors need. */
export function lanczosMemory(n: number, b: number, dmax: number, pairs: number): number {
  const n4 = ceil4(n);
  return n * n4 + (dmax + b) * n4 + b * n4 + b * dmax + KC * (dmax + n4) + 2
    + dmax * dmax + tileSlack(dmax) + symmetricEigenWork(dmax) + dmax * dmax + (ceil4(pairs) + pairs) * n4 + 16;
}

/** The Krylov basis, the projected matrix and their steps, in kernel memory after the Gram layout. */
export class BlockLanczos {
  private readonly K = kernels();
  private readonly n: number;
  private readonly n4: number;
  private readonly pg: number;
  private readonly vt: number;
  private readonly yt: number;
  private readonly ct: number;
  private readonly work: number;
  private readonly tk: number;
  private readonly ew: number;
  private readonly ev: number;
  private readonly small: number;
  /** First free index: Ritz vectors go there. */
  readonly free: number;
  /**
   * With ONNX Runtime, G·Q goes through it from ORT_LANCZOS_MIN_MACS per product (on a plain copy
   * of G, both triangles, made once), and so do the Gram–Schmidt products from ORT_PRODUCT_MIN_MACS
   * (on plain copies of the basis rows, n each, made as they are made): the large operands are
   * never copied per product.
   */
  private readonly gPlain: Float64Array | undefined;
  private readonly vPlain: Float64Array | undefined;
  /** T = VᵀGV, dmax×dmax (row stride dmax), filled up to `dim`. */
  private readonly t: Float64Array;
  /** B_{j+1}: the last block's R (b×b, upper, row-major). */
  private readonly r: Float64Array;
  /** Columns of T filled (the blocks multiplied so far, times b). */
  dim = 0;
  private seed = 0x9e3779b9;

  constructor(private readonly probe: GramLayout, readonly b: number, readonly dmax: number) {
    const n = (this.n = probe.n);
    const n4 = (this.n4 = ceil4(n));
    const even = (x: number) => (x + 1) & ~1;
    const ort = n * n * b >= ORT_LANCZOS_MIN_MACS && ortGemmAvailable();
    this.pg = even(probe.end); // G packed in KC-row blocks of 4-wide strips (n·n4), WASM products only
    this.vt = even(this.pg + (ort ? 0 : n * n4)); // the basis: (dmax + b) rows of n4
    this.yt = this.vt + (dmax + b) * n4; // the new block: b rows of n4
    this.ct = this.yt + b * n4; // its coefficients against the basis: b×dmax
    this.work = this.ct + b * dmax; // packed operands of the products
    this.tk = even(this.work + KC * (dmax + n4) + 2); // T for symmetricEigen (destroyed), then its work and vectors
    this.ew = even(this.tk + dmax * dmax + tileSlack(dmax));
    this.ev = even(this.ew + symmetricEigenWork(dmax));
    this.small = even(this.ev + dmax * dmax); // b×b: S, then R⁻ᵀ
    this.free = even(this.small + b * b + 16);
    const F = kernelMemory(this.free);
    F.fill(0, this.yt, this.yt + b * n4);
    this.t = new Float64Array(dmax * dmax);
    this.r = new Float64Array(b * b);
    // G's upper triangle from the lower one, then packed once (or copied out once) for every product.
    const g = probe.g;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) F[g + j * n + i] = F[g + i * n + j];
    if (ort) {
      this.gPlain = scratch('lanczos.g', n * n);
      this.gPlain.set(F.subarray(g, g + n * n));
      if (n * n * b >= ORT_PRODUCT_MIN_MACS) this.vPlain = new Float64Array((dmax + b) * n);
    } else for (let p0 = 0; p0 < n; p0 += KC) this.K.packStrips((g + p0 * n) * 8, n, Math.min(KC, n - p0), n, (this.pg + p0 * n4) * 8);
  }

  private get F(): Float64Array {
    return kernelMemory(0);
  }

  trace(): number {
    const F = this.F;
    const { g } = this.probe;
    let t = 0;
    for (let i = 0; i < this.n; i++) t += F[g + i * this.n + i];
    return t;
  }

  private random(): number {
    this.seed = (Math.imul(this.seed, 1103515245) + 12345) >>> 0;
    return this.seed / 2 ** 31 - 1;
  }

  /** Q_0 = orth(random n×b); false when that fails (it does not for a random block). */
  start(): boolean {
    const F = this.F;
    const { n, n4, b, yt } = this;
    F.fill(0, yt, yt + b * n4);
    for (let c = 0; c < b; c++) for (let i = 0; i < n; i++) F[yt + c * n4 + i] = this.random();
    return this.orthonormalizeInto(0, 0);
  }

  /**
   * One block step: Y = G·Q_j, orthogonalized twice against V (the coefficients fill T's block
   * column j), Q_{j+1}·B_{j+1} = Y. False on a breakdown: the new block is numerically
   * rank-deficient or (nearly) zero against ‖G‖ ≤ `gNorm` (an invariant subspace, or multiplicity > b).
   */
  step(gNorm: number): boolean {
    const { b, yt, t, dmax } = this;
    const j0 = this.dim;
    if (j0 + b > dmax) return false;
    this.multiplyByG(j0, yt);
    const d = j0 + b;
    const coef = new Float64Array(b * d);
    for (let pass = 0; pass < 2; pass++) {
      const c = this.project(d);
      for (let i = 0; i < c.length; i++) coef[i] += c[i];
    }
    // T's column block j (and its mirror); the diagonal block symmetrized.
    for (let c = 0; c < b; c++) {
      for (let i = 0; i < d; i++) {
        const x = coef[c * d + i];
        if (i < j0) t[i * dmax + j0 + c] = t[(j0 + c) * dmax + i] = x;
        else t[(j0 + c) * dmax + i] = x;
      }
    }
    for (let c = 0; c < b; c++) {
      for (let e = 0; e < c; e++) {
        const x = (t[(j0 + c) * dmax + j0 + e] + t[(j0 + e) * dmax + j0 + c]) / 2;
        t[(j0 + c) * dmax + j0 + e] = t[(j0 + e) * dmax + j0 + c] = x;
      }
    }
    this.dim = d;
    if (!this.orthonormalizeInto(d, gNorm)) return false;
    // B_{j+1} below the diagonal block (T[d + r][j0 + c] = R[r][c]), mirrored, when it fits.
    if (d + b <= dmax) {
      for (let r = 0; r < b; r++) {
        for (let c = r; c < b; c++) t[(d + r) * dmax + j0 + c] = t[(j0 + c) * dmax + d + r] = this.r[r * b + c];
      }
    }
    return true;
  }

  /** Yᵗ (b×n4 at y) = Q_jᵗ·G = (G·Q_j)ᵗ for the b basis rows from j0. */
  private multiplyByG(j0: number, y: number): void {
    const { K, n, n4, b, pg, work, gPlain } = this;
    const q = this.vt + j0 * n4;
    const F = this.F;
    F.fill(0, y, y + b * n4);
    if (gPlain) {
      // Y = G·Q_j with G as the streamed left operand (Q_j, n×b, is what GEMM packs).
      const qc = new Float64Array(n * b), yc = new Float64Array(n * b);
      for (let c = 0; c < b; c++) for (let i = 0, at = q + c * n4; i < n; i++) qc[i * b + c] = F[at + i];
      productPlainOrt(n, n, b, gPlain, qc, yc);
      for (let c = 0; c < b; c++) for (let i = 0, at = y + c * n4; i < n; i++) F[at + i] = yc[i * b + c];
      return;
    }
    const pa = (work + 1) & ~1;
    for (let p0 = 0; p0 < n; p0 += KC) {
      const kc = Math.min(KC, n - p0);
      K.packRowStrips((q + p0) * 8, n4, b, kc, pa * 8);
      for (let col = 0; col < n4; col += NC) {
        const cols = Math.min(NC, n4 - col);
        splitRows(cols, (c0, c1) => ['gemmPacked', kc, b, c1 - c0, pa * 8, (pg + p0 * n4 + (col + c0) * kc) * 8, (y + col + c0) * 8, n4, NO_SKIP, 1]);
      }
    }
  }

  /** One Gram–Schmidt pass of Y against the first d basis rows: C = Y·V_dᵀ (b×d), Y −= C·V_d; returns C. */
  private project(d: number): Float64Array {
    const { K, n, n4, b, vt, yt, ct, work, vPlain } = this;
    let F = this.F;
    if (vPlain) {
      // C = V_d·Y and Y −= V_dᵀ·C with Y as columns (n×b): the basis is never packed or copied.
      const yc = new Float64Array(n * b), c = new Float64Array(d * b), vc = new Float64Array(n * b);
      for (let r = 0; r < b; r++) for (let i = 0, at = yt + r * n4; i < n; i++) yc[i * b + r] = F[at + i];
      const v = vPlain.subarray(0, d * n);
      productPlainOrt(d, n, b, v, yc, c);
      crossProductOrt(d, n, b, v, c, vc);
      F = this.F;
      for (let r = 0; r < b; r++) for (let i = 0, at = yt + r * n4; i < n; i++) F[at + i] -= vc[i * b + r];
      // As rows (b×d), the layout of the WASM branch.
      const rows = new Float64Array(b * d);
      for (let i = 0; i < d; i++) for (let r = 0; r < b; r++) rows[r * d + i] = c[i * b + r];
      return rows;
    }
    // C (b×d, row stride d; d is a multiple of 4) = Y·V_dᵀ: both operands packed as row strips.
    F.fill(0, ct, ct + b * d);
    const pa = (work + 1) & ~1, pb = pa + KC * ceil4(b);
    for (let p0 = 0; p0 < n; p0 += KC) {
      const kc = Math.min(KC, n - p0);
      K.packRowStrips((yt + p0) * 8, n4, b, kc, pa * 8);
      K.packRowStrips((vt + p0) * 8, n4, d, kc, pb * 8);
      splitRows(d, (c0, c1) => ['gemmPacked', kc, b, c1 - c0, pa * 8, (pb + c0 * kc) * 8, (ct + c0) * 8, d, NO_SKIP, 1]);
    }
    F = this.F;
    const c = F.slice(ct, ct + b * d);
    for (let i = ct; i < ct + b * d; i++) F[i] = -F[i];
    multiplyAdd(b, d, n4, ct, d, vt, n4, yt, n4, work);
    return c;
  }

  /**
   * The block Y (at yt) made orthonormal by Cholesky-QR twice and written as basis rows from
   * `row`; R (Y = Q·R) kept. False when Y is numerically rank-deficient or its largest column is
   * not above 1e-12·gNorm.
   */
  private orthonormalizeInto(row: number, gNorm: number): boolean {
    const { b, n4, vt, yt } = this;
    const dst = vt + row * n4;
    const r1 = this.cholQR(yt, dst, gNorm);
    const r2 = r1 && this.cholQR(dst, yt, 0);
    if (!r1 || !r2) return false;
    // R = R2·R1 (both upper).
    const r = this.r;
    r.fill(0);
    for (let i = 0; i < b; i++) {
      for (let j = i; j < b; j++) {
        let x = 0;
        for (let t = i; t <= j; t++) x += r2[i * b + t] * r1[t * b + j];
        r[i * b + j] = x;
      }
    }
    const F = this.F;
    F.copyWithin(dst, yt, yt + b * n4);
    if (this.vPlain) for (let c = 0; c < b; c++) this.vPlain.set(F.subarray(dst + c * n4, dst + c * n4 + this.n), (row + c) * this.n);
    return true;
  }

  /**
   * dst = R⁻ᵀ·src for the b rows at src, RᵀR = src·srcᵀ (Cholesky; the b×b steps in JS, the
   * products on the kernels); R, or undefined when src is rank-deficient or its largest row
   * is not above 1e-12·gNorm.
   */
  private cholQR(src: number, dst: number, gNorm: number): Float64Array | undefined {
    const { K, n, n4, b, work, small } = this;
    const pa = (work + 1) & ~1;
    let F = this.F;
    F.fill(0, small, small + b * b);
    K.packRowStrips(src * 8, n4, b, n, pa * 8);
    K.gemmPacked(n, b, b, pa * 8, pa * 8, small * 8, b, NO_SKIP, 1);
    F = this.F;
    const s = F.slice(small, small + b * b);
    let biggest = 0;
    for (let i = 0; i < b; i++) biggest = Math.max(biggest, s[i * b + i]);
    if (!(biggest > 0 && biggest < Infinity) || !(Math.sqrt(biggest) > 1e-12 * gNorm)) return undefined;
    const r = new Float64Array(b * b);
    for (let i = 0; i < b; i++) {
      let d = s[i * b + i];
      for (let t = 0; t < i; t++) d -= r[t * b + i] ** 2;
      if (!(d > 1e-13 * biggest)) return undefined;
      const rii = Math.sqrt(d);
      r[i * b + i] = rii;
      for (let j = i + 1; j < b; j++) {
        let x = s[i * b + j];
        for (let t = 0; t < i; t++) x -= r[t * b + i] * r[t * b + j];
        r[i * b + j] = x / rii;
      }
    }
    // R⁻¹ (upper) column by column, stored transposed (lower) for dst = R⁻ᵀ·src.
    const inv = new Float64Array(b * b);
    for (let j = 0; j < b; j++) {
      for (let i = j; i >= 0; i--) {
        let x = i === j ? 1 : 0;
        for (let t = i + 1; t <= j; t++) x -= r[i * b + t] * inv[t * b + j];
        inv[i * b + j] = x / r[i * b + i];
      }
    }
    for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) F[small + i * b + j] = inv[j * b + i];
    F.fill(0, dst, dst + b * n4);
    K.matmulAdd(b, b, n4, small * 8, src * 8, dst * 8);
    return r;
  }

  /** T (d×d, d = dim) into tk, where the eigensolvers destroy it. */
  private copyT(): void {
    const { dim: d, dmax, t, tk } = this;
    const F = this.F;
    for (let i = 0; i < d; i++) F.set(t.subarray(i * dmax, i * dmax + d), tk + i * d);
  }

  /**
   * Ritz values and residuals of G on the basis so far; undefined when QL on T fails. Of T's
   * eigenvectors only the last b entries are formed (the residuals need no more): ritzVectors
   * makes the vectors once the policy has decided.
   */
  rayleighRitz(): RitzPairs | undefined {
    const { dim: d, tk, ew, ev, b, r } = this;
    this.copyT();
    const values = symmetricEigenTails(tk, d, b, ew, ev);
    if (!values) return undefined;
    const F = this.F;
    const residuals = new Float64Array(d);
    for (let e = 0; e < d; e++) {
      const last = ev + e * b;
      let sum = 0;
      for (let i = 0; i < b; i++) {
        let x = 0;
        for (let c = i; c < b; c++) x += r[i * b + c] * F[last + c];
        sum += x * x;
      }
      residuals[e] = Math.sqrt(sum);
    }
    return { values, residuals };
  }

  /**
   * The first k Ritz vectors on the basis so far as the rows of a k×n block at `free` (then
   * free + k·n is free), from T's k leading eigenvectors: the last rayleighRitz's QL, with vectors.
   */
  ritzVectors(k: number): number {
    const { n, n4, dim: d, vt, ev, work, tk, ew } = this;
    this.copyT();
    if (!symmetricEigen(tk, d, ew, ev, k)) throw new Error('QL on the projected matrix failed where it had converged');
    const zt = this.free, sel = zt + ceil4(k) * n4;
    const F = kernelMemory(sel + k * n);
    F.fill(0, zt, sel);
    multiplyAdd(k, d, n4, ev, d, vt, n4, zt, n4, work); // work holds productWork(k ≤ dmax, n4)
    const G = this.F;
    for (let t = 0; t < k; t++) G.copyWithin(sel + t * n, zt + t * n4, zt + t * n4 + n);
    return sel;
  }
}

// The leading singular triplets only, progressively: compression keeps the top k, and ‖W‖²_F
// (the trace of the Gram matrix) gives the total energy without any SVD, so an energy, rank or
// ratio policy needs just enough leading values to decide k. Randomized subspace iteration on the
// float64 Gram matrix G of the smaller side (G·Q on the packed tiles of gemmPacked, Cholesky-QR
// twice to re-orthonormalize, Rayleigh–Ritz on QᵀGQ), with l = 2k columns (oversampling k), grown
// while the policy needs more values. A Ritz pair counts only once its residual ‖G·z − θ·z‖ is
// ≤ RESIDUAL·θ_max (so |θ − λ| ≤ RESIDUAL·λ_max); without convergence in a bounded number of steps,
// or when the block is numerically rank-deficient, the caller takes the full route (tridiagonal).
// It replaces the O(n³) reduction by O(n²·l) per step: worth it when l ≪ n.
import { ceil4, gramToKernelMemory, KC, tileSlack, type GramLayout } from './gram';
import { RankscopeError } from '../errors';
import { blockedWorkDoubles } from './blockedTridiagonal';
import { fromGramEigenvectors, symmetricEigen, symmetricEigenWork, topSingularTriplets, tripletsFromGram, tripletsMemory, type SingularTriplets } from './triplets';
import { checkKernelMemory, checkMatrix, SMALL_SIDE, type MatrixData } from './singularValues';
import { crossProductOrt, ortGemmAvailable, productOrt } from './ortGemm';
import { multiplyAddOrt, ORT_PRODUCT_MIN_MACS } from './product';
import { splitRows } from './team';
import { kernels, kernelMemory, MAX_KERNEL_BYTES } from './wasm';

/**
 * Picks k from the leading singular values known so far (descending, each converged) and ‖W‖²_F;
 * undefined when it needs more values to decide. 0 means the layer keeps nothing. `whatIf`: the
 * values are a ceiling (could the target still be reached?), not results.
 */
export type LeadingRankChooser = (leading: Float64Array, totalEnergy: number, whatIf?: boolean) => number | undefined;

/** Largest share of n the block may reach: beyond it the full route is cheaper. */
export const RANDOMIZED_MAX_SHARE = 1 / 16;
/**
 * Below this order of G the full route is cheap enough (BERT-base's 768: the blocked reduction
 * costs about what a failed try at an energy target needing k > n/32 would waste).
 */
export const RANDOMIZED_MIN_ORDER = 1024;
const RESIDUAL = 1e-8;
const STEPS_PER_BLOCK = 30;
const FIRST_BLOCK = 32;
const NO_SKIP = 1 << 30;

export interface LeadingOptions {
  /** Initial l (rounded up to a multiple of 4; a known k asks for 2k). Default 32. */
  firstBlock?: number;
  /** Smallest order of G this route takes on; default RANDOMIZED_MIN_ORDER. */
  minOrder?: number;
}

export interface LeadingTriplets extends SingularTriplets {
  /** How many G·Q products the route took (for tests and benchmarks). */
  steps: number;
}

/**
 * The top-k triplets with k chosen by `want` from the leading values, from the Gram layout `probe`
 * (X kept; G's lower triangle is left intact), or undefined when this route does not apply or did
 * not converge (the caller then takes the full route from the same probe).
 */
export function leadingTriplets(probe: GramLayout, want: LeadingRankChooser, options: LeadingOptions = {}): LeadingTriplets | undefined {
  const { n, m } = probe;
  const lmax = Math.floor((n * RANDOMIZED_MAX_SHARE) / 4) * 4;
  let l = Math.max(8, ceil4(options.firstBlock ?? FIRST_BLOCK));
  if (n < (options.minOrder ?? RANDOMIZED_MIN_ORDER) || l > lmax) return undefined;
  const n4 = ceil4(n);
  if ((m * n + n4 * n4 + n * n4 + 8 * n4 * lmax + 4 * lmax * lmax + lmax * n) * 8 > MAX_KERNEL_BYTES) return undefined;
  const it = new SubspaceIteration(probe, lmax);
  // G is the Gram of scale·W (gram.ts): values and energies seen by `want` are W's own.
  const unscale = 1 / probe.scale;
  const total = it.trace() * unscale * unscale;
  if (!(total > 0)) return undefined; // W = 0: the full route gives its (zero) triplets
  if (!it.start(l, 0)) return undefined;
  let steps = 0;
  for (;;) {
    let converged = false;
    for (let step = 0; step < STEPS_PER_BLOCK; step++) {
      it.multiply();
      steps++;
      if (step < 2) {
        if (!it.orthonormalize()) return undefined;
        continue;
      }
      const ritz = it.rayleighRitz();
      if (!ritz) return undefined; // QL on the small projected matrix ran out of iterations
      // The converged prefix, at most l/2 (the other half is the oversampling).
      const half = l / 2;
      let c = 0;
      while (c < half && ritz.residuals[c] <= RESIDUAL * ritz.values[0]) c++;
      if (c > 0) {
        const leading = ritz.values.subarray(0, c).map((x) => Math.sqrt(Math.max(x, 0)) * unscale);
        const k = want(leading, total);
        if (k !== undefined && !(Number.isInteger(k) && k >= 0)) throw new RankscopeError('BAD_ARGUMENT', `rank ${k} is not a valid rank.`);
        if (k !== undefined && k <= c) return { ...it.triplets(k, ritz.values.slice(0, k)), steps };
      }
      if (c === half) {
        // No decision: grow only if the values up to lmax/2 could still bring it (each adds ≤ σ²_{c−1}).
        const top = c + (lmax / 2 - c);
        converged = want(withCeiling(ritz.values, c, top, unscale), total, true) !== undefined;
        break;
      }
      if (!it.orthonormalize()) return undefined;
    }
    // The block converged without a decision (grow it) or did not converge (give up).
    if (!converged || l >= lmax) return undefined;
    const grown = Math.min(lmax, 2 * l);
    if (!it.start(grown, l)) return undefined;
    l = grown;
  }
}

interface Ritz {
  values: Float64Array;
  residuals: Float64Array;
}

/** The buffers and steps of the iteration, all in kernel memory after the Gram layout. */
class SubspaceIteration {
  private readonly K = kernels();
  private readonly n: number;
  private readonly n4: number;
  private readonly g: number;
  private readonly pg: number;
  private readonly q: number;
  private readonly y: number;
  private readonly z: number;
  private readonly gz: number;
  private readonly pa: number;
  private readonly pb: number;
  private readonly s: number;
  private readonly ri: number;
  private readonly ew: number;
  private readonly ev: number;
  private readonly sel: number;
  /** G (both triangles) in a plain buffer when G·Q goes through ONNX Runtime (ortGemm.ts), copied once. */
  private readonly gPlain: Float64Array | undefined;
  private l = 0;
  private seed = 0x9e3779b9;

  constructor(private readonly probe: GramLayout, lmax: number) {
    const n = (this.n = probe.n);
    const n4 = (this.n4 = ceil4(n));
    const even = (x: number) => (x + 1) & ~1;
    this.g = probe.g;
    this.pg = even(probe.end); // G packed in KC-row blocks of 4-wide strips (n·n4)
    this.q = even(this.pg + n * n4); // Q, Y = G·Q, Z = Q·E, G·Z: n4×lmax each (row stride l)
    this.y = this.q + n4 * lmax;
    this.z = this.y + n4 * lmax;
    this.gz = this.z + n4 * lmax;
    this.pa = this.gz + n4 * lmax; // packed operands: n×lmax each
    this.pb = this.pa + n4 * lmax;
    this.s = this.pb + n4 * lmax; // l×l products (with tile slack), R⁻¹, eigen work and vectors
    this.ri = even(this.s + lmax * lmax + tileSlack(lmax));
    this.ew = this.ri + lmax * lmax;
    this.ev = even(this.ew + symmetricEigenWork(lmax));
    this.sel = this.ev + lmax * lmax;
    const F = kernelMemory(this.sel + lmax * n);
    // G's upper triangle from the lower one, then packed once for every product.
    const g = this.g;
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) F[g + j * n + i] = F[g + i * n + j];
    if (n * n * FIRST_BLOCK >= ORT_PRODUCT_MIN_MACS && ortGemmAvailable()) this.gPlain = F.slice(g, g + n * n);
    else for (let p0 = 0; p0 < n; p0 += KC) this.K.packStrips((g + p0 * n) * 8, n, Math.min(KC, n - p0), n, (this.pg + p0 * n4) * 8);
  }

  private get F(): Float64Array {
    return kernelMemory(0);
  }

  trace(): number {
    const F = this.F;
    let t = 0;
    for (let i = 0; i < this.n; i++) t += F[this.g + i * this.n + i];
    return t;
  }

  private random(): number {
    this.seed = (Math.imul(this.seed, 1103515245) + 12345) >>> 0;
    return this.seed / 2 ** 31 - 1;
  }

  /** Q = orth([Z's first `keep` columns | random]) with l columns; false when rank-deficient. */
  start(l: number, keep: number): boolean {
    const F = this.F;
    const { n, n4, y, z } = this;
    const old = this.l;
    F.fill(0, y, y + n4 * l);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < keep; j++) F[y + i * l + j] = F[z + i * old + j];
      for (let j = keep; j < l; j++) F[y + i * l + j] = this.random();
    }
    this.l = l;
    return this.cholQR(y, this.q) && this.cholQR(this.q, this.q);
  }

  /** Y = G·Q. */
  multiply(): void {
    const { K, n, n4, l, q, y, pg, pa, gPlain } = this;
    this.F.fill(0, y, y + n4 * l);
    if (gPlain) {
      const G = gPlain;
      productOrt(n, n, l, (r0, rows, out) => out.set(G.subarray(r0 * n, (r0 + rows) * n)), this.F.slice(q, q + n * l),
        (r0, _rows, out) => this.F.set(out, y + r0 * l));
      return;
    }
    for (let p0 = 0; p0 < n; p0 += KC) {
      const kc = Math.min(KC, n - p0);
      K.packStrips((q + p0 * l) * 8, l, kc, l, pa * 8);
      splitRows(n4, (r0, r1) => ['gemmPacked', kc, r1 - r0, l, (pg + p0 * n4 + r0 * kc) * 8, pa * 8, (y + r0 * l) * 8, l, NO_SKIP, 1]);
    }
  }

  /** Q = orth(Y) by Cholesky-QR twice; false when Y is numerically rank-deficient. */
  orthonormalize(): boolean {
    return this.cholQR(this.y, this.q) && this.cholQR(this.q, this.q);
  }

  /** out (l×l, row stride l) = AᵀB for n×l blocks A, B (row stride l). */
  private crossProduct(a: number, b: number, out: number): void {
    const { K, n, l, pa, pb } = this;
    if (n * l * l >= ORT_PRODUCT_MIN_MACS && ortGemmAvailable()) {
      const F = this.F;
      const aPlain = F.slice(a, a + n * l);
      const result = new Float64Array(l * l);
      if (crossProductOrt(n, l, l, aPlain, b === a ? aPlain : F.slice(b, b + n * l), result)) {
        this.F.set(result, out);
        return;
      }
    }
    K.packStrips(a * 8, l, n, l, pa * 8);
    if (b !== a) K.packStrips(b * 8, l, n, l, pb * 8);
    this.F.fill(0, out, out + l * l);
    splitRows(l, (r0, r1) => ['gemmPacked', n, r1 - r0, l, (pa + r0 * n) * 8, (b === a ? pa : pb) * 8, (out + r0 * l) * 8, l, NO_SKIP, 1]);
  }

  /** dst = src·R⁻¹ with RᵀR = srcᵀ·src (dst may be src). */
  private cholQR(src: number, dst: number): boolean {
    const { n4, l, s, ri, gz } = this;
    this.crossProduct(src, src, s);
    const F = this.F;
    let biggest = 0;
    for (let i = 0; i < l; i++) biggest = Math.max(biggest, F[s + i * l + i]);
    if (!(biggest > 0 && biggest < Infinity)) return false;
    // Upper R in place of S's upper triangle (row-major: R[i][j] at s + i·l + j, j ≥ i).
    for (let i = 0; i < l; i++) {
      let d = F[s + i * l + i];
      for (let t = 0; t < i; t++) d -= F[s + t * l + i] ** 2;
      if (!(d > 1e-13 * biggest)) return false; // numerically rank-deficient block
      const r = Math.sqrt(d);
      F[s + i * l + i] = r;
      for (let j = i + 1; j < l; j++) {
        let x = F[s + i * l + j];
        for (let t = 0; t < i; t++) x -= F[s + t * l + i] * F[s + t * l + j];
        F[s + i * l + j] = x / r;
      }
    }
    // R⁻¹ (upper), column by column: R·x = e_j.
    F.fill(0, ri, ri + l * l);
    for (let j = 0; j < l; j++) {
      for (let i = j; i >= 0; i--) {
        let x = i === j ? 1 : 0;
        for (let t = i + 1; t <= j; t++) x -= F[s + i * l + t] * F[ri + t * l + j];
        F[ri + i * l + j] = x / F[s + i * l + i];
      }
    }
    F.fill(0, gz, gz + n4 * l);
    this.times(src, ri, gz);
    this.F.copyWithin(dst, gz, gz + n4 * l);
    return true;
  }

  /** C += A·B for n×l blocks A, C and the l×l block B (row stride l): through ONNX Runtime when it pays. */
  private times(a: number, b: number, c: number): void {
    const { n, l } = this;
    if (!multiplyAddOrt(n, l, l, a, l, b, l, c, l)) splitRows(n, (r0, r1) => ['matmulAdd', r1 - r0, l, l, (a + r0 * l) * 8, b * 8, (c + r0 * l) * 8]);
  }

  /** Ritz pairs of G on span(Q) (Y = G·Q): values descending, Z = Q·E, residuals ‖G·z − θ·z‖; undefined if QL on QᵀGQ fails. */
  rayleighRitz(): Ritz | undefined {
    const { n, n4, l, q, y, z, gz, s, ri, ew, ev } = this;
    this.crossProduct(q, y, s);
    let F = this.F;
    for (let i = 0; i < l; i++) for (let j = 0; j < i; j++) F[s + i * l + j] = (F[s + i * l + j] + F[s + j * l + i]) / 2;
    const values = symmetricEigen(s, l, ew, ev);
    if (!values) return undefined;
    F = this.F;
    // E with the eigenvectors as columns (ev holds them as rows).
    for (let i = 0; i < l; i++) for (let j = 0; j < l; j++) F[ri + i * l + j] = F[ev + j * l + i];
    F.fill(0, z, z + n4 * l);
    F.fill(0, gz, gz + n4 * l);
    this.times(q, ri, z);
    this.times(y, ri, gz);
    F = this.F;
    const residuals = new Float64Array(l);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < l; j++) residuals[j] += (F[gz + i * l + j] - values[j] * F[z + i * l + j]) ** 2;
    }
    for (let j = 0; j < l; j++) residuals[j] = Math.sqrt(residuals[j]);
    return { values, residuals };
  }

  /** The first k Ritz vectors (the last rayleighRitz) as triplets. */
  triplets(k: number, values: Float64Array): SingularTriplets {
    const { n, l, z, sel } = this;
    const F = this.F;
    for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) F[sel + t * n + j] = F[z + j * l + t];
    return fromGramEigenvectors(this.probe, sel, values);
  }
}

/** The first c values (√θ·unscale), then values equal to σ_{c−1} up to `top`: the most the next ones can add. */
function withCeiling(theta: Float64Array, c: number, top: number, unscale: number): Float64Array {
  const out = new Float64Array(top);
  for (let i = 0; i < top; i++) out[i] = Math.sqrt(Math.max(theta[Math.min(i, c - 1)], 0)) * unscale;
  return out;
}

/** Which route `progressiveTriplets` took: for tests and benchmarks. */
export type TripletRoute = 'leading' | 'full';

/**
 * The top-k triplets for a k that `want` picks: by the leading-triplets route where it applies
 * and converges, else by the full route from the same Gram (all singular values, then the top-k
 * vectors), where `want` sees every value. `all` is set only on the full route.
 */
export function progressiveTriplets(data: MatrixData, rows: number, cols: number, want: LeadingRankChooser, label = 'matrix', options: LeadingOptions = {}): SingularTriplets & { route: TripletRoute } {
  checkMatrix(data, rows, cols, label);
  const r = Math.min(rows, cols);
  let total = 0;
  for (let i = 0; i < data.length; i++) total += data[i] * data[i];
  const chooser = (all: Float64Array) => {
    const k = want(all, total);
    if (k === undefined) throw new Error(`${label}: the rank chooser could not decide from all ${all.length} singular values`);
    if (!Number.isInteger(k) || k < 0 || k > r) throw new RankscopeError('BAD_ARGUMENT', `${label}: rank ${k} is out of range for a ${rows}×${cols} matrix (0…${r}).`);
    return k;
  };
  if (r < Math.max(SMALL_SIDE, options.minOrder ?? RANDOMIZED_MIN_ORDER)) return { ...topSingularTriplets(data, rows, cols, chooser, label), route: 'full' };
  checkKernelMemory(tripletsMemory(rows, cols, r), rows, cols, label);
  const probe = gramToKernelMemory(data, rows, cols, blockedWorkDoubles(r) + 2 * r * r, true);
  const leading = leadingTriplets(probe, want, options);
  if (leading) return { u: leading.u, s: leading.s, v: leading.v, route: 'leading' };
  return { ...tripletsFromGram(data, probe, chooser, 'auto', {}, label), route: 'full' };
}

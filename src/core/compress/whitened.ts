// Data-aware (activation-whitened) factorization, after SVD-LLM. A layer y = W·x (W: m×n, the
// canonical [out, in] matrix) sees inputs X (n×N, one column per input vector) whose Gram is
// G = X·Xᵀ (n×n, accumulated by eval/calibration.ts). With any S such that S·Sᵀ = G,
//     ‖(W − W′)·X‖²_F = tr((W − W′)·G·(W − W′)ᵀ) = ‖(W − W′)·S‖²_F,
// so the best rank-k W′ for the data is the truncated SVD of W·S = U·Σ·Vᵀ mapped back:
//     W′ = U_k·Σ_k·V_kᵀ·S⁻¹,   A = U_k·Σ_k^½ (m×k),   B = Σ_k^½·V_kᵀ·S⁻¹ (k×n),
// balanced in the whitened space (both A and B·S carry √σ, as plain SVD's A = U√Σ, B = √ΣVᵀ),
// and the output error at rank k is exactly Σ_{i>k} σ_i² of W·S: the per-rank loss curve the
// 'whitened' budget allocation uses with no extra evaluation.
//
// S is the lower Cholesky factor L of G when G is well conditioned (every pivot ≥ JITTER·max Gᵢᵢ).
// Otherwise (rank-deficient: fewer input vectors than n, dead channels, constant features) G is
// decomposed as Q·Λ·Qᵀ and every eigenvalue below δ = jitter·λ_max is raised to δ: S = Q·Λ′^½.
// The loss then is that of the regularized Gram G′ ⪰ G (an upper bound on the calibration error,
// by at most δ·‖W − W′‖²_F); the route, δ and how many directions were raised are reported.
//
// Gather embeddings (rows = vocabulary) see one-hot inputs: the Gram is diagonal, the count of
// each index, and the whitening acts on the rows: D = diag(√c), W′ = D⁻¹·U_k·Σ_k·V_kᵀ from the SVD
// of D·W, A = D⁻¹·U_k·Σ_k^½, B = Σ_k^½·V_kᵀ. Indices never seen get the count δ·max c.
// That weighting is opt-in ('counts'): by default an embedding keeps uniform row weights (D = I,
// the plain SVD's factors, stated in a note), because a few hundred calibration samples see few
// of a vocabulary's tokens, and weighting rows by frequency spends the rank on frequent tokens
// that carry little (docs/whitened.md measures both).
import { RankscopeError } from '../errors';
import { singularValues, topSingularTriplets } from '../linalg';
import { blockedWorkDoubles, tridiagonalizeBlocked } from '../linalg/blockedTridiagonal';
import { tileSlack } from '../linalg/gram';
import { jacobiSvd } from '../linalg/jacobi';
import { tridiagonalEigen } from '../linalg/tridiagonal';
import { kernelMemory, kernels } from '../linalg/wasm';
import type { Factors } from './factor';
import type { GroupFactors } from './pool';

/** Pivots (Cholesky) or eigenvalues below this share of the largest count as singular. */
export const DEFAULT_JITTER = 1e-6;

/** How a Gram was turned into a whitening S (S·Sᵀ = G, or the regularized G′). */
export interface WhiteningInfo {
  /** diagonal: an embedding's rows weighted by √count; uniform: an embedding's rows unweighted (D = I). */
  route: 'cholesky' | 'eigen' | 'diagonal' | 'uniform';
  /** Relative jitter δ/λ_max used by the eigen (and diagonal) route. */
  jitter?: number;
  /** Directions (eigenvalues, or unseen indices) raised to δ. 0 for Cholesky. */
  regularized: number;
  /** Order of G. */
  n: number;
}

export interface Whitening extends WhiteningInfo {
  /** cholesky: L (n×n lower, row-major); eigen: S = Q·Λ′^½ (n×n); diagonal: √c′ (n); uniform: ones (n). */
  s: Float64Array;
  /** eigen only: S⁻¹ = Λ′^-½·Qᵀ. */
  sInv?: Float64Array;
}

/** Whitened factors of one group: the plain factors' fields plus every whitened singular value. */
export interface WhitenedFactors extends GroupFactors {
  /** All singular values of W·S (descending): loss at rank k = Σ_{i≥k} σᵢ². total = Σ σᵢ² = ‖W·X‖²_F. */
  whitened: Float64Array;
  whitening: WhiteningInfo;
}

export function isWhitened(f: GroupFactors): f is WhitenedFactors {
  return (f as WhitenedFactors).whitened !== undefined;
}

/** The lower Cholesky factor of the symmetric n×n `g` (row-major, both triangles), or undefined when a pivot is below `minPivot`. */
export function cholesky(g: Float64Array, n: number, minPivot = 0): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = g[rj + j];
    for (let p = 0; p < j; p++) d -= l[rj + p] * l[rj + p];
    if (!(d > minPivot)) return undefined;
    const ljj = Math.sqrt(d);
    l[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = g[ri + j];
      for (let p = 0; p < j; p++) s -= l[ri + p] * l[rj + p];
      l[ri + j] = s / ljj;
    }
  }
  return l;
}

/**
 * Eigen-decomposition of the symmetric n×n `g`: values (unsorted) and vectors as ROWS of an n×n
 * row-major array. Householder tridiagonalization and QL with vectors in LINALG's WASM kernels;
 * one-sided Jacobi (orthogonal to working precision) when QL runs out of iterations.
 */
export function symmetricEigen(g: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  // G at 0 with the tile slack the blocked reduction writes into, then its work space.
  const work = (n * n + tileSlack(n) + 1) & ~1, refl = work + blockedWorkDoubles(n), zt = refl + n * n;
  let F = kernelMemory(zt + n * n);
  F.set(g, 0);
  F.fill(0, n * n, work);
  const { d, e, reflectors } = tridiagonalizeBlocked(0, n, work, true, refl);
  F = kernelMemory(zt + n * n);
  F.fill(0, zt, zt + n * n);
  for (let i = 0; i < n; i++) F[zt + i * n + i] = 1;
  if (tridiagonalEigen(d, e, zt)) {
    const K = kernels();
    for (let c = n - 3; c >= 0; c--) if (reflectors!.tau[c] !== 0) K.reflectRows(zt * 8, n, n, (refl + c * n) * 8, c + 1, reflectors!.tau[c]);
    F = kernelMemory(zt + n * n);
    return { values: d, vectors: F.slice(zt, zt + n * n) };
  }
  const svd = jacobiSvd(g, n, n, true);
  if (!svd) throw new RankscopeError('NUMERIC', `the eigenvectors of a ${n}×${n} Gram matrix did not converge.`, 'Report this model and data (it is a solver bug).');
  // G is positive semi-definite: its SVD is its eigen-decomposition (vectors = columns of v).
  const vectors = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let t = 0; t < n; t++) vectors[t * n + i] = svd.v![i * n + t];
  return { values: svd.s, vectors };
}

/** The whitening of a Gram `g` (n×n): Cholesky when well conditioned, else the eigen route with jitter. */
export function whiteningOf(g: Float64Array, n: number, jitter = DEFAULT_JITTER): Whitening {
  checkJitter(jitter);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, g[i * n + i]);
  if (!(maxDiag > 0) || !Number.isFinite(maxDiag)) {
    throw new RankscopeError('NUMERIC', 'the calibration Gram is zero or not finite (the layer saw only zero or non-finite inputs).', 'Check the calibration data; a layer whose inputs are all zero cannot be whitened.');
  }
  const l = cholesky(g, n, jitter * maxDiag);
  if (l) return { route: 'cholesky', regularized: 0, n, s: l };
  const { values, vectors } = symmetricEigen(g, n);
  const top = values.reduce((a, v) => Math.max(a, v), 0);
  const delta = jitter * top;
  let regularized = 0;
  const s = new Float64Array(n * n);
  const sInv = new Float64Array(n * n);
  for (let t = 0; t < n; t++) {
    let lambda = values[t];
    if (!(lambda >= delta)) { lambda = delta; regularized++; }
    const root = Math.sqrt(lambda);
    // S[:, t] = q_t·√λ′_t ; S⁻¹[t, :] = q_tᵀ/√λ′_t (q_t = row t of `vectors`).
    for (let i = 0; i < n; i++) {
      const q = vectors[t * n + i];
      s[i * n + t] = q * root;
      sInv[t * n + i] = q / root;
    }
  }
  return { route: 'eigen', jitter, regularized, n, s, sInv };
}

/** Row whitening of a Gather embedding from index counts: √c′ with unseen indices raised to δ·max c. */
export function diagonalWhitening(counts: Float64Array, jitter = DEFAULT_JITTER): Whitening {
  checkJitter(jitter);
  const top = counts.reduce((a, v) => Math.max(a, v), 0);
  if (!(top > 0)) throw new RankscopeError('NUMERIC', 'the calibration saw no index of this embedding.', 'Check the calibration data.');
  const delta = jitter * top;
  let regularized = 0;
  const s = counts.map((c) => {
    if (c >= delta) return Math.sqrt(c);
    regularized++;
    return Math.sqrt(delta);
  });
  return { route: 'diagonal', jitter, regularized, n: counts.length, s };
}

function checkJitter(jitter: number): void {
  if (!(Number.isFinite(jitter) && jitter > 0 && jitter < 1)) throw new RankscopeError('BAD_ARGUMENT', `jitter must be in (0, 1); got ${jitter}.`);
}

/** How a Gather embedding's rows are weighted: by their calibration counts, or uniformly (the default). */
export type EmbeddingWeights = 'counts' | 'uniform';

/** What a whitening takes besides the Gram: the jitter of rank-deficient Grams and the embeddings' row weights. */
export interface WhiteningOptions {
  jitter?: number;
  embeddings?: EmbeddingWeights;
}

/** Uniform row weights for an embedding of `rows` rows: whitened factors equal the plain SVD's. */
function uniformRows(rows: number): Whitening {
  return { route: 'uniform', regularized: 0, n: rows, s: new Float64Array(rows).fill(1) };
}

/** Row whitenings (diagonal, uniform) act on W's rows; the others on its input side. */
function isRowWhitening(wh: WhiteningInfo): boolean {
  return wh.route === 'diagonal' || wh.route === 'uniform';
}

/** W (m×n row-major) · S for a right whitening (S n×n). */
function timesS(w: ArrayLike<number>, m: number, n: number, wh: Whitening): Float64Array {
  const out = new Float64Array(m * n);
  const s = wh.s;
  const lower = wh.route === 'cholesky';
  for (let i = 0; i < m; i++) {
    const row = i * n;
    for (let p = 0; p < n; p++) {
      const wip = w[row + p];
      if (wip === 0) continue;
      const sRow = p * n;
      // L is lower triangular: row p has entries in columns 0..p only.
      const end = lower ? p + 1 : n;
      for (let j = 0; j < end; j++) out[row + j] += wip * s[sRow + j];
    }
  }
  return out;
}

/** W·S (right whitening) or D·W (row whitening of an embedding): the matrix whose SVD the whitened factors truncate. */
function whitenedMatrix(w: Float32Array | Float64Array, m: number, n: number, wh: Whitening, label: string): Float64Array {
  const diagonal = isRowWhitening(wh);
  if (wh.n !== (diagonal ? m : n)) {
    throw new RankscopeError('SHAPE_MISMATCH', `${label}: the calibration Gram is ${wh.n}×${wh.n} but the layer's ${diagonal ? 'rows' : 'input width'} is ${diagonal ? m : n}.`,
      'The calibration was made for another model; recompute it (drop the calibration cache).');
  }
  if (!diagonal) return timesS(w, m, n, wh);
  const ws = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) ws[i * n + j] = w[i * n + j] * wh.s[i];
  return ws;
}

/** Every whitened singular value of each group of a layer (the spectrum the 'whitened' allocation and the spectrum view use). */
export function whitenedSpectra(matrices: { rows: number; cols: number; data: Float32Array | Float64Array }[], gram: LayerGram, options: WhiteningOptions, label: string): Float64Array[] {
  checkGroups(matrices.length, gram, label);
  const whitenings = layerWhitenings(gram, options);
  return matrices.map((m, g) => singularValues(whitenedMatrix(m.data, m.rows, m.cols, whitenings[g], label), m.rows, m.cols, label));
}

function checkGroups(groups: number, gram: LayerGram, label: string): void {
  if (gram.groups.length !== groups) {
    throw new RankscopeError('SHAPE_MISMATCH', `${label}: the calibration has ${gram.groups.length} Gram group(s) for ${groups} weight group(s).`, 'Recompute the calibration for this model.');
  }
}

/**
 * Balanced whitened factors of one matrix at rank k: W (m×n, row-major [out, in]) with the input
 * Gram's whitening (right) or, for embeddings, the row whitening (diagonal, length m).
 */
export function whitenedFactorize(w: Float32Array | Float64Array, m: number, n: number, k: number, wh: Whitening, label = 'matrix'): WhitenedFactors {
  const diagonal = isRowWhitening(wh);
  const t = topSingularTriplets(whitenedMatrix(w, m, n, wh, label), m, n, k, label);
  const all = t.all ?? t.s;
  let total = 0;
  let kept = 0;
  all.forEach((s, i) => { total += s * s; if (i < k) kept += s * s; });
  const a = new Float64Array(m * k);
  const b = new Float64Array(k * n);
  const roots = Array.from(t.s, (s) => Math.sqrt(Math.max(0, s)));
  for (let i = 0; i < m; i++) {
    const rowScale = diagonal ? 1 / wh.s[i] : 1;
    for (let j = 0; j < k; j++) a[i * k + j] = t.u[i * k + j] * roots[j] * rowScale;
  }
  if (diagonal) {
    for (let j = 0; j < k; j++) for (let i = 0; i < n; i++) b[j * n + i] = t.v[i * k + j] * roots[j];
  } else if (wh.route === 'eigen') {
    // B = Σ^½·V_kᵀ·S⁻¹.
    const sInv = wh.sInv!;
    for (let j = 0; j < k; j++) {
      for (let p = 0; p < n; p++) {
        const c = t.v[p * k + j] * roots[j];
        if (c === 0) continue;
        for (let i = 0; i < n; i++) b[j * n + i] += c * sInv[p * n + i];
      }
    }
  } else {
    // Bᵀ = L⁻ᵀ·(V_k·Σ^½): back substitution with Lᵀ (upper), never forming L⁻¹.
    const l = wh.s;
    const y = new Float64Array(n * k);
    for (let p = 0; p < n; p++) for (let j = 0; j < k; j++) y[p * k + j] = t.v[p * k + j] * roots[j];
    for (let i = n - 1; i >= 0; i--) {
      const lii = l[i * n + i];
      for (let j = 0; j < k; j++) {
        let s = y[i * k + j];
        for (let r = i + 1; r < n; r++) s -= l[r * n + i] * y[r * k + j];
        y[i * k + j] = s / lii;
      }
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) b[j * n + i] = y[i * k + j];
  }
  const { s: _s, sInv: _inv, ...info } = wh;
  return { m, n, k, a, b, total, energyKept: total > 0 ? Math.min(1, kept / total) : 1, whitened: Float64Array.from(all), whitening: info };
}

/** The rank-k whitened factors inside rank-K ones (first k columns of A, rows of B), energy from the kept σ. */
export function truncateWhitened(f: WhitenedFactors, k: number): WhitenedFactors {
  if (k === f.k) return f;
  const { m, n, k: K } = f;
  const a = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) a[i * k + j] = f.a[i * K + j];
  let kept = 0;
  for (let i = 0; i < k; i++) kept += f.whitened[i] ** 2;
  return { ...f, k, a, b: f.b.slice(0, k * n), energyKept: f.total > 0 ? Math.min(1, kept / f.total) : 1 };
}

/** Output error ‖(W − W′_k)·X‖²_F at every rank k = 0 … r from the whitened singular values (loss[k] = Σ_{i≥k} σᵢ²). */
export function whitenedLossCurve(whitened: ArrayLike<number>): Float64Array {
  const loss = new Float64Array(whitened.length + 1);
  for (let i = whitened.length - 1; i >= 0; i--) loss[i] = loss[i + 1] + whitened[i] * whitened[i];
  return loss;
}

export type { Factors };

/**
 * A layer's calibration statistics, as eval/calibration.ts measures them: the input Gram per
 * group (n×n, n = the matrix's input width) for MatMul/Gemm/Conv, or the count of each index
 * (length = rows) for a Gather embedding; `vectors` input vectors were folded.
 */
export interface LayerGram {
  layer: string;
  side: 'input' | 'rows';
  n: number;
  groups: Float64Array[];
  vectors: number;
}

/** The whitening of every group of a layer's Gram. */
export function layerWhitenings(gram: LayerGram, { jitter = DEFAULT_JITTER, embeddings = 'uniform' }: WhiteningOptions = {}): Whitening[] {
  return gram.groups.map((g) => {
    if (gram.side === 'input') return whiteningOf(g, gram.n, jitter);
    return embeddings === 'counts' ? diagonalWhitening(g, jitter) : uniformRows(gram.n);
  });
}

/** What the whitening of a layer needed, in words (empty when the Cholesky route sufficed everywhere). */
export function whiteningNote(layer: string, info: WhiteningInfo[], gram: Pick<LayerGram, 'n' | 'vectors' | 'side'>): string | undefined {
  if (info.some((i) => i.route === 'uniform')) {
    return `${layer}: an embedding (Gather); its rows keep uniform weights, so its factors are the plain SVD's (weighting rows by calibration counts favours frequent tokens and drops unseen ones; --whiten-embeddings does it).`;
  }
  const raised = info.reduce((s, i) => s + i.regularized, 0);
  if (raised === 0) return undefined;
  const jitter = info.find((i) => i.jitter !== undefined)?.jitter ?? DEFAULT_JITTER;
  if (gram.side === 'rows') {
    return `${layer}: ${raised} of ${gram.n} embedding rows never occur in the calibration data; weighted as ${jitter.toExponential(0)} of the most frequent row's count.`;
  }
  const few = gram.vectors < gram.n ? ` (only ${gram.vectors} input vectors for an input width of ${gram.n}: give more calibration samples for a full-rank Gram)` : '';
  const groups = info.length > 1 ? ` over ${info.length} groups` : '';
  return `${layer}: input Gram is rank-deficient or ill-conditioned${few}; eigen-decomposed and ${raised} direction${raised > 1 ? 's' : ''}${groups} raised to ${jitter.toExponential(0)}·λmax.`;
}

/** Whitened factors of every group of a layer (its canonical matrices) at rank k. */
export function whitenedGroups(matrices: { rows: number; cols: number; data: Float32Array | Float64Array }[], k: number, gram: LayerGram, options: WhiteningOptions, label: string): WhitenedFactors[] {
  checkGroups(matrices.length, gram, label);
  const whitenings = layerWhitenings(gram, options);
  return matrices.map((m, g) => whitenedFactorize(m.data, m.rows, m.cols, k, whitenings[g], matrices.length > 1 ? `${label} (group ${g})` : label));
}

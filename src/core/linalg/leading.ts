// The leading singular triplets only, progressively: compression keeps the top k, and ‖W‖²_F
// (the trace of the Gram matrix) gives the total energy without any SVD, so an energy, rank or
// ratio policy needs just enough leading values to decide k. Block Lanczos on the float64 Gram
// matrix G of the smaller side from a random start block (lanczos.ts), with a Rayleigh–Ritz on
// the projected matrix from time to time until the policy decides. A Ritz pair counts only once
// its residual ‖G·z − θ·z‖ is ≤ RESIDUAL·θ_max (so |θ − λ| ≤ RESIDUAL·λ_max); a breakdown, a
// cluster of b converged values (a multiplicity the block may not see whole), or no decision
// within a basis of 4·LEADING_MAX_SHARE·n vectors hand over to the full route (tridiagonal) on the
// same Gram. It replaces the O(n³) reduction by O(n²·d) for a basis of d ≈ 3–4 k vectors.
import { ceil4, gramToKernelMemory, type GramLayout } from './gram';
import { RankscopeError } from '../errors';
import { blockedWorkDoubles } from './blockedTridiagonal';
import { BlockLanczos, lanczosMemory } from './lanczos';
import { productWork } from './product';
import { checkedTriplets, fromGramEigenvectors, tripletsFromGram, tripletsMemory, type SingularTriplets } from './triplets';
import { checkKernelMemory, checkMatrix, SMALL_SIDE, type MatrixData } from './singularValues';
import { MAX_KERNEL_BYTES } from './wasm';

/**
 * Picks k from the leading singular values known so far (descending, each converged) and ‖W‖²_F;
 * undefined when it needs more values to decide. 0 means the layer keeps nothing. `whatIf`: the
 * values are a ceiling (could the target still be reached?) or an estimate, not results.
 */
export type LeadingRankChooser = (leading: Float64Array, totalEnergy: number, whatIf?: boolean) => number | undefined;

/**
 * Largest k the route tries for, as a share of n: it needs a basis of 3–4 k vectors (measured at
 * σ_j ∝ j^-0.7: d = 168 for k = 50 at n = 768, d = 336 for k = 96 at n = 4096), bounded at 4 k,
 * and a try that fails there costs about what the full route does.
 */
export const LEADING_MAX_SHARE = 1 / 8;
/**
 * Below this order of G the full route is as cheap (measured single-threaded at energy 0.9,
 * σ_j ∝ j^-0.7: n = 256 7 ms both ways, n = 512 30 ms against 40 ms, n = 768 55 against 105 ms).
 */
export const LEADING_MIN_ORDER = 512;
/**
 * Block size: multiplicities up to b are found. 8 below n = 2048 (n = 768: 53–55 ms against
 * 60–65 ms with 16), 16 from there (9216×4096: 4.8 s against 5.1 s with 8, single-threaded).
 */
export const leadingBlock = (n: number) => (n < 2048 ? 8 : 16);
const RESIDUAL = 1e-8;
/** b converged Ritz values within this share of the largest of them: a possible multiplicity > b. */
const CLUSTER = 1e-2;
/** Default first guess of the k a policy needs (the first Rayleigh–Ritz comes at 1.5× this). */
const FIRST_GUESS = 32;

export interface LeadingOptions {
  /** 2k when k is known (the first Rayleigh–Ritz comes at 1.5× this; k past the route's reach skips it). Default 32. */
  firstBlock?: number;
  /** Smallest order of G this route takes on; default LEADING_MIN_ORDER. */
  minOrder?: number;
}

export interface LeadingTriplets extends SingularTriplets {
  /** How many G·Q block products the route took (for tests and benchmarks). */
  steps: number;
  /** How many Rayleigh–Ritz extractions it took (each a dense eigenproblem of the basis' size). */
  extractions: number;
}

/**
 * The top-k triplets with k chosen by `want` from the leading values, from the Gram layout `probe`
 * (X kept; G's lower triangle is left intact), or undefined when this route does not apply or did
 * not decide (the caller then takes the full route from the same probe).
 */
export function leadingTriplets(probe: GramLayout, want: LeadingRankChooser, options: LeadingOptions = {}): LeadingTriplets | undefined {
  const { n, m } = probe;
  const b = leadingBlock(n);
  const kmax = Math.floor(n * LEADING_MAX_SHARE);
  const dmax = Math.floor((4 * kmax) / b) * b;
  const known = options.firstBlock === undefined ? 0 : options.firstBlock / 2;
  if (n < (options.minOrder ?? LEADING_MIN_ORDER) || dmax < 4 * b || known > kmax) return undefined;
  // The basis and its work, then the Ritz vectors and fromGramEigenvectors' blocks for k ≤ dmax.
  const need = probe.end + lanczosMemory(n, b, dmax, dmax) + dmax * (n + ceil4(m)) + productWork(m, dmax);
  if (need * 8 > MAX_KERNEL_BYTES) return undefined;
  const lanczos = new BlockLanczos(probe, b, dmax);
  // G is the Gram of scale·W (gram.ts): values and energies seen by `want` are W's own.
  const unscale = 1 / probe.scale;
  const trace = lanczos.trace();
  const total = trace * unscale * unscale;
  if (!(total > 0)) return undefined; // W = 0: the full route gives its (zero) triplets
  if (!lanczos.start()) return undefined;
  const roundUp = (x: number) => Math.ceil(x / b) * b;
  const sigmas = (theta: Float64Array) => theta.map((x) => Math.sqrt(Math.max(x, 0)) * unscale);
  let next = Math.max(4 * b, roundUp(1.5 * (options.firstBlock ?? FIRST_GUESS)));
  let previous: { d: number; residuals: Float64Array } | undefined;
  let steps = 0, extractions = 0;
  for (;;) {
    if (!lanczos.step(trace)) return undefined; // breakdown (trace ≥ ‖G‖ scales its test)
    steps++;
    const d = lanczos.dim;
    if (d < next && d < dmax) continue;
    const ritz = lanczos.rayleighRitz();
    extractions++;
    if (!ritz) return undefined; // QL on the projected matrix ran out of iterations
    const tol = RESIDUAL * ritz.values[0];
    let c = 0;
    while (c < d && ritz.residuals[c] <= tol) c++;
    for (let i = 0; i + b - 1 < c; i++) if (ritz.values[i] - ritz.values[i + b - 1] <= CLUSTER * ritz.values[i]) return undefined;
    const k = c > 0 ? want(sigmas(ritz.values.subarray(0, c)), total) : undefined;
    if (k !== undefined && !(Number.isInteger(k) && k >= 0)) throw new RankscopeError('BAD_ARGUMENT', `rank ${k} is not a valid rank.`);
    if (k !== undefined && k <= c) return { ...fromGramEigenvectors(probe, lanczos.ritzVectors(k), ritz.values.slice(0, k)), steps, extractions };
    // Could kmax values (the converged ones, then each at most σ_{c−1}, or θ_0 + its residual
    // while none has converged) still decide? If not, stop here: a flat spectrum gives up early.
    const cap = c > 0 ? ritz.values[c - 1] : ritz.values[0] + ritz.residuals[0];
    if (k === undefined && want(withCeiling(ritz.values, c, kmax, cap, unscale), total, true) === undefined) return undefined;
    if (d >= dmax) return undefined;
    // The next Rayleigh–Ritz where the pair the policy needs should have converged: its residual
    // extrapolated log-linearly from the last two, within [d + b, 1.5·d]. The pair is judged on the
    // upper half of the Ritz values (the lower ones approximate the bottom of the spectrum: a
    // policy that fills the unknown tail up to the last value would see too little energy there).
    const upper = ritz.values.subarray(0, Math.max(c + 1, d >> 1));
    const needed = Math.min(d, Math.max(c + 1, want(sigmas(upper), total, true) ?? d)) - 1;
    let guess = 1.5 * d;
    if (previous && needed < previous.d) {
      const rate = Math.log(ritz.residuals[needed] / previous.residuals[needed]) / (d - previous.d);
      if (rate < 0) guess = d + Math.log(tol / ritz.residuals[needed]) / rate;
    }
    next = Math.min(dmax, Math.max(d + b, Math.min(roundUp(1.5 * d), roundUp(guess))));
    previous = { d, residuals: ritz.residuals };
  }
}

/** The first c values (√θ·unscale), then √cap·unscale up to `top`: the most the next ones can add. */
function withCeiling(theta: Float64Array, c: number, top: number, cap: number, unscale: number): Float64Array {
  const out = new Float64Array(top);
  for (let i = 0; i < top; i++) out[i] = Math.sqrt(Math.max(i < c ? theta[i] : cap, 0)) * unscale;
  return out;
}

/** Which route `progressiveTriplets` took: for tests and benchmarks. */
export type TripletRoute = 'leading' | 'full';

/**
 * The top-k triplets for a k that `want` picks: by the leading-triplets route where it applies
 * and converges, else by the full route from the same Gram (all singular values, then the top-k
 * vectors), where `want` sees every value. `all` is set only on the full route.
 */
export function progressiveTriplets(data: MatrixData, rows: number, cols: number, want: LeadingRankChooser, label = 'matrix',
  options: LeadingOptions = {}): SingularTriplets & { route: TripletRoute; totalEnergy: number } {
  const scan = checkMatrix(data, rows, cols, label);
  const totalEnergy = scan.sumSquares;
  const r = Math.min(rows, cols);
  const chooser = (all: Float64Array) => {
    const k = want(all, totalEnergy);
    if (k === undefined) throw new Error(`${label}: the rank chooser could not decide from all ${all.length} singular values`);
    if (!Number.isInteger(k) || k < 0 || k > r) throw new RankscopeError('BAD_ARGUMENT', `${label}: rank ${k} is out of range for a ${rows}×${cols} matrix (0…${r}).`);
    return k;
  };
  if (r < Math.max(SMALL_SIDE, options.minOrder ?? LEADING_MIN_ORDER)) return { ...checkedTriplets(data, rows, cols, chooser, label, scan), route: 'full', totalEnergy };
  checkKernelMemory(tripletsMemory(rows, cols, r), rows, cols, label);
  const probe = gramToKernelMemory(data, rows, cols, blockedWorkDoubles(r) + 2 * r * r, true, undefined, scan.maxAbs);
  const leading = leadingTriplets(probe, want, options);
  if (leading) return { u: leading.u, s: leading.s, v: leading.v, route: 'leading', totalEnergy };
  return { ...tripletsFromGram(data, probe, chooser, 'auto', {}, label), route: 'full', totalEnergy };
}

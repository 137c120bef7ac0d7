// The back-transformation of eigenvectors through the reduction's reflectors, blocked: rows z of
// Z (k×n) become z·H_{n−3}⋯H_0, i.e. Z·Qᵀ with Q = H_0⋯H_{n−3}. Panels of PANEL (32) reflectors in
// compact WY form (LAPACK's dlarft, forward): H_{c0}⋯H_{c1−1} = I − V·T·Vᵀ, so a panel is
// Z −= (Z·V)·(Tᵀ·Vᵀ), three products on the packed tiles instead of a level-2 sweep of Z per
// reflector. Panels go last to first. Same result as reflectRows one by one, to rounding.
import { ceil4 } from './gram';
import { multiplyBlocked, productWork } from './product';
import { kernelMemory } from './wasm';

/** Reflectors per compact-WY panel (independent of the reduction's panels: any grouping of the H_c works). */
const PANEL = 32;

/**
 * Z (k×n row-major at `z` in kernel memory) ← Z·Qᵀ; reflector c is row c of the n×n block at
 * `refl` (support c+1…n−1) with τ_c = tau[c]. Work space after `work`, grown as needed; Z needs
 * room for ceil4(k) rows after it (edge tiles add exact zeros).
 */
export function applyReflectorsBlocked(z: number, k: number, n: number, refl: number, tau: Float64Array, work: number): void {
  const b4 = ceil4(PANEL), n4 = ceil4(n), k4 = ceil4(k);
  const even = (x: number) => (x + 1) & ~1;
  const V = even(work + (k4 - k) * n + 4 * n); // n×b4: the panel's reflectors as columns
  const S = even(V + n * b4); // b4×b4: VᵀV, then T, then Tᵀ
  const M = even(S + b4 * b4 + 4 * b4); // b4×n4: Tᵀ·Vᵀ
  const ZV = even(M + b4 * n4 + 4 * n4); // k4×b4: −Z·V
  const W = even(ZV + k4 * b4 + 4 * b4);
  let F = kernelMemory(W + productWork(Math.max(k, PANEL), Math.max(n, PANEL)));
  F.fill(0, z + k * n, z + k4 * n + 4); // the edge tiles' rows
  const last = n - 3;
  for (let c0 = Math.floor(last / PANEL) * PANEL; c0 >= 0; c0 -= PANEL) {
    const c1 = Math.min(last + 1, c0 + PANEL);
    const b = c1 - c0;
    if (b <= 0) continue;
    const lo = c0 + 1; // no reflector of the panel touches columns < lo
    const len = n - lo;
    F = kernelMemory(0);
    F.fill(0, V, V + n * b4);
    for (let t = 0; t < b; t++) for (let i = lo; i < n; i++) F[V + i * b4 + t] = F[refl + (c0 + t) * n + i];
    // S = VᵀV over rows ≥ lo, then T (upper): T_ii = τ_i, T[0:i, i] = −τ_i·T[0:i, 0:i]·S[0:i, i].
    F.fill(0, S, S + b4 * b4);
    multiplyBlocked(b, len, b, refl + c0 * n + lo, n, V + lo * b4, b4, S, b4, W);
    F = kernelMemory(0);
    const T = new Float64Array(b * b);
    for (let i = 0; i < b; i++) {
      const ti = tau[c0 + i];
      T[i * b + i] = ti;
      for (let r = 0; r < i; r++) {
        let x = 0;
        for (let j = r; j < i; j++) x += T[r * b + j] * F[S + j * b4 + i];
        T[r * b + i] = -ti * x;
      }
    }
    // M = Tᵀ·Vᵀ (b×len), then ZV = −Z·V (k×b), then Z += ZV·M on the columns ≥ lo.
    F.fill(0, S, S + b4 * b4);
    for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) F[S + i * b4 + j] = T[j * b + i];
    F.fill(0, M, M + b4 * n4);
    multiplyBlocked(b, b, len, S, b4, refl + c0 * n + lo, n, M, n4, W);
    F = kernelMemory(0);
    F.fill(0, ZV, ZV + k4 * b4);
    multiplyBlocked(k, len, b, z + lo, n, V + lo * b4, b4, ZV, b4, W);
    F = kernelMemory(0);
    for (let i = 0; i < k4 * b4; i++) F[ZV + i] = -F[ZV + i];
    multiplyBlocked(k, b, len, ZV, b4, M, n4, z + lo, n, W);
  }
}

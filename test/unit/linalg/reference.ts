// Test matrices built by numpy (seeded) with their singular values from scipy's LAPACK (float64
// svdvals of the very float32 matrix we read back), exchanged as raw little-endian files.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from '../../helpers/python';

export function tempDir(prefix = 'rankscope-linalg-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Case {
  name: string;
  rows: number;
  cols: number;
  /** float32 unless the cases were built with dtype 'float64'. */
  data: Float32Array | Float64Array;
  /** scipy.linalg.svdvals in float64, descending. */
  reference: Float64Array;
  /** With `topVectors` K: scipy's top K right singular vectors, cols×K row-major. */
  v?: Float64Array;
}

/**
 * Builds every case of `spec` (name → numpy expression of a float64 matrix, with `rng` and the
 * helpers `spectrum(m, n, s)` = U·diag(s)·Vᵀ with random orthogonal U, V, and `bert(rows, cols)`,
 * σ_j ∝ j^-0.7 through Gaussian bases as bench:compress builds BERT-shaped layers) in one Python
 * run. The matrix is rounded to float32 (as weights are) unless `dtype` is 'float64'. `seed`
 * seeds `rng`; `topVectors` K > 0 adds scipy's top K right singular vectors (Case.v).
 */
export function scipyCases(spec: Record<string, string>, dtype: 'float32' | 'float64' = 'float32',
  { seed = 1234, topVectors = 0 }: { seed?: number; topVectors?: number } = {}): Case[] {
  const dir = tempDir();
  const meta = JSON.parse(runPython(`
import json, sys, numpy as np, scipy.linalg as sl
rng = np.random.default_rng(int(sys.argv[4]))
top = int(sys.argv[5])
def orth(n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))
def spectrum(m, n, s):
    k = min(m, n); s = np.asarray(s, dtype=np.float64)
    return orth(m)[:, :k] @ np.diag(s) @ orth(n)[:k, :]
def bert(rows, cols):
    r = min(rows, cols)
    d = (np.arange(1, r + 1) ** -0.7).astype(np.float32)
    return (rng.standard_normal((rows, r), dtype=np.float32) * d) @ rng.standard_normal((r, cols), dtype=np.float32) * np.float32(0.02 / np.sqrt(r))
spec = json.loads(sys.argv[2])
meta = {}
for name, expr in spec.items():
    a = np.asarray(eval(expr), dtype=np.float64)
    a32 = np.ascontiguousarray(a.astype(np.float32 if sys.argv[3] == 'float32' else np.float64))
    a32.tofile(f"{sys.argv[1]}/{name}.w")
    if top > 0:
        _, sv, vt = sl.svd(a32.astype(np.float64), full_matrices=False)
        np.ascontiguousarray(vt[:top].T, dtype='<f8').tofile(f"{sys.argv[1]}/{name}.v")
    else:
        sv = sl.svdvals(a32.astype(np.float64)) if a32.size else np.zeros(0)
    np.ascontiguousarray(sv, dtype='<f8').tofile(f"{sys.argv[1]}/{name}.sv")
    meta[name] = list(a32.shape)
print(json.dumps(meta))
`, [dir, JSON.stringify(spec), dtype, String(seed), String(topVectors)])) as Record<string, [number, number]>;
  return Object.keys(spec).map((name) => {
    const [rows, cols] = meta[name];
    const path = join(dir, `${name}.w`);
    const v = topVectors > 0 ? f64(join(dir, `${name}.v`)) : undefined;
    return { name, rows, cols, data: dtype === 'float32' ? f32(path) : f64(path), reference: f64(join(dir, `${name}.sv`)), v };
  });
}

export function f32(path: string): Float32Array {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function f64(path: string): Float64Array {
  const b = readFileSync(path);
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

export function writeF64(path: string, data: Float64Array): void {
  writeFileSync(path, data);
}

/** Largest |a_i − b_i|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deterministic uniform [0, 1) generator (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** ‖W − U_k·diag(s_k)·V_kᵀ‖_F of a row-major `rows × cols` matrix, for the leading `k` of `t` (default all). */
export function lowRankResidual(w: { rows: number; cols: number; data: ArrayLike<number> }, t: { u: ArrayLike<number>; s: ArrayLike<number>; v: ArrayLike<number> }, k = t.s.length): number {
  const stride = t.s.length;
  let sum = 0;
  for (let i = 0; i < w.rows; i++) {
    for (let j = 0; j < w.cols; j++) {
      let x = w.data[i * w.cols + j];
      for (let r = 0; r < k; r++) x -= t.u[i * stride + r] * t.s[r] * t.v[j * stride + r];
      sum += x * x;
    }
  }
  return Math.sqrt(sum);
}

// The WASM kernels of both builds (plain, and with fused multiply-adds) against float64 references
// written out in TypeScript, on sizes that reach every remainder path (odd lengths, row counts
// that are not multiples of four, blocks that start off the diagonal). Bar: 1e-12 relative to the
// sum of |terms| (rounding only; a wrong index gives O(1) errors).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileKernels, kernelBuild, type KernelBuild, type KernelExports } from '../../../src/core/linalg/wasm';

const BUILDS: KernelBuild[] = ['plain', 'fma'];

function instantiate(which: KernelBuild, doubles: number): { K: KernelExports; F: Float64Array } {
  if (which === 'fma') kernelBuild(); // enables relaxed SIMD on runtimes that keep it behind a flag
  const memory = new WebAssembly.Memory({ initial: Math.ceil((doubles * 8) / 65536) + 1, maximum: 32768, shared: true });
  const K = new WebAssembly.Instance(compileKernels(which), { env: { memory } }).exports as unknown as KernelExports;
  return { K, F: new Float64Array(memory.buffer) };
}

let seed = 12345;
const random = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 2 ** 31 - 1;
};

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, scale: ArrayLike<number>, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    const bar = 1e-12 * Math.max(scale[i], 1e-300);
    assert.ok(Math.abs(actual[i] - expected[i]) <= bar, `${what}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

test('the fused build replaces the multiply-adds of the inner loops and this runtime runs it', () => {
  const dir = join(__dirname, '../../../src/core/linalg');
  const wat = readFileSync(join(dir, 'kernels.wat'), 'utf8');
  // buildKernels.mjs is an ES module with top-level await: run its rewrite in a child.
  const child = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { fuseMultiplyAdds } from ${JSON.stringify(pathToFileURL(join(dir, 'buildKernels.mjs')).href)};
     import { readFileSync } from 'node:fs';
     process.stdout.write(fuseMultiplyAdds(readFileSync(${JSON.stringify(join(dir, 'kernels.wat'))}, 'utf8')));`]);
  assert.equal(child.status, 0, child.stderr.toString());
  const fused = child.stdout.toString();
  const count = (text: string, what: RegExp) => (text.match(what) ?? []).length;
  assert.equal(count(fused, /f64x2\.relaxed_n?madd/g), 35);
  assert.ok(count(fused, /f64x2\.mul/g) < count(wat, /f64x2\.mul/g) - 30);
  // Node 20 keeps relaxed SIMD behind a flag that wasm.ts sets: the speed-up must not vanish silently.
  assert.equal(kernelBuild(), process.env.RANKSCOPE_WASM_FMA === '0' ? 'plain' : 'fma');
});

for (const which of BUILDS) {
  test(`symvLower (${which}): p += A·v on the lower triangle of a block, for any row range`, () => {
    for (const [n, lo, r0, r1] of [[13, 0, 0, 13], [37, 5, 5, 37], [37, 5, 11, 30], [64, 1, 1, 64], [64, 2, 40, 43], [101, 7, 50, 101], [9, 8, 8, 9]]) {
      const a = 0, v = n * n + 2, p = v + n + 2;
      const { K, F } = instantiate(which, p + n + 2);
      for (let i = 0; i < n * n; i++) F[a + i] = random();
      for (let i = 0; i < n; i++) F[v + i] = random();
      const start = Array.from({ length: n }, () => random());
      F.set(start, p);
      const expected = Float64Array.from(start), scale = start.map(Math.abs);
      for (let i = r0; i < r1; i++) {
        for (let j = lo; j <= i; j++) {
          const x = F[a + i * n + j];
          expected[i] += x * F[v + j];
          scale[i] += Math.abs(x * F[v + j]);
          if (j < i) {
            expected[j] += x * F[v + i];
            scale[j] += Math.abs(x * F[v + i]);
          }
        }
      }
      K.symvLower(n, lo, r0, r1, a * 8, v * 8, p * 8);
      assertClose(F.subarray(p, p + n), expected, scale, `n ${n}, block from ${lo}, rows ${r0}…${r1}`);
    }
  });

  test(`gemmPacked on packed strips (${which}): C += alpha·AᵀB, lower tiles only with diag`, () => {
    for (const [kc, M, N, diag] of [[7, 8, 12, 1 << 30], [33, 16, 16, 0], [5, 4, 20, 1 << 30]]) {
      const a = 0, b = kc * M, pa = b + kc * N, pb = pa + kc * M, c = pb + kc * N;
      const { K, F } = instantiate(which, c + M * N);
      for (let i = 0; i < kc * (M + N); i++) F[a + i] = random();
      const start = Array.from({ length: M * N }, () => random());
      F.set(start, c);
      K.packStrips(a * 8, M, kc, M, pa * 8);
      K.packStrips(b * 8, N, kc, N, pb * 8);
      const alpha = -0.75;
      K.gemmPacked(kc, M, N, pa * 8, pb * 8, c * 8, N, diag, alpha);
      const expected = Float64Array.from(start), scale = start.map(Math.abs);
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          if (4 * Math.floor(j / 4) > 4 * Math.floor(i / 4) + 3 + diag) continue; // a skipped tile
          for (let t = 0; t < kc; t++) {
            const x = alpha * F[a + t * M + i] * F[b + t * N + j];
            expected[i * N + j] += x;
            scale[i * N + j] += Math.abs(x);
          }
        }
      }
      assertClose(F.subarray(c, c + M * N), expected, scale, `kc ${kc}, ${M}×${N}, diag ${diag}`);
    }
  });

  test(`dotRows, axpyRows and matmulAdd (${which}) on odd lengths`, () => {
    const count = 5, len = 37, ld = 41;
    const x = 0, y = count * ld, out = y + len + 1, coef = out + count + 1, m = 3, n = 9, kp = 6, A = coef + count + 1, B = A + m * n, C = B + n * kp;
    const { K, F } = instantiate(which, C + m * kp);
    for (let i = 0; i < C + m * kp; i++) F[i] = random();
    const X = F.slice(x, y), Y = F.slice(y, y + len), Co = F.slice(coef, coef + count);
    K.dotRows(count, len, x * 8, ld, y * 8, out * 8);
    const dots = Array.from({ length: count }, (_, s) => Y.reduce((sum, yi, i) => sum + X[s * ld + i] * yi, 0));
    const dotScale = Array.from({ length: count }, (_, s) => Y.reduce((sum, yi, i) => sum + Math.abs(X[s * ld + i] * yi), 0));
    assertClose(F.subarray(out, out + count), dots, dotScale, 'dotRows');
    K.axpyRows(count, len, x * 8, ld, coef * 8, y * 8);
    const axpy = Y.map((yi, i) => yi - Co.reduce((sum, c, s) => sum + c * X[s * ld + i], 0));
    const axpyScale = Y.map((yi, i) => Math.abs(yi) + Co.reduce((sum, c, s) => sum + Math.abs(c * X[s * ld + i]), 0));
    assertClose(F.subarray(y, y + len), axpy, axpyScale, 'axpyRows');
    const a = F.slice(A, A + m * n), bm = F.slice(B, B + n * kp), c0 = F.slice(C, C + m * kp);
    K.matmulAdd(m, n, kp, A * 8, B * 8, C * 8);
    const prod = c0.map((ci, at) => ci + Array.from({ length: n }, (_, t) => a[Math.floor(at / kp) * n + t] * bm[t * kp + (at % kp)]).reduce((s, z) => s + z, 0));
    const prodScale = c0.map((ci, at) => Math.abs(ci) + Array.from({ length: n }, (_, t) => Math.abs(a[Math.floor(at / kp) * n + t] * bm[t * kp + (at % kp)])).reduce((s, z) => s + z, 0));
    assertClose(F.subarray(C, C + m * kp), prod, prodScale, 'matmulAdd');
  });
}

// `npm run bench:gemm`: the float64 Gram (m·n² multiply-adds) and X·Z
// (m·n·N) on one thread, WASM SIMD kernels against ONNX Runtime's GEMM (ortGemm.ts), over sizes
// from tiny to large: where ORT starts to pay (ORT_GRAM_MIN_MACS, ORT_PRODUCT_MIN_MACS) and by
// how much. Times are the best of a few runs; the load average is printed with them.
import { loadavg } from 'node:os';
import { ceil4, gramToKernelMemory } from '../src/core/linalg/gram';
import { reloadOrtGemmForTests } from '../src/core/linalg/ortGemm';
import { multiplyAdd, productWork } from '../src/core/linalg/product';
import { kernelMemory } from '../src/core/linalg/wasm';

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

function best(work: () => void, budgetMs = 1500): number {
  work(); // warm: compile, sessions, memory growth
  let min = Infinity;
  const t0 = performance.now();
  for (let i = 0; i < 20 && (i < 2 || performance.now() - t0 < budgetMs); i++) {
    const t = performance.now();
    work();
    min = Math.min(min, performance.now() - t);
  }
  return min / 1000;
}

function random(length: number): Float32Array {
  let s = 1;
  return Float32Array.from({ length }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) - 0.5);
}

function both(label: string, macs: number, work: () => void): void {
  reloadOrtGemmForTests('rankscope-wasm-only', () => {});
  const wasm = best(work);
  reloadOrtGemmForTests();
  const ort = best(work);
  const rate = (s: number) => (macs / s / 1e9).toFixed(1);
  console.log(`| ${label} | ${(macs / 1e6).toFixed(1)} | ${(wasm * 1e3).toFixed(2)} | ${rate(wasm)} | ${(ort * 1e3).toFixed(2)} | ${rate(ort)} | ${(wasm / ort).toFixed(2)}× | ${load()} |`);
}

console.log(`bench:gemm — one thread, float64; load ${load()}`);
console.log('| product | M multiply-adds | WASM ms | WASM G/s | ORT ms | ORT G/s | ORT speedup | load |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [m, n] of [[32, 32], [64, 64], [128, 96], [128, 128], [192, 192], [256, 256], [512, 512], [768, 768], [3072, 768], [2048, 2048], [4096, 4096]]) {
  const w = random(m * n);
  both(`Gram ${m}×${n}`, m * n * n, () => gramToKernelMemory(w, m, n, 0, false));
}
for (const [m, n, N] of [[64, 64, 8], [128, 128, 32], [256, 256, 32], [768, 768, 64], [3072, 768, 64], [4096, 4096, 128], [9216, 4096, 512]]) {
  const a = 0, b = a + ceil4(m) * n, c = b + n * N, work = c + ceil4(m) * ceil4(N);
  const F = kernelMemory(work + productWork(m, N));
  F.set(Float64Array.from(random(m * n + n * N)), 0);
  both(`X·Z ${m}×${n}·${N}`, m * n * N, () => multiplyAdd(m, n, N, a, n, b, N, c, N, work));
}

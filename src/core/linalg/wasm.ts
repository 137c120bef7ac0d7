// The WASM SIMD kernels (kernels.wat), instantiated once per thread over a shared memory, so a
// second thread can run kernels on the same arrays (team.ts). Callers lay out their arrays in the
// memory (float64 indices, via kernelMemory) and pass byte offsets. Two builds of the same .wat:
// with fused multiply-adds (relaxed SIMD, about 1.3× on the tiles and symv here) where the runtime
// has them, else plain; RANKSCOPE_WASM_FMA=0 forces plain.
import { setFlagsFromString } from 'node:v8';
import { KERNELS_FMA_WASM_BASE64, KERNELS_WASM_BASE64 } from './kernelsWasm';

export interface KernelExports {
  rotateRows(x: number, y: number, len: number, c: number, s: number): void;
  reflectRows(Z: number, count: number, n: number, v: number, lo: number, tau: number): void;
  matmulAdd(m: number, n: number, kp: number, A: number, B: number, C: number): void;
  packStrips(src: number, ld: number, kc: number, cols: number, dst: number): void;
  packRowStrips(src: number, ld: number, rows: number, kc: number, dst: number): void;
  gemmPacked(kc: number, M: number, N: number, A: number, B: number, C: number, ldc: number, diag: number, alpha: number): void;
  dotRows(count: number, len: number, X: number, ld: number, y: number, out: number): void;
  axpyRows(count: number, len: number, X: number, ld: number, coef: number, y: number): void;
  symvLower(n: number, lo: number, r0: number, r1: number, A: number, v: number, p: number): void;
}

const PAGE = 65536;
/** WASM32 memory tops out at 4 GiB; stay well below (the module declares this maximum). */
export const MAX_KERNEL_BYTES = 2 ** 31;

export type KernelBuild = 'fma' | 'plain';

let compiled: WebAssembly.Module | undefined;
let build: KernelBuild | undefined;
let memory: WebAssembly.Memory | undefined;
let instance: KernelExports | undefined;

/**
 * The build this process runs. Relaxed SIMD ships enabled from V8 11.4 (Node 22, VS Code's
 * Electron); Node 20's V8 has it behind a flag, which can still be set before the module compiles.
 */
export function kernelBuild(): KernelBuild {
  if (build) return build;
  if (process.env.RANKSCOPE_WASM_FMA === '0') return (build = 'plain');
  const fused = Buffer.from(KERNELS_FMA_WASM_BASE64, 'base64');
  if (!WebAssembly.validate(fused)) setFlagsFromString('--experimental-wasm-relaxed-simd');
  return (build = WebAssembly.validate(fused) ? 'fma' : 'plain');
}

/** The kernels of one build, compiled (tests compare the builds). */
export function compileKernels(which: KernelBuild): WebAssembly.Module {
  return new WebAssembly.Module(Buffer.from(which === 'fma' ? KERNELS_FMA_WASM_BASE64 : KERNELS_WASM_BASE64, 'base64'));
}

function module(): WebAssembly.Module {
  // Small module: synchronous compile is fine and keeps every caller synchronous.
  compiled ??= compileKernels(kernelBuild());
  return compiled;
}

/** A fresh kernel memory (shared, so it can be handed to a helper thread). */
export function newKernelMemory(): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: 1, maximum: MAX_KERNEL_BYTES / PAGE, shared: true });
}

/** Runs this thread's kernels on `shared` from now on (a team's memory); the old arrays are gone. */
export function useKernelMemory(shared: WebAssembly.Memory): void {
  memory = shared;
  instance = new WebAssembly.Instance(module(), { env: { memory } }).exports as unknown as KernelExports;
}

/** Forgets the current memory (a helper leaving a team); the next kernels() call makes a private one. */
export function releaseKernelMemory(): void {
  memory = undefined;
  instance = undefined;
}

export function kernels(): KernelExports {
  if (!instance) useKernelMemory(newKernelMemory());
  return instance!;
}

/** The memory this thread's kernels run on. */
export function currentKernelMemory(): WebAssembly.Memory {
  kernels();
  return memory!;
}

/** Grows the kernel memory to hold `doubles` float64 values and returns a fresh view of it. */
export function kernelMemory(doubles: number): Float64Array {
  const mem = currentKernelMemory();
  const bytes = doubles * 8;
  if (bytes > MAX_KERNEL_BYTES) throw new RangeError(`matrix too large for the WASM kernels (${bytes} bytes)`);
  const have = mem.buffer.byteLength;
  if (bytes > have) mem.grow(Math.ceil((bytes - have) / PAGE));
  return new Float64Array(mem.buffer);
}

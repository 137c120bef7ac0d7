// The WASM SIMD kernels (kernels.wat), instantiated once per thread over a shared memory, so a
// second thread can run kernels on the same arrays (team.ts). Callers lay out their arrays in the
// memory (float64 indices, via kernelMemory) and pass byte offsets.
import { KERNELS_WASM_BASE64 } from './kernelsWasm';

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

let compiled: WebAssembly.Module | undefined;
let memory: WebAssembly.Memory | undefined;
let instance: KernelExports | undefined;

function module(): WebAssembly.Module {
  // Small module: synchronous compile is fine and keeps every caller synchronous.
  compiled ??= new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
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

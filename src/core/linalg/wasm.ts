// The WASM SIMD kernels (kernels.wat), instantiated once per thread, and their linear memory.
// Callers lay out their arrays in `memory.f64` (float64 indices) and pass byte offsets.
import { KERNELS_WASM_BASE64 } from './kernelsWasm';

interface KernelExports {
  memory: WebAssembly.Memory;
  rotateRows(x: number, y: number, len: number, c: number, s: number): void;
  reflectRows(Z: number, count: number, n: number, v: number, lo: number, tau: number): void;
  matmulAdd(m: number, n: number, kp: number, A: number, B: number, C: number): void;
  packStrips(src: number, ld: number, kc: number, cols: number, dst: number): void;
  gemmPacked(kc: number, M: number, N: number, A: number, B: number, C: number, ldc: number, diag: number, alpha: number): void;
  dotRows(count: number, len: number, X: number, ld: number, y: number, out: number): void;
  axpyRows(count: number, len: number, X: number, ld: number, coef: number, y: number): void;
  symvLower(n: number, lo: number, r0: number, r1: number, A: number, v: number, p: number): void;
}

let instance: KernelExports | undefined;

export function kernels(): KernelExports {
  if (!instance) {
    // Small module: synchronous compile is fine and keeps every caller synchronous.
    const module = new WebAssembly.Module(Buffer.from(KERNELS_WASM_BASE64, 'base64'));
    instance = new WebAssembly.Instance(module, {}).exports as unknown as KernelExports;
  }
  return instance;
}

const PAGE = 65536;
/** WASM32 memory tops out at 4 GiB; stay well below. */
export const MAX_KERNEL_BYTES = 2 ** 31;

/** Grows the kernel memory to hold `doubles` float64 values and returns a fresh view of it. */
export function kernelMemory(doubles: number): Float64Array {
  const k = kernels();
  const bytes = doubles * 8;
  if (bytes > MAX_KERNEL_BYTES) throw new RangeError(`matrix too large for the WASM kernels (${bytes} bytes)`);
  const have = k.memory.buffer.byteLength;
  if (bytes > have) k.memory.grow(Math.ceil((bytes - have) / PAGE));
  return new Float64Array(k.memory.buffer);
}

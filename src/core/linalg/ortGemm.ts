// Float64 matrix products through ONNX Runtime's CPU GEMM (MLAS DGEMM: AVX2/AVX-512 FMA), 2–3×
// the WASM SIMD kernels (2-wide float64, no FMA) per core on large products (bench:gemm). Synchronous, like the rest of
// linalg: onnxruntime-node's native session runs synchronously (its public run() only wraps that
// call in a promise), so this module drives the binding directly. ORT takes only non-shared
// buffers, and the kernel memory is a SharedArrayBuffer: operands are copied into plain buffers
// (row blocks, so memory stays bounded) and results copied back, O(size) against O(size·depth).
// Three one-node graphs with dynamic dimensions, one session each per thread count, built in
// memory. Where ORT cannot load, callers take the WASM kernels (said once per pool, never an error).
//
// Cancellation: terminating a worker thread while it is inside a native ORT run aborts the whole
// process, so the pool (workerPool.ts) never does that. Each worker shares a guard with the pool:
// [cancel, inside]; a run marks `inside` and then checks `cancel`, the pool sets `cancel` and then
// terminates only workers not inside (the rest when they come out), so a chunked product stops
// at the next chunk.
import { create } from '@bufbuild/protobuf';
import type * as Ort from 'onnxruntime-node';
import { cancelled } from '../errors';
import {
  AttributeProto_AttributeType, encodeOnnx, ModelProtoSchema, TensorProto_DataType, type ValueInfoProto,
} from '../formats/onnx';
import { scratch } from './scratch';
import { teamSize } from './team';

interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: Ort.InferenceSession.SessionOptions): void;
  run(feeds: Record<string, Ort.Tensor>, fetches: Record<string, Ort.Tensor | null>, options: Ort.InferenceSession.RunOptions): Record<string, unknown>;
}

interface Runtime {
  Tensor: typeof Ort.Tensor;
  newSession(): NativeSession;
}

/** Guard words shared with the pool (see the header). */
const CANCEL = 0, INSIDE = 1;
/** Int32 words of a guard. */
export const GUARD_WORDS = 2;

let guard: Int32Array<ArrayBufferLike> = new Int32Array(GUARD_WORDS);
/** Set to 1 by the first thread of a pool that gives the fallback notice (the others stay quiet). */
let noticed: Int32Array<ArrayBufferLike> | undefined;
/**
 * This thread's guard, shared with the pool that owns it, and the pool's one-word notice flag
 * (called by the pool worker at start).
 */
export function useNativeGuard(shared: SharedArrayBuffer, noticeFlag?: SharedArrayBuffer): void {
  guard = new Int32Array(shared, 0, GUARD_WORDS);
  noticed = noticeFlag ? new Int32Array(noticeFlag, 0, 1) : undefined;
}

/** Pool side: asks the worker to stop; true when it is not inside a native run (it may be terminated now). */
export function requestStop(shared: SharedArrayBuffer): boolean {
  const g = new Int32Array(shared, 0, GUARD_WORDS);
  Atomics.store(g, CANCEL, 1);
  return Atomics.load(g, INSIDE) === 0;
}

/** Pool side: whether the worker is inside a native run right now. */
export function insideNative(shared: SharedArrayBuffer): boolean {
  return Atomics.load(new Int32Array(shared, 0, GUARD_WORDS), INSIDE) === 1;
}

/** Test hook: what the pool does on cancel, for this thread's own guard. */
export function cancelThisThread(): void {
  Atomics.store(guard, CANCEL, 1);
}

/** Test hook: clears this thread's cancel request. */
export function resetCancel(): void {
  Atomics.store(guard, CANCEL, 0);
}

const QUIET = 4;
let runtime: Runtime | null | undefined;
let moduleName = 'onnxruntime-node';
let notice: ((message: string) => void) = (message) => console.warn(message);

/** onnxruntime-node's synchronous binding, or null when it cannot load (said once per pool, or per thread outside one). */
function loadRuntime(): Runtime | null {
  if (runtime !== undefined) return runtime;
  if (process.env.RANKSCOPE_ORT_GEMM === '0') return (runtime = null);
  try {
    // Loaded on first use (a native addon; optional here): require keeps the callers synchronous.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ort = require(moduleName) as typeof Ort;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = require(`${moduleName}/dist/binding`) as { binding: { InferenceSession: new () => NativeSession }; initOrt(): void };
    ort.env.logLevel = 'fatal';
    native.initOrt();
    if (typeof native.binding?.InferenceSession !== 'function') throw new Error('no native InferenceSession in this onnxruntime-node');
    runtime = { Tensor: ort.Tensor, newSession: () => new native.binding.InferenceSession() };
  } catch (e) {
    if (!noticed || Atomics.compareExchange(noticed, 0, 0, 1) === 0) notice(`rankscope: ONNX Runtime's GEMM is not available (${(e as Error)?.message?.split('\n')[0] ?? e}); the SVD runs on the WebAssembly kernels (slower on large layers).`);
    runtime = null;
  }
  return runtime;
}

/** Whether products run through ONNX Runtime on this thread. */
export function ortGemmAvailable(): boolean {
  return loadRuntime() !== null;
}

/**
 * Test hook: forget the loaded runtime and load `module` next time (a missing one drives the
 * fallback); `onNotice` receives the one-time notice.
 */
export function reloadOrtGemmForTests(module = 'onnxruntime-node', onNotice?: (message: string) => void): void {
  runtime = undefined;
  sessions.clear();
  moduleName = module;
  notice = onNotice ?? ((message) => console.warn(message));
}

type Graph = 'gram' | 'product' | 'productTA';

function dynamic(name: string, dims: string[]): ValueInfoProto {
  return {
    name,
    type: { value: { case: 'tensorType', value: { elemType: TensorProto_DataType.DOUBLE, shape: { dim: dims.map((d) => ({ value: { case: 'dimParam', value: d } })) } } } },
  } as ValueInfoProto;
}

/** 'gram': Y = A·Bᵀ + C (A w×r, B e×r, C w×e); 'product': Y = A·B (A r×k, B k×N); 'productTA': Y = Aᵀ·B (A k×r, B k×N). Opset 13 Gemm, float64. */
function graphBytes(graph: Graph): Uint8Array {
  const int = (name: string) => ({ name, type: AttributeProto_AttributeType.INT, i: 1n });
  const spec = {
    gram: { input: ['A', 'B', 'C'], attribute: [int('transB')], dims: [['w', 'r'], ['e', 'r'], ['w', 'e']], out: ['w', 'e'] },
    product: { input: ['A', 'B'], attribute: [], dims: [['r', 'k'], ['k', 'N']], out: ['r', 'N'] },
    productTA: { input: ['A', 'B'], attribute: [int('transA')], dims: [['k', 'r'], ['k', 'N']], out: ['r', 'N'] },
  }[graph];
  return encodeOnnx(create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: 'rankscope',
    opsetImport: [{ domain: '', version: 13n }],
    graph: {
      name: graph,
      node: [{ opType: 'Gemm', input: spec.input, output: ['Y'], attribute: spec.attribute }],
      input: spec.input.map((name, i) => dynamic(name, spec.dims[i])),
      output: [dynamic('Y', spec.out)],
    },
  } as never));
}

const sessions = new Map<string, NativeSession>();

/**
 * Threads for one product: both cores while a helper is attached to this job (the pool had a free
 * core to give it, and the helper sleeps while ORT runs), else one (another job holds the other
 * core; two would oversubscribe it).
 */
function threads(): number {
  return teamSize();
}

function session(rt: Runtime, graph: Graph): NativeSession {
  const t = threads();
  const key = `${graph}:${t}`;
  let s = sessions.get(key);
  if (!s) {
    s = rt.newSession();
    const bytes = graphBytes(graph);
    s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: t,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: QUIET,
      // Outputs are preallocated; an arena would keep its largest request for the thread's life.
      enableCpuMemArena: false,
      // Idle intra-op threads sleep instead of spinning: the other core may belong to another job.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    sessions.set(key, s);
  }
  return s;
}

/** One guarded native run: throws `cancelled` (before starting) once the pool asked this thread to stop. */
function run(rt: Runtime, graph: Graph, feeds: Record<string, Ort.Tensor>, out: Ort.Tensor): void {
  Atomics.store(guard, INSIDE, 1);
  try {
    if (Atomics.load(guard, CANCEL) === 1) throw cancelled();
    session(rt, graph).run(feeds, { Y: out }, { logSeverityLevel: QUIET });
  } finally {
    Atomics.store(guard, INSIDE, 0);
  }
}

/** Fills `out` (rows×n, row-major) with rows [r0, r0 + rows) of the left operand X. */
export type RowSource = (r0: number, rows: number, out: Float64Array) => void;

/** Doubles of X per chunk: 32 MiB, deep enough for full GEMM speed, small beside the matrices that need chunking. */
export const ORT_CHUNK_DOUBLES = 4 * 1024 * 1024;

const chunkRowsFor = (n: number, chunkDoubles: number) => Math.max(1, Math.floor(chunkDoubles / Math.max(1, n)));

/**
 * Column blocks of the Gram: GEMM has no symmetric variant, so G's block rows are computed only up
 * to the diagonal, (1 + 1/B)/2 of the full product's flops for B blocks; blocks stay ≥ 128 wide
 * (smaller GEMMs lose speed).
 */
export function gramBlocks(n: number): number[] {
  const count = Math.max(1, Math.min(8, Math.floor(n / 128)));
  return Array.from({ length: count + 1 }, (_, b) => Math.round((n * b) / count));
}

/**
 * G = XᵀX for X of m×n, whose chunks `xtOf(r0, rows, xt)` writes transposed (xt: n×rows,
 * row-major); row i of G up to the end of its diagonal block goes to `writeRow(i, values)` (the
 * lower triangle and the diagonal blocks; the rest is not computed). False without ORT. Block row
 * b of G is X_bᵀ·X_{0…b}, i.e. XT's rows of block b times the first rows of XT transposed: both
 * contiguous. Accumulated over the chunks (G_{c+1} = X_cᵀX_c + G_c; each sum goes to a spare and
 * is copied back), so memory is one chunk plus ~n²(1 + 3/B)/2 whatever m is. `chunkBuffer(r0, rows)`
 * gives each chunk its own buffer (n×rows) instead of one reused: a caller that keeps the chunks.
 */
export function gramOrt(m: number, n: number, xtOf: RowSource, writeRow: (i: number, values: Float64Array) => void, chunkDoubles = ORT_CHUNK_DOUBLES,
  chunkBuffer?: (r0: number, rows: number) => Float64Array): boolean {
  const rt = loadRuntime();
  if (!rt) return false;
  const rows = Math.min(m, chunkRowsFor(n, chunkDoubles));
  const xt = chunkBuffer ? undefined : scratch('gram.xt', n * rows);
  const cuts = gramBlocks(n);
  // Each block row's sum so far (zero to start), and one spare of the largest block row for the next sum (copied back).
  const sums = scratch('gram.sums', cuts.slice(1).reduce((total, e, b) => total + (e - cuts[b]) * e, 0)).fill(0);
  let at = 0;
  const blocks = cuts.slice(1).map((e, b) => {
    const w = e - cuts[b];
    const acc = sums.subarray(at, (at += w * e));
    return { w, e, acc, c: new rt.Tensor('float64', acc, [w, e]) };
  });
  const spare = scratch('gram.spare', blocks[blocks.length - 1].w * n);
  for (let r0 = 0; r0 < m; r0 += rows) {
    const r = Math.min(rows, m - r0);
    const chunk = xt ? xt.subarray(0, n * r) : chunkBuffer!(r0, r);
    xtOf(r0, r, chunk);
    const all = new rt.Tensor('float64', chunk, [n, r]);
    for (const [b, { w, e, acc, c }] of blocks.entries()) {
      const a = new rt.Tensor('float64', chunk.subarray(cuts[b] * r, cuts[b + 1] * r), [w, r]);
      const prefix = b + 1 === blocks.length ? all : new rt.Tensor('float64', chunk.subarray(0, e * r), [e, r]);
      const sum = spare.subarray(0, w * e);
      run(rt, 'gram', { A: a, B: prefix, C: c }, new rt.Tensor('float64', sum, [w, e]));
      acc.set(sum);
    }
  }
  for (const [b, { w, e, acc }] of blocks.entries()) for (let i = 0; i < w; i++) writeRow(cuts[b] + i, acc.subarray(i * e, (i + 1) * e));
  return true;
}

/**
 * C = X·B for X of m×k given by row blocks and B (k×N, row-major), delivered block by block to
 * `onRows(r0, rows, c)` (c: rows×N, reused for the next block); false without ORT.
 */
export function productOrt(m: number, k: number, N: number, rowsOf: RowSource, b: Float64Array, onRows: (r0: number, rows: number, c: Float64Array) => void, chunkDoubles = ORT_CHUNK_DOUBLES): boolean {
  const rt = loadRuntime();
  if (!rt) return false;
  const rows = Math.min(m, chunkRowsFor(Math.max(k, N), chunkDoubles));
  const a = new Float64Array(rows * k), c = new Float64Array(rows * N);
  const bT = new rt.Tensor('float64', b.length === k * N ? b : b.subarray(0, k * N), [k, N]);
  for (let r0 = 0; r0 < m; r0 += rows) {
    const r = Math.min(rows, m - r0);
    const ar = a.subarray(0, r * k), cr = c.subarray(0, r * N);
    rowsOf(r0, r, ar);
    run(rt, 'product', { A: new rt.Tensor('float64', ar, [r, k]), B: bT }, new rt.Tensor('float64', cr, [r, N]));
    onRows(r0, r, cr);
  }
  return true;
}

/** out (r×N) = Aᵀ·B for A (k×r) and B (k×N), row-major, in one run; false without ORT. */
export function crossProductOrt(k: number, r: number, N: number, a: Float64Array, b: Float64Array, out: Float64Array): boolean {
  const rt = loadRuntime();
  if (!rt) return false;
  run(rt, 'productTA', { A: new rt.Tensor('float64', a, [k, r]), B: new rt.Tensor('float64', b, [k, N]) }, new rt.Tensor('float64', out, [r, N]));
  return true;
}

/** out (m×N) = A·B for A (m×k) and B (k×N), row-major, in one run with no copies; false without ORT. */
export function productPlainOrt(m: number, k: number, N: number, a: Float64Array, b: Float64Array, out: Float64Array): boolean {
  const rt = loadRuntime();
  if (!rt) return false;
  run(rt, 'product', { A: new rt.Tensor('float64', a, [m, k]), B: new rt.Tensor('float64', b, [k, N]) }, new rt.Tensor('float64', out, [m, N]));
  return true;
}

// The common model every format reader produces and every other part consumes.
// Contract for the whole core: formats/* build it, linalg/compress/eval/worker read it.
// Nothing here knows about ONNX protobuf classes; the ONNX specifics stay in formats/onnx.

/** Element types, named after numpy where one exists. */
export type DType =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool' | 'string' | 'complex64' | 'complex128'
  | 'float8e4m3fn' | 'float8e4m3fnuz' | 'float8e5m2' | 'float8e5m2fnuz'
  | 'uint4' | 'int4' | 'float4e2m1' | 'unknown';

/** Floating dtypes whose weights can be factorized (widened to float32/64 for the math). */
export const FACTORIZABLE_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'bfloat16', 'float64']);

/**
 * A weight tensor. Bytes are produced lazily: a zero-copy view of the model file's buffer
 * where alignment allows, a read of the external-data file otherwise.
 */
export interface Tensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Number of elements (product of shape). */
  readonly size: number;
  /** Raw little-endian element bytes (as ONNX raw_data stores them). */
  bytes(): Uint8Array;
  /** Values widened to float32. Throws for non-float dtypes. */
  toFloat32(): Float32Array;
  /** Hex SHA-256 of dtype, shape and bytes; cached. Keys the spectrum cache and plan checks. */
  hash(): string;
}

export interface ValueInfo {
  name: string;
  /** Element type, 'unknown' when the graph doesn't say. */
  dtype: DType;
  /** Dimensions: a number, a symbolic name (`batch`), or null when unknown. */
  shape: (number | string | null)[] | null;
}

/** Layer kinds we can factorize. */
export type LayerOp = 'MatMul' | 'Gemm' | 'Conv' | 'Gather';

/**
 * How the [out, in] matrix is laid out in the stored weight tensor.
 * - `in_out`: stored as [in, out] (MatMul x·W, PyTorch's pre-transposed Linear weights); matrix = Wᵀ.
 * - `out_in`: stored as [out, in] (Gemm with transB=1, Gather rows = [vocab, dim] are `out_in` with out=vocab).
 * - `conv`: [out, in/groups, k...]; matrix per group g = rows g·out/groups.., cols = in/groups·∏k.
 */
export type MatrixLayout = 'in_out' | 'out_in' | 'conv';

/** What compression already did to a layer, read back from metadata_props. */
export interface CompressedInfo {
  rank: number;
  originalShape: [number, number];
  energyKept: number;
  method: string;
  /** Names of the A and B factor tensors. */
  factors: [string, string];
  /** File the dense original came from, for "Restore layer". */
  sourceFile?: string;
}

/**
 * A weight matrix of the model. A layer Rankscope factorized is listed as the layer it replaced:
 * `shape`, `tensorShape`, `layout`, `groups` and `kernel` are the original's (A and B keep its
 * layout, per group), `params` and `bytes` are those of the factors as stored, and `compressed`
 * says how it was factorized. Counts read `params` or model/params.ts, never the shapes.
 */
export interface Layer {
  /** Module path (`encoder.layers.0.self_attn.q_proj`), from node names when the initializer's is opaque. */
  name: string;
  op: LayerOp;
  /** Name of the tensor holding W (an initializer or a Constant node's output). */
  weight: string;
  /** The matrix view [out, in] (for convs: [out, in/groups·∏kernel], per group rows out/groups). */
  shape: [number, number];
  /** The stored tensor's shape (for a factorized layer: the original weight's). */
  tensorShape: number[];
  layout: MatrixLayout;
  dtype: DType;
  /** Weight parameters as stored: elements of W (of A and B for a factorized layer). */
  params: number;
  /** Bias tensor name and its parameters, when the layer has one (Gemm C, Conv B, a following Add). */
  bias?: string;
  biasParams: number;
  /** Bytes of W as stored. */
  bytes: number;
  /**
   * Every node that uses W (more than one when shared): the node's name, or `OpType(output0)`
   * for unnamed nodes (formats/onnx `nodeId`/`findNode`).
   */
  nodes: string[];
  /** Nodes between W and the layer node (Transpose/Cast/Identity/DequantizeLinear), same naming. */
  via?: string[];
  /** Conv only: groups, each factorized on its own (layer.shape rows are split among them). */
  groups?: number;
  kernel?: number[];
  factorizable: boolean;
  /** Why not factorizable (integer dtype, too small to save at any rank, …). */
  reason?: string;
  /** Present when this layer is a low-rank pair written by Rankscope. */
  compressed?: CompressedInfo;
}

/** File formats a Model is read from: an ONNX graph, or a state dict (PyTorch checkpoint, safetensors). */
export type ModelFormat = 'onnx' | 'pytorch' | 'safetensors';

export interface ModelSummary {
  path: string;
  /** Bytes on disk: the model file and the external-data files it uses. */
  fileSize: number;
  /** State-dict formats have no graph: irVersion 0, no opsets, inputs or outputs. */
  format: ModelFormat;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: { name: string; version: string };
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** All parameters held in initializers and constant nodes (float and integer). */
  totalParams: number;
  /** Parameters of factorizable layers' weights. */
  factorizableParams: number;
  metadata: Record<string, string>;
}

/** A model opened from disk: its summary, its layers, and access to tensors. */
export interface Model {
  readonly summary: ModelSummary;
  readonly layers: Layer[];
  tensor(name: string): Tensor | undefined;
}

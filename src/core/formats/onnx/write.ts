// Writing ONNX: encode (unknown fields kept by bufbuild), write through core/fs/atomicWrite (a
// temp file renamed over the target, never over an input); tensors go to an external-data file
// when the source used one or the model would pass protobuf's 2 GiB limit.
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { RankscopeError, throwIfCancelled } from '../../errors';
import { commitAll, PendingFile } from '../../fs/atomicWrite';
import { float32ToBfloat16, float32ToFloat16 } from '../../model/float16';
import type { DType } from '../../model/types';
import { dataTypeCode, rawByteLength } from './dtypes';
import {
  type GraphProto, type ModelProto, ModelProtoSchema, StringStringEntryProtoSchema, type TensorProto, TensorProto_DataLocation, TensorProtoSchema,
} from './gen/onnx_pb';
import { sourceDirOf } from './read';
import { expectedByteLength, externalRef, tensorBytes } from './tensorData';

/** Tensors below this stay inline when writing external data (the ONNX tooling's default). */
const EXTERNAL_THRESHOLD = 1024;
/** External-data offsets are page aligned, as the ONNX spec recommends (lets runtimes mmap). */
const ALIGN = 4096;
/** Leave headroom under 2 GiB for the graph itself. */
const INLINE_LIMIT = 2 ** 31 - 64 * 2 ** 20;

export function encodeOnnx(proto: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, proto);
}

export interface WriteOptions {
  /** true: weights to `<file>.data`; false: all inline; 'auto' (default): external when the
   * source model used external data or the model exceeds ~2 GiB. */
  externalData?: boolean | 'auto';
  /** Folder that external-data locations in `proto` are relative to; defaults to where
   * openOnnx read the proto from, else the output folder. */
  sourceDir?: string;
  /** Files the output must not replace (the model it was read from); its external data is added. */
  inputs?: readonly (string | undefined)[];
  signal?: AbortSignal;
}

/** Writes `proto` to `path` (and `<path>.data` when external); returns the bytes written, both files together. */
export async function writeOnnxAtomic(path: string, proto: ModelProto, options: WriteOptions = {}): Promise<number> {
  const out = resolve(path);
  const sourceDir = options.sourceDir ?? sourceDirOf.get(proto) ?? dirname(out);
  const graph = proto.graph;
  const inits = graph?.initializer ?? [];
  const hasExternal = inits.some((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL);
  const mode = options.externalData ?? 'auto';
  const external = mode === true || (mode === 'auto' && (hasExternal || estimatedSize(inits) > INLINE_LIMIT));
  // The external-data files the proto reads from are inputs too: never replaced.
  const inputs = [...(options.inputs ?? []), ...externalFiles(inits, sourceDir)];
  const check = { inputs, signal: options.signal };

  const dataName = `${basename(out)}.data`;
  const model = await PendingFile.create(out, check);
  const data = external ? await PendingFile.create(join(dirname(out), dataName), check).catch(async (e) => { await model.discard(); throw e; }) : undefined;
  try {
    let written = proto;
    let dataBytes = 0;
    if (graph && data) {
      const result = await writeExternal(inits, sourceDir, data.handle, dataName, options.signal);
      dataBytes = result.bytes;
      written = withGraph(proto, graph, result.initializers);
    } else if (graph && hasExternal) {
      written = withGraph(proto, graph, inits.map((t) => (isExternal(t) ? inlined(t, sourceDir) : t)));
    }
    written = inlineNestedExternal(written, sourceDir);
    throwIfCancelled(options.signal);
    let bytes: Uint8Array;
    try {
      bytes = encodeOnnx(written);
    } catch (e) {
      throw new RankscopeError('UNSUPPORTED', `Cannot encode ${basename(out)}: ${(e as Error).message}`,
        'Write it with external data.');
    }
    await model.writeAll(bytes);
    // The data lands first: a model never points at data that is not there yet.
    await commitAll(data ? [data, model] : [model], options.signal);
    return bytes.length + dataBytes;
  } finally {
    await data?.discard();
    await model.discard();
  }
}

const isExternal = (t: TensorProto) => t.dataLocation === TensorProto_DataLocation.EXTERNAL;

function inlined(t: TensorProto, sourceDir: string): TensorProto {
  return create(TensorProtoSchema, { ...t, rawData: tensorBytes(t, sourceDir, t.name), dataLocation: TensorProto_DataLocation.DEFAULT, externalData: [] });
}

/**
 * External tensors other than the main graph's initializers (a Constant's value, a subgraph's
 * initializer) are written inline: their locations are relative to the source folder.
 */
function inlineNestedExternal(proto: ModelProto, sourceDir: string): ModelProto {
  const needs = (g: GraphProto, main: boolean): boolean => (!main && g.initializer.some(isExternal)) ||
    g.node.some((n) => n.attribute.some((a) => (a.t && isExternal(a.t)) || a.tensors.some(isExternal) || (a.g && needs(a.g, false)) || a.graphs.some((x) => needs(x, false))));
  const fix = (g: GraphProto, main: boolean): GraphProto => ({
    ...g,
    initializer: main ? g.initializer : g.initializer.map((t) => (isExternal(t) ? inlined(t, sourceDir) : t)),
    node: g.node.map((n) => ({
      ...n,
      attribute: n.attribute.map((a) => ({
        ...a,
        t: a.t && isExternal(a.t) ? inlined(a.t, sourceDir) : a.t,
        tensors: a.tensors.map((t) => (isExternal(t) ? inlined(t, sourceDir) : t)),
        g: a.g && fix(a.g, false),
        graphs: a.graphs.map((x) => fix(x, false)),
      })),
    })),
  });
  return proto.graph && needs(proto.graph, true) ? { ...proto, graph: fix(proto.graph, true) } : proto;
}

/** Absolute paths of the external-data files `inits` read from. */
function externalFiles(inits: TensorProto[], sourceDir: string): string[] {
  const files = new Set<string>();
  for (const t of inits) {
    const ref = t.dataLocation === TensorProto_DataLocation.EXTERNAL ? externalRef(t) : undefined;
    if (ref) files.add(resolve(sourceDir, ref.location));
  }
  return [...files];
}

function withGraph(proto: ModelProto, graph: GraphProto, initializer: TensorProto[]): ModelProto {
  // Shallow copies: the caller's proto is never modified.
  return { ...proto, graph: { ...graph, initializer } };
}

function estimatedSize(inits: TensorProto[]): number {
  let n = 0;
  for (const t of inits) n += t.rawData.length || (expectedByteLength(t) ?? 0);
  return n;
}

/** Writes every initializer of at least EXTERNAL_THRESHOLD bytes to `dataPath`; returns the new list. */
async function writeExternal(inits: TensorProto[], sourceDir: string, fh: FileHandle, location: string, signal?: AbortSignal): Promise<{ initializers: TensorProto[]; bytes: number }> {
  let offset = 0;
  const result: TensorProto[] = [];
  for (const t of inits) {
    throwIfCancelled(signal);
    const size = expectedByteLength(t);
    const isExternal = t.dataLocation === TensorProto_DataLocation.EXTERNAL;
    if (size === undefined || (!isExternal && size < EXTERNAL_THRESHOLD)) {
      result.push(t);
      continue;
    }
    const bytes = tensorBytes(t, sourceDir, t.name);
    offset = Math.ceil(offset / ALIGN) * ALIGN;
    await fh.write(bytes, 0, bytes.length, offset);
    result.push(create(TensorProtoSchema, {
      ...t,
      rawData: new Uint8Array(0), floatData: [], doubleData: [], int32Data: [], int64Data: [], uint64Data: [],
      dataLocation: TensorProto_DataLocation.EXTERNAL,
      externalData: [
        create(StringStringEntryProtoSchema, { key: 'location', value: location }),
        create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
        create(StringStringEntryProtoSchema, { key: 'length', value: String(bytes.length) }),
      ],
    }));
    offset += bytes.length;
  }
  return { initializers: result, bytes: offset };
}

/**
 * A TensorProto with raw_data. Float data is stored as `dtype` (narrowed to float16/bfloat16
 * with round-to-nearest-even, or widened to float64); a Uint8Array is taken as the raw bytes.
 */
export function makeTensorProto(name: string, dtype: DType, dims: readonly number[], data: Float32Array | Float64Array | Uint8Array): TensorProto {
  const size = dims.reduce((a, b) => a * b, 1);
  let raw: Uint8Array;
  if (data instanceof Uint8Array) {
    raw = data;
    if (raw.length !== rawByteLength(dtype, size)) {
      throw new RankscopeError('SHAPE_MISMATCH', `Tensor '${name}': ${raw.length} bytes do not fit ${dtype} [${dims.join(', ')}].`);
    }
  } else {
    if (data.length !== size) {
      throw new RankscopeError('SHAPE_MISMATCH', `Tensor '${name}': ${data.length} values do not fit [${dims.join(', ')}].`);
    }
    raw = encodeFloats(data, dtype, name);
  }
  return create(TensorProtoSchema, { name, dataType: dataTypeCode(dtype), dims: dims.map(BigInt), rawData: raw });
}

/** Float values as little-endian bytes of `dtype` (float16/bfloat16 rounded to nearest even). */
export function encodeFloats(data: Float32Array | Float64Array, dtype: DType, name: string): Uint8Array {
  // Fresh, little-endian buffers (every platform Node ships on is little-endian).
  switch (dtype) {
    case 'float32': {
      const a = data instanceof Float32Array ? data.slice() : Float32Array.from(data);
      return new Uint8Array(a.buffer);
    }
    case 'float64': return new Uint8Array(Float64Array.from(data).buffer);
    case 'float16': {
      const a = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) a[i] = float32ToFloat16(data[i]);
      return new Uint8Array(a.buffer);
    }
    case 'bfloat16': {
      const a = new Uint16Array(data.length);
      for (let i = 0; i < data.length; i++) a[i] = float32ToBfloat16(data[i]);
      return new Uint8Array(a.buffer);
    }
    default:
      throw new RankscopeError('UNSUPPORTED', `Tensor '${name}': cannot store float values as ${dtype}.`);
  }
}

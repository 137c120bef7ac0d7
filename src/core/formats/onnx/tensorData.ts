// The bytes of a TensorProto, wherever ONNX put them: raw_data (a zero-copy view of the file
// buffer), the typed repeated fields (float_data, int32_data, …), or an external-data file.
import { closeSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { RankscopeError } from '../../errors';
import type { DType } from '../../model/types';
import { dtypeOf, elementBits, rawByteLength } from './dtypes';
import { type TensorProto, TensorProto_DataLocation } from './gen/onnx_pb';

export interface ExternalRef {
  location: string;
  offset: number;
  /** Undefined: up to the end of the file. */
  length?: number;
}

export function dimsOf(t: { dims: bigint[] }): number[] {
  return t.dims.map(Number);
}

export function elementCount(t: TensorProto): number {
  return t.dims.reduce((a, d) => a * Number(d), 1);
}

export function externalRef(t: TensorProto): ExternalRef | undefined {
  if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) return undefined;
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = kv.get('location');
  if (!location) {
    throw new RankscopeError('CORRUPT', `Tensor '${t.name}' is marked external but has no 'location'.`);
  }
  const offset = Number(kv.get('offset') ?? 0);
  const length = kv.has('length') ? Number(kv.get('length')) : undefined;
  if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
    throw new RankscopeError('CORRUPT', `Tensor '${t.name}' has an invalid external-data offset/length.`);
  }
  return { location, offset, length };
}

/**
 * Absolute path of an external-data file. The location is relative to the model's folder and
 * must stay inside it (as the ONNX checker requires): a model must not read arbitrary files.
 */
export function externalPath(dir: string, ref: ExternalRef, tensor = 'tensor'): string {
  const path = resolve(dir, ref.location);
  if (isAbsolute(ref.location) || !inside(resolve(dir), path)) {
    throw new RankscopeError('EXTERNAL_DATA', `Tensor '${tensor}' points at external data outside the model's folder ('${ref.location}').`,
      'Keep external-data files next to the model (relative locations only).');
  }
  return path;
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/**
 * The same rule after resolving symbolic links (ONNX Runtime checks it too): a link in the
 * model's folder must not lead to data elsewhere. Undefined when the file does not exist.
 */
function realExternalPath(dir: string, path: string, ref: ExternalRef, tensor: string, model: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return undefined;
  }
  if (!inside(realpathSync(dir), real)) {
    throw new RankscopeError('EXTERNAL_DATA', `${model}: tensor '${tensor}' keeps its data in '${ref.location}', which links to ${real}, outside the model's folder.`,
      'Copy the external-data file itself into the model\'s folder (not a link to it).');
  }
  return real;
}

/** Bytes on disk of the distinct external-data files the tensors use (0 when none). */
export function externalDataBytes(tensors: TensorProto[], dir: string): number {
  const files = new Set<string>();
  for (const t of tensors) {
    const ref = externalRef(t);
    if (ref) files.add(externalPath(dir, ref, t.name));
  }
  let total = 0;
  for (const f of files) total += statSync(f).size;
  return total;
}

/**
 * Checks that an external tensor's file exists and is long enough, without reading it.
 * Returns the byte range. `model` names the model file in errors.
 */
export function checkExternal(t: TensorProto, dir: string, model: string): { path: string; offset: number; length: number } {
  const ref = externalRef(t)!;
  const path = realExternalPath(dir, externalPath(dir, ref, t.name), ref, t.name, model);
  const expected = expectedByteLength(t);
  if (path === undefined) {
    throw new RankscopeError('EXTERNAL_DATA', `${model}: tensor '${t.name}' keeps its data in '${ref.location}', which does not exist next to the model (${resolve(dir, ref.location)}).`,
      'Copy the external-data file into the model\'s folder.');
  }
  // Only a regular file (a FIFO would block the read, a device never ends).
  const stats = statSync(path);
  if (!stats.isFile()) {
    throw new RankscopeError('EXTERNAL_DATA', `${model}: tensor '${t.name}' keeps its data in '${ref.location}', which is not a regular file.`);
  }
  const size = stats.size;
  const length = ref.length ?? (expected ?? size - ref.offset);
  if (ref.offset + length > size) {
    throw new RankscopeError('EXTERNAL_DATA', `${model}: external-data file '${ref.location}' is too short for tensor '${t.name}' (needs bytes ${ref.offset}..${ref.offset + length}, file has ${size}).`,
      'The file is truncated or belongs to another model version.');
  }
  if (expected !== undefined && length !== expected) {
    throw new RankscopeError('EXTERNAL_DATA', `${model}: tensor '${t.name}' needs ${expected} bytes but its external-data length is ${length}.`);
  }
  return { path, offset: ref.offset, length };
}

/** Byte length of raw_data for this tensor, or undefined for strings/unknown types. */
export function expectedByteLength(t: TensorProto): number | undefined {
  const dtype = dtypeOf(t.dataType);
  if (elementBits(dtype) === 0) return undefined;
  return rawByteLength(dtype, elementCount(t));
}

function readRange(path: string, offset: number, length: number): Uint8Array {
  const out = Buffer.allocUnsafe(length);
  const fd = openSync(path, 'r');
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw new RankscopeError('EXTERNAL_DATA', `External-data file ${path} ended early (read ${done} of ${length} bytes).`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/**
 * Raw little-endian bytes of a tensor. raw_data comes back as the view the decoder made (no
 * copy); external data is read from disk; typed fields are packed into a new buffer.
 * `dir` is the model's folder (for external data), `model` names the file in errors.
 */
export function tensorBytes(t: TensorProto, dir: string, model = 'model'): Uint8Array {
  const dtype = dtypeOf(t.dataType);
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) {
    const { path, offset, length } = checkExternal(t, dir, model);
    return readRange(path, offset, length);
  }
  const expected = expectedByteLength(t);
  const bytes = t.rawData.length > 0 || expected === 0 ? t.rawData : typedFieldBytes(t, dtype);
  if (expected !== undefined && bytes.length !== expected) {
    throw new RankscopeError('CORRUPT', `${model}: tensor '${t.name}' (${dtype} [${t.dims.join(', ')}]) holds ${bytes.length} bytes, expected ${expected}.`,
      'The model file is corrupt.');
  }
  return bytes;
}

function typedFieldBytes(t: TensorProto, dtype: DType): Uint8Array {
  switch (dtype) {
    case 'float32': case 'complex64':
      return asBytes(Float32Array.from(t.floatData));
    case 'float64': case 'complex128':
      return asBytes(Float64Array.from(t.doubleData));
    case 'int64':
      return asBytes(BigInt64Array.from(t.int64Data));
    case 'uint64':
      return asBytes(BigUint64Array.from(t.uint64Data));
    case 'uint32':
      return asBytes(Uint32Array.from(t.uint64Data, Number));
    case 'int32':
      return asBytes(Int32Array.from(t.int32Data));
    // float16/bfloat16 and 8-bit types are stored bitwise in int32_data, one element per entry.
    case 'float16': case 'bfloat16': case 'uint16':
      return asBytes(Uint16Array.from(t.int32Data));
    case 'int16':
      return asBytes(Int16Array.from(t.int32Data));
    case 'int8':
      return asBytes(Int8Array.from(t.int32Data));
    case 'uint8': case 'bool': case 'float8e4m3fn': case 'float8e4m3fnuz': case 'float8e5m2': case 'float8e5m2fnuz':
      return Uint8Array.from(t.int32Data);
    case 'int4': case 'uint4': case 'float4e2m1': {
      // int32_data holds one packed byte (two 4-bit elements) per entry.
      return Uint8Array.from(t.int32Data);
    }
    default:
      return new Uint8Array(0);
  }
}

function asBytes(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

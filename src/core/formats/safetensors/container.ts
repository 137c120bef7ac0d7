// The safetensors container: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {…}}, then raw little-endian bytes.
// Used three ways: the Python worker's tensor hand-over (whole-file read and write), opening a
// .safetensors model lazily (read.ts), and the factors file `rankscope compress` writes for
// state-dict models. Writes are atomic (core/fs/atomicWrite).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { RankscopeError, throwIfCancelled } from '../../errors';
import { PendingFile } from '../../fs/atomicWrite';
import type { DType } from '../../model/types';

const CODE: Partial<Record<DType, string>> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16',
  int8: 'I8', uint64: 'U64', uint32: 'U32', uint16: 'U16', uint8: 'U8', bool: 'BOOL',
  float8e4m3fn: 'F8_E4M3', float8e5m2: 'F8_E5M2',
};
const DTYPE = new Map(Object.entries(CODE).map(([k, v]) => [v, k as DType]));

/** Largest header we accept (the format's own reference reader caps it at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafeTensor {
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

/** A tensor to write: its bytes, or a loader called when it is written (a large file streams). */
export interface SafeTensorSource {
  dtype: DType;
  shape: number[];
  bytes: Uint8Array | (() => Uint8Array);
}

export interface HeaderEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte offsets in the data section (after the header). */
  begin: number;
  end: number;
}

export interface Header {
  /** Where the data section starts in the file (8 + header length). */
  dataStart: number;
  entries: HeaderEntry[];
  metadata: Record<string, string>;
}

export function safetensorsCode(dtype: DType): string | undefined {
  return CODE[dtype];
}

const BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };

/** Parses and checks the header; `size` is the whole file's (offsets must lie inside it). */
export function parseHeader(head: Uint8Array, size: number, name: string): Header {
  const bad = (why: string) => new RankscopeError('CORRUPT', `${name} is not a valid safetensors file: ${why}.`);
  if (head.length < 8 || size < 8) throw bad('too short');
  const n = Number(Buffer.from(head.buffer, head.byteOffset, 8).readBigUInt64LE(0));
  if (n > MAX_HEADER_BYTES || 8 + n > size) throw bad(`header length ${n} runs past the end`);
  if (head.length < 8 + n) throw bad('header is truncated');
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(Buffer.from(head.buffer, head.byteOffset + 8, n).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('header is not an object');
  const dataLength = size - 8 - n;
  const entries: HeaderEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [key, raw] of Object.entries(json)) {
    if (key === '__metadata__') {
      metadata = Object.fromEntries(Object.entries((raw ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = DTYPE.get(String(info?.dtype));
    if (!dtype) throw bad(`tensor '${key}' has unknown dtype ${String(info?.dtype)}`);
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isInteger(d) && d >= 0)) throw bad(`tensor '${key}' has a bad shape`);
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2) throw bad(`tensor '${key}' has no data_offsets`);
    const [begin, end] = offsets as number[];
    if (!(Number.isInteger(begin) && Number.isInteger(end) && begin >= 0 && end >= begin && end <= dataLength)) throw bad(`tensor '${key}' runs past the end`);
    const shape = info.shape as number[];
    if (end - begin !== shape.reduce((a, b) => a * b, 1) * BYTES[CODE[dtype]!]) throw bad(`tensor '${key}' has ${end - begin} bytes for ${dtype}[${shape.join(', ')}]`);
    entries.push({ name: key, dtype, shape, begin, end });
  }
  return { dataStart: 8 + n, entries, metadata };
}

/** Writes `tensors` (in order) and `metadata` to `path` atomically (core/fs/atomicWrite), never over `inputs`. */
export async function writeSafetensors(path: string, tensors: Iterable<[string, SafeTensorSource]>, metadata?: Record<string, string>, options: { signal?: AbortSignal; inputs?: readonly string[] } = {}): Promise<void> {
  const header: Record<string, unknown> = {};
  const parts: { name: string; length: number; bytes: SafeTensorSource['bytes'] }[] = [];
  let offset = 0;
  if (metadata) header.__metadata__ = metadata;
  for (const [name, t] of tensors) {
    const code = CODE[t.dtype];
    if (!code) throw new RankscopeError('UNSUPPORTED', `Tensor '${name}' has dtype ${t.dtype}, which safetensors cannot hold.`);
    const length = t.shape.reduce((a, b) => a * b, 1) * BYTES[code];
    header[name] = { dtype: code, shape: t.shape, data_offsets: [offset, offset + length] };
    parts.push({ name, length, bytes: t.bytes });
    offset += length;
  }
  let head = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (head.length % 8)) % 8; // keep tensor data 8-byte aligned
  if (pad) head = Buffer.concat([head, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  const file = await PendingFile.create(path, { signal: options.signal, inputs: options.inputs });
  try {
    await file.writeAll(len);
    await file.writeAll(head);
    for (const p of parts) {
      throwIfCancelled(options.signal);
      const bytes = typeof p.bytes === 'function' ? p.bytes() : p.bytes;
      if (bytes.length !== p.length) throw new RankscopeError('SHAPE_MISMATCH', `Tensor '${p.name}': ${bytes.length} bytes where its shape needs ${p.length}.`);
      await file.writeAll(bytes);
    }
    await file.commit();
  } finally {
    await file.discard();
  }
}

/** The whole file in memory, tensors as views of it (the worker's hand-over files are small). */
export async function readSafetensors(path: string): Promise<Map<string, SafeTensor>> {
  let blob: Buffer;
  try {
    blob = await readFile(path);
  } catch {
    throw new RankscopeError('NOT_FOUND', `Tensor file not found: ${path}`);
  }
  const header = parseHeader(blob, blob.length, basename(path));
  const out = new Map<string, SafeTensor>();
  for (const e of header.entries) {
    out.set(e.name, { dtype: e.dtype, shape: e.shape, bytes: new Uint8Array(blob.buffer, blob.byteOffset + header.dataStart + e.begin, e.end - e.begin) });
  }
  return out;
}

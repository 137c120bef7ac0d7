// The safetensors container (8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}}, then raw little-endian bytes): how tensors cross the
// process boundary to the Python worker and back. Written to a temp file then renamed.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { RankscopeError } from '../core/errors';
import { PendingFile } from '../core/fs/atomicWrite';
import type { DType } from '../core/model/types';

const CODE: Partial<Record<DType, string>> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16',
  int8: 'I8', uint64: 'U64', uint32: 'U32', uint16: 'U16', uint8: 'U8', bool: 'BOOL',
};
const DTYPE = new Map(Object.entries(CODE).map(([k, v]) => [v, k as DType]));

export interface SafeTensor {
  dtype: DType;
  shape: number[];
  bytes: Uint8Array;
}

export function safetensorsCode(dtype: DType): string | undefined {
  return CODE[dtype];
}

export async function writeSafetensors(path: string, tensors: Iterable<[string, SafeTensor]>, metadata?: Record<string, string>, signal?: AbortSignal): Promise<void> {
  const header: Record<string, unknown> = {};
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const code = CODE[t.dtype];
    if (!code) throw new RankscopeError('UNSUPPORTED', `Tensor '${name}' has dtype ${t.dtype}, which the worker cannot take.`);
    header[name] = { dtype: code, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    parts.push(t.bytes);
    offset += t.bytes.length;
  }
  if (metadata) header.__metadata__ = metadata;
  let head = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (head.length % 8)) % 8; // keep tensor data 8-byte aligned
  if (pad) head = Buffer.concat([head, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  const file = await PendingFile.create(path, { signal, durable: false });
  try {
    for (const p of [len, head, ...parts]) await file.writeAll(p);
    await file.commit();
  } finally {
    await file.discard();
  }
}

export async function readSafetensors(path: string): Promise<Map<string, SafeTensor>> {
  let blob: Buffer;
  try {
    blob = await readFile(path);
  } catch {
    throw new RankscopeError('NOT_FOUND', `Tensor file not found: ${path}`);
  }
  const bad = (why: string) => new RankscopeError('CORRUPT', `${basename(path)} is not a valid safetensors file: ${why}.`);
  if (blob.length < 8) throw bad('too short');
  const n = Number(blob.readBigUInt64LE(0));
  if (8 + n > blob.length) throw bad('header runs past the end');
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(blob.subarray(8, 8 + n).toString('utf8'));
  } catch {
    throw bad('header is not JSON');
  }
  const data = blob.subarray(8 + n);
  const out = new Map<string, SafeTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const dtype = DTYPE.get(info.dtype);
    if (!dtype) throw bad(`tensor '${name}' has unknown dtype ${info.dtype}`);
    const [b, e] = info.data_offsets;
    if (!(b >= 0 && e >= b && e <= data.length)) throw bad(`tensor '${name}' runs past the end`);
    out.set(name, { dtype, shape: info.shape, bytes: new Uint8Array(data.buffer, data.byteOffset + b, e - b) });
  }
  return out;
}

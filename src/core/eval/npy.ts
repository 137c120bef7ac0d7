// NumPy .npy arrays, read lazily: the header is parsed up front, values are read a block of
// leading-axis rows at a time (a batch), so a 5 GB test set never sits in memory whole.
// Values come back in C order and host (little-endian) byte order whatever the file used.
import { RankscopeError, throwIfCancelled } from '../errors';
import { FileRangeSource, type ByteSource } from './byteSource';

/** Element types numpy files hold that models consume. */
export type NpyDType =
  | 'float16' | 'float32' | 'float64'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

/** float16 comes back as raw bits (Uint16Array), as ONNX Runtime takes it; bool as 0/1 bytes. */
export type NpyData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

const KINDS: Record<string, NpyDType> = {
  f2: 'float16', f4: 'float32', f8: 'float64',
  i1: 'int8', u1: 'uint8', i2: 'int16', u2: 'uint16', i4: 'int32', u4: 'uint32', i8: 'int64', u8: 'uint64',
  b1: 'bool',
};

export const ITEM_SIZE: Record<NpyDType, number> = {
  float16: 2, float32: 4, float64: 8, int8: 1, uint8: 1, int16: 2, uint16: 2,
  int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1,
};


export interface NpyHeader {
  dtype: NpyDType;
  shape: number[];
  fortranOrder: boolean;
  littleEndian: boolean;
  /** Byte offset of the first element within the source. */
  dataOffset: number;
}

export class NpyArray {
  /** Above this many bytes, Fortran-ordered arrays are gathered column by column instead of read whole. */
  static wholeReadLimit = 256 * 1024 * 1024;
  readonly size: number;
  /** Elements per leading-axis row (product of shape[1:]). */
  readonly rowSize: number;
  private wholeC: NpyData | undefined;

  constructor(
    /** File path, or `archive.npz:key` for a member; used in every message. */
    readonly label: string,
    readonly header: NpyHeader,
    private readonly source: ByteSource,
  ) {
    this.size = header.shape.reduce((a, b) => a * b, 1);
    this.rowSize = header.shape.slice(1).reduce((a, b) => a * b, 1);
    const need = header.dataOffset + this.size * ITEM_SIZE[header.dtype];
    if (source.size < need) {
      throw new RankscopeError('CORRUPT', `${label}: data is truncated (${source.size} bytes, the header needs ${need}).`, 'The file may be incomplete; write it again.');
    }
  }

  get dtype(): NpyDType { return this.header.dtype; }
  get shape(): readonly number[] { return this.header.shape; }

  /** Every element, C order. */
  async readAll(signal?: AbortSignal): Promise<NpyData> {
    if (this.header.shape.length === 0) return this.readContiguous(0, 1);
    return this.readRows(0, this.header.shape[0], signal);
  }

  /** Rows [start, start+count) of the leading axis, C order: shape [count, ...shape[1:]]. */
  async readRows(start: number, count: number, signal?: AbortSignal): Promise<NpyData> {
    throwIfCancelled(signal);
    const { shape, fortranOrder } = this.header;
    if (shape.length === 0) throw new RankscopeError('SHAPE_MISMATCH', `${this.label}: is a 0-d array (a scalar); it has no rows to batch.`);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > shape[0]) {
      throw new RankscopeError('BAD_ARGUMENT', `${this.label}: rows ${start}..${start + count} are outside its ${shape[0]} rows.`);
    }
    // A 1-d array is the same in either order.
    if (!fortranOrder || shape.length === 1) return this.readContiguous(start * this.rowSize, count * this.rowSize);
    const itemSize = ITEM_SIZE[this.header.dtype];
    if (this.size * itemSize <= NpyArray.wholeReadLimit) {
      this.wholeC ??= reverseAxes(await this.readContiguous(0, this.size), [...shape].reverse());
      return this.wholeC.slice(start * this.rowSize, (start + count) * this.rowSize) as NpyData;
    }
    // Fortran order: element (r, t) lies at r + N·t, so each trailing index t is one run of
    // `count` elements. Gathered as [t][r] that is a C array of shape [...reversed trailing, count].
    const n = shape[0];
    const block = new Uint8Array(count * this.rowSize * itemSize);
    for (let t = 0; t < this.rowSize; t++) {
      if (t % 4096 === 0) throwIfCancelled(signal);
      const bytes = await this.source.read(this.header.dataOffset + (start + n * t) * itemSize, count * itemSize);
      block.set(bytes, t * count * itemSize);
    }
    const gathered = this.view(block);
    return reverseAxes(gathered, [...shape.slice(1).reverse(), count]);
  }

  /** Completes the source's integrity check (an .npz member's CRC-32): CORRUPT when the bytes are damaged. */
  verify(signal?: AbortSignal): Promise<void> {
    return this.source.verify(signal);
  }

  async close(): Promise<void> {
    await this.source.close();
  }

  private async readContiguous(firstElement: number, elements: number): Promise<NpyData> {
    const itemSize = ITEM_SIZE[this.header.dtype];
    const bytes = await this.source.read(this.header.dataOffset + firstElement * itemSize, elements * itemSize);
    return this.view(bytes);
  }

  /** Typed view of freshly read bytes (offset 0, so aligned), swapped to host order if needed. */
  private view(bytes: Uint8Array): NpyData {
    const itemSize = ITEM_SIZE[this.header.dtype];
    if (!this.header.littleEndian && itemSize > 1) swapBytes(bytes, itemSize);
    return typedView(this.header.dtype, bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length / itemSize);
  }
}

/** Opens a .npy file; values are read on demand. */
export async function readNpy(path: string): Promise<NpyArray> {
  const source = await FileRangeSource.open(path);
  try {
    return await npyFromSource(source, path);
  } catch (e) {
    await source.close();
    throw e;
  }
}

export async function npyFromSource(source: ByteSource, label: string): Promise<NpyArray> {
  if (source.size < 10) throw new RankscopeError('CORRUPT', `${label}: too short to be a .npy array (${source.size} bytes).`);
  const head = await source.read(0, 10);
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (!magic.every((b, i) => head[i] === b)) {
    throw new RankscopeError('CORRUPT', `${label}: not a .npy array (no \\x93NUMPY magic).`, 'Save arrays with numpy.save or numpy.savez.');
  }
  const major = head[6];
  let headerLength: number;
  let headerStart: number;
  if (major === 1) {
    headerLength = head[8] | (head[9] << 8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    const more = await source.read(8, 4);
    headerLength = new DataView(more.buffer).getUint32(0, true);
    headerStart = 12;
  } else {
    throw new RankscopeError('UNSUPPORTED', `${label}: .npy format version ${major}.${head[7]} is not supported (1.0–3.0 are).`);
  }
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(await source.read(headerStart, headerLength));
  return new NpyArray(label, { ...parseHeader(text, label), dataOffset: headerStart + headerLength }, source);
}

/** Parses numpy's header dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }. */
export function parseHeader(text: string, label: string): Omit<NpyHeader, 'dataOffset'> {
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    if (/'descr'\s*:\s*\[/.test(text)) {
      throw new RankscopeError('UNSUPPORTED', `${label}: structured (record) arrays are not supported.`, 'Save each field as its own array.');
    }
    throw new RankscopeError('CORRUPT', `${label}: unreadable .npy header: ${text.trim().slice(0, 120)}`);
  }
  const order = descr[0];
  const dtype = KINDS[descr.slice(1)];
  if (!dtype || !'<>|='.includes(order)) {
    throw new RankscopeError('UNSUPPORTED', `${label}: numpy dtype '${descr}' is not supported.`,
      'Use a numeric or bool dtype (float16/32/64, int8–64, uint8–64, bool); object, string and complex arrays cannot feed a model.');
  }
  const shape = shapeText.split(',').map((s) => s.trim().replace(/L$/, '')).filter((s) => s.length > 0).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new RankscopeError('CORRUPT', `${label}: bad shape (${shapeText}) in the .npy header.`);
  return { dtype, shape, fortranOrder: fortran === 'True', littleEndian: order !== '>' };
}

export function typedView(dtype: NpyDType, buffer: ArrayBuffer, byteOffset: number, length: number): NpyData {
  switch (dtype) {
    case 'float32': return new Float32Array(buffer, byteOffset, length);
    case 'float64': return new Float64Array(buffer, byteOffset, length);
    case 'float16': return new Uint16Array(buffer, byteOffset, length);
    case 'int8': return new Int8Array(buffer, byteOffset, length);
    case 'uint8': case 'bool': return new Uint8Array(buffer, byteOffset, length);
    case 'int16': return new Int16Array(buffer, byteOffset, length);
    case 'uint16': return new Uint16Array(buffer, byteOffset, length);
    case 'int32': return new Int32Array(buffer, byteOffset, length);
    case 'uint32': return new Uint32Array(buffer, byteOffset, length);
    case 'int64': return new BigInt64Array(buffer, byteOffset, length);
    case 'uint64': return new BigUint64Array(buffer, byteOffset, length);
  }
}

function swapBytes(bytes: Uint8Array, itemSize: number): void {
  for (let i = 0; i < bytes.length; i += itemSize) {
    for (let a = i, b = i + itemSize - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/** C-order array of `shape` → C-order array of the reversed shape (its full transpose). */
export function reverseAxes(src: NpyData, shape: number[]): NpyData {
  const dst = new (src.constructor as new (n: number) => NpyData)(src.length);
  const rank = shape.length;
  if (rank <= 1 || src.length === 0) {
    dst.set(src as never);
    return dst;
  }
  // dst strides: reversed shape in C order; element at multi-index i goes to reversed(i).
  const dstStrides = new Array<number>(rank);
  let stride = 1;
  for (let k = 0; k < rank; k++) { // axis k of src is axis rank-1-k of dst
    dstStrides[k] = stride;
    stride *= shape[k];
  }
  const index = new Array<number>(rank).fill(0);
  let target = 0;
  for (let i = 0; i < src.length; i++) {
    (dst as unknown as number[])[target] = (src as unknown as number[])[i];
    // Advance the src multi-index (last axis fastest) and the dst offset with it.
    for (let k = rank - 1; k >= 0; k--) {
      index[k]++;
      target += dstStrides[k];
      if (index[k] < shape[k]) break;
      target -= dstStrides[k] * shape[k];
      index[k] = 0;
    }
  }
  return dst;
}

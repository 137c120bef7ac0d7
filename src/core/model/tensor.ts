// The one Tensor implementation: any format hands it a byte loader; widening and hashing live here.
import { createHash } from 'node:crypto';
import { RankscopeError } from '../errors';
import { bfloat16ToFloat32, float16ToFloat32 } from './float16';
import { FACTORIZABLE_DTYPES, type DType, type Tensor } from './types';

export class LazyTensor implements Tensor {
  readonly size: number;
  private cachedHash?: string;

  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    /** Returns the raw little-endian bytes; may be a view into the model file's buffer. */
    private readonly load: () => Uint8Array,
  ) {
    this.size = shape.reduce((a, b) => a * b, 1);
  }

  /** Raw bytes; a view of the file buffer when the format allows it: do not mutate. */
  bytes(): Uint8Array {
    return this.load();
  }

  /** A fresh Float32Array (safe to mutate or transfer to a worker). */
  toFloat32(): Float32Array {
    return widenToFloat32(this.bytes(), this.dtype, this.size, this.name);
  }

  hash(): string {
    if (this.cachedHash === undefined) {
      const h = createHash('sha256');
      h.update(`${this.dtype}[${this.shape.join(',')}]`);
      h.update(this.bytes());
      this.cachedHash = h.digest('hex');
    }
    return this.cachedHash;
  }
}

/** Reads `bytes` (raw LE elements of `dtype`) into a new Float32Array; float dtypes only. */
export function widenToFloat32(bytes: Uint8Array, dtype: DType, size: number, name = 'tensor'): Float32Array {
  if (!FACTORIZABLE_DTYPES.has(dtype)) {
    throw new RankscopeError('UNSUPPORTED', `Tensor '${name}' has dtype ${dtype}; only float weights can be read as floats.`);
  }
  // The formats check lengths on reading; this keeps a short buffer from widening into zeros.
  const width = dtype === 'float64' ? 8 : dtype === 'float32' ? 4 : 2;
  if (bytes.byteLength < width * size) {
    throw new RankscopeError('CORRUPT', `Tensor '${name}' (${dtype}, ${size} values) holds ${bytes.byteLength} bytes, expected ${width * size}.`, 'The model file is corrupt.');
  }
  const out = new Float32Array(size);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Typed arrays are in the host's byte order, little-endian on every platform VS Code runs on,
  // like the raw data: an unaligned tensor (raw_data inside a protobuf) is a byte copy, not a
  // DataView read per element (ten times slower).
  switch (dtype) {
    case 'float32':
      if (bytes.byteOffset % 4 === 0) out.set(new Float32Array(bytes.buffer, bytes.byteOffset, size));
      else new Uint8Array(out.buffer).set(bytes.subarray(0, 4 * size));
      break;
    case 'float64': {
      const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice(0, 8 * size); // slice: a fresh, aligned copy
      out.set(new Float64Array(aligned.buffer, aligned.byteOffset, size));
      break;
    }
    case 'float16': {
      const table = float16Table();
      for (let i = 0; i < size; i++) out[i] = table[view.getUint16(2 * i, true)];
      break;
    }
    case 'bfloat16':
      for (let i = 0; i < size; i++) out[i] = bfloat16ToFloat32(view.getUint16(2 * i, true));
      break;
  }
  return out;
}

let halfTable: Float32Array | undefined;
/** All 65536 float16 values widened once (256 KiB): a lookup beats bit twiddling per element. */
function float16Table(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = float16ToFloat32(h);
  }
  return halfTable;
}

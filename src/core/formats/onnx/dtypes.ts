// ONNX TensorProto.DataType <-> our DType, element sizes, and the float16/bfloat16 conversions
// every reader and writer needs.
import type { DType } from '../../model/types';
import { TensorProto_DataType as DT } from './gen/onnx_pb';

const byCode: Record<number, DType> = {
  [DT.FLOAT]: 'float32', [DT.UINT8]: 'uint8', [DT.INT8]: 'int8', [DT.UINT16]: 'uint16',
  [DT.INT16]: 'int16', [DT.INT32]: 'int32', [DT.INT64]: 'int64', [DT.STRING]: 'string',
  [DT.BOOL]: 'bool', [DT.FLOAT16]: 'float16', [DT.DOUBLE]: 'float64', [DT.UINT32]: 'uint32',
  [DT.UINT64]: 'uint64', [DT.COMPLEX64]: 'complex64', [DT.COMPLEX128]: 'complex128',
  [DT.BFLOAT16]: 'bfloat16', [DT.FLOAT8E4M3FN]: 'float8e4m3fn', [DT.FLOAT8E4M3FNUZ]: 'float8e4m3fnuz',
  [DT.FLOAT8E5M2]: 'float8e5m2', [DT.FLOAT8E5M2FNUZ]: 'float8e5m2fnuz', [DT.UINT4]: 'uint4',
  [DT.INT4]: 'int4', [DT.FLOAT4E2M1]: 'float4e2m1',
};
const byName = new Map<DType, number>(Object.entries(byCode).map(([k, v]) => [v, Number(k)]));

export function dtypeOf(code: number): DType {
  return byCode[code] ?? 'unknown';
}

export function dataTypeCode(dtype: DType): number {
  const code = byName.get(dtype);
  if (code === undefined) throw new Error(`no ONNX data type for '${dtype}'`);
  return code;
}

/** Bits per element as stored in raw_data (0 for strings and unknown types). */
export function elementBits(dtype: DType): number {
  switch (dtype) {
    case 'float64': case 'int64': case 'uint64': case 'complex64': return 64;
    case 'complex128': return 128;
    case 'float32': case 'int32': case 'uint32': return 32;
    case 'float16': case 'bfloat16': case 'int16': case 'uint16': return 16;
    case 'int8': case 'uint8': case 'bool':
    case 'float8e4m3fn': case 'float8e4m3fnuz': case 'float8e5m2': case 'float8e5m2fnuz': return 8;
    case 'int4': case 'uint4': case 'float4e2m1': return 4;
    default: return 0;
  }
}

/** Bytes that `size` elements occupy in raw_data (4-bit types pack two per byte). */
export function rawByteLength(dtype: DType, size: number): number {
  return Math.ceil((size * elementBits(dtype)) / 8);
}

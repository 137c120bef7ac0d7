// The globals a torch.save'd state dict or training checkpoint may name, each interpreted by our
// own code (the list torch.load(weights_only=True) allows, for the parts a state dict uses).
// Everything else is refused by name. A tensor is only described here (storage, offset, size,
// stride); its bytes are read later, lazily (read.ts).
import type { DType } from '../../model/types';
import { PickleRefused, type PyBuildable, type PyCallable } from './pickle';

/** A storage the pickle refers to by persistent id: the zip entry `data/<key>`. */
export interface StorageRef {
  key: string;
  dtype: DType;
  /** Elements, as the pickle declares them. */
  numel: number;
  location: string;
}

/** A tensor as torch._utils._rebuild_tensor_v2 describes it (offset and strides in elements). */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  get dtype(): DType {
    return this.storage.dtype;
  }
}

/** The placeholder for a storage type named in a persistent id (`torch.FloatStorage`). */
export class StorageType {
  constructor(readonly qualname: string, readonly dtype: DType) {}
}

/** torch dtypes (torch.float16 …) and other values that are only names. */
export class Symbolic {
  constructor(readonly qualname: string) {}
}

const STORAGE_DTYPES: Record<string, DType> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', ComplexFloatStorage: 'complex64', ComplexDoubleStorage: 'complex128',
  UntypedStorage: 'uint8',
};

const TORCH_DTYPES = new Set([
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16', 'int64', 'long', 'int32', 'int', 'int16', 'short',
  'int8', 'uint8', 'bool', 'complex64', 'cfloat', 'complex128', 'cdouble', 'strided', 'sparse_coo', 'preserve_format', 'contiguous_format',
]);

const int = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new PickleRefused('tensor', `a tensor's ${what} is not a non-negative integer.`);
  return v;
};
const ints = (v: unknown, what: string): number[] => {
  if (!Array.isArray(v)) throw new PickleRefused('tensor', `a tensor's ${what} is not a tuple.`);
  return v.map((x) => int(x, what));
};

function fn(qualname: string, call: (args: unknown[]) => unknown): PyCallable {
  return { qualname, call };
}

function rebuildTensor(qualname: string): PyCallable {
  return fn(qualname, (args) => {
    const [storage, offset, size, stride] = args;
    if (!(storage && typeof storage === 'object' && 'key' in storage)) throw new PickleRefused(qualname, `${qualname} without a storage.`);
    return new TensorRef(storage as StorageRef, int(offset, 'storage offset'), ints(size, 'size'), ints(stride, 'stride'));
  });
}

/** An OrderedDict: a Map that accepts BUILD (state_dict() sets `_metadata` on it, which we drop). */
class OrderedDict extends Map<unknown, unknown> implements PyBuildable {
  setState(): void {}
}

/** A numpy dtype (for numpy scalars in training checkpoints: `best_acc = np.float64(…)`). */
class NumpyDtype implements PyBuildable {
  byteOrder = '<';
  constructor(readonly code: string) {}
  setState(state: unknown): void {
    if (Array.isArray(state) && typeof state[1] === 'string') this.byteOrder = state[1];
  }
}

function numpyScalar(args: unknown[]): unknown {
  const [dtype, raw] = args;
  if (!(dtype instanceof NumpyDtype) || !(raw instanceof Uint8Array)) throw new PickleRefused('numpy scalar', 'a numpy scalar without a dtype and bytes.');
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const little = dtype.byteOrder !== '>';
  switch (dtype.code) {
    case 'f8': return view.getFloat64(0, little);
    case 'f4': return view.getFloat32(0, little);
    case 'i8': return Number(view.getBigInt64(0, little));
    case 'i4': return view.getInt32(0, little);
    case 'u8': return Number(view.getBigUint64(0, little));
    case 'u4': return view.getUint32(0, little);
    case 'b1': return raw[0] !== 0;
    default: return new Symbolic(`numpy.${dtype.code}`);
  }
}

/** The allowed globals by `module.name`; pickle.ts calls this for GLOBAL and STACK_GLOBAL. */
export function resolveTorchGlobal(module: string, name: string): unknown {
  const qualname = `${module}.${name}`;
  switch (qualname) {
    case 'collections.OrderedDict':
      return fn(qualname, (args) => {
        const d = new OrderedDict();
        if (Array.isArray(args[0])) for (const pair of args[0]) if (Array.isArray(pair)) d.set(pair[0], pair[1]);
        return d;
      });
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2':
      return rebuildTensor(qualname);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return fn(qualname, (args) => args[0]);
    case 'torch._tensor._rebuild_from_type_v2':
      // (func, type, args, state): a plain Tensor or Parameter rebuilt by an allowed func.
      return fn(qualname, (args) => {
        const [func, type, inner] = args;
        if (!(type instanceof Symbolic) || !['torch.Tensor', 'torch.nn.parameter.Parameter'].includes(type.qualname)) {
          throw new PickleRefused(qualname, `${qualname} of a tensor subclass, which is not a plain tensor.`);
        }
        if (!func || typeof (func as PyCallable).call !== 'function' || !Array.isArray(inner)) throw new PickleRefused(qualname, `${qualname} without a rebuild function.`);
        return (func as PyCallable).call(inner);
      });
    case 'torch.Tensor':
      return new Symbolic(qualname);
    case 'torch.nn.parameter.Parameter':
      // The type token of _rebuild_from_type_v2, and Parameter(data, requires_grad) when reduced.
      return Object.assign(new Symbolic(qualname), { call: (args: unknown[]) => args[0] });
    case 'torch.Size':
      return fn(qualname, (args) => (Array.isArray(args[0]) ? [...args[0]] : []));
    case 'torch.device':
      return fn(qualname, (args) => args.map(String).join(':'));
    case '_codecs.encode':
      // Protocol 2 writes bytes as _codecs.encode(str, 'latin1').
      return fn(qualname, (args) => {
        const [s, encoding] = args;
        if (typeof s !== 'string') throw new PickleRefused(qualname, `${qualname} of a non-string.`);
        return encoding === 'latin1' || encoding === 'latin-1' ? Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff) : new TextEncoder().encode(s);
      });
    case 'builtins.set': case '__builtin__.set': case 'builtins.frozenset': case '__builtin__.frozenset':
      return fn(qualname, (args) => new Set(Array.isArray(args[0]) ? args[0] : []));
    case 'numpy.dtype':
      return fn(qualname, (args) => new NumpyDtype(String(args[0])));
    case 'numpy.core.multiarray.scalar': case 'numpy._core.multiarray.scalar':
      return fn(qualname, numpyScalar);
  }
  if (module === 'torch' && STORAGE_DTYPES[name]) return new StorageType(qualname, STORAGE_DTYPES[name]);
  if ((module === 'torch.storage' || module === 'torch') && name === 'UntypedStorage') return new StorageType(qualname, 'uint8');
  if (module === 'torch' && TORCH_DTYPES.has(name)) return new Symbolic(qualname);
  throw new PickleRefused(qualname, `the pickle imports ${qualname}, which is not one of the tensor-rebuild functions a state dict needs.`);
}

/** persistent_load for torch.save's ('storage', storage_type, key, location, numel) ids. */
export function torchPersistentLoad(pid: unknown): StorageRef {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof StorageType)) {
    throw new PickleRefused('persistent id', `the pickle refers to an object by persistent id ${JSON.stringify(Array.isArray(pid) ? pid[0] : pid)} that is not a tensor storage.`);
  }
  const [, type, key, location, numel] = pid as [string, StorageType, unknown, unknown, unknown];
  return { key: String(key), dtype: type.dtype, numel: int(numel, 'storage size'), location: String(location) };
}

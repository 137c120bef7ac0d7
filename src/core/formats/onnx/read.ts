// Reading ONNX: one read of the file into a Buffer, one protobuf decode whose bytes fields are
// views into that Buffer (bufbuild's reader returns subarrays), tensors resolved lazily.
import { open, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { RankscopeError, throwIfCancelled } from '../../errors';
import { LazyTensor } from '../../model/tensor';
import type { DType, Layer, Model, ModelSummary, Tensor, ValueInfo } from '../../model/types';
import { dtypeOf, rawByteLength } from './dtypes';
import { type ModelProto, ModelProtoSchema, type TensorProto, TensorProto_DataLocation, type ValueInfoProto } from './gen/onnx_pb';
import { type GraphScope, tensorKeyIn, type TensorSite, tensorSites } from './graphs';
import { buildInventory } from './inventory';
import { checkExternal, dimsOf, externalDataBytes, tensorBytes } from './tensorData';
import { validateModel } from './validate';

/** Protobuf cannot address more than 2 GiB; bigger models must use external data. */
const MAX_PROTOBUF_BYTES = 2 ** 31 - 1;

/** Source folder of protos decoded by openOnnx, so a writer can find their external data. */
export const sourceDirOf = new WeakMap<ModelProto, string>();

export interface OpenOptions {
  signal?: AbortSignal;
}

/**
 * Cheap check on the first bytes: an ONNX file starts with the tag of a ModelProto field with
 * its right wire type. Writers emit fields in number order, so ir_version (field 1) comes
 * first in practice; any other ModelProto field is accepted too.
 */
export function sniffOnnx(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  // Fields 1-8 and 14: one-byte tags (1 and 5 varint, the rest length-delimited).
  if ([0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72].includes(head[0])) return true;
  // Fields 20 training_info, 25 functions, 26 configuration: two-byte tags.
  return head.length > 1 && head[1] === 0x01 && [0xa2, 0xca, 0xd2].includes(head[0]);
}

export async function openOnnx(path: string, options: OpenOptions = {}): Promise<OnnxModel> {
  const abs = resolve(path);
  let size: number;
  try {
    const s = await stat(abs);
    if (s.isDirectory()) throw new RankscopeError('BAD_ARGUMENT', `${path} is a folder, not an ONNX file.`);
    size = s.size;
  } catch (e) {
    if (e instanceof RankscopeError) throw e;
    throw new RankscopeError('NOT_FOUND', `Model file not found: ${path}`);
  }
  if (size > MAX_PROTOBUF_BYTES) {
    throw new RankscopeError('NOT_ONNX', `${path} is ${size} bytes; an ONNX protobuf cannot exceed 2 GiB.`,
      'Save large models with external data (onnx.save(..., save_as_external_data=True)).');
  }
  const bytes = await readWhole(abs, size, options.signal).catch((e: Error) => {
    if (e instanceof RankscopeError) throw e;
    throw new RankscopeError('NOT_FOUND', `Cannot read ${path}: ${e.message}`);
  });
  return openModelBytes(bytes, abs);
}

/**
 * One buffer of exactly the file's size, filled by a few large reads on the libuv pool (not
 * fs.promises.readFile, whose 512 KiB chunks make a 500 MB model take seconds); cancellable
 * between reads.
 */
async function readWhole(path: string, size: number, signal?: AbortSignal): Promise<Uint8Array> {
  const CHUNK = 64 * 2 ** 20;
  const buf = new Uint8Array(size);
  const fh = await open(path, 'r');
  try {
    let done = 0;
    while (done < size) {
      throwIfCancelled(signal);
      const { bytesRead } = await fh.read(buf, done, Math.min(CHUNK, size - done), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    await fh.close();
  }
}

/** Opens an in-memory model; `path` names it in errors and locates external data. */
export function openModelBytes(bytes: Uint8Array, path: string): OnnxModel {
  const name = basename(path);
  if (bytes.length === 0) throw new RankscopeError('NOT_ONNX', `${name} is empty, not an ONNX model.`);
  if (!sniffOnnx(bytes)) {
    throw new RankscopeError('NOT_ONNX', `${name} is not an ONNX model (unexpected first byte 0x${bytes[0].toString(16).padStart(2, '0')}).`,
      'Export the model to ONNX first (torch.onnx.export).');
  }
  // A plain Uint8Array view (not a Buffer): decoded bytes fields become subarrays of it, and
  // their .slice() must copy (Buffer.prototype.slice would alias the file buffer).
  const plain = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let proto: ModelProto;
  try {
    proto = fromBinary(ModelProtoSchema, plain);
  } catch (e) {
    throw new RankscopeError('CORRUPT', `${name} is truncated or corrupt: ${(e as Error).message}.`,
      'Re-export or re-download the model.');
  }
  if (!proto.graph || proto.irVersion <= 0n || proto.irVersion > 100n) {
    throw new RankscopeError('NOT_ONNX', `${name} is not an ONNX model (no graph or no IR version).`);
  }
  // Structure first, before any work (a cycle, a dangling input or a lying tensor is refused here).
  const scopes = validateModel(proto, name);
  return new OnnxModel(proto, path, bytes.length, scopes);
}

export class OnnxModel implements Model {
  readonly dir: string;
  readonly summary: ModelSummary;
  readonly layers: Layer[];
  /** Every graph of the model (main graph first, then subgraphs) with its names. */
  readonly scopes: GraphScope[];
  /** Every weight-like tensor: initializers, Constant outputs, ConstantOfShape fills, subgraphs included. */
  private readonly tensors = new Map<string, LazyTensor>();
  private readonly sites = new Map<string, TensorSite>();

  constructor(readonly proto: ModelProto, readonly path: string, fileSize: number, scopes?: GraphScope[]) {
    this.dir = dirname(resolve(path));
    sourceDirOf.set(proto, this.dir);
    const graph = proto.graph!;
    const name = basename(path);
    this.scopes = scopes ?? validateModel(proto, name);
    const sites = tensorSites(this.scopes);
    for (const site of sites) {
      this.sites.set(site.key, site);
      if (site.tensor?.dataLocation === TensorProto_DataLocation.EXTERNAL) checkExternal(site.tensor, this.dir, name); // fail at open, not mid-analysis
      if (site.tensor) this.addTensor(site.key, site.tensor);
    }
    // Fills last: their shape may come from a Constant defined further down.
    for (const site of sites) if (!site.tensor && site.node) this.addFill(site, name);

    this.layers = buildInventory(proto, this, this.scopes);
    let totalParams = 0;
    for (const t of this.tensors.values()) if (t.dtype !== 'string') totalParams += t.size;
    const factorizableParams = this.layers.filter((l) => l.factorizable).reduce((a, l) => a + l.params, 0);
    this.summary = {
      path: this.path,
      fileSize: fileSize + externalDataBytes(sites.flatMap((s) => (s.tensor ? [s.tensor] : [])), this.dir),
      format: 'onnx',
      irVersion: Number(proto.irVersion),
      opsets: proto.opsetImport.map((o) => ({ domain: o.domain || 'ai.onnx', version: Number(o.version) })),
      producer: { name: proto.producerName, version: proto.producerVersion },
      inputs: graph.input.filter((i) => !this.tensors.has(i.name)).map(valueInfo),
      outputs: graph.output.map(valueInfo),
      totalParams,
      factorizableParams,
      metadata: Object.fromEntries(proto.metadataProps.map((p) => [p.key, p.value])),
    };
  }

  tensor(name: string): Tensor | undefined {
    return this.tensors.get(name);
  }

  /** Keys of every weight-like tensor (initializers and constant-node outputs, subgraphs included). */
  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }

  /** Where the tensor `key` is defined: its graph, its local name, its initializer or node. */
  site(key: string): TensorSite | undefined {
    return this.sites.get(key);
  }

  /** Raw bytes of a TensorProto of this model, external data included (a view when in-file). */
  bytesOf(t: TensorProto): Uint8Array {
    return tensorBytes(t, this.dir, basename(this.path));
  }

  private addTensor(key: string, t: TensorProto): void {
    this.tensors.set(key, new LazyTensor(key, dtypeOf(t.dataType), dimsOf(t), () => this.bytesOf(t)));
  }

  /** Weights replaced by a fill (ONNX's light models): a ConstantOfShape of a constant int64 shape. */
  private addFill(site: TensorSite, file: string): void {
    const node = site.node!;
    const shapeKey = node.input[0] ? tensorKeyIn(site.scope, node.input[0]) : undefined;
    const shapeTensor = shapeKey ? this.tensors.get(shapeKey) : undefined;
    if (!shapeTensor || shapeTensor.dtype !== 'int64' || shapeTensor.shape.length !== 1) return;
    const b = shapeTensor.bytes();
    const shape = Array.from(new BigInt64Array(b.slice().buffer, 0, shapeTensor.size), Number);
    const size = shape.reduce((a, d) => a * d, 1);
    if (shape.some((d) => d < 0) || !Number.isSafeInteger(size)) {
      throw new RankscopeError('CORRUPT', `${file} is not a valid ONNX model: ConstantOfShape '${node.name || site.local}' in ${site.scope.where} fills the shape [${shape.join(', ')}].`,
        'Re-export the model, or fix the tool that wrote it.');
    }
    const value = node.attribute.find((a) => a.name === 'value')?.t;
    const dtype: DType = value ? dtypeOf(value.dataType) : 'float32';
    const fill = value ? this.bytesOf(value) : new Uint8Array(4);
    this.tensors.set(site.key, new LazyTensor(site.key, dtype, shape, () => {
      const bytes = new Uint8Array(rawByteLength(dtype, size));
      if (bytes.length === 0 || fill.length === 0) return bytes;
      bytes.set(fill.subarray(0, Math.min(fill.length, bytes.length)));
      for (let n = fill.length; n < bytes.length; n *= 2) bytes.copyWithin(n, 0, Math.min(n, bytes.length - n));
      return bytes;
    }));
  }
}

function valueInfo(v: ValueInfoProto): ValueInfo {
  const tt = v.type?.value.case === 'tensorType' ? v.type.value.value : undefined;
  return {
    name: v.name,
    dtype: tt ? dtypeOf(tt.elemType) : 'unknown',
    shape: tt?.shape ? tt.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : d.value.case === 'dimParam' ? d.value.value : null)) : null,
  };
}

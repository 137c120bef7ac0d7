// Fine-tuned values back into the compressed ONNX: a copy of the model in which ONLY the values
// of initializers named in the worker's best.safetensors change (same names, dtypes, shapes;
// nodes, metadata and every other initializer untouched), written atomically next to the input.
import { basename, resolve } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { RankscopeError } from '../core/errors';
import { openOnnxModel } from '../core/formats';
import { checkOutputPath } from '../core/fs/atomicWrite';
import { dtypeOf, ModelProtoSchema, TensorProto_DataLocation, TensorProtoSchema, writeOnnxAtomic, GraphProtoSchema } from '../core/formats/onnx';
import { nextFreeOutputPath } from '../core/outputPath';
import { readSafetensors } from './safetensors';

/** `<dir>/<stem>.finetuned.onnx` next to the input, or `-2`, `-3`, … when taken: never an earlier result. */
export function defaultFinetunedPath(modelPath: string): string {
  return nextFreeOutputPath(modelPath, 'finetuned');
}

export interface WriteBackResult {
  path: string;
  /** Initializers whose values were replaced. */
  replaced: number;
}

export async function writeBack(modelPath: string, weightsPath: string, outPath: string, signal?: AbortSignal): Promise<WriteBackResult> {
  checkOutputPath(outPath, { inputs: [modelPath] });
  const model = await openOnnxModel(modelPath, { signal });
  const trained = await readSafetensors(weightsPath);
  const graph = model.proto.graph!;
  const known = new Set(graph.initializer.map((t) => t.name));
  const stray = [...trained.keys()].filter((k) => !known.has(k));
  if (stray.length) {
    throw new RankscopeError('PLAN_MISMATCH', `${basename(weightsPath)} holds tensors that ${basename(modelPath)} does not have: ${stray.slice(0, 5).join(', ')}${stray.length > 5 ? ', …' : ''}.`,
      'Write back into the model the worker was started on.');
  }
  let replaced = 0;
  const initializer = graph.initializer.map((t) => {
    const v = trained.get(t.name);
    if (!v) return t;
    const dtype = dtypeOf(t.dataType);
    const shape = t.dims.map(Number);
    if (v.dtype !== dtype || v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i])) {
      throw new RankscopeError('PLAN_MISMATCH', `Tensor '${t.name}': trained value is ${v.dtype} [${v.shape}] but the model holds ${dtype} [${shape}].`,
        'Write back into the model the worker was started on.');
    }
    replaced++;
    // Same TensorProto (name, dims, type, doc), values as raw_data; copy the bytes off the file buffer.
    return create(TensorProtoSchema, {
      ...t, rawData: v.bytes.slice(), floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [],
      dataLocation: TensorProto_DataLocation.DEFAULT, externalData: [],
    });
  });
  const proto = create(ModelProtoSchema, { ...model.proto, graph: create(GraphProtoSchema, { ...graph, initializer }) });
  await writeOnnxAtomic(outPath, proto, { sourceDir: model.dir, inputs: [modelPath], signal });
  return { path: resolve(outPath), replaced };
}

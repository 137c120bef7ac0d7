// ONNX → what the Python worker runs: the graph as JSON (nodes with their attributes, inputs,
// outputs, opset, metadata) and every initializer and Constant tensor in one .safetensors file.
// ONNX is parsed in one place (TypeScript, by formats/onnx); the worker then needs only torch
// and numpy — no onnx package, no protobuf. Format `rankscope-graph` v1:
//   { format, version, source, opset, inputs: ValueInfo[], outputs: ValueInfo[],
//     initializers: string[] (safetensors keys, graph order), weights: "<file>.safetensors",
//     nodes: [{ name, op, domain, inputs, outputs, attrs: { name: number | string | number[] |
//       string[] | { tensor: key } | { graph: true } } }], metadata: { key: value },
//     lowrankFactors: string[] (the A/B tensors of the factorized layers, from the inventory) }
// Empty strings in `inputs` mark absent optional inputs, as in ONNX.
import { join } from 'node:path';
import { RankscopeError, throwIfCancelled } from '../core/errors';
import { ensureOutputFolder, writeFileAtomic } from '../core/fs/atomicWrite';
import { type AttributeProto, AttributeProto_AttributeType as AT, dtypeOf, type OnnxModel, type TensorProto } from '../core/formats/onnx';
import type { ValueInfo } from '../core/model/types';
import { safetensorsCode, type SafeTensor, writeSafetensors } from './safetensors';

export const GRAPH_FORMAT = 'rankscope-graph';

export type AttrValue = number | string | number[] | string[] | { tensor: string } | { graph: true };

export interface GraphNode {
  name: string;
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface GraphJson {
  format: typeof GRAPH_FORMAT;
  version: 1;
  source: string;
  opset: number;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: string[];
  weights: string;
  nodes: GraphNode[];
  metadata: Record<string, string>;
  /** Factor tensors of the layers Rankscope factorized (trained under trainable = 'lowrank'); the
   *  worker takes them from here rather than parsing the metadata again. */
  lowrankFactors: string[];
}

export interface ExportedGraph {
  /** Path of `<name>.graph.json`. */
  graph: string;
  /** Path of `<name>.safetensors`. */
  weights: string;
  json: GraphJson;
}

const decoder = new TextDecoder();

function tensorOf(model: OnnxModel, t: TensorProto, key: string): SafeTensor {
  const dtype = dtypeOf(t.dataType);
  if (!safetensorsCode(dtype)) {
    throw new RankscopeError('UNSUPPORTED', `Tensor '${key}' of ${model.path} has dtype ${dtype}, which the fine-tuning worker cannot take.`);
  }
  return { dtype, shape: t.dims.map(Number), bytes: model.bytesOf(t) };
}

function attrValue(a: AttributeProto, key: () => string, tensors: Map<string, SafeTensor>, model: OnnxModel): AttrValue {
  switch (a.type) {
    case AT.FLOAT: return a.f;
    case AT.INT: return Number(a.i);
    case AT.STRING: return decoder.decode(a.s);
    case AT.FLOATS: return [...a.floats];
    case AT.INTS: return a.ints.map(Number);
    case AT.STRINGS: return a.strings.map((s) => decoder.decode(s));
    case AT.TENSOR: {
      const k = key();
      tensors.set(k, tensorOf(model, a.t!, k));
      return { tensor: k };
    }
    default: return { graph: true }; // subgraphs, sparse tensors: the ops using them are unsupported
  }
}

export function graphJson(model: OnnxModel, weightsFile: string, tensors: Map<string, SafeTensor>): GraphJson {
  const proto = model.proto;
  const g = proto.graph!;
  const initializers: string[] = [];
  for (const t of g.initializer) {
    tensors.set(t.name, tensorOf(model, t, t.name));
    initializers.push(t.name);
  }
  const nodes = g.node.map((n, i): GraphNode => ({
    name: n.name || `${n.opType}_${i}`,
    op: n.opType,
    domain: n.domain,
    inputs: [...n.input],
    outputs: [...n.output],
    attrs: Object.fromEntries(n.attribute.map((a) => [a.name, attrValue(a, () => `${n.output[0] ?? `node${i}`}::${a.name}`, tensors, model)])),
  }));
  const opset = proto.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  return {
    format: GRAPH_FORMAT,
    version: 1,
    source: model.path,
    opset: opset ? Number(opset.version) : 17,
    inputs: model.summary.inputs,
    outputs: model.summary.outputs,
    initializers,
    weights: weightsFile,
    nodes,
    metadata: model.summary.metadata,
    lowrankFactors: model.layers.flatMap((l) => l.compressed?.factors ?? []),
  };
}

/** Writes `<dir>/<name>.graph.json` and `<dir>/<name>.safetensors`. */
export async function exportGraph(model: OnnxModel, dir: string, name = 'model', signal?: AbortSignal): Promise<ExportedGraph> {
  ensureOutputFolder(dir);
  const tensors = new Map<string, SafeTensor>();
  const weightsFile = `${name}.safetensors`;
  const json = graphJson(model, weightsFile, tensors);
  throwIfCancelled(signal);
  const weights = join(dir, weightsFile);
  await writeSafetensors(weights, tensors, undefined, { signal });
  const graph = join(dir, `${name}.graph.json`);
  await writeFileAtomic(graph, JSON.stringify(json), { signal, durable: false });
  return { graph, weights, json };
}

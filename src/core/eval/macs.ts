// Multiply-accumulates (MACs) per sample of every weight layer, from the shapes the model really
// runs with: one ONNX Runtime run of a copy of the model whose graph also outputs each weight
// node's activation input and output (calibration.ts `modelWithOutputs`), on one sample (the
// first of the data when given, else zeros in the declared input shape with the batch at 1).
// Per node, with Y its output and X its activation input:
//   MatMul X·W: prod(Y) · X[-1]        MatMul W·X: prod(Y) · X[-2]
//   Gemm: prod(Y) · K (K = the contracted dim of the activation, transA/transB respected)
//   Conv: prod(Y) · C_in/groups · ∏kernel          Gather (a lookup): 0
// divided by the batch of the run. A layer's MACs sum over every node using its weight (for a
// factorized layer: the nodes using its factors A and B). The model's MACs are the sum over its
// weight layers; products of two activations (attention scores), bias adds, normalizations and
// element-wise ops are not counted.
import { RankscopeError } from '../errors';
import { attrInt, GraphEditor } from '../compress/graph';
import type { Plan } from '../compress/plan';
import type { OnnxModel } from '../formats/onnx';
import type { Layer } from '../model/types';
import { modelWithOutputs } from './calibration';
import type { Dataset } from './dataset';
import { fixedBatchSize } from './evaluate';
import type { OrtRunner, TensorInfo, WireTensor } from './runner';

export interface MacsUse {
  /** The node's name (or `OpType(output)`). */
  node: string;
  op: string;
  /** The node's output dims in the run (batch included). */
  output: number[];
  /** MACs per sample of this node. */
  macs: number;
}

export interface LayerMacs {
  layer: string;
  /** MACs per sample over every use of the layer's weight; null when a use could not be measured (`note` says why). */
  macs: number | null;
  /** Times per sample the layer's matrix is applied: MACs ÷ weight parameters (Gather: indices looked up per sample). */
  applications: number | null;
  uses: MacsUse[];
  note?: string;
}

export interface MacsProfile {
  ok: true;
  /** Sum of the measured layers' MACs per sample (layers with macs null left out, named in `notes`). */
  total: number;
  layers: LayerMacs[];
  /** Batch of the run the figures are divided by. */
  batch: number;
  /** Where the sample came from and the input dims it had. */
  input: { source: 'data' | 'declared'; shapes: Record<string, number[]> };
  notes: string[];
}

/** MACs could not be measured (no graph, an unresolvable input shape, the run failed): the reason, in words. */
export interface MacsUnavailable {
  ok: false;
  reason: string;
}

export type MacsResult = MacsProfile | MacsUnavailable;

export interface MacsOptions {
  runner: OrtRunner;
  /** The data (opened against the model's inputs): its first sample resolves symbolic dims. */
  dataset?: Dataset;
  signal?: AbortSignal;
}

interface Site {
  layer: Layer;
  node: string;
  op: string;
  /** The node's first output and its activation input (null for a Gather's data side). */
  output: string;
  activation: string;
  /** Contracted size of one output element: from the activation's dims. */
  contracted: (x: number[]) => number;
  lookup: boolean;
}

/** Measures every layer's MACs per sample with one ONNX Runtime run (see the file comment). */
export async function measureMacs(model: OnnxModel, options: MacsOptions): Promise<MacsResult> {
  const editor = new GraphEditor(model.proto);
  const sites: Site[] = [];
  const notes = new Map<string, string>();
  for (const layer of model.layers) {
    for (const weight of layer.compressed ? layer.compressed.factors : [layer.weight]) {
      for (const use of editor.uses(weight).uses) {
        if (use.scope.parent) { notes.set(layer.name, `used inside a subgraph (${use.scope.where}), whose shapes one run does not expose`); continue; }
        const site = siteOf(layer, use.node, use.input, model);
        if (typeof site === 'string') notes.set(layer.name, site);
        else sites.push(site);
      }
    }
  }
  const bytes = modelWithOutputs(model, sites.flatMap((s) => [s.output, s.activation]));
  let session;
  try {
    session = await options.runner.open(bytes, `${model.summary.path} (shape run)`);
  } catch (e) {
    return { ok: false, reason: `ONNX Runtime could not load the model: ${(e as Error).message}` };
  }
  try {
    // Inputs fixing different first dimensions have no common batch: the figures are then per run.
    let fixed: number | undefined;
    let perRun = false;
    try { fixed = fixedBatchSize(session); } catch { perRun = true; }
    const sample = await sampleFeeds(session.inputs, perRun ? undefined : options.dataset, fixed, options.signal);
    if ('reason' in sample) return { ok: false, reason: sample.reason };
    let outputs: Record<string, WireTensor>;
    try {
      outputs = await session.run(sample.feeds);
    } catch (e) {
      if (e instanceof RankscopeError && e.code === 'CANCELLED') throw e;
      return { ok: false, reason: `the run on a ${sample.source === 'data' ? 'data sample' : 'sample in the declared input shape'} failed: ${(e as Error).message}` };
    }
    const dims = (name: string) => outputs[name]?.dims ?? sample.feeds[name]?.dims;
    const layers = model.layers.map((layer): LayerMacs => {
      const uses: MacsUse[] = [];
      let lookups = 0;
      let note = notes.get(layer.name);
      for (const s of sites.filter((x) => x.layer === layer)) {
        const y = dims(s.output);
        const x = dims(s.activation);
        if (!y || !x) { note ??= `the run did not give the shapes of ${s.node}`; continue; }
        if (s.lookup) lookups += prod(x) / sample.batch;
        uses.push({ node: s.node, op: s.op, output: y, macs: s.lookup ? 0 : (prod(y) * s.contracted(x)) / sample.batch });
      }
      if (note || uses.length === 0) return { layer: layer.name, macs: null, applications: null, uses, note: note ?? 'no node uses its weight' };
      const macs = uses.reduce((a, u) => a + u.macs, 0);
      return { layer: layer.name, macs, applications: layer.op === 'Gather' ? lookups : layer.params ? macs / layer.params : 0, uses };
    });
    const total = layers.reduce((a, l) => a + (l.macs ?? 0), 0);
    return {
      ok: true, total, layers, batch: sample.batch, input: { source: sample.source, shapes: Object.fromEntries(Object.entries(sample.feeds).map(([k, v]) => [k, v.dims])) },
      notes: [
        ...(perRun ? ['The inputs fix different first dimensions (no common batch): the figures are per run of the declared shapes.'] : []),
        ...layers.filter((l) => l.note).map((l) => `${l.layer}: not counted (${l.note}).`),
      ],
    };
  } finally {
    await session.close().catch(() => undefined);
  }
}

function siteOf(layer: Layer, node: GraphEditor['graph']['node'][number], input: number, model: OnnxModel): Site | string {
  const base = { layer, node: node.name || `${node.opType}(${node.output[0]})`, op: node.opType, output: node.output[0], lookup: false };
  const last = (x: number[], from: number) => x[Math.max(0, x.length - from)];
  switch (node.opType) {
    case 'MatMul':
      return input === 1 ? { ...base, activation: node.input[0], contracted: (x) => last(x, 1) } : { ...base, activation: node.input[1], contracted: (x) => last(x, 2) };
    case 'Gemm': {
      const transA = attrInt(node, 'transA', 0);
      const transB = attrInt(node, 'transB', 0);
      if (input === 1) return { ...base, activation: node.input[0], contracted: (x) => x[transA ? 0 : 1] };
      if (input === 0) return { ...base, activation: node.input[1], contracted: (x) => x[transB ? 1 : 0] };
      return 'its weight is a Gemm bias';
    }
    case 'Conv': {
      if (input !== 1) return `its weight is input ${input} of Conv ${base.node}`;
      const kernel = (model.tensor(node.input[1])?.shape ?? layer.tensorShape).slice(2);
      const groups = attrInt(node, 'group', 1);
      return { ...base, activation: node.input[0], contracted: (x) => (x[1] / groups) * prod(kernel) };
    }
    case 'Gather':
      return input === 0 ? { ...base, activation: node.input[1], contracted: () => 0, lookup: true } : 'its weight is a Gather index';
    default:
      return `its weight is used by ${node.opType}, which the MAC count does not read`;
  }
}

const prod = (dims: readonly number[]) => dims.reduce((a, d) => a * d, 1);

/**
 * One sample for the shape run: the data's first (batch of the model's fixed size, else 1), or
 * zeros in the declared shape with the batch axis at 1; a symbolic axis past the batch without
 * data is the reason MACs cannot be measured.
 */
export async function sampleFeeds(inputs: TensorInfo[], dataset: Dataset | undefined, fixed: number | undefined, signal?: AbortSignal):
  Promise<{ feeds: Record<string, WireTensor>; batch: number; source: 'data' | 'declared' } | { reason: string }> {
  const batch = fixed ?? 1;
  if (dataset) {
    if (dataset.size < batch) return { reason: `the model takes batches of exactly ${batch}, but the data has ${dataset.size} samples` };
    return { feeds: (await dataset.batch(0, batch, signal)).feeds, batch, source: 'data' };
  }
  const feeds: Record<string, WireTensor> = {};
  for (const input of inputs) {
    const dims: number[] = [];
    for (const [axis, d] of input.shape.entries()) {
      if (typeof d === 'number' && d >= 0) dims.push(d);
      else if (axis === 0) dims.push(batch);
      else return { reason: `input '${input.name}' has a ${typeof d === 'string' ? `symbolic dimension '${d}'` : 'dimension of unknown size'} at axis ${axis}; give data (--data or a task file) so the shapes the model runs with are known` };
    }
    const make = ZEROS[input.type];
    if (!make) return { reason: `input '${input.name}' is of type ${input.type}, for which no sample can be made; give data (--data or a task file)` };
    feeds[input.name] = { type: input.type, dims, data: make(prod(dims)) };
  }
  return { feeds, batch, source: 'declared' };
}

const ZEROS: Record<string, (n: number) => WireTensor['data']> = {
  float32: (n) => new Float32Array(n), float64: (n) => new Float64Array(n), float16: (n) => new Uint16Array(n),
  int64: (n) => new BigInt64Array(n), int32: (n) => new Int32Array(n), int16: (n) => new Int16Array(n),
  int8: (n) => new Int8Array(n), uint8: (n) => new Uint8Array(n), bool: (n) => new Uint8Array(n),
};

/**
 * The MACs per sample of `model` once `plan` is applied, from the measured profile: each planned
 * layer's applications × its factors' parameters (Gather: lookups × k × width, the MatMul after
 * the factor lookup); every other layer keeps what it measured. Exact for the factor pairs the
 * rewrite writes (both factors run at the original's output positions); the tests check it
 * against a measured compressed file.
 */
export function planMacs(profile: MacsProfile, layers: readonly Layer[], plan: Pick<Plan, 'layers'>): number {
  const planned = new Map(plan.layers.filter((p) => !p.skipped).map((p) => [p.layer, p]));
  let total = 0;
  for (const m of profile.layers) {
    const p = planned.get(m.layer);
    const layer = layers.find((l) => l.name === m.layer);
    if (!p || !layer || m.applications === null) { total += m.macs ?? 0; continue; }
    total += layer.op === 'Gather' ? m.applications * p.k * layer.shape[1] : m.applications * p.paramsAfter;
  }
  return total;
}

/** The profile's MACs by layer name (null for a layer not measured). */
export function macsByLayer(profile: MacsResult | undefined): Map<string, number | null> {
  return new Map(profile?.ok ? profile.layers.map((l) => [l.layer, l.macs]) : []);
}

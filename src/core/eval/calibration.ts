// The calibration pass for whitened factorization (compress/whitened.ts): a seeded subset of the
// user's data runs through a copy of the model (in memory) whose graph also outputs every selected
// layer's input activation; ONNX Runtime's worker thread folds each activation into the layer's
// input Gram XᵀX in float64 (gramAccumulator.ts) and drops it, so memory holds the Grams, one
// batch and nothing else; Grams that would not fit `maxGramBytes` together take several passes.
// Progress per batch, cancellable between batches, cached on disk by model hash + data hash +
// sample selection + the activations asked for.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { RankscopeError, throwIfCancelled } from '../errors';
import { attr, attrInt, attrInts, GraphEditor } from '../compress/graph';
import type { LayerGram } from '../compress/whitened';
import { encodeOnnx, ValueInfoProtoSchema, type OnnxModel } from '../formats/onnx';
import { writeFileAtomic } from '../fs/atomicWrite';
import type { Layer } from '../model/types';
import { hashFileContent } from './cache';
import { loadDataset, type Dataset, type DatasetSpec } from './dataset';
import { fixedBatchSize } from './evaluate';
import type { ActivationSpec, ConvGeometry, FoldedGram } from './gramAccumulator';
import { OrtRunner, type OrtSession, type WireTensor } from './runner';
import type { ExecutionProvider } from './runnerProtocol';

export const DEFAULT_CALIBRATION_SAMPLES = 256;
const CACHE_VERSION = 1;

export interface CalibrationOptions {
  /** Samples drawn from the data (seeded, without replacement); default 256, all when fewer. */
  samples?: number;
  seed?: number;
  batchSize?: number;
  /** Folder of the calibration cache; none = no cache. */
  cacheDir?: string;
  /** Bytes of Grams folded in one pass over the data (default 1 GiB); more take several passes. */
  maxGramBytes?: number;
  /** Run on this runner (else one is made and disposed). */
  runner?: OrtRunner;
  ep?: ExecutionProvider;
  threads?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, message: string) => void;
}

export interface Calibration {
  /** Identifies model + data + selection + activations: the calibration hash recorded in the model. */
  key: string;
  modelHash: string;
  dataHash: string;
  data: string;
  samples: number;
  seed: number;
  seconds: number;
  cached: boolean;
  /** Per layer: its input Gram (groups), summed over every use of the weight. */
  grams: Map<string, LayerGram>;
  /** Per layer: the input activation's dims in the first batch, per use. */
  shapes: Map<string, number[][]>;
  /** Layers whose Gram cannot be full rank (fewer input vectors than its width), said in words. */
  notes: string[];
}

/** Where the CLI caches calibration Grams: $RANKSCOPE_CACHE_DIR/../calibration style, next to the spectrum cache. */
export function defaultCalibrationCacheDir(): string {
  const base = process.env.RANKSCOPE_CACHE_DIR ? join(process.env.RANKSCOPE_CACHE_DIR, '..') : join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'rankscope');
  return join(base, 'calibration');
}

interface Target {
  layer: Layer;
  side: LayerGram['side'];
  n: number;
  specIds: number[];
}

/**
 * The activations each layer's Gram is folded from: one per use of its weight (the input the
 * weight multiplies, read the way the node reads it). Layers used inside subgraphs are refused.
 */
export function calibrationTargets(model: OnnxModel, layers: Layer[]): { targets: Target[]; specs: ActivationSpec[] } {
  const editor = new GraphEditor(model.proto);
  const specs: ActivationSpec[] = [];
  const byKey = new Map<string, number>();
  const targets: Target[] = [];
  for (const layer of layers) {
    const { uses } = editor.uses(layer.weight);
    if (!uses.length) throw new RankscopeError('UNSUPPORTED', `Layer '${layer.name}': no node uses its weight, so it has no input to calibrate on.`);
    const side = layer.op === 'Gather' ? 'rows' : 'input';
    const n = side === 'rows' ? layer.shape[0] : layer.shape[1];
    const ids: number[] = [];
    for (const use of uses) {
      if (use.scope.parent) {
        throw new RankscopeError('UNSUPPORTED', `Layer '${layer.name}' is used inside a subgraph (${use.scope.where}); the calibration pass reads main-graph activations only.`,
          'Leave it out of the whitened compression with --layers, or use --method svd.');
      }
      const spec = specOf(layer, use.node, use.input, n);
      const key = JSON.stringify({ ...spec, label: undefined });
      let id = byKey.get(key);
      if (id === undefined) {
        id = specs.length;
        byKey.set(key, id);
        specs.push({ ...spec, id } as ActivationSpec);
      }
      ids.push(id);
    }
    targets.push({ layer, side, n, specIds: ids });
  }
  return { targets, specs };
}

type SpecDraft = ActivationSpec extends infer T ? (T extends ActivationSpec ? Omit<T, 'id'> : never) : never;

function specOf(layer: Layer, node: GraphEditor['graph']['node'][number], input: number, n: number): SpecDraft {
  const label = `Layer '${layer.name}'`;
  switch (node.opType) {
    case 'MatMul':
      return input === 1 ? { output: node.input[0], kind: 'rows', width: n, label } : { output: node.input[1], kind: 'cols', width: n, label };
    case 'Gemm': {
      if (input === 1) return { output: node.input[0], kind: attrInt(node, 'transA', 0) ? 'cols' : 'rows', width: n, label };
      return { output: node.input[1], kind: attrInt(node, 'transB', 0) ? 'rows' : 'cols', width: n, label };
    }
    case 'Conv': {
      const groups = attrInt(node, 'group', 1);
      const kernel = layer.tensorShape.slice(2);
      const d = kernel.length;
      const autoPad = (attr(node, 'auto_pad') ? new TextDecoder().decode(attr(node, 'auto_pad')!.s) : 'NOTSET') as ConvGeometry['autoPad'];
      const conv: ConvGeometry = {
        groups, channels: layer.tensorShape[1] * groups, kernel,
        strides: attrInts(node, 'strides') ?? new Array(d).fill(1),
        pads: attrInts(node, 'pads') ?? new Array(2 * d).fill(0),
        dilations: attrInts(node, 'dilations') ?? new Array(d).fill(1),
        autoPad: autoPad || 'NOTSET',
      };
      return { output: node.input[0], kind: 'conv', width: n, label, conv };
    }
    case 'Gather':
      return { output: node.input[1], kind: 'index', width: n, label };
    default:
      throw new RankscopeError('UNSUPPORTED', `${label}: its weight is used by ${node.opType}, which calibration does not read.`);
  }
}

/** `count` distinct indices of [0, size), drawn with a seeded generator, ascending (all when count ≥ size). */
export function selectSamples(size: number, count: number, seed: number): number[] {
  if (count >= size) return Array.from({ length: size }, (_, i) => i);
  let state = (seed >>> 0) ^ 0x9e3779b9;
  const next = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const pool = Array.from({ length: size }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(next() * (size - i));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count).sort((a, b) => a - b);
}

/** The model with every activation of `specs` added as a graph output (those not already outputs or inputs). */
export function calibrationModelBytes(model: OnnxModel, specs: ActivationSpec[]): Uint8Array {
  return modelWithOutputs(model, specs.map((s) => s.output));
}

/** The model (encoded) with the main-graph values `names` added as graph outputs (those not already outputs or inputs); the MAC count uses it too. */
export function modelWithOutputs(model: OnnxModel, names: string[]): Uint8Array {
  const graph = model.proto.graph!;
  const have = new Set([...graph.output.map((o) => o.name), ...graph.input.map((i) => i.name)]);
  const extra = [...new Set(names)].filter((name) => !have.has(name)).map((name) => create(ValueInfoProtoSchema, { name }));
  return encodeOnnx({ ...model.proto, graph: { ...graph, output: [...graph.output, ...extra] } });
}

/**
 * Calibrates `layers` of `model` on `data` (a spec, opened here against the model's inputs, or an
 * open Dataset). Every layer gets its input Gram; a NaN/Inf activation, an activation whose
 * shape does not fit its weight, or a layer calibration cannot read is an error naming the layer.
 */
export async function calibrate(model: OnnxModel, layers: Layer[], data: DatasetSpec | Dataset, options: CalibrationOptions = {}): Promise<Calibration> {
  const t0 = performance.now();
  const { signal } = options;
  const { targets, specs } = calibrationTargets(model, layers);
  const runner = options.runner ?? OrtRunner.create({ ep: options.ep, intraOpThreads: options.threads, signal });
  let dataset: Dataset | undefined;
  let session: OrtSession | undefined;
  try {
    options.onProgress?.(0, 1, 'preparing the calibration model');
    session = await runner.open(calibrationModelBytes(model, specs), `${model.summary.path} (calibration copy)`);
    dataset = 'batches' in data ? data : await loadDataset(data, session.inputs);
    const fixed = fixedBatchSize(session);
    const batchSize = fixed ?? options.batchSize ?? 32;
    const seed = options.seed ?? 0;
    let wanted = Math.min(options.samples ?? DEFAULT_CALIBRATION_SAMPLES, dataset.size);
    // A model with a fixed batch gets whole batches only: padding samples would enter the Grams.
    if (fixed) wanted = Math.max(Math.min(fixed, dataset.size), Math.floor(wanted / fixed) * fixed);
    if (fixed && wanted < fixed) throw new RankscopeError('SHAPE_MISMATCH', `the model takes batches of exactly ${fixed}, but the calibration data has ${dataset.size} samples.`);
    const indices = selectSamples(dataset.size, wanted, seed);
    const [modelHash, dataHash] = await Promise.all([hashFileContent(model.summary.path, signal), dataset.hash(signal)]);
    const key = createHash('sha256').update(JSON.stringify({
      v: CACHE_VERSION, model: modelHash, data: dataHash, indices, specs: specs.map(({ label: _label, ...s }) => s),
    })).digest('hex').slice(0, 40);
    let folded = await readCached(options.cacheDir, key, specs);
    const cached = folded !== undefined;
    if (!folded) {
      folded = [];
      const passes = splitPasses(specs, options.maxGramBytes ?? 2 ** 30);
      const total = passes.length * indices.length;
      let done = 0;
      for (const [p, pass] of passes.entries()) {
        for (let start = 0; start < indices.length; start += batchSize) {
          throwIfCancelled(signal);
          const batch = await gatherSamples(dataset, indices.slice(start, start + batchSize), signal);
          await session.fold(batch, pass);
          done += Math.min(batchSize, indices.length - start);
          options.onProgress?.(done, total, `calibration${passes.length > 1 ? ` (pass ${p + 1}/${passes.length})` : ''}: ${Math.min(start + batchSize, indices.length)}/${indices.length} samples`);
        }
        folded.push(...await session.takeGrams());
      }
      folded.sort((a, b) => a.id - b.id);
      await writeCached(options.cacheDir, key, folded, signal);
    }
    const grams = new Map<string, LayerGram>();
    const shapes = new Map<string, number[][]>();
    const notes: string[] = [];
    for (const t of targets) {
      const parts = t.specIds.map((id) => folded!.find((f) => f.id === id)!);
      const groups = parts[0].groups.map((g) => Float64Array.from(g));
      for (const part of parts.slice(1)) part.groups.forEach((g, i) => { for (let j = 0; j < g.length; j++) groups[i][j] += g[j]; });
      const vectors = parts.reduce((s, p) => s + p.vectors, 0);
      grams.set(t.layer.name, { layer: t.layer.name, side: t.side, n: t.n, groups, vectors });
      shapes.set(t.layer.name, parts.map((p) => p.shape));
      if (t.side === 'input' && vectors < t.n) {
        notes.push(`${t.layer.name}: the calibration saw ${vectors} input vectors for an input width of ${t.n}, so its Gram is rank-deficient (it will be regularized); use more samples (--calibration-samples) for a full-rank Gram.`);
      }
    }
    return {
      key, modelHash, dataHash, data: dataset.spec.data, samples: indices.length, seed, seconds: (performance.now() - t0) / 1000, cached, grams, shapes, notes,
    };
  } finally {
    await session?.close().catch(() => undefined);
    if (dataset && !('batches' in data)) await dataset.close();
    if (!options.runner) await runner.dispose();
  }
}

/** Specs grouped so that each group's Grams fit `limit` bytes (a spec larger than the limit gets a pass of its own). */
function splitPasses(specs: ActivationSpec[], limit: number): ActivationSpec[][] {
  const passes: ActivationSpec[][] = [];
  let bytes = 0;
  for (const s of specs) {
    const size = (s.kind === 'index' ? s.width : s.width * s.width * (s.kind === 'conv' ? s.conv.groups : 1)) * 12;
    if (!passes.length || bytes + size > limit) { passes.push([]); bytes = 0; }
    passes[passes.length - 1].push(s);
    bytes += size;
  }
  return passes;
}

/** The samples `indices` (ascending) as one batch: contiguous runs read together. */
async function gatherSamples(dataset: Dataset, indices: number[], signal?: AbortSignal): Promise<Record<string, WireTensor>> {
  const parts: Record<string, WireTensor>[] = [];
  for (let i = 0; i < indices.length;) {
    let j = i + 1;
    while (j < indices.length && indices[j] === indices[j - 1] + 1) j++;
    parts.push((await dataset.batch(indices[i], j - i, signal)).feeds);
    i = j;
  }
  if (parts.length === 1) return parts[0];
  const out: Record<string, WireTensor> = {};
  for (const name of Object.keys(parts[0])) {
    const first = parts[0][name];
    const length = parts.reduce((s, p) => s + p[name].data.length, 0);
    const data = new (first.data.constructor as new (n: number) => WireTensor['data'])(length);
    let at = 0;
    for (const p of parts) { (data as Float32Array).set(p[name].data as Float32Array, at); at += p[name].data.length; }
    out[name] = { type: first.type, dims: [parts.reduce((s, p) => s + p[name].dims[0], 0), ...first.dims.slice(1)], data };
  }
  return out;
}

interface CacheIndex {
  v: number;
  grams: { id: number; vectors: number; shape: number[]; lengths: number[] }[];
}

async function readCached(dir: string | undefined, key: string, specs: ActivationSpec[]): Promise<FoldedGram[] | undefined> {
  if (!dir) return undefined;
  try {
    const index = JSON.parse(await readFile(join(dir, `${key}.json`), 'utf8')) as CacheIndex;
    const bytes = await readFile(join(dir, `${key}.f64`));
    if (index.v !== CACHE_VERSION || index.grams.length !== specs.length) return undefined;
    const all = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    let at = 0;
    const out = index.grams.map((g) => ({ id: g.id, vectors: g.vectors, shape: g.shape, groups: g.lengths.map((n) => all.slice(at, (at += n))) }));
    return at === all.length ? out : undefined;
  } catch {
    return undefined; // missing or half-written: recompute
  }
}

async function writeCached(dir: string | undefined, key: string, folded: FoldedGram[], signal?: AbortSignal): Promise<void> {
  if (!dir) return;
  const total = folded.reduce((s, f) => s + f.groups.reduce((t, g) => t + g.length, 0), 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const f of folded) for (const g of f.groups) { all.set(g, at); at += g.length; }
  const index: CacheIndex = { v: CACHE_VERSION, grams: folded.map((f) => ({ id: f.id, vectors: f.vectors, shape: f.shape, lengths: f.groups.map((g) => g.length) })) };
  // Data first: an index is only ever next to whole data.
  await writeFileAtomic(join(dir, `${key}.f64`), new Uint8Array(all.buffer), { createFolder: true, durable: false, signal });
  await writeFileAtomic(join(dir, `${key}.json`), JSON.stringify(index), { createFolder: true, durable: false, signal });
}

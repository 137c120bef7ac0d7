// Applying a plan: factorize each planned layer and rewrite the graph, in memory (applyPlan, for
// sweeps) or to a new file (compressToFile). The inverses: restoreOriginalLayers (the source's
// weights, hash-checked) and recomposeLayers (A·B as a dense weight).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { RankscopeError, throwIfCancelled } from '../errors';
import { makeTensorProto, openOnnx, type ModelProto, type NodeProto, type OnnxModel, type TensorProto } from '../formats/onnx';
import { COMPRESSED_METADATA_KEY, writeOnnxAtomic } from '../formats/onnx';
import type { DType, Layer, Tensor } from '../model/types';
import { factorize, multiply, type Factors } from './factor';
import { factorInWorkers, type GroupFactors } from './pool';
import { GraphEditor } from './graph';
import { entryOf, METHOD, nodeFromJson, nodeToJson, readEntries, RESTORED_METADATA_KEY, withMetadata, type RankscopeEntry } from './metadata';
import { isBudget, isCompressible, layerHash, makePlan, policyOf, recheckRow, selectLayers, type CompressRequest, type Plan, type PlanLayer, type SpectrumLike } from './plan';
import { layerFactorShape, policyKind } from './policy';
import { SpectrumCache, spectrumCacheKey } from '../linalg';
import { mergeDescending } from '../linalg/singularValues';
import { matricesOf, planSpectra, type PlanSpectraOptions } from './spectra';
import { rewireUses, unsupportedUse, type FactorNames } from './rewrite';
import { loadFactors, storeDense, storeFactors } from './storage';
import { checkOutputPath } from '../fs/atomicWrite';
import { isWhitened, whitenedGroups, type EmbeddingWeights, type LayerGram, type WhiteningInfo, type WhiteningOptions } from './whitened';

export interface ApplyOptions {
  signal?: AbortSignal;
  /** Factors computed beforehand off-thread (factorizePlan); layers missing here are factorized inline. */
  factors?: Map<string, GroupFactors[]>;
  /** Whitened factorization (compress/whitened.ts): every planned layer's calibration Gram. Absent: plain SVD. */
  whitening?: WhiteningSource;
}

/** The calibration a whitened factorization uses: Grams per layer, and what the metadata records of it. */
export interface WhiteningSource {
  grams: Map<string, LayerGram>;
  /** Relative jitter for rank-deficient Grams (default whitened.ts DEFAULT_JITTER). */
  jitter?: number;
  /** Gather embeddings' row weights: uniform (default, the plain SVD's factors) or the calibration counts. */
  embeddings?: EmbeddingWeights;
  /** Recorded in each entry: the calibration's hash (model + data + selection), data file and samples. */
  calibration: { hash: string; data: string; samples: number; seed: number };
}

export const WHITENED_METHOD = 'whitened';

/** The Gram of a layer the whitening must have (refused, never silently plain SVD). */
function gramFor(whitening: WhiteningSource, layer: string): LayerGram {
  const gram = whitening.grams.get(layer);
  if (!gram) throw new RankscopeError('BAD_ARGUMENT', `Layer '${layer}' has no calibration Gram; whitened factorization needs one for every planned layer.`, 'Calibrate the same layers the plan compresses.');
  return gram;
}

function whiteningOptions(w: Pick<WhiteningSource, 'jitter' | 'embeddings'>): WhiteningOptions {
  return { jitter: w.jitter, embeddings: w.embeddings };
}

/** The graph check makePlan takes: why a layer's uses cannot be rewritten. */
export function graphCheck(model: OnnxModel): (layer: Layer) => string | undefined {
  const editor = new GraphEditor(model.proto);
  return (layer) => {
    if (layer.compressed) return entryOf(model, layer.name) ? undefined : 'factorized by another tool (no Rankscope record)';
    return unsupportedUse(editor, layer);
  };
}

/** The layers a sweep (or compress) with the whitened method calibrates: the selected factorizable layers the rewrite can handle. */
export function calibrationCandidates(model: OnnxModel, patterns?: string[]): Layer[] {
  const check = graphCheck(model);
  return selectLayers(model, patterns).filter((l) => l.factorizable && !check(l));
}

/** Refuses plans made for other weights (PLAN_MISMATCH) and returns each planned layer with its model layer. */
function matchPlan(model: OnnxModel, plan: Plan): { row: PlanLayer; layer: Layer }[] {
  const out: { row: PlanLayer; layer: Layer }[] = [];
  for (const row of plan.layers) {
    if (row.skipped) continue;
    const layer = model.layers.find((l) => l.name === row.layer);
    if (!layer) {
      throw new RankscopeError('PLAN_MISMATCH', `The plan names layer '${row.layer}', which ${model.summary.path} does not have.`, 'Make a new plan for this model.');
    }
    if (layerHash(model, layer) !== row.weightHash) {
      throw new RankscopeError('PLAN_MISMATCH', `Layer '${row.layer}' of ${model.summary.path} has different weights than the plan was made for (hash mismatch).`,
        'Plans only apply to the model they were made from; make a new plan.');
    }
    out.push({ row, layer });
  }
  return out;
}

/** Applies `plan` to `model` in memory. The model is not modified; the result shares its untouched tensors. */
export function applyPlan(model: OnnxModel, plan: Plan, options: ApplyOptions = {}): ModelProto {
  const work = matchPlan(model, plan);
  const editor = new GraphEditor(model.proto);
  const entries = readEntries(model.proto);
  const dropNodes: NodeProto[] = [];
  const dropTensors: string[] = [];
  for (const { row, layer } of work) {
    throwIfCancelled(options.signal);
    if (layer.compressed) {
      const entry = entries.find((e) => e.layer === layer.name);
      if (!entry) throw new RankscopeError('UNSUPPORTED', `Layer '${layer.name}' was factorized without a Rankscope record; it cannot be re-compressed.`);
      recompress(model, editor, entry, row, options.factors?.get(layer.name) ?? factorLayer(model, layer, row.k, options.whitening), options.whitening);
      continue;
    }
    const unsupported = unsupportedUse(editor, layer);
    if (unsupported) throw new RankscopeError('UNSUPPORTED', `Layer '${layer.name}' cannot be rewritten: ${unsupported}.`);
    const computed = options.factors?.get(layer.name) ?? factorLayer(model, layer, row.k, options.whitening);
    checkMethod(layer.name, computed, options.whitening);
    const groups = computed.map((f) => ({ f, total: f.total }));
    const energyKept = keptShare(groups);
    const choice = recheckRow(row, energyKept);
    if (choice.skipped) throw new RankscopeError('BAD_ARGUMENT', `Layer '${row.layer}': ${choice.reason}.`, 'Lower k, or set "force": true in the plan.');
    const names: FactorNames = { a: editor.unique(`${layer.name}.lowrank_A`), b: editor.unique(`${layer.name}.lowrank_B`), layout: layer.layout };
    const [a, b] = storeFactors(layer.layout, groups.map((g) => g.f), layer.tensorShape);
    editor.addInitializer(makeTensorProto(names.a, layer.dtype, a.dims, a.data));
    editor.addInitializer(makeTensorProto(names.b, layer.dtype, b.dims, b.data));
    const { via, rewritten } = rewireUses(editor, layer.weight, names, layer.name, layer.dtype);
    dropNodes.push(...via);
    dropTensors.push(layer.weight);
    entries.push({
      layer: layer.name, weight: layer.weight, factors: [names.a, names.b], rank: row.k, originalShape: [...layer.shape],
      energyKept, method: options.whitening ? WHITENED_METHOD : METHOD, sourceFile: resolve(model.summary.path), sourceHash: row.weightHash,
      ...(options.whitening && { calibration: calibrationRecord(options.whitening, computed) }),
      layout: layer.layout, groups: groups.length, tensorShape: [...layer.tensorShape], dtype: layer.dtype,
      ...(editor.localName(layer.weight) !== layer.weight && { weightLocal: editor.localName(layer.weight) }),
      graph: { uses: rewritten.map((r) => ({ original: nodeToJson(r.original), pair: r.pair })), via: via.map(nodeToJson) },
    });
  }
  const out = editor.finish({ nodes: dropNodes, tensors: dropTensors });
  return { ...out, metadataProps: withMetadata(out, COMPRESSED_METADATA_KEY, JSON.stringify(entries)) };
}

/** Factors of the method asked for: whitened factors with a whitening, plain ones without (a mix is a bug). */
function checkMethod(layer: string, groups: GroupFactors[], whitening: WhiteningSource | undefined): void {
  if (groups.some((g) => isWhitened(g) !== (whitening !== undefined))) {
    throw new Error(`applyPlan: layer '${layer}' got ${whitening ? 'plain' : 'whitened'} factors for a ${whitening ? 'whitened' : 'plain'} factorization`);
  }
}

/** What an entry records of the calibration: its hash, data, samples, and how each group's Gram was whitened. */
function calibrationRecord(w: WhiteningSource, groups: GroupFactors[]): WhitenedRecord {
  return { ...w.calibration, whitening: groups.map((g) => (isWhitened(g) ? g.whitening : undefined)).filter((x): x is WhiteningInfo => x !== undefined) };
}

export type WhitenedRecord = WhiteningSource['calibration'] & { whitening: WhiteningInfo[] };

/** The layer's top-k factors per group, on this thread (matrices: the dense weight, or A·B when factorized). */
function factorLayer(model: OnnxModel, layer: Layer, k: number, whitening?: WhiteningSource): GroupFactors[] {
  if (whitening) return whitenedGroups(matricesOf(model, layer), k, gramFor(whitening, layer.name), whiteningOptions(whitening), `Layer '${layer.name}'`);
  return matricesOf(model, layer).map((m, g, all) => factorize(m.data, m.rows, m.cols, k, all.length > 1 ? `Layer '${layer.name}' (group ${g})` : `Layer '${layer.name}'`));
}

/** Factorizes every planned layer in a pool of worker threads (the slow part, off the caller's thread). */
export async function factorizePlan(model: OnnxModel, plan: Plan, options: { signal?: AbortSignal; threads?: number; have?: Map<string, GroupFactors[]>; whitening?: WhiteningSource } = {}): Promise<Map<string, GroupFactors[]>> {
  const have = options.have;
  // Factors computed earlier at the planned rank are kept; only the rest go to the workers.
  const work = matchPlan(model, plan).filter(({ row }) => !have?.get(row.layer)?.every((g) => g.k === row.k));
  const results = await factorInWorkers(work.length, (i) => ({
    label: `Layer '${work[i].layer.name}'`,
    k: work[i].row.k,
    matrices: matricesOf(model, work[i].layer, !options.whitening), // whitening needs W as [out, in]
    ...(options.whitening && { whiten: { gram: gramFor(options.whitening, work[i].layer.name), ...whiteningOptions(options.whitening) } }),
  }), options);
  const out = new Map(have);
  work.forEach(({ layer }, i) => out.set(layer.name, results[i]));
  return out;
}

/**
 * planModel and factorizePlan in one pass for per-layer policies (rank, energy, ratios): each
 * worker job reduces a layer once, picks k from its singular values by the policy and computes
 * the factors at that k. The plan is then made from those spectra as planModel would make it;
 * a layer whose planned k differs from the worker's (none, normally) is factorized again.
 * Budget requests need every spectrum before any k: they take the two passes.
 */
export async function planAndFactorize(model: OnnxModel, request: CompressRequest, options: PlanSpectraOptions = {}): Promise<PlannedFactors> {
  if (isBudget(request)) {
    const plan = await planModel(model, request, options);
    const factors = await factorizePlan(model, plan, options);
    return { plan, factors, secondPass: [...factors.keys()] };
  }
  const policy = policyOf(request);
  policyKind(policy); // fail on a bad policy before any work
  const check = graphCheck(model);
  const layers = selectLayers(model, request.layers).filter(isCompressible);
  const fused = layers.filter((l) => !l.compressed && !check(l));
  // Factorized layers (A·B) and layers the rewrite refuses only need their spectra, as in planModel.
  const spectra: SpectrumLike[] = await planSpectra(model, layers.filter((l) => l.compressed), options);
  const cache = options.cacheDir ? new SpectrumCache(options.cacheDir) : undefined;
  const found = new Map<string, GroupFactors[]>();
  const results = await factorInWorkers(fused.length, (i) => {
    // Hashed now, while the workers compute, not after the last of them: the plan records each
    // weight's hash (the tensor keeps it).
    layerHash(model, fused[i]);
    return { label: `Layer '${fused[i].name}'`, k: 0, policy: { policy, shape: layerFactorShape(fused[i]) }, matrices: matricesOf(model, fused[i], true) };
  }, {
    signal: options.signal,
    threads: options.threads,
    onSpectra: (i, groups, partial) => {
      const singularValues = groups.length === 1 ? groups[0] : mergeDescending(groups);
      spectra.push({ layer: fused[i].name, singularValues, groups: groups.length > 1 ? groups : undefined });
      if (!partial) cache?.put(spectrumCacheKey(model, fused[i]), { singularValues, groups: groups.length > 1 ? groups : undefined });
    },
  });
  fused.forEach((l, i) => {
    if (results[i].length) found.set(l.name, results[i]);
  });
  const plan = makePlan(model, spectra, request, check);
  const factors = await factorizePlan(model, plan, { signal: options.signal, threads: options.threads, have: found });
  return { plan, factors, secondPass: [...factors.keys()].filter((name) => factors.get(name) !== found.get(name)) };
}

export interface PlannedFactors {
  plan: Plan;
  /** The factors of every layer the plan compresses. */
  factors: Map<string, GroupFactors[]>;
  /** Layers factorized in a second pass (a budget, re-compressed layers, a k the plan changed). */
  secondPass: string[];
}

function keptShare(groups: { f: Factors; total: number }[]): number {
  const total = groups.reduce((s, g) => s + g.total, 0);
  const kept = groups.reduce((s, g) => s + g.f.energyKept * g.total, 0);
  return total > 0 ? kept / total : 1;
}

/** Re-factorizes A·B at a lower rank; the two nodes stay, only the factor tensors change. */
function recompress(model: OnnxModel, editor: GraphEditor, entry: RankscopeEntry, row: PlanLayer, factors: GroupFactors[], whitening?: WhiteningSource): void {
  checkMethod(entry.layer, factors, whitening);
  if (row.k >= entry.rank) throw new RankscopeError('BAD_ARGUMENT', `Layer '${entry.layer}' is factorized at rank ${entry.rank}; re-compression needs a lower rank than ${row.k}.`);
  const [a, b] = entry.factors.map((name) => model.tensor(name)!);
  const groups = factors.map((f) => ({ f, total: f.total }));
  // A·B kept entry.energyKept of the original; the new rank keeps a share of A·B.
  const energyKept = entry.energyKept * keptShare(groups);
  const [na, nb] = storeFactors(entry.layout, groups.map((g) => g.f), entry.tensorShape);
  editor.replaceInitializer(makeTensorProto(entry.factors[0], a.dtype, na.dims, na.data));
  editor.replaceInitializer(makeTensorProto(entry.factors[1], b.dtype, nb.dims, nb.data));
  entry.rank = row.k;
  entry.energyKept = energyKept;
  entry.method = whitening ? WHITENED_METHOD : METHOD;
  if (whitening) entry.calibration = calibrationRecord(whitening, factors);
  else delete entry.calibration;
}

export interface WriteResult {
  path: string;
  proto: ModelProto;
  /** Bytes written: the model file and its external-data file together. */
  bytes: number;
}

/** Compresses to a new file (never the input), written atomically; external data kept as the input had it. */
export async function compressToFile(model: OnnxModel, plan: Plan, outPath: string, options: ApplyOptions = {}): Promise<WriteResult> {
  checkOutputPath(outPath, { inputs: [model.path] }); // before the work, not only at the write
  const factors = await factorizePlan(model, plan, { ...options, have: options.factors });
  const proto = applyPlan(model, plan, { ...options, factors });
  const bytes = await writeOnnxAtomic(outPath, proto, { externalData: 'auto', sourceDir: model.dir, inputs: [model.path], signal: options.signal });
  return { path: resolve(outPath), proto, bytes };
}

export type RestoredLayer = { layer: string; weight: string; sourceFile?: string; from: 'original' | 'recomposed' };

/** Recomposes A·B of each named layer into a dense weight, restoring the original nodes; writes a new file. The compression error stays. */
export async function recomposeLayers(model: OnnxModel, names: string[], outPath: string, options: ApplyOptions = {}): Promise<WriteResult & { restored: RestoredLayer[] }> {
  checkOutputPath(outPath, { inputs: [model.path] });
  const { proto, restored } = restoreInMemory(model, names, recomposed(model), options);
  const bytes = await writeOnnxAtomic(outPath, proto, { externalData: 'auto', sourceDir: model.dir, inputs: [model.path], signal: options.signal });
  return { path: resolve(outPath), proto, restored, bytes };
}

/**
 * Puts back each named layer's original weight, read from the source model its record names
 * (sourceFile) and checked against the hash recorded at compression; restores the original
 * nodes; writes a new file. Refuses (NOT_FOUND / PLAN_MISMATCH) when the source is gone, lacks
 * the weight or holds different values, naming recomposeLayers as the way that needs no source.
 */
export async function restoreOriginalLayers(model: OnnxModel, names: string[], outPath: string, options: ApplyOptions = {}): Promise<WriteResult & { restored: RestoredLayer[] }> {
  checkOutputPath(outPath, { inputs: [model.path] });
  const entries = readEntries(model.proto);
  const sources = new Map<string, OnnxModel>();
  const originals = new Map<string, Tensor>();
  const instead = 'Use "Recompose to Dense" (CLI: --recompose), which rebuilds the weight from A·B and needs no source.';
  for (const name of names) {
    const entry = requireEntry(entries, name);
    const file = entry.sourceFile;
    if (!file) throw new RankscopeError('NOT_FOUND', `Layer '${name}': the model does not record which file it was compressed from.`, instead);
    if (!entry.sourceHash) {
      throw new RankscopeError('NOT_FOUND', `Layer '${name}': the record has no hash of the original weight (written by an older Rankscope), so the weight in ${file} cannot be checked.`, instead);
    }
    let source = sources.get(file);
    if (!source) {
      if (!existsSync(file)) throw new RankscopeError('NOT_FOUND', `Layer '${name}': its source model ${file} is gone.`, `Put the original model back at that path, or: ${instead}`);
      source = await openOnnx(file, { signal: options.signal });
      sources.set(file, source);
    }
    const tensor = source.tensor(entry.weight);
    if (!tensor) throw new RankscopeError('PLAN_MISMATCH', `Layer '${name}': ${file} no longer holds its weight '${entry.weight}'.`, instead);
    if (tensor.hash() !== entry.sourceHash) {
      throw new RankscopeError('PLAN_MISMATCH', `Layer '${name}': the weight '${entry.weight}' in ${file} has changed since compression (hash mismatch).`, instead);
    }
    originals.set(name, tensor);
  }
  const { proto, restored } = restoreInMemory(model, names, (entry, weight) => {
    const t = originals.get(entry.layer)!;
    return makeTensorProto(weight, t.dtype, t.shape, t.bytes().slice());
  }, options, 'original');
  const inputs = [model.path, ...[...sources.values()].map((m) => m.path)];
  const bytes = await writeOnnxAtomic(outPath, proto, { externalData: 'auto', sourceDir: model.dir, inputs, signal: options.signal });
  return { path: resolve(outPath), proto, restored, bytes };
}

function requireEntry(entries: RankscopeEntry[], name: string): RankscopeEntry {
  const entry = entries.find((e) => e.layer === name);
  if (!entry) {
    const known = entries.map((e) => e.layer).join(', ') || 'none';
    throw new RankscopeError('NOT_FOUND', `Layer '${name}' is not a layer Rankscope factorized (factorized layers: ${known}).`);
  }
  return entry;
}

/** The dense weight as A·B of the model's factors. */
function recomposed(model: OnnxModel): (entry: RankscopeEntry, weight: string) => TensorProto {
  return (entry, weight) => {
    const [a, b] = entry.factors.map((n) => model.tensor(n));
    if (!a || !b) throw new RankscopeError('CORRUPT', `Layer '${entry.layer}': factor tensors ${entry.factors.join(', ')} are missing.`);
    const groups = loadFactors(entry.layout, { dims: a.shape, data: a.toFloat32() }, { dims: b.shape, data: b.toFloat32() }, entry.groups);
    const dense = storeDense(entry.layout, groups.map((g) => ({ m: g.m, n: g.n, data: multiply(g.a, g.b, g.m, g.k, g.n) })), entry.tensorShape);
    // The stored shape as it was (a weight reshaped on its way to the node: same row-major values).
    const dims = dense.dims.reduce((x, d) => x * d, 1) === entry.tensorShape.reduce((x, d) => x * d, 1) ? entry.tensorShape : dense.dims;
    return makeTensorProto(weight, entry.dtype as DType, dims, dense.data);
  };
}

/** The graph with each named layer's original nodes back around the dense weight `denseFor` gives (A·B, or the original's). */
export function restoreInMemory(
  model: OnnxModel, names: string[], denseFor: (entry: RankscopeEntry, weightName: string) => TensorProto = recomposed(model),
  options: ApplyOptions = {}, from: RestoredLayer['from'] = 'recomposed',
): { proto: ModelProto; restored: RestoredLayer[] } {
  const entries = readEntries(model.proto);
  const editor = new GraphEditor(model.proto);
  const dropTensors: string[] = [];
  const restored: RestoredLayer[] = [];
  for (const name of names) {
    throwIfCancelled(options.signal);
    const entry = requireEntry(entries, name);
    // Back as a main-graph initializer (visible in subgraphs), under its own name when free.
    const local = entry.weightLocal ?? entry.weight;
    const weight = editor.unique(local);
    editor.addInitializer(denseFor(entry, weight));
    const via = entry.graph.via.map(nodeFromJson);
    if (weight !== local) for (const v of via) v.input = v.input.map((i) => (i === local ? weight : i));
    editor.prepend(via);
    for (const use of entry.graph.uses) {
      const [first, second] = use.pair.map((n) => editor.findNode(n));
      if (!first || !second) throw new RankscopeError('UNSUPPORTED', `Cannot restore '${name}': node ${use.pair.join(' / ')} was changed after compression.`);
      const original = nodeFromJson(use.original);
      if (weight !== local) original.input = original.input.map((i) => (i === local ? weight : i));
      editor.replace(first, []);
      editor.replace(second, [original]);
    }
    dropTensors.push(...entry.factors);
    entries.splice(entries.indexOf(entry), 1);
    restored.push({ layer: name, weight, sourceFile: entry.sourceFile, from });
  }
  // Factor transposes/casts in front of the graph die with the factors.
  const refNodes = editor.graph.node.filter((n) => (n.opType === 'Transpose' || n.opType === 'Cast') && dropTensors.includes(n.input[0]));
  const out = editor.finish({ nodes: refNodes, tensors: dropTensors });
  const previous = JSON.parse(model.summary.metadata[RESTORED_METADATA_KEY] ?? '[]') as unknown[];
  // `from` says whether the weight is the original's or A·B (which keeps the compression error).
  let props = withMetadata(out, COMPRESSED_METADATA_KEY, entries.length ? JSON.stringify(entries) : undefined);
  props = withMetadata({ ...out, metadataProps: props }, RESTORED_METADATA_KEY, JSON.stringify([...previous, ...restored]));
  return { proto: { ...out, metadataProps: props }, restored };
}

/**
 * Each layer's whitened singular values per group (σ of W·S), in the factor worker pool: what the
 * 'whitened' budget allocation and the whitened spectrum view read.
 */
export async function whitenedSpectraOf(model: OnnxModel, layers: Layer[], whitening: Pick<WhiteningSource, 'grams' | 'jitter' | 'embeddings'>, options: { signal?: AbortSignal; threads?: number } = {}): Promise<Map<string, Float64Array[]>> {
  const out = new Map<string, Float64Array[]>();
  await factorInWorkers(layers.length, (i) => ({
    label: `Layer '${layers[i].name}'`,
    k: 0,
    matrices: matricesOf(model, layers[i]),
    whiten: { gram: gramFor(whitening as WhiteningSource, layers[i].name), ...whiteningOptions(whitening) },
  }), { ...options, onSpectra: (i, spectra) => out.set(layers[i].name, spectra) });
  return out;
}

/** A budget request with allocation 'whitened' completed with the whitened spectra of its layers (other requests as they are). */
export async function withWhitenedSpectra(model: OnnxModel, request: CompressRequest, whitening: Pick<WhiteningSource, 'grams' | 'jitter' | 'embeddings'>, options: { signal?: AbortSignal; threads?: number } = {}): Promise<CompressRequest> {
  if (!isBudget(request) || request.allocation !== 'whitened' || request.whitened) return request;
  const check = graphCheck(model);
  const layers = selectLayers(model, request.layers).filter((l) => isCompressible(l) && !check(l) && whitening.grams.has(l.name));
  const spectra = await whitenedSpectraOf(model, layers, whitening, options);
  return { ...request, whitened: Object.fromEntries([...spectra].map(([name, groups]) => [name, groups.map((g) => Array.from(g))])) };
}

/** Spectra of the selected layers, then the plan, with the graph check: what the CLI and the extension call. */
export async function planModel(model: OnnxModel, request: CompressRequest, options: PlanSpectraOptions = {}): Promise<Plan> {
  const layers = selectLayers(model, request.layers).filter(isCompressible);
  const spectra = await planSpectra(model, layers, options);
  return makePlan(model, spectra, request, graphCheck(model));
}

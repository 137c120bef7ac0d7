// The layer inventory of an ONNX model: every weight matrix a user would recognise
// (MatMul, Gemm, Conv, Gather and their quantized forms), in every graph (If/Loop/Scan bodies
// too), found through Transpose/Cast/Identity/DequantizeLinear/constant Reshape, named by module path, listed once however many nodes share it, and low-rank
// pairs written by Rankscope folded back into the layer they replaced.
import type { JsonValue } from '@bufbuild/protobuf';
import { notFactorizableReason, modulePath } from '../../model/naming';
import type { CompressedInfo, DType, Layer, LayerOp, MatrixLayout, Model } from '../../model/types';
import { rawByteLength } from './dtypes';
import type { AttributeProto, ModelProto, NodeProto } from './gen/onnx_pb';
import { type GraphScope, producerIn, tensorKeyIn } from './graphs';

/** Metadata key COMPRESS writes and the inventory reads (JSON array of CompressedEntry). */
export const COMPRESSED_METADATA_KEY = 'rankscope.compressed';

/**
 * One entry of `rankscope.compressed`. The first fields are the agreed minimum any writer gives;
 * Rankscope's rewrite also records how it stored the factors and what it replaced
 * (compress/metadata.ts RankscopeEntry requires those).
 */
export interface CompressedEntry {
  layer: string;
  weight: string;
  factors: [string, string];
  rank: number;
  originalShape: [number, number];
  energyKept: number;
  method: string;
  sourceFile?: string;
  /** The original weight's layout, which the factors keep (compress/storage.ts). */
  layout?: MatrixLayout;
  /** Conv groups factorized one by one (1 for every other layer). */
  groups?: number;
  /** The original weight's stored shape and dtype. */
  tensorShape?: number[];
  dtype?: DType;
  /** The nodes the rewrite replaced (ONNX JSON), for restore. */
  graph?: { uses: { original: JsonValue; pair: [string, string] }[]; via: JsonValue[] };
}

/** How Layer.nodes names a node: its name, or `OpType(first output)` when it has none. */
export function nodeId(node: NodeProto): string {
  return node.name || `${node.opType}(${node.output[0] ?? ''})`;
}

/** Reverse of nodeId over a node list. */
export function findNode(nodes: NodeProto[], id: string): NodeProto | undefined {
  return nodes.find((n) => nodeId(n) === id);
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? Number(a.i) : fallback;
}

/** Ops a weight passes through unchanged in content (Transpose swaps the layout; Reshape with a
 * constant shape re-reads the row-major values as another 2-D matrix). */
const PASS_THROUGH = new Set(['Transpose', 'Cast', 'Identity', 'DequantizeLinear', 'Reshape']);
/** Ops a bias passes through unchanged. */
const BIAS_PASS_THROUGH = new Set(['Cast', 'Identity', 'DequantizeLinear']);

/** Which input of each op is the weight matrix, and how the op sees it. */
interface WeightUse {
  op: LayerOp;
  input: number;
  /** Layout of the stored weight when reached directly (no Transpose on the way). */
  layout: MatrixLayout;
  bias?: number;
}

function weightUses(node: NodeProto): WeightUse[] {
  switch (node.opType) {
    case 'MatMul': case 'MatMulInteger':
      // x·W (weight on the right, [in, out]) is the common case; W·x (weight left) is [out, in].
      return [{ op: 'MatMul', input: 1, layout: 'in_out' }, { op: 'MatMul', input: 0, layout: 'out_in' }];
    case 'QLinearMatMul':
      return [{ op: 'MatMul', input: 3, layout: 'in_out' }];
    case 'Gemm': {
      const transB = intAttr(node, 'transB', 0) === 1;
      const transA = intAttr(node, 'transA', 0) === 1;
      return [
        { op: 'Gemm', input: 1, layout: transB ? 'out_in' : 'in_out', bias: 2 },
        { op: 'Gemm', input: 0, layout: transA ? 'in_out' : 'out_in', bias: 2 },
      ];
    }
    case 'Conv': case 'ConvInteger':
      return [{ op: 'Conv', input: 1, layout: 'conv', bias: node.opType === 'Conv' ? 2 : undefined }];
    case 'QLinearConv':
      return [{ op: 'Conv', input: 3, layout: 'conv', bias: 8 }];
    case 'Gather':
      return intAttr(node, 'axis', 0) === 0 ? [{ op: 'Gather', input: 0, layout: 'out_in' }] : [];
    default:
      return [];
  }
}

interface Found {
  use: WeightUse;
  node: NodeProto;
  scope: GraphScope;
  /** The weight's tensor key, and its name in the graph defining it. */
  weight: string;
  local: string;
  layout: MatrixLayout;
  /** Shape of the matrix as the node sees it before any Transpose (the stored shape, or a Reshape's). */
  dims: number[];
  via: NodeProto[];
}

const isDefaultDomain = (n: NodeProto) => !n.domain || n.domain === 'ai.onnx';

/**
 * The layers of every graph of the model, subgraphs (If/Loop/Scan bodies) included; a weight is
 * found where it is defined, in the node's graph or an outer one. `scopes` come from graphScopes
 * with tensorSites applied (their tensorKeys name the model's tensors).
 */
export function buildInventory(proto: ModelProto, model: Pick<Model, 'tensor'>, scopes: GraphScope[]): Layer[] {
  const consumers = new Map<GraphScope, Map<string, NodeProto[]>>();
  for (const scope of scopes) {
    const map = new Map<string, NodeProto[]>();
    for (const n of scope.graph.node) for (const i of n.input) if (i) (map.get(i) ?? map.set(i, []).get(i)!).push(n);
    consumers.set(scope, map);
  }
  const tensorIn = (scope: GraphScope, name: string) => {
    const key = tensorKeyIn(scope, name);
    return key && model.tensor(key) ? key : undefined;
  };

  /** Follows a value back through pass-through ops (in its graph and outer ones) to a stored tensor. */
  function resolveWeight(scope: GraphScope, value: string, layout: MatrixLayout): Omit<Found, 'use' | 'node' | 'scope'> | undefined {
    const via: NodeProto[] = [];
    const reshapes: { shape: number[]; allowZero: boolean }[] = [];
    let name = value;
    let at = scope;
    for (let depth = 0; depth < 8; depth++) {
      const key = tensorIn(at, name);
      if (key) return { weight: key, local: name, layout, via, dims: reshapedDims([...model.tensor(key)!.shape], reshapes) ?? [] };
      const p = producerIn(at, name);
      if (!p || !PASS_THROUGH.has(p.node.opType) || !isDefaultDomain(p.node)) return undefined;
      if (p.node.opType === 'Transpose') {
        // 2-D flips only, and only after every Reshape (seen from the stored tensor).
        if (layout === 'conv' || reshapes.length) return undefined;
        const perm = attr(p.node, 'perm')?.ints.map(Number);
        if (perm && !(perm.length === 2 && perm[0] === 1 && perm[1] === 0)) return undefined;
        layout = layout === 'in_out' ? 'out_in' : 'in_out';
      } else if (p.node.opType === 'Reshape') {
        const shapeKey = layout === 'conv' ? undefined : tensorIn(p.scope, p.node.input[1] ?? '');
        const shape = shapeKey ? model.tensor(shapeKey)! : undefined;
        if (!shape || shape.dtype !== 'int64' || shape.shape.length !== 1) return undefined;
        const b = shape.bytes();
        reshapes.unshift({ shape: Array.from(new BigInt64Array(b.slice().buffer, 0, shape.size), Number), allowZero: intAttr(p.node, 'allowzero', 0) === 1 });
      }
      via.push(p.node);
      name = p.node.input[0];
      at = p.scope;
    }
    return undefined;
  }

  /** A constant reached directly or through Cast/Identity/DequantizeLinear (fp16 biases behind a Cast). */
  function resolveConstant(scope: GraphScope, value: string): string | undefined {
    let name = value;
    let at = scope;
    for (let depth = 0; depth < 8 && name; depth++) {
      const key = tensorIn(at, name);
      if (key) return key;
      const p = producerIn(at, name);
      if (!p || !BIAS_PASS_THROUGH.has(p.node.opType) || !isDefaultDomain(p.node)) return undefined;
      name = p.node.input[0];
      at = p.scope;
    }
    return undefined;
  }

  // 1. Every (node, weight) pair, in graph order; a subgraph's nodes right after the node holding it.
  const children = new Map<NodeProto, GraphScope[]>();
  for (const scope of scopes) if (scope.owner) (children.get(scope.owner.node) ?? children.set(scope.owner.node, []).get(scope.owner.node)!).push(scope);
  const found: Found[] = [];
  const visit = (scope: GraphScope) => {
    for (const node of scope.graph.node) {
      for (const use of weightUses(node)) {
        const value = node.input[use.input];
        if (!value) continue;
        const r = resolveWeight(scope, value, use.layout);
        if (!r) continue;
        const rankOk = use.layout === 'conv' ? r.dims.length >= 3 : r.dims.length === 2;
        if (!rankOk) continue;
        found.push({ use, node, scope, ...r });
        break; // one weight per node (MatMul of two constants: the right one)
      }
      for (const child of children.get(node) ?? []) visit(child);
    }
  };
  if (scopes.length) visit(scopes[0]);

  // 2. Low-rank pairs written by Rankscope.
  const compressed = readCompressedEntries(proto);
  const factorOf = new Map<string, CompressedEntry>();
  for (const e of compressed) for (const f of e.factors) factorOf.set(f, e);

  // 3. One layer per weight tensor, named after its first user.
  const layers: Layer[] = [];
  const byWeight = new Map<string, Layer>();
  const compressedLayers = new Map<CompressedEntry, Layer>();
  for (const f of found) {
    const entry = factorOf.get(f.weight);
    if (entry) {
      addCompressedUse(entry, f);
      continue;
    }
    const existing = byWeight.get(f.weight);
    if (existing) {
      if (!existing.nodes.includes(nodeId(f.node))) existing.nodes.push(nodeId(f.node));
      continue;
    }
    const layer = makeLayer(f);
    byWeight.set(f.weight, layer);
    layers.push(layer);
  }
  uniquifyNames(layers);
  return layers;

  function makeLayer(f: Found): Layer {
    const t = model.tensor(f.weight)!;
    const dims = f.dims;
    let shape: [number, number];
    let groups: number | undefined;
    let kernel: number[] | undefined;
    if (f.layout === 'conv') {
      groups = intAttr(f.node, 'group', 1);
      kernel = dims.slice(2);
      shape = [dims[0], dims.slice(1).reduce((a, b) => a * b, 1)];
    } else {
      shape = f.layout === 'in_out' ? [dims[1], dims[0]] : [dims[0], dims[1]];
    }
    const bias = findBias(f, shape[0]);
    const reason = notFactorizableReason(t.dtype, shape[0], shape[1], groups ?? 1);
    const layer: Layer = {
      name: modulePath(f.local, f.node.name, bias),
      op: f.use.op,
      weight: f.weight,
      shape,
      tensorShape: [...t.shape],
      layout: f.layout,
      dtype: t.dtype,
      params: t.size,
      biasParams: bias ? model.tensor(bias)!.size : 0,
      bytes: rawByteLength(t.dtype, t.size),
      nodes: [nodeId(f.node)],
      factorizable: reason === undefined,
    };
    if (bias) layer.bias = bias;
    if (f.via.length) layer.via = f.via.map(nodeId);
    if (groups !== undefined) layer.groups = groups;
    if (kernel) layer.kernel = kernel;
    if (reason) layer.reason = reason;
    return layer;
  }

  /** Gemm C / Conv B, or a constant 1-D `Add` right after a MatMul; through a Cast/Identity too. */
  function findBias(f: Found, out: number): string | undefined {
    if (f.use.bias !== undefined) {
      const b = f.node.input[f.use.bias];
      return b ? resolveConstant(f.scope, b) : undefined;
    }
    if (f.use.op !== 'MatMul' || f.use.input !== 1) return undefined;
    const users = consumers.get(f.scope)!.get(f.node.output[0]) ?? [];
    if (users.length !== 1 || users[0].opType !== 'Add') return undefined;
    const add = users[0];
    const other = add.input[0] === f.node.output[0] ? add.input[1] : add.input[0];
    const key = other ? resolveConstant(f.scope, other) : undefined;
    const t = key ? model.tensor(key) : undefined;
    return t && t.shape.length === 1 && t.shape[0] === out ? key : undefined;
  }

  /** A factorized layer is listed as the layer it replaced: its matrix view, layout, groups and
   *  stored shape are the original's (the factors keep them), its parameters those of A and B. */
  function addCompressedUse(entry: CompressedEntry, f: Found): void {
    let layer = compressedLayers.get(entry);
    if (!layer) {
      const [a, b] = entry.factors.map((n) => model.tensor(n));
      const params = (a?.size ?? 0) + (b?.size ?? 0);
      const dtype = a?.dtype ?? 'unknown';
      const info: CompressedInfo = {
        rank: entry.rank,
        originalShape: entry.originalShape,
        energyKept: entry.energyKept,
        method: entry.method,
        factors: entry.factors,
      };
      if (entry.sourceFile) info.sourceFile = entry.sourceFile;
      // Another writer's entry may not say how it stored the factors: the graph's use of them does.
      const layout = entry.layout ?? f.layout;
      const tensorShape = entry.tensorShape ?? [...entry.originalShape];
      layer = {
        name: entry.layer,
        op: f.use.op,
        weight: entry.weight,
        shape: [...entry.originalShape],
        tensorShape: [...tensorShape],
        layout,
        dtype,
        params,
        biasParams: 0,
        bytes: rawByteLength(dtype, params),
        nodes: [],
        factorizable: false,
        reason: `factorized at rank ${entry.rank}; it re-compresses only to a lower rank`,
        compressed: info,
      };
      if (layout === 'conv') {
        layer.groups = entry.groups ?? intAttr(f.node, 'group', 1);
        if (tensorShape.length > 2) layer.kernel = tensorShape.slice(2);
      }
      compressedLayers.set(entry, layer);
      layers.push(layer);
    }
    if (!layer.nodes.includes(nodeId(f.node))) layer.nodes.push(nodeId(f.node));
    if (!layer.bias) {
      const bias = findBias(f, entry.originalShape[0]);
      if (bias) {
        layer.bias = bias;
        layer.biasParams = model.tensor(bias)!.size;
      }
    }
  }
}

/** The dims after a chain of Reshapes (0 copies the input's dim unless allowzero, -1 is inferred); undefined when one does not fit. */
function reshapedDims(dims: number[], reshapes: { shape: number[]; allowZero: boolean }[]): number[] | undefined {
  for (const r of reshapes) {
    const size = dims.reduce((a, d) => a * d, 1);
    const out = r.shape.map((d, i) => (d === 0 && !r.allowZero ? dims[i] : d));
    const unknown = out.indexOf(-1);
    if (out.some((d, i) => d === undefined || d < -1 || (d === -1 && i !== unknown))) return undefined;
    const known = out.reduce((a, d) => (d === -1 ? a : a * d), 1);
    if (unknown >= 0) {
      if (known === 0 || size % known !== 0) return undefined;
      out[unknown] = size / known;
    } else if (known !== size) return undefined;
    dims = out;
  }
  return dims;
}

/** The `rankscope.compressed` entries of a model. */
export function readCompressedEntries(proto: ModelProto): CompressedEntry[] {
  return parseCompressedEntries(proto.metadataProps.find((p) => p.key === COMPRESSED_METADATA_KEY)?.value);
}

const LAYOUTS: ReadonlySet<unknown> = new Set<MatrixLayout>(['in_out', 'out_in', 'conv']);

/**
 * The one reader of `rankscope.compressed` (its JSON text, from metadata_props or a summary's
 * metadata). Entries without the agreed fields are ignored; optional fields of the wrong type
 * are dropped, so a consumer can trust every field that is present.
 */
export function parseCompressedEntries(raw: string | undefined): CompressedEntry[] {
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const entries: CompressedEntry[] = [];
  for (const e of parsed as Record<string, unknown>[]) {
    if (!e || typeof e.layer !== 'string' || !isPair(e.factors, 'string') || !isPair(e.originalShape, 'number')) continue;
    const entry = { ...e } as unknown as CompressedEntry;
    if (!LAYOUTS.has(e.layout)) delete entry.layout;
    if (!(Number.isInteger(e.groups) && (e.groups as number) >= 1)) delete entry.groups;
    if (!(Array.isArray(e.tensorShape) && e.tensorShape.every((d) => Number.isInteger(d)))) delete entry.tensorShape;
    if (typeof e.dtype !== 'string') delete entry.dtype;
    const graph = e.graph as CompressedEntry['graph'] | undefined;
    if (!(graph && Array.isArray(graph.uses) && Array.isArray(graph.via))) delete entry.graph;
    entries.push(entry);
  }
  return entries;
}

function isPair(v: unknown, type: 'string' | 'number'): boolean {
  return Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === type);
}

/** Two layers may derive the same module path (unnamed nodes); keep names unique and stable. */
function uniquifyNames(layers: Layer[]): void {
  const seen = new Map<string, number>();
  for (const l of layers) {
    const n = seen.get(l.name) ?? 0;
    seen.set(l.name, n + 1);
    if (n > 0) l.name = `${l.name}#${n + 1}`;
  }
}

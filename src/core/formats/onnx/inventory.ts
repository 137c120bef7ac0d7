// The layer inventory of an ONNX graph: every weight matrix a user would recognise
// (MatMul, Gemm, Conv, Gather and their quantized forms), found through Transpose/Cast/Identity/
// DequantizeLinear, named by module path, listed once however many nodes share it, and low-rank
// pairs written by Rankscope folded back into the layer they replaced.
import { notFactorizableReason, modulePath } from '../../model/naming';
import type { CompressedInfo, Layer, LayerOp, MatrixLayout, Model } from '../../model/types';
import { rawByteLength } from './dtypes';
import type { AttributeProto, ModelProto, NodeProto } from './gen/onnx_pb';

/** Metadata key COMPRESS writes and the inventory reads (JSON array of CompressedEntry). */
export const COMPRESSED_METADATA_KEY = 'rankscope.compressed';

export interface CompressedEntry {
  layer: string;
  weight: string;
  factors: [string, string];
  rank: number;
  originalShape: [number, number];
  energyKept: number;
  method: string;
  sourceFile?: string;
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

/** Ops a weight passes through unchanged in content (Transpose swaps the layout). */
const PASS_THROUGH = new Set(['Transpose', 'Cast', 'Identity', 'DequantizeLinear']);

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
  index: number;
  weight: string;
  layout: MatrixLayout;
  via: NodeProto[];
}

export function buildInventory(proto: ModelProto, model: Pick<Model, 'tensor'>): Layer[] {
  const nodes = proto.graph?.node ?? [];
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output) producer.set(o, n);
    for (const i of n.input) if (i) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(n);
  }

  /** Follows a value back through pass-through ops to a stored tensor. */
  function resolveWeight(value: string, layout: MatrixLayout): { weight: string; layout: MatrixLayout; via: NodeProto[] } | undefined {
    const via: NodeProto[] = [];
    let name = value;
    for (let depth = 0; depth < 8; depth++) {
      if (model.tensor(name)) return { weight: name, layout, via };
      const p = producer.get(name);
      if (!p || !PASS_THROUGH.has(p.opType)) return undefined;
      if (p.opType === 'Transpose') {
        if (layout === 'conv') return undefined;
        const perm = attr(p, 'perm')?.ints.map(Number);
        if (perm && !(perm.length === 2 && perm[0] === 1 && perm[1] === 0)) return undefined;
        layout = layout === 'in_out' ? 'out_in' : 'in_out';
      }
      via.push(p);
      name = p.input[0];
    }
    return undefined;
  }

  // 1. Every (node, weight) pair, in graph order.
  const found: Found[] = [];
  nodes.forEach((node, index) => {
    for (const use of weightUses(node)) {
      const value = node.input[use.input];
      if (!value) continue;
      const r = resolveWeight(value, use.layout);
      if (!r) continue;
      const t = model.tensor(r.weight)!;
      const rankOk = use.layout === 'conv' ? t.shape.length >= 3 : t.shape.length === 2;
      if (!rankOk) continue;
      found.push({ use, node, index, ...r });
      break; // one weight per node (MatMul of two constants: the right one)
    }
  });

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
    const dims = [...t.shape];
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
      name: modulePath(f.weight, f.node.name, bias),
      op: f.use.op,
      weight: f.weight,
      shape,
      tensorShape: dims,
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

  /** Gemm C / Conv B, or a constant 1-D `Add` right after a MatMul. */
  function findBias(f: Found, out: number): string | undefined {
    if (f.use.bias !== undefined) {
      const b = f.node.input[f.use.bias];
      const t = b ? model.tensor(b) : undefined;
      return t ? b : undefined;
    }
    if (f.use.op !== 'MatMul' || f.use.input !== 1) return undefined;
    const users = consumers.get(f.node.output[0]) ?? [];
    if (users.length !== 1 || users[0].opType !== 'Add') return undefined;
    const add = users[0];
    const other = add.input[0] === f.node.output[0] ? add.input[1] : add.input[0];
    const t = other ? model.tensor(other) : undefined;
    return t && t.shape.length === 1 && t.shape[0] === out ? other : undefined;
  }

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
      layer = {
        name: entry.layer,
        op: f.use.op,
        weight: entry.weight,
        shape: [...entry.originalShape],
        tensorShape: [...entry.originalShape],
        layout: 'out_in',
        dtype,
        params,
        biasParams: 0,
        bytes: rawByteLength(dtype, params),
        nodes: [],
        factorizable: false,
        reason: `factorized at rank ${entry.rank}; it re-compresses only to a lower rank`,
        compressed: info,
      };
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

/** Reads `rankscope.compressed` from metadata_props; malformed entries are ignored. */
export function readCompressedEntries(proto: ModelProto): CompressedEntry[] {
  const raw = proto.metadataProps.find((p) => p.key === COMPRESSED_METADATA_KEY)?.value;
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return [];
    return parsed.filter((e): e is CompressedEntry =>
      e && typeof e.layer === 'string' && Array.isArray(e.factors) && e.factors.length === 2 && Array.isArray(e.originalShape));
  } catch {
    return [];
  }
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

// The common inventory of state-dict formats (PyTorch checkpoints, safetensors): a flat list of
// named tensors, no graph. Layers are found by the parameter names PyTorch modules use:
// `<module>.weight` (and `<module>.<name>_weight`, e.g. nn.MultiheadAttention's in_proj_weight)
// of 2-D shape is an nn.Linear/nn.Embedding [out, in], of 3- to 5-D a conv kernel
// [out, in/groups, k…]. The groups of a conv are not in a state dict: depthwise convs are
// recognised by name (`…dw…`/`…depthwise…` with in/groups = 1), others come from the sidecar
// file `<checkpoint>.rankscope.json` ({"groups": {"<layer or glob>": n}}), else 1.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { RankscopeError } from '../errors';
import { notFactorizableReason } from '../model/naming';
import { LazyTensor } from '../model/tensor';
import type { DType, Layer, Model, ModelFormat, ModelSummary } from '../model/types';

export interface StateDictTensor {
  /** The key as stored (before wrapper prefixes are removed). */
  key: string;
  dtype: DType;
  shape: number[];
  /** Tensors with the same alias share their bytes (tied weights): counted once. */
  alias?: string;
  load: () => Uint8Array;
}

export interface StateDictSource {
  path: string;
  fileSize: number;
  format: Exclude<ModelFormat, 'onnx'>;
  producer: { name: string; version: string };
  metadata: Record<string, string>;
  tensors: StateDictTensor[];
}

const ELEMENT_BYTES: Partial<Record<DType, number>> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, uint64: 8, int32: 4, uint32: 4, int16: 2, uint16: 2,
  int8: 1, uint8: 1, bool: 1, complex64: 8, complex128: 16, float8e4m3fn: 1, float8e5m2: 1, float8e4m3fnuz: 1, float8e5m2fnuz: 1,
};

export function elementBytes(dtype: DType): number {
  const n = ELEMENT_BYTES[dtype];
  if (n === undefined) throw new RankscopeError('UNSUPPORTED', `dtype ${dtype} has no fixed element size.`);
  return n;
}

/** Wrapper prefixes that say nothing about the model: DataParallel/DDP (`module.`), torch.compile (`_orig_mod.`). */
const WRAPPER_PREFIXES = ['module.', '_orig_mod.'];

/** The prefix every key carries, removed (repeatedly: `module.module.` from nested wrappers). */
export function commonWrapperPrefix(keys: string[]): string {
  let prefix = '';
  for (;;) {
    const next = WRAPPER_PREFIXES.find((p) => keys.length > 0 && keys.every((k) => k.startsWith(prefix + p) && k.length > prefix.length + p.length));
    if (!next) return prefix;
    prefix += next;
  }
}

/** Path of the sidecar next to a checkpoint. */
export function sidecarPath(path: string): string {
  return `${path}.rankscope.json`;
}

interface Sidecar {
  groups: [string, RegExp, number][];
}

function readSidecar(path: string): Sidecar | undefined {
  const file = sidecarPath(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const bad = (why: string) => new RankscopeError('BAD_ARGUMENT', `${basename(file)}: ${why}.`, 'Expected {"groups": {"<layer name or glob>": <groups>}}.');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  const groups = (json as { groups?: unknown })?.groups ?? {};
  if (typeof groups !== 'object' || groups === null || Array.isArray(groups)) throw bad('"groups" is not an object');
  return {
    groups: Object.entries(groups).map(([pattern, n]) => {
      if (!Number.isInteger(n) || (n as number) < 1) throw bad(`groups of '${pattern}' must be a positive integer; got ${JSON.stringify(n)}`);
      const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
      return [pattern, re, n as number];
    }),
  };
}

const DEPTHWISE = /(^|[._])(dw|depthwise|dwconv|dw_conv|conv_dw)([._\d]|$)/i;
const EMBEDDING = /(^|[._])(\w*emb\w*|wte|wpe)$/i;

/** A model read from a state dict: tensors by their (unwrapped) keys and the layers among them. */
export class StateDictModel implements Model {
  readonly summary: ModelSummary;
  readonly layers: Layer[];
  /** The wrapper prefix removed from every key (`module.`), '' when none. */
  readonly removedPrefix: string;
  private readonly tensors = new Map<string, LazyTensor>();

  constructor(source: StateDictSource) {
    this.removedPrefix = commonWrapperPrefix(source.tensors.map((t) => t.key));
    const shapes = new Map<string, StateDictTensor>();
    const counted = new Set<string>();
    let totalParams = 0;
    for (const t of source.tensors) {
      const key = t.key.slice(this.removedPrefix.length);
      this.tensors.set(key, new LazyTensor(key, t.dtype, t.shape, t.load));
      shapes.set(key, t);
      const size = t.shape.reduce((a, b) => a * b, 1);
      if (t.alias === undefined || !counted.has(t.alias)) totalParams += size;
      if (t.alias !== undefined) counted.add(t.alias);
    }
    const sidecar = readSidecar(source.path);
    const used = new Set<string>();
    this.layers = [];
    for (const [key, t] of shapes) {
      const layer = layerOf(key, t, shapes, sidecar, used, basename(sidecarPath(source.path)));
      if (layer) this.layers.push(layer);
    }
    for (const [pattern] of sidecar?.groups ?? []) {
      if (!used.has(pattern)) {
        throw new RankscopeError('BAD_ARGUMENT', `${basename(sidecarPath(source.path))} gives groups for '${pattern}', which is no conv kernel of ${basename(source.path)}.`,
          `Conv layers: ${this.layers.filter((l) => l.op === 'Conv').map((l) => l.name).slice(0, 8).join(', ') || 'none'}.`);
      }
    }
    // Tied weights (two keys, one storage) are one layer's parameters, counted once as in totalParams.
    const seen = new Set<string>();
    const factorizableParams = this.layers.filter((l) => l.factorizable).reduce((a, l) => {
      const alias = shapes.get(l.weight)?.alias;
      if (alias !== undefined && seen.has(alias)) return a;
      if (alias !== undefined) seen.add(alias);
      return a + l.params;
    }, 0);
    this.summary = {
      path: source.path,
      fileSize: source.fileSize,
      format: source.format,
      irVersion: 0,
      opsets: [],
      producer: source.producer,
      inputs: [],
      outputs: [],
      totalParams,
      factorizableParams,
      metadata: { ...source.metadata, ...(this.removedPrefix && { 'rankscope.removedPrefix': this.removedPrefix }) },
    };
  }

  tensor(name: string): LazyTensor | undefined {
    return this.tensors.get(name);
  }

  /** Every tensor's (unwrapped) key, in file order. */
  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }
}

function layerOf(key: string, t: StateDictTensor, all: Map<string, StateDictTensor>, sidecar: Sidecar | undefined, used: Set<string>, sidecarName: string): Layer | undefined {
  const match = /^(?:(.*)\.)?(\w*?)_?weight$/.exec(key);
  if (!match || t.shape.length < 2 || t.shape.length > 5 || t.shape.some((d) => d === 0)) return undefined;
  const [, module = '', param] = match;
  // `<m>.weight` → m; `<m>.in_proj_weight` → m.in_proj (the name ONNX exports give it too).
  const name = param ? (module ? `${module}.${param}` : param) : module || key;
  const biasKey = param ? `${module ? `${module}.` : ''}${param}_bias` : `${module ? `${module}.` : ''}bias`;
  const bias = all.get(biasKey);
  const biasParams = bias ? bias.shape.reduce((a, b) => a * b, 1) : 0;
  const params = t.shape.reduce((a, b) => a * b, 1);
  const common = {
    name, weight: key, tensorShape: [...t.shape], dtype: t.dtype, params, biasParams, nodes: [] as string[],
    bytes: ELEMENT_BYTES[t.dtype] !== undefined ? params * ELEMENT_BYTES[t.dtype]! : 0,
    ...(bias && { bias: biasKey }),
  };
  if (t.shape.length === 2) {
    const [out, inn] = t.shape;
    const reason = notFactorizableReason(t.dtype, out, inn);
    return { ...common, op: EMBEDDING.test(name) ? 'Gather' : 'Gemm', shape: [out, inn], layout: 'out_in', factorizable: !reason, ...(reason && { reason }) };
  }
  const [out, perGroupIn, ...kernel] = t.shape;
  let groups = 1;
  const given = sidecar?.groups.find(([, re]) => re.test(name));
  if (given) {
    used.add(given[0]);
    groups = given[2];
  } else if (perGroupIn === 1 && DEPTHWISE.test(name)) {
    groups = out;
  }
  if (out % groups !== 0) {
    throw new RankscopeError('BAD_ARGUMENT', `Layer '${name}' has ${out} output channels, which ${groups} groups do not divide.`, `Give its groups in ${sidecarName}.`);
  }
  const cols = perGroupIn * kernel.reduce((a, b) => a * b, 1);
  const reason = notFactorizableReason(t.dtype, out, cols, groups);
  return {
    ...common, op: 'Conv', shape: [out, cols], layout: 'conv', groups, kernel,
    factorizable: !reason, ...(reason && { reason }),
  };
}

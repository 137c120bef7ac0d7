// Copy-on-write editing of an ONNX graph. The input ModelProto is never mutated: the editor
// works on new node/initializer arrays and new node messages; untouched tensors are shared, so
// applying a plan in memory costs only the new factors (EVAL's sweep does this many times).
import { create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType, AttributeProtoSchema, NodeProtoSchema, ValueInfoProtoSchema,
  type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from '../formats/onnx/gen/onnx_pb';
import { attr } from '../formats/onnx/inventory';

export { attr };

/** Ops that pass a weight through unchanged in value (Transpose flips a 2-D matrix). */
const PASS_THROUGH = new Set(['Transpose', 'Cast', 'Identity']);

/** One node that consumes a weight, possibly through Transpose/Cast/Identity nodes. */
export interface WeightUse {
  node: NodeProto;
  /** Which input of `node` carries the weight. */
  input: number;
  /** The weight arrives transposed (an odd number of 2-D Transposes on the way). */
  transposed: boolean;
  /** ONNX dtype of the last Cast on the way, when there is one. */
  castTo?: number;
  /** The pass-through nodes on the way (removed when nothing else uses them). */
  via: NodeProto[];
}

export function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? Number(a.i) : fallback;
}

export function attrFloat(node: NodeProto, name: string, fallback: number): number {
  const a = attr(node, name);
  return a ? a.f : fallback;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? a.ints.map(Number) : undefined;
}

export function intAttr(name: string, value: number): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) });
}

export function floatAttr(name: string, value: number): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: value });
}

export function intsAttr(name: string, values: number[]): AttributeProto {
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: values.map(BigInt) });
}

export class GraphEditor {
  readonly graph: GraphProto;
  private readonly names = new Set<string>();
  /** Nodes to put in front of the graph (they read only initializers): factor transposes and casts. */
  private readonly prologue: NodeProto[] = [];
  private readonly replaced = new Map<NodeProto, NodeProto[]>();
  private readonly refs = new Map<string, string>();
  readonly opset: number;

  constructor(readonly model: ModelProto) {
    const source = model.graph!;
    this.graph = { ...source, node: [...source.node], initializer: [...source.initializer], input: [...source.input], valueInfo: [...source.valueInfo] };
    this.opset = Number(model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0);
    for (const n of source.node) {
      this.names.add(n.name);
      for (const o of n.output) this.names.add(o);
    }
    for (const t of source.initializer) this.names.add(t.name);
    for (const v of [...source.input, ...source.output, ...source.valueInfo]) this.names.add(v.name);
  }

  /** `base`, or `base_2`, `base_3`… : a node/tensor name not used yet. */
  unique(base: string): string {
    let name = base;
    for (let i = 2; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  node(opType: string, inputs: string[], outputs: string[], name: string, attribute: AttributeProto[] = [], domain = ''): NodeProto {
    return create(NodeProtoSchema, { opType, input: inputs, output: outputs, name: this.unique(name), attribute, domain });
  }

  addInitializer(tensor: TensorProto): void {
    this.names.add(tensor.name);
    this.graph.initializer.push(tensor);
    // IR < 4 requires every initializer to be listed as a graph input too.
    if (this.model.irVersion < 4n) {
      this.graph.input.push(create(ValueInfoProtoSchema, {
        name: tensor.name,
        type: { value: { case: 'tensorType' as const, value: { elemType: tensor.dataType, shape: { dim: tensor.dims.map((d) => ({ value: { case: 'dimValue' as const, value: d } })) } } } },
      }));
    }
  }

  /** Swaps an initializer for a new tensor of the same name (re-compression). */
  replaceInitializer(tensor: TensorProto): void {
    const index = this.graph.initializer.findIndex((t) => t.name === tensor.name);
    this.graph.initializer[index] = tensor;
  }

  /** Nodes that read only initializers, put in front of the graph. */
  prepend(nodes: NodeProto[]): void {
    for (const n of nodes) {
      this.names.add(n.name);
      for (const o of n.output) this.names.add(o);
    }
    this.prologue.push(...nodes);
  }

  /** The node named `name` in the graph (before edits). */
  findNode(name: string): NodeProto | undefined {
    return this.graph.node.find((n) => n.name === name);
  }

  initializer(name: string): TensorProto | undefined {
    return this.graph.initializer.find((t) => t.name === name);
  }

  /** The weight tensor `name` as the consumers see it: the name itself, or a Transpose/Cast of it (made once). */
  ref(name: string, transposed: boolean, castTo?: number): string {
    const key = `${name}|${transposed}|${castTo ?? ''}`;
    let out = this.refs.get(key);
    if (out) return out;
    out = name;
    if (castTo !== undefined) {
      const cast = this.unique(`${name}.cast`);
      this.prologue.push(this.node('Cast', [out], [cast], `${name}/Cast`, [intAttr('to', castTo)]));
      out = cast;
    }
    if (transposed) {
      const t = this.unique(`${name}.T`);
      this.prologue.push(this.node('Transpose', [out], [t], `${name}/Transpose`, [intsAttr('perm', [1, 0])]));
      out = t;
    }
    this.refs.set(key, out);
    return out;
  }

  /** Every direct or pass-through use of tensor `name` in the main graph; `others` lists the uses we cannot follow. */
  uses(name: string): { uses: WeightUse[]; others: string[] } {
    const uses: WeightUse[] = [];
    const others: string[] = [];
    const graphOutputs = new Set(this.graph.output.map((o) => o.name));
    const walk = (tensor: string, transposed: boolean, castTo: number | undefined, via: NodeProto[]) => {
      if (graphOutputs.has(tensor)) others.push(`graph output ${tensor}`);
      for (const node of this.graph.node) {
        node.input.forEach((input, index) => {
          if (input !== tensor) return;
          if (PASS_THROUGH.has(node.opType) && node.domain === '') {
            const perm = attrInts(node, 'perm');
            const flips = node.opType === 'Transpose' && (perm === undefined || (perm.length === 2 && perm[0] === 1));
            if (node.opType === 'Transpose' && !flips) {
              others.push(`${node.opType} ${node.name}`);
              return;
            }
            const cast = node.opType === 'Cast' ? attrInt(node, 'to', 0) : castTo;
            walk(node.output[0], transposed !== flips, cast, [...via, node]);
          } else {
            uses.push({ node, input: index, transposed, castTo, via });
          }
        });
      }
    };
    walk(name, false, undefined, []);
    if (subgraphsReference(this.graph, name)) others.push('a subgraph');
    return { uses, others };
  }

  /** Puts `nodes` where `old` was (keeps the graph topologically sorted). */
  replace(old: NodeProto, nodes: NodeProto[]): void {
    this.replaced.set(old, nodes);
  }

  /** Applies the replacements and drops `candidates` (pass-through nodes, initializers, Constant
   *  nodes) that nothing references any more. Returns the edited model (a new message). */
  finish(candidates: { nodes: NodeProto[]; tensors: string[] }): ModelProto {
    let nodes = [...this.prologue, ...this.graph.node.flatMap((n) => this.replaced.get(n) ?? [n])];
    const deadNodes = new Set<NodeProto>();
    // Remove dead pass-through chains back to front: a later node's removal frees its input.
    for (let changed = true; changed;) {
      changed = false;
      const used = referencedNames(nodes, this.graph);
      for (const n of [...candidates.nodes, ...nodes.filter((x) => x.opType === 'Constant' && candidates.tensors.includes(x.output[0]))]) {
        if (!deadNodes.has(n) && n.output.every((o) => !used.has(o))) {
          deadNodes.add(n);
          changed = true;
        }
      }
      nodes = nodes.filter((n) => !deadNodes.has(n));
    }
    const deadOutputs = new Set([...deadNodes].flatMap((n) => n.output));
    const used = referencedNames(nodes, this.graph);
    const dropped = new Set(candidates.tensors.filter((t) => !used.has(t)));
    const graph: GraphProto = {
      ...this.graph,
      node: nodes,
      initializer: this.graph.initializer.filter((t) => !dropped.has(t.name)),
      // value_info of tensors that no longer exist would confuse shape inference.
      valueInfo: this.graph.valueInfo.filter((v) => !dropped.has(v.name) && !deadOutputs.has(v.name)),
      input: this.graph.input.filter((v) => !dropped.has(v.name)),
    };
    return { ...this.model, graph };
  }
}

/** Names read by any node (including nodes of subgraphs) or exported as graph outputs. */
function referencedNames(nodes: NodeProto[], graph: GraphProto): Set<string> {
  const used = new Set<string>(graph.output.map((o) => o.name));
  const visit = (list: NodeProto[]) => {
    for (const n of list) {
      for (const i of n.input) used.add(i);
      for (const a of n.attribute) {
        if (a.g) { visit(a.g.node); for (const o of a.g.output) used.add(o.name); }
        for (const g of a.graphs) { visit(g.node); for (const o of g.output) used.add(o.name); }
      }
    }
  };
  visit(nodes);
  return used;
}

function subgraphsReference(graph: GraphProto, name: string): boolean {
  const inGraph = (g: GraphProto): boolean => g.node.some((n) => n.input.includes(name) || n.attribute.some((a) => (a.g && inGraph(a.g)) || a.graphs.some(inGraph)));
  return graph.node.some((n) => n.attribute.some((a) => (a.g && inGraph(a.g)) || a.graphs.some(inGraph)));
}

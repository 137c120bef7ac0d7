// Copy-on-write editing of an ONNX model's graphs. The input ModelProto is never mutated: the
// editor works on new node/initializer arrays and new node messages; untouched tensors are
// shared, so applying a plan in memory costs only the new factors (EVAL's sweep does this many
// times). Weights used inside subgraphs (If branches, Loop/Scan bodies) are rewritten there; new
// factors go to the main graph's initializers, which every subgraph sees.
import { create } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType, AttributeProtoSchema, NodeProtoSchema, ValueInfoProtoSchema,
  type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto,
} from '../formats/onnx/gen/onnx_pb';
import { type GraphScope, graphScopes, tensorKeyIn, type TensorSite, tensorSites } from '../formats/onnx';
import { attr } from '../formats/onnx/inventory';

export { attr };

/** Ops that pass a weight through unchanged in value (Transpose flips a 2-D matrix; Reshape
 * with a constant shape re-reads the stored values as the matrix the node sees). */
const PASS_THROUGH = new Set(['Transpose', 'Cast', 'Identity', 'Reshape']);

/** One node that consumes a weight, possibly through Transpose/Cast/Identity/Reshape nodes. */
export interface WeightUse {
  node: NodeProto;
  /** The graph the node is in (the main graph or a subgraph). */
  scope: GraphScope;
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
  /** The main graph (a copy: new node/initializer/input/value_info arrays). */
  readonly graph: GraphProto;
  /** Every graph of the source model; subgraphs are rebuilt by finish() only where edited. */
  private readonly scopes: GraphScope[];
  private readonly sites = new Map<string, TensorSite>();
  private readonly children = new Map<NodeProto, GraphScope[]>();
  private readonly names = new Set<string>();
  /** Nodes to put in front of the main graph (they read only initializers): factor transposes and casts. */
  private readonly prologue: NodeProto[] = [];
  private readonly replaced = new Map<NodeProto, NodeProto[]>();
  private readonly refs = new Map<string, string>();
  readonly opset: number;

  constructor(readonly model: ModelProto) {
    const source = model.graph!;
    this.graph = { ...source, node: [...source.node], initializer: [...source.initializer], input: [...source.input], valueInfo: [...source.valueInfo] };
    this.opset = Number(model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0);
    this.scopes = graphScopes(model);
    for (const site of tensorSites(this.scopes)) this.sites.set(site.key, site);
    // New names must be unique in every graph: a subgraph name equal to a factor's would shadow it.
    for (const scope of this.scopes) {
      const g = scope.graph;
      if (scope.owner) (this.children.get(scope.owner.node) ?? this.children.set(scope.owner.node, []).get(scope.owner.node)!).push(scope);
      for (const name of scope.defined) this.names.add(name);
      for (const n of g.node) this.names.add(n.name);
      for (const v of [...g.output, ...g.valueInfo]) this.names.add(v.name);
    }
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

  /** Adds an initializer to the main graph, which every subgraph sees (outer scope). */
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

  /** Swaps a main-graph initializer for a new tensor of the same name (re-compression). */
  replaceInitializer(tensor: TensorProto): void {
    const index = this.graph.initializer.findIndex((t) => t.name === tensor.name);
    this.graph.initializer[index] = tensor;
  }

  /** Nodes that read only initializers, put in front of the main graph. */
  prepend(nodes: NodeProto[]): void {
    for (const n of nodes) {
      this.names.add(n.name);
      for (const o of n.output) this.names.add(o);
    }
    this.prologue.push(...nodes);
  }

  /** The node named `name` in any graph (before edits). */
  findNode(name: string): NodeProto | undefined {
    for (const scope of this.scopes) {
      const n = scope.graph.node.find((x) => x.name === name);
      if (n) return n;
    }
    return undefined;
  }

  initializer(name: string): TensorProto | undefined {
    return this.graph.initializer.find((t) => t.name === name);
  }

  /** The name the tensor `key` (OnnxModel's key) has in the graph that defines it. */
  localName(key: string): string {
    return this.sites.get(key)?.local ?? key;
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

  /**
   * Every direct or pass-through use of the tensor `key` (OnnxModel's key), in the graph that
   * defines it and in every subgraph below that does not shadow its name; `others` lists the
   * uses we cannot follow.
   */
  uses(key: string): { uses: WeightUse[]; others: string[] } {
    const uses: WeightUse[] = [];
    const others: string[] = [];
    const site = this.sites.get(key);
    const walk = (scope: GraphScope, tensor: string, transposed: boolean, castTo: number | undefined, via: NodeProto[]) => {
      if (scope.graph.output.some((o) => o.name === tensor)) others.push(`graph output ${tensor}${scope.parent ? ` (${scope.where})` : ''}`);
      for (const node of scope.graph.node) {
        node.input.forEach((input, index) => {
          if (input !== tensor) return;
          if (PASS_THROUGH.has(node.opType) && node.domain === '') {
            const perm = attrInts(node, 'perm');
            const flips = node.opType === 'Transpose' && (perm === undefined || (perm.length === 2 && perm[0] === 1));
            if (node.opType === 'Transpose' && !flips) {
              others.push(`${node.opType} ${node.name}`);
              return;
            }
            // A Reshape re-reads the stored values; only before any Transpose, with a constant shape.
            if (node.opType === 'Reshape' && (index !== 0 || via.some((v) => v.opType === 'Transpose') || !this.isConstant(scope, node.input[1]))) {
              others.push(`${node.opType} ${node.name}`);
              return;
            }
            const cast = node.opType === 'Cast' ? attrInt(node, 'to', 0) : castTo;
            walk(scope, node.output[0], transposed !== flips, cast, [...via, node]);
          } else {
            uses.push({ node, scope, input: index, transposed, castTo, via });
          }
        });
        for (const child of this.children.get(node) ?? []) {
          if (!child.defined.has(tensor)) walk(child, tensor, transposed, castTo, via);
        }
      }
    };
    walk(site?.scope ?? this.scopes[0], site?.local ?? key, false, undefined, []);
    return { uses, others };
  }

  private isConstant(scope: GraphScope, name: string | undefined): boolean {
    const key = name ? tensorKeyIn(scope, name) : undefined;
    return key !== undefined && this.sites.get(key)?.tensor !== undefined;
  }

  /** Puts `nodes` where `old` was, in old's graph (keeps the graph topologically sorted). */
  replace(old: NodeProto, nodes: NodeProto[]): void {
    this.replaced.set(old, nodes);
  }

  /**
   * Applies the replacements in every graph and drops the candidates that nothing references
   * any more: `nodes` (pass-through nodes) and `tensors` (OnnxModel keys of initializers,
   * Constant and ConstantOfShape outputs). Returns the edited model
   * (a new message; untouched tensors are shared).
   */
  finish(candidates: { nodes: NodeProto[]; tensors: string[] }): ModelProto {
    // (Shape tensors of a fill or a Reshape stay: the plan's totals count only the weights, and
    // restore puts a Reshape back reading its shape.)
    const deadCandidates = new Set(candidates.nodes);
    const tensorSitesToDrop: TensorSite[] = [];
    for (const key of candidates.tensors) {
      const site = this.sites.get(key);
      if (!site) continue; // a tensor added by this editor
      if (site.node) deadCandidates.add(site.node);
      else tensorSitesToDrop.push(site);
    }
    const dead = new Set<NodeProto>();
    const main = this.scopes[0];
    let tree = this.rebuild(main, this.graph, dead, new Map());
    // Remove dead chains back to front: a later node's removal frees its input.
    for (let changed = true; changed;) {
      changed = false;
      const used = referencedNames(tree);
      for (const n of deadCandidates) {
        if (!dead.has(n) && n.output.every((o) => !used.has(o))) {
          dead.add(n);
          changed = true;
        }
      }
      if (changed) tree = this.rebuild(main, this.graph, dead, new Map());
    }
    const used = referencedNames(tree);
    const dropped = new Map<GraphScope, Set<string>>();
    for (const site of tensorSitesToDrop) {
      if (used.has(site.local)) continue;
      (dropped.get(site.scope) ?? dropped.set(site.scope, new Set()).get(site.scope)!).add(site.local);
    }
    return { ...this.model, graph: this.rebuild(main, this.graph, dead, dropped) };
  }

  /** `graph` (the scope's graph, or the edited copy of the main graph) with edits, dead nodes and dropped tensors applied, subgraphs too. */
  private rebuild(scope: GraphScope, graph: GraphProto, dead: Set<NodeProto>, dropped: Map<GraphScope, Set<string>>): GraphProto {
    const isMain = !scope.parent;
    const gone = dropped.get(scope) ?? new Set<string>();
    const deadOutputs = new Set([...dead].flatMap((n) => n.output));
    const nodes = [...(isMain ? this.prologue : []), ...graph.node.flatMap((n) => this.replaced.get(n) ?? [n])]
      .filter((n) => !dead.has(n))
      .map((n) => {
        const inner = this.children.get(n);
        if (!inner) return n;
        // Rebuild the node's subgraphs: a copy of the node with copies of its graph attributes.
        const byGraph = new Map(inner.map((c) => [c.graph, c]));
        const attribute = n.attribute.map((a) => {
          if (!a.g && !a.graphs.length) return a;
          return { ...a, g: a.g && this.rebuild(byGraph.get(a.g)!, a.g, dead, dropped), graphs: a.graphs.map((g) => this.rebuild(byGraph.get(g)!, g, dead, dropped)) };
        });
        return { ...n, attribute };
      });
    return {
      ...graph,
      node: nodes,
      initializer: gone.size ? graph.initializer.filter((t) => !gone.has(t.name)) : graph.initializer,
      // value_info of tensors that no longer exist would confuse shape inference.
      valueInfo: graph.valueInfo.filter((v) => !gone.has(v.name) && !deadOutputs.has(v.name)),
      // (IR < 4 lists the main graph's initializers as inputs; a subgraph's inputs are its parameters.)
      input: isMain && gone.size ? graph.input.filter((v) => !gone.has(v.name)) : graph.input,
    };
  }
}

/** Names read by any node (including nodes of subgraphs) or exported as graph outputs. */
function referencedNames(graph: GraphProto): Set<string> {
  const used = new Set<string>();
  const visit = (g: GraphProto) => {
    for (const o of g.output) used.add(o.name);
    for (const n of g.node) {
      for (const i of n.input) used.add(i);
      for (const a of n.attribute) {
        if (a.g) visit(a.g);
        for (const sub of a.graphs) visit(sub);
      }
    }
  };
  visit(graph);
  return used;
}

// The graphs of a model and their scopes: the main graph and every subgraph held in a node
// attribute (If branches, Loop/Scan bodies, nested ones too). A subgraph sees the names of the
// graphs around it (outer scope), so a weight used in a Loop body may be an initializer of the
// main graph. Reading, validation, the inventory and the rewrite all resolve names here.
import type { GraphProto, ModelProto, NodeProto, TensorProto } from './gen/onnx_pb';

export interface GraphScope {
  graph: GraphProto;
  /** The graph around this one (undefined for the main graph). */
  parent?: GraphScope;
  /** The node whose attribute holds this graph, and the attribute's name. */
  owner?: { node: NodeProto; attribute: string };
  /** Where the graph is, for messages: `the main graph`, `If '/If' then_branch`, nested with ' > '. */
  where: string;
  /** Names defined in this graph: its inputs, (sparse) initializers and node outputs. */
  defined: Set<string>;
  /** Node output → the node producing it (this graph only). */
  producer: Map<string, NodeProto>;
  /** Local name → key in OnnxModel's tensor map, for weight-like tensors defined here. */
  tensorKeys: Map<string, string>;
}

/** A weight-like tensor: an initializer, a Constant node's value, or a ConstantOfShape fill. */
export interface TensorSite {
  /** Unique over the model: the local name, or `name@where` when a sibling subgraph took it first. */
  key: string;
  local: string;
  scope: GraphScope;
  /** The initializer or the Constant's value (absent for ConstantOfShape). */
  tensor?: TensorProto;
  /** The Constant/ConstantOfShape node that produces it. */
  node?: NodeProto;
}

/** The graph attributes of a node (GRAPH and GRAPHS), with attribute names. */
export function subgraphsOf(node: NodeProto): { attribute: string; graph: GraphProto }[] {
  const out: { attribute: string; graph: GraphProto }[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push({ attribute: a.name, graph: a.g });
    a.graphs.forEach((graph, i) => out.push({ attribute: `${a.name}[${i}]`, graph }));
  }
  return out;
}

/** The default-domain op types whose output is a weight-like constant. */
export function isConstantNode(node: NodeProto): boolean {
  return (!node.domain || node.domain === 'ai.onnx') && (node.opType === 'Constant' || node.opType === 'ConstantOfShape');
}

/** Every graph of the model, main graph first, then subgraphs depth-first in node order. */
export function graphScopes(proto: ModelProto): GraphScope[] {
  const scopes: GraphScope[] = [];
  const visit = (graph: GraphProto, parent: GraphScope | undefined, owner: GraphScope['owner']) => {
    const where = !parent ? 'the main graph'
      : `${parent.parent ? `${parent.where} > ` : ''}${owner!.node.opType} '${owner!.node.name || owner!.node.output[0] || ''}' ${owner!.attribute}`;
    const scope: GraphScope = { graph, parent, owner, where, defined: new Set(), producer: new Map(), tensorKeys: new Map() };
    for (const v of graph.input) scope.defined.add(v.name);
    for (const t of graph.initializer) scope.defined.add(t.name);
    for (const t of graph.sparseInitializer) if (t.values) scope.defined.add(t.values.name);
    for (const n of graph.node) {
      for (const o of n.output) {
        if (!o) continue;
        scope.defined.add(o);
        scope.producer.set(o, n);
      }
    }
    scopes.push(scope);
    for (const n of graph.node) for (const s of subgraphsOf(n)) visit(s.graph, scope, { node: n, attribute: s.attribute });
  };
  if (proto.graph) visit(proto.graph, undefined, undefined);
  return scopes;
}

/** The nearest scope (this one or an outer one) that defines `name`. */
export function definingScope(scope: GraphScope, name: string): GraphScope | undefined {
  for (let s: GraphScope | undefined = scope; s; s = s.parent) if (s.defined.has(name)) return s;
  return undefined;
}

/** The tensor key `name` refers to when read in `scope`, if it names a weight-like tensor. */
export function tensorKeyIn(scope: GraphScope, name: string): string | undefined {
  return definingScope(scope, name)?.tensorKeys.get(name);
}

/** The node producing `name` as seen from `scope` (with the scope it lives in). */
export function producerIn(scope: GraphScope, name: string): { node: NodeProto; scope: GraphScope } | undefined {
  const s = definingScope(scope, name);
  const node = s?.producer.get(name);
  return node && s ? { node, scope: s } : undefined;
}

/**
 * Every weight-like tensor of every graph, with a model-unique key. Names are unique along a
 * scope chain (SSA), but sibling subgraphs (an If's two branches) may reuse one: the first
 * definition in graph order keeps the bare name. Fills `tensorKeys` of each scope.
 */
export function tensorSites(scopes: GraphScope[]): TensorSite[] {
  const sites: TensorSite[] = [];
  const taken = new Set<string>();
  const add = (scope: GraphScope, local: string, tensor?: TensorProto, node?: NodeProto) => {
    if (scope.tensorKeys.has(local)) return; // duplicates are refused by validation; keep the first
    let key = local;
    if (taken.has(key)) key = `${local}@${scope.where}`;
    for (let i = 2; taken.has(key); i++) key = `${local}@${scope.where}#${i}`;
    taken.add(key);
    scope.tensorKeys.set(local, key);
    sites.push({ key, local, scope, tensor, node });
  };
  for (const scope of scopes) {
    for (const t of scope.graph.initializer) add(scope, t.name, t);
    for (const n of scope.graph.node) {
      const out = n.output[0];
      if (!out || !isConstantNode(n)) continue;
      if (n.opType === 'Constant') {
        const value = n.attribute.find((a) => a.name === 'value')?.t;
        if (value) add(scope, out, value, n);
      } else {
        add(scope, out, undefined, n);
      }
    }
  }
  return sites;
}

/** Names a graph's nodes read from outside it (outer-scope references), nested subgraphs included. */
export function outerReferences(graph: GraphProto): Set<string> {
  const defined = new Set<string>([...graph.input.map((v) => v.name), ...graph.initializer.map((t) => t.name),
    ...graph.sparseInitializer.flatMap((t) => (t.values ? [t.values.name] : []))]);
  for (const n of graph.node) for (const o of n.output) if (o) defined.add(o);
  const refs = new Set<string>();
  for (const n of graph.node) {
    for (const i of n.input) if (i && !defined.has(i)) refs.add(i);
    for (const s of subgraphsOf(n)) for (const r of outerReferences(s.graph)) if (!defined.has(r)) refs.add(r);
  }
  for (const o of graph.output) if (!defined.has(o.name)) refs.add(o.name);
  return refs;
}

// Structural validation right after decoding, before any work: what ONNX Runtime would refuse
// (or what would make our numbers wrong) is refused here with what is wrong and where.
// Checked in every graph, subgraphs included: every value defined once, every node input and
// graph output defined (graph input, initializer, node output, outer-scope value, or '' for an
// omitted optional input), no cycle, and every in-file tensor's dims and data consistent.
// External data is checked when the model is opened (tensorData.checkExternal).
import { RankscopeError } from '../../errors';
import { dtypeOf, elementBits, rawByteLength } from './dtypes';
import { type ModelProto, type NodeProto, type TensorProto, TensorProto_DataLocation } from './gen/onnx_pb';
import { definingScope, type GraphScope, graphScopes, outerReferences, subgraphsOf } from './graphs';

/** Throws CORRUPT naming the first problem found (what and where); returns the scopes it built. */
export function validateModel(proto: ModelProto, file: string): GraphScope[] {
  const scopes = graphScopes(proto);
  const fail = (what: string): never => {
    throw new RankscopeError('CORRUPT', `${file} is not a valid ONNX model: ${what}.`, INVALID_HINT);
  };
  checkOpsetImports(proto, scopes, fail);
  for (const scope of scopes) {
    checkDefinitions(scope, fail);
    checkReferences(scope, fail);
    checkAcyclic(scope, fail);
    for (const t of scope.graph.initializer) checkTensor(t, `initializer '${t.name}' in ${scope.where}`, fail);
    for (const n of scope.graph.node) {
      for (const a of n.attribute) {
        const at = `attribute '${a.name}' of node ${describe(n)} in ${scope.where}`;
        if (a.t) checkTensor(a.t, at, fail);
        a.tensors.forEach((t, i) => checkTensor(t, `${at}[${i}]`, fail));
      }
    }
  }
  return scopes;
}

const INVALID_HINT = 'Re-export the model, or fix the tool that wrote it.';

/** Every operator domain a node uses is imported (opset_import exists since IR version 3). */
function checkOpsetImports(proto: ModelProto, scopes: GraphScope[], fail: (what: string) => never): void {
  if (proto.irVersion < 3n) return;
  const domain = (d: string) => (d === 'ai.onnx' ? '' : d);
  const imported = new Set(proto.opsetImport.map((o) => domain(o.domain)));
  for (const scope of scopes) {
    for (const n of scope.graph.node) {
      if (!imported.has(domain(n.domain))) {
        fail(`node ${describe(n)} in ${scope.where} uses the operator domain '${n.domain || 'ai.onnx'}', which the model's opset_import does not list`);
      }
    }
  }
}

function describe(n: NodeProto): string {
  return `'${n.name || n.output[0] || '?'}' (${n.opType})`;
}

/** Each value is assigned once in a graph (SSA); an initializer may also be listed as an input. */
function checkDefinitions(scope: GraphScope, fail: (what: string) => never): void {
  const g = scope.graph;
  const initializers = new Set<string>();
  for (const t of g.initializer) {
    if (initializers.has(t.name)) fail(`two initializers are named '${t.name}' in ${scope.where}`);
    initializers.add(t.name);
  }
  const inputs = new Set<string>();
  for (const v of g.input) {
    if (inputs.has(v.name)) fail(`two graph inputs are named '${v.name}' in ${scope.where}`);
    inputs.add(v.name);
  }
  const producedBy = new Map<string, NodeProto>();
  for (const n of g.node) {
    for (const o of n.output) {
      if (!o) continue;
      const other = producedBy.get(o);
      if (other) fail(`'${o}' is produced by two nodes in ${scope.where}, ${describe(other)} and ${describe(n)}`);
      if (initializers.has(o) || inputs.has(o)) fail(`node ${describe(n)} in ${scope.where} produces '${o}', which is also a graph input or initializer`);
      producedBy.set(o, n);
    }
  }
}

/** Every node input and graph output names something defined here or in an outer graph. */
function checkReferences(scope: GraphScope, fail: (what: string) => never): void {
  for (const n of scope.graph.node) {
    for (const i of n.input) {
      if (i && !definingScope(scope, i)) {
        fail(`node ${describe(n)} in ${scope.where} reads '${i}', which no node, graph input or initializer defines`);
      }
    }
  }
  for (const o of scope.graph.output) {
    if (!definingScope(scope, o.name)) fail(`output '${o.name}' of ${scope.where} is not produced by anything`);
  }
}

/** Kahn's algorithm over the graph's nodes (a subgraph's outer references count as its owner's inputs). */
function checkAcyclic(scope: GraphScope, fail: (what: string) => never): void {
  const nodes = scope.graph.node;
  const index = new Map(nodes.map((n, i) => [n, i]));
  const deps = nodes.map((n) => {
    const names = new Set(n.input.filter(Boolean));
    for (const s of subgraphsOf(n)) for (const r of outerReferences(s.graph)) names.add(r);
    const producers = new Set<number>();
    for (const name of names) {
      const p = scope.producer.get(name);
      if (p) producers.add(index.get(p)!);
    }
    return producers;
  });
  const users: number[][] = nodes.map(() => []);
  const waiting = deps.map((d) => d.size);
  deps.forEach((d, i) => d.forEach((p) => users[p].push(i)));
  const ready = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  let done = 0;
  while (ready.length) {
    const i = ready.pop()!;
    done++;
    for (const u of users[i]) if (--waiting[u] === 0) ready.push(u);
  }
  if (done === nodes.length) return;
  // Walk back along unfinished dependencies until a node repeats: that is a cycle.
  let at = waiting.findIndex((w) => w > 0);
  const seen: number[] = [];
  while (!seen.includes(at)) {
    seen.push(at);
    at = [...deps[at]].find((p) => waiting[p] > 0)!;
  }
  const cycle = seen.slice(seen.indexOf(at)).reverse();
  fail(`${scope.where} has a cycle: ${[...cycle, cycle[0]].map((i) => describe(nodes[i])).join(' → ')}`);
}

/** Non-negative dims, a countable size, and in-file data that holds exactly that many elements. */
function checkTensor(t: TensorProto, where: string, fail: (what: string) => never): void {
  if (t.dims.some((d) => d < 0n)) fail(`${where} has a negative dimension [${t.dims.join(', ')}]`);
  const count = t.dims.reduce((a, d) => a * d, 1n);
  if (count > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${where} claims ${count} elements [${t.dims.join(', ')}]`);
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) return;
  const n = Number(count);
  const dtype = dtypeOf(t.dataType);
  if (dtype === 'string') {
    if (t.stringData.length !== n) fail(`${where} is a string tensor of ${n} elements holding ${t.stringData.length}`);
    return;
  }
  if (elementBits(dtype) === 0) {
    if (n > 0) fail(`${where} has no known data type (data_type ${t.dataType})`);
    return;
  }
  const expected = rawByteLength(dtype, n);
  if (t.rawData.length > 0) {
    if (t.rawData.length !== expected) {
      fail(`${where} (${dtype} [${t.dims.join(', ')}]) holds ${t.rawData.length} bytes of raw_data, expected ${expected}`);
    }
    return;
  }
  const held = typedFieldCount(t, dtype);
  // 4-bit types pack two elements per int32_data entry; complex types store two numbers per element.
  const want = elementBits(dtype) === 4 ? Math.ceil(n / 2) : dtype.startsWith('complex') ? 2 * n : n;
  if (held !== want) {
    fail(held === 0
      ? `${where} (${dtype} [${t.dims.join(', ')}]) holds no data for its ${n} elements`
      : `${where} (${dtype} [${t.dims.join(', ')}]) holds ${held} values, expected ${want}`);
  }
}

function typedFieldCount(t: TensorProto, dtype: string): number {
  switch (dtype) {
    case 'float32': case 'complex64': return t.floatData.length;
    case 'float64': case 'complex128': return t.doubleData.length;
    case 'int64': return t.int64Data.length;
    case 'uint64': case 'uint32': return t.uint64Data.length;
    default: return t.int32Data.length;
  }
}

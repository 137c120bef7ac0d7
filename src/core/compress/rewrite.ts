// The graph rewrite: one weight W becomes two factors and each node that used W becomes two nodes
// (MatMul, Gemm, Conv, Gather), exact in shape and semantics. Also the inverse (restore).
//
// Factor storage. The [out, in] matrix M ≈ A (out×k) · B (k×in). Each factor is stored in the
// layout of the original weight: `out_in` (and Gather) stores A [out,k], B [k,in]; `in_out`
// (PyTorch's pre-transposed Linear) stores Aᵀ [k,out], Bᵀ [in,k]; `conv` stores A as a 1×…×1
// kernel [out, k, 1…] and B as [groups·k, in/groups, kernel…]. For 2-D weights the stored W is then
// F1·F2 with (F1, F2) = (A, B) for out_in and (B, A) for in_out: rewiring only needs F1/F2.
import type { DType, Layer, MatrixLayout } from '../model/types';
import { dtypeOf, makeTensorProto } from '../formats/onnx';
import { RankscopeError } from '../errors';
import type { NodeProto } from '../formats/onnx/gen/onnx_pb';
import { attr, attrFloat, attrInt, floatAttr, GraphEditor, intAttr, intsAttr, type WeightUse } from './graph';

/** The factor tensor names of one layer and which is F1/F2 of the stored 2-D weight. */
export interface FactorNames {
  a: string;
  b: string;
  layout: MatrixLayout;
}

const f1Of = (f: FactorNames) => (f.layout === 'in_out' ? f.b : f.a);
const f2Of = (f: FactorNames) => (f.layout === 'in_out' ? f.a : f.b);

/** Why this weight's uses cannot be rewritten, or undefined when every use can. */
export function unsupportedUse(editor: GraphEditor, layer: Pick<Layer, 'weight' | 'layout'>): string | undefined {
  const { uses, others } = editor.uses(layer.weight);
  if (others.length) return `the weight is also used by ${others.join(', ')}`;
  if (!uses.length) return 'no node uses the weight';
  for (const use of uses) {
    const reason = useProblem(use, layer.layout);
    if (reason) return reason;
  }
  // Every use must see the same matrix: the same Reshape (if any) on the way.
  const reshapes = (use: WeightUse) => use.via.filter((v) => v.opType === 'Reshape');
  const first = reshapes(uses[0]);
  if (uses.some((u) => { const r = reshapes(u); return r.length !== first.length || r.some((v, i) => v !== first[i]); })) {
    return 'the weight is reshaped differently for different users';
  }
  return undefined;
}

function useProblem(use: WeightUse, layout: MatrixLayout): string | undefined {
  const { node, input } = use;
  if (node.domain !== '' && node.domain !== 'ai.onnx') return `used by ${node.domain}.${node.opType}`;
  if (layout === 'conv' && node.opType !== 'Conv') return `a Conv kernel also used by ${node.opType} ${node.name}`;
  switch (node.opType) {
    case 'MatMul': return input <= 1 ? undefined : 'unexpected MatMul input';
    case 'Gemm': return input <= 1 ? undefined : 'the weight is a Gemm bias';
    case 'Conv': return input === 1 && !use.transposed && layout === 'conv' ? undefined : 'a Conv weight reached through a Transpose';
    case 'Gather': return input === 0 && attrInt(node, 'axis', 0) === 0 ? undefined : 'a Gather on an axis other than 0';
    default: return `used by ${node.opType} ${node.name}`;
  }
}

/** Rewires every use of `weight` to the factors (already added as initializers). */
export function rewireUses(editor: GraphEditor, weight: string, factors: FactorNames, layerName: string, dtype: DType): { via: NodeProto[]; rewritten: RewrittenUse[] } {
  const { uses } = editor.uses(weight);
  const via: NodeProto[] = [];
  const rewritten: RewrittenUse[] = [];
  for (const use of uses) {
    for (const v of use.via) if (!via.includes(v)) via.push(v);
    const base = uses.length > 1 ? `${layerName}.lowrank${uses.indexOf(use) + 1}` : `${layerName}.lowrank`;
    const pair = rewriteUse(editor, use, factors, base, dtype);
    editor.replace(use.node, pair);
    rewritten.push({ original: use.node, pair: [pair[0].name, pair[1].name] });
  }
  return { via, rewritten };
}

function rewriteUse(editor: GraphEditor, use: WeightUse, f: FactorNames, base: string, dtype: DType): NodeProto[] {
  const { node, castTo } = use;
  const out = node.output;
  const hidden = editor.unique(`${base}_h`);
  if (node.opType === 'Conv') return rewriteConv(editor, node, f, base, hidden, castTo);
  // The weight as the node sees it, E = P·Q: W = F1·F2, or Wᵀ = F2ᵀ·F1ᵀ when it arrives transposed.
  const p = use.transposed ? { name: f2Of(f), t: true } : { name: f1Of(f), t: false };
  const q = use.transposed ? { name: f1Of(f), t: true } : { name: f2Of(f), t: false };
  const ref = (x: { name: string; t: boolean }) => editor.ref(x.name, x.t, castTo);
  const plain = (x: { name: string }) => editor.ref(x.name, false, castTo);
  switch (node.opType) {
    case 'MatMul':
      return use.input === 1
        ? [editor.node('MatMul', [node.input[0], ref(p)], [hidden], `${base}_B/MatMul`), editor.node('MatMul', [hidden, ref(q)], out, `${base}_A/MatMul`)]
        : [editor.node('MatMul', [ref(q), node.input[1]], [hidden], `${base}_B/MatMul`), editor.node('MatMul', [ref(p), hidden], out, `${base}_A/MatMul`)];
    case 'Gather':
      return [
        editor.node('Gather', [ref(p), node.input[1]], [hidden], `${base}_A/Gather`, [intAttr('axis', 0)]),
        editor.node('MatMul', [hidden, ref(q)], out, `${base}_B/MatMul`),
      ];
    case 'Gemm': {
      // Transposes fold into transA/transB. op(E) = P·Q where op(E) is E or Eᵀ per the node's flag.
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const flag = use.input === 1 ? 'transB' : 'transA';
      const flipped = attrInt(node, flag, 0) === 1;
      const pe = flipped ? { name: q.name, t: !q.t } : p; // op(E) = Eᵀ = Qᵀ·Pᵀ
      const qe = flipped ? { name: p.name, t: !p.t } : q;
      const c = node.input[2] ? [node.input[2]] : [];
      const tail = [floatAttr('alpha', alpha), floatAttr('beta', beta)];
      // Gemm before opset 11 requires C: a zero scalar.
      const noC = editor.opset >= 11 ? [] : [zeroScalar(editor, base, castTo === undefined ? dtype : dtypeOf(castTo))];
      if (use.input === 1) {
        const transA = attrInt(node, 'transA', 0);
        return [
          editor.node('Gemm', [node.input[0], plain(pe), ...noC], [hidden], `${base}_B/Gemm`, [intAttr('transA', transA), intAttr('transB', pe.t ? 1 : 0)]),
          editor.node('Gemm', [hidden, plain(qe), ...c], out, `${base}_A/Gemm`, [intAttr('transB', qe.t ? 1 : 0), ...tail]),
        ];
      }
      const transB = attrInt(node, 'transB', 0);
      return [
        editor.node('Gemm', [plain(qe), node.input[1], ...noC], [hidden], `${base}_B/Gemm`, [intAttr('transA', qe.t ? 1 : 0), intAttr('transB', transB)]),
        editor.node('Gemm', [plain(pe), hidden, ...c], out, `${base}_A/Gemm`, [intAttr('transA', pe.t ? 1 : 0), ...tail]),
      ];
    }
    default:
      throw new RankscopeError('UNSUPPORTED', `Cannot rewrite ${node.opType} ${node.name}.`);
  }
}

/** Conv k×k → Conv(k·groups out channels, same kernel/strides/pads/dilations) → 1×…×1 Conv with the bias. */
function rewriteConv(editor: GraphEditor, node: NodeProto, f: FactorNames, base: string, hidden: string, castTo?: number): NodeProto[] {
  const groups = attrInt(node, 'group', 1);
  const kernelRank = attr(node, 'kernel_shape')?.ints.length ?? spatialRankOf(editor, f.b);
  const first = node.attribute.filter((a) => a.name !== 'kernel_shape' || a.ints.length > 0);
  const bias = node.input[2] ? [node.input[2]] : [];
  return [
    editor.node('Conv', [node.input[0], editor.ref(f.b, false, castTo)], [hidden], `${base}_B/Conv`, first),
    editor.node('Conv', [hidden, editor.ref(f.a, false, castTo), ...bias], node.output, `${base}_A/Conv`, [
      intAttr('group', groups), intsAttr('kernel_shape', new Array(kernelRank).fill(1)),
    ]),
  ];
}

function spatialRankOf(editor: GraphEditor, tensor: string): number {
  const t = editor.initializer(tensor);
  if (!t) throw new RankscopeError('UNSUPPORTED', `Factor ${tensor} is not an initializer.`);
  return t.dims.length - 2;
}

function zeroScalar(editor: GraphEditor, base: string, dtype: DType): string {
  const name = editor.unique(`${base}.zero`);
  editor.addInitializer(makeTensorProto(name, dtype, [1], new Float32Array(1)));
  return name;
}

/** A rewritten use: the original node (kept for restore) and the names of the pair replacing it. */
export interface RewrittenUse {
  original: NodeProto;
  pair: [string, string];
}

# Builds the layer-zoo fixture: one ONNX model with an independent branch per layer kind the
# inventory must recognise, plus the expected canonical [out, in] matrices computed by numpy.
# Usage: zoo.py OUT_DIR  (writes zoo.onnx, zoo_expected.json; prints nothing)
import json, sys, os
import numpy as np
import onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh

out = sys.argv[1]
rng = np.random.default_rng(0)
def f32(*s): return rng.standard_normal(s).astype(np.float32)

nodes, inits, inputs, outputs, expected = [], [], [], [], {}
def inp(name, shape, dt=T.FLOAT): inputs.append(h.make_tensor_value_info(name, dt, shape))
def outp(name, dt=T.FLOAT): outputs.append(h.make_value_info(name, h.make_tensor_type_proto(dt, None)))
def init(name, arr, raw=True):
    if raw: inits.append(nh.from_array(arr, name))
    else: inits.append(h.make_tensor(name, onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype], arr.shape, arr.flatten().tolist()))
def expect(layer, *mats): expected[layer] = [m.astype(np.float32).flatten().tolist() for m in mats]

# a. MatMul x·W with an opaque PyTorch initializer, bias Add after it
w = f32(16, 32); init('onnx::MatMul_7', w); b = f32(32); init('enc.layers.0.fc1.bias', b)
inp('xa', [2, 16])
nodes += [h.make_node('MatMul', ['xa', 'onnx::MatMul_7'], ['a1'], name='/enc/layers.0/fc1/MatMul'),
          h.make_node('Add', ['a1', 'enc.layers.0.fc1.bias'], ['ya'], name='/enc/layers.0/fc1/Add')]
outp('ya'); expect('enc.layers.0.fc1', w.T)
# b. MatMul W·x (weight on the left)
w = f32(8, 16); init('left.weight', w); inp('xb', [16, 4])
nodes += [h.make_node('MatMul', ['left.weight', 'xb'], ['yb'], name='/left/MatMul')]; outp('yb'); expect('left', w)
# c. Gemm transB=1 with alpha/beta/bias; Gemm transB=0
w = f32(10, 32); init('head.weight', w); init('head.bias', f32(10)); inp('xc', [3, 32])
nodes += [h.make_node('Gemm', ['xc', 'head.weight', 'head.bias'], ['yc'], name='/head/Gemm', transB=1, alpha=0.5, beta=2.0)]; outp('yc'); expect('head', w)
w = f32(32, 12); init('onnx::Gemm_9', w); inp('xc2', [3, 32])
nodes += [h.make_node('Gemm', ['xc2', 'onnx::Gemm_9'], ['yc2'], name='/proj_out/Gemm')]; outp('yc2'); expect('proj_out', w.T)
# d. Convs: 1x1, kxk, 1-D, 3-D, grouped, depthwise
def conv(name, wshape, xshape, groups=1):
    w = f32(*wshape); init(name + '.weight', w); init(name + '.bias', f32(wshape[0])); inp('x_' + name, xshape)
    nodes.append(h.make_node('Conv', ['x_' + name, name + '.weight', name + '.bias'], ['y_' + name], name='/' + name + '/Conv', group=groups))
    outp('y_' + name)
    per = wshape[0] // groups
    m = w.reshape(wshape[0], -1)
    expect(name, *[m[g * per:(g + 1) * per] for g in range(groups)])
conv('pw', (64, 32, 1, 1), [1, 32, 5, 5])
conv('conv3', (16, 8, 3, 3), [1, 8, 6, 6])
conv('conv1d', (8, 4, 5), [1, 4, 9])
conv('conv3d', (4, 2, 3, 3, 3), [1, 2, 4, 4, 4])
conv('grouped', (16, 2, 3, 3), [1, 8, 5, 5], groups=4)
conv('depthwise', (8, 1, 3, 3), [1, 8, 5, 5], groups=8)
# e. Gather embedding
w = f32(100, 16); init('embed.weight', w); inp('ids', [2, 3], T.INT64)
nodes.append(h.make_node('Gather', ['embed.weight', 'ids'], ['ye'], name='/embed/Gather')); outp('ye'); expect('embed', w)
# f. weight through Transpose (stored [out, in])
w = f32(32, 16); init('onnx::Transpose_3', w); inp('xf', [2, 16])
nodes += [h.make_node('Transpose', ['onnx::Transpose_3'], ['wt'], name='/tr/Transpose', perm=[1, 0]),
          h.make_node('MatMul', ['xf', 'wt'], ['yf'], name='/tr/MatMul')]; outp('yf'); expect('tr', w)
# g. float16 weight through Cast
w = f32(16, 24).astype(np.float16); init('onnx::Cast_4', w); inp('xg', [2, 16])
nodes += [h.make_node('Cast', ['onnx::Cast_4'], ['wc'], name='/half/Cast', to=T.FLOAT),
          h.make_node('MatMul', ['xg', 'wc'], ['yg'], name='/half/MatMul')]; outp('yg'); expect('half', w.astype(np.float32).T)
# h. Identity
w = f32(16, 20); init('ident.weight', w); inp('xh', [2, 16])
nodes += [h.make_node('Identity', ['ident.weight'], ['wi'], name='/ident/Identity'),
          h.make_node('MatMul', ['xh', 'wi'], ['yh'], name='/ident/MatMul')]; outp('yh'); expect('ident', w.T)
# i. weight held in a Constant node
w = f32(16, 8); inp('xi', [2, 16])
nodes += [h.make_node('Constant', [], ['wk'], name='/const/Constant', value=nh.from_array(w, 'wk')),
          h.make_node('MatMul', ['xi', 'wk'], ['yi'], name='/const/MatMul')]; outp('yi'); expect('const', w.T)
# j. one weight shared by two nodes
w = f32(16, 16); init('shared.weight', w); inp('xj', [2, 16])
nodes += [h.make_node('MatMul', ['xj', 'shared.weight'], ['j1'], name='/shared/MatMul'),
          h.make_node('MatMul', ['j1', 'shared.weight'], ['yj'], name='/shared/MatMul_1')]; outp('yj'); expect('shared', w.T)
# k. int8 weight through DequantizeLinear
q = rng.integers(-100, 100, (16, 12)).astype(np.int8); init('q.weight', q)
init('q.scale', np.array(0.02, np.float32)); init('q.zero', np.array(0, np.int8)); inp('xk', [2, 16])
nodes += [h.make_node('DequantizeLinear', ['q.weight', 'q.scale', 'q.zero'], ['qd'], name='/q/DequantizeLinear'),
          h.make_node('MatMul', ['xk', 'qd'], ['yk'], name='/q/MatMul')]; outp('yk')
# l. too small to save at any rank
w = f32(2, 2); init('tiny.weight', w); inp('xl', [3, 2])
nodes.append(h.make_node('MatMul', ['xl', 'tiny.weight'], ['yl'], name='/tiny/MatMul')); outp('yl')
# m. float_data (not raw) and a float64 weight in double_data
w = f32(16, 6); init('typed.weight', w, raw=False); inp('xm', [2, 16])
nodes.append(h.make_node('MatMul', ['xm', 'typed.weight'], ['ym'], name='/typed/MatMul')); outp('ym'); expect('typed', w.T)
w64 = rng.standard_normal((16, 5)); init('dbl.weight', w64, raw=False); inp('xn', [2, 16], T.DOUBLE)
nodes.append(h.make_node('MatMul', ['xn', 'dbl.weight'], ['yn'], name='/dbl/MatMul')); outp('yn', T.DOUBLE); expect('dbl', w64.T)
# n. bfloat16 weight (inventory only: stored as raw bf16 bits, cast to float)
bits = (f32(16, 7).view(np.uint32) >> 16).astype(np.uint16)
t = h.make_tensor('bf.weight', T.BFLOAT16, (16, 7), bits.tobytes(), raw=True); inits.append(t); inp('xo', [2, 16])
nodes += [h.make_node('Cast', ['bf.weight'], ['bfc'], name='/bf/Cast', to=T.FLOAT),
          h.make_node('MatMul', ['xo', 'bfc'], ['yo'], name='/bf/MatMul')]; outp('yo')
expect('bf', (bits.astype(np.uint32) << 16).view(np.float32).T)
# o. a low-rank pair written by Rankscope (W 32x16 ~ A 32x4 . B 4x16, applied as x.B^T.A^T)
init('enc.fc2.lowrank_B', f32(16, 4)); init('enc.fc2.lowrank_A', f32(4, 32)); inp('xp', [2, 16])
nodes += [h.make_node('MatMul', ['xp', 'enc.fc2.lowrank_B'], ['p1'], name='/enc/fc2/lowrank_B/MatMul'),
          h.make_node('MatMul', ['p1', 'enc.fc2.lowrank_A'], ['yp'], name='/enc/fc2/lowrank_A/MatMul')]; outp('yp')

graph = h.make_graph(nodes, 'zoo', inputs, outputs, inits, doc_string='the layer zoo graph')
model = h.make_model(graph, producer_name='rankscope-tests', producer_version='1', doc_string='zoo model',
                     opset_imports=[h.make_opsetid('', 13), h.make_opsetid('com.microsoft', 1)])
model.ir_version = 7
h.set_model_props(model, {'rankscope.compressed': json.dumps([{'layer': 'enc.fc2', 'weight': 'enc.fc2.weight',
    'factors': ['enc.fc2.lowrank_A', 'enc.fc2.lowrank_B'], 'rank': 4, 'originalShape': [32, 16], 'energyKept': 0.9,
    'method': 'svd', 'sourceFile': 'orig.onnx'}]), 'author': 'tests'})

onnx.save(model, os.path.join(out, 'zoo.onnx'))
json.dump(expected, open(os.path.join(out, 'zoo_expected.json'), 'w'))

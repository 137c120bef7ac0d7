# Structurally invalid models, written with onnx.helper (no checker): each one ONNX Runtime
# refuses to load (or to run) and Rankscope must refuse at open, naming what and where.
# Usage: invalid_models.py OUT_DIR   (writes OUT_DIR/<case>.onnx)
import os, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
F = TensorProto.FLOAT
W = numpy_helper.from_array(np.ones((16, 8), np.float32), 'fc.weight')


def save(name, nodes, inits, outputs=('y',), inputs=(('x', [2, 16]),)):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
                          [helper.make_tensor_value_info(o, F, None) for o in outputs], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]), os.path.join(out, name + '.onnx'))


def raw_tensor(name, dims, raw=b''):
    t = TensorProto()
    t.name, t.data_type = name, F
    t.dims.extend(dims)
    if raw:
        t.raw_data = raw
    return t


mm = helper.make_node('MatMul', ['x', 'fc.weight'], ['h'], name='/fc/MatMul')
# /a/Add reads c, which /b/Relu makes from /a/Add's output.
save('cycle', [mm, helper.make_node('Add', ['h', 'c'], ['a'], name='/a/Add'), helper.make_node('Relu', ['a'], ['c'], name='/b/Relu'),
               helper.make_node('Identity', ['c'], ['y'], name='/out')], [W])
save('dangling', [helper.make_node('MatMul', ['x', 'ghost'], ['y'], name='/fc/MatMul')], [W])
save('duplicate_initializer', [helper.make_node('MatMul', ['x', 'fc.weight'], ['y'], name='/fc/MatMul')],
     [W, numpy_helper.from_array(np.zeros((16, 8), np.float32), 'fc.weight')])
save('duplicate_output', [mm, helper.make_node('Relu', ['x'], ['h'], name='/relu'), helper.make_node('Identity', ['h'], ['y'])], [W])
save('negative_dims', [helper.make_node('MatMul', ['x', 'w'], ['y'], name='/fc/MatMul')], [raw_tensor('w', [16, -8], b'\0' * 512)])
save('raw_data_length', [helper.make_node('MatMul', ['x', 'w'], ['y'], name='/fc/MatMul')], [raw_tensor('w', [16, 8], b'\0' * 100)])
save('huge_no_data', [helper.make_node('MatMul', ['x', 'w'], ['y'], name='/fc/MatMul')], [raw_tensor('w', [16, 2 ** 36])])
# Inside an If's branch: a node reading a value nothing defines.
then = helper.make_graph([helper.make_node('MatMul', ['x', 'ghost'], ['t'], name='/then/MatMul')], 'then', [], [helper.make_tensor_value_info('t', F, None)])
other = helper.make_graph([helper.make_node('MatMul', ['x', 'fc.weight'], ['e'], name='/else/MatMul')], 'else', [], [helper.make_tensor_value_info('e', F, None)])
save('subgraph_dangling', [helper.make_node('If', ['cond'], ['y'], name='/If', then_branch=then, else_branch=other)], [W],
     inputs=(('x', [2, 16]),))
m = onnx.load(os.path.join(out, 'subgraph_dangling.onnx'))
m.graph.input.append(helper.make_tensor_value_info('cond', TensorProto.BOOL, []))
onnx.save(m, os.path.join(out, 'subgraph_dangling.onnx'))
# A ConstantOfShape weight whose constant shape is negative.
save('fill_negative', [helper.make_node('ConstantOfShape', ['shape'], ['w'], name='/fc/ConstantOfShape'),
                       helper.make_node('MatMul', ['x', 'w'], ['y'], name='/fc/MatMul')],
     [numpy_helper.from_array(np.array([-3, 8], np.int64), 'shape')])

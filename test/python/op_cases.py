"""Single-op ONNX models (opsets 13-18) for every op the worker supports that ONNX's PyTorch
test data does not exercise at these opsets, with inputs. `python op_cases.py DIR` writes
DIR/<case>.onnx and DIR/<case>.inputs.safetensors and prints the case names as JSON; the TS test runs
each in ONNX Runtime (the reference) and in the executor (via the TS graph export)."""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "worker", "python"))
from rankscope_worker import safetensors  # noqa: E402

rng = np.random.default_rng(0)
F = TensorProto.FLOAT
I64 = TensorProto.INT64
BOOL = TensorProto.BOOL


def f32(*shape):
    return rng.normal(size=shape).astype(np.float32)


def const(name, value):
    return numpy_helper.from_array(np.asarray(value), name)


def case(name, op, inputs, attrs=None, opset=17, inits=(), outputs=1, extra_nodes=(), out_types=None):
    """inputs: [(name, array)] fed at run time; inits: constant initializers (axes, shapes…)."""
    input_names = [n for n, _ in inputs] + [i.name for i in inits]
    node_inputs = [n for n, _ in inputs] + [i.name for i in inits]
    outs = [f"y{k}" for k in range(outputs)]
    nodes = list(extra_nodes) + [helper.make_node(op, node_inputs, outs, **(attrs or {}))]
    elem = {np.dtype(np.float32): F, np.dtype(np.int64): I64, np.dtype(np.bool_): BOOL}
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(n, elem[a.dtype], a.shape) for n, a in inputs],
        [helper.make_empty_tensor_value_info(o) for o in outs], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return name, model, {n: a for n, a in inputs}


def cases():
    x = f32(2, 3, 4, 5)
    yield case("matmul_batched", "MatMul", [("a", f32(2, 3, 4, 5)), ("b", f32(5, 6))])
    yield case("gemm_transA_alpha_beta", "Gemm", [("a", f32(4, 3)), ("b", f32(5, 4)), ("c", f32(5))],
               {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0})
    yield case("conv_same_upper_stride2", "Conv", [("x", f32(1, 2, 7, 6)), ("w", f32(4, 2, 3, 3))],
               {"auto_pad": "SAME_UPPER", "strides": [2, 2]})
    yield case("conv_asymmetric_pads_groups", "Conv", [("x", f32(1, 4, 6, 6)), ("w", f32(4, 2, 3, 2)), ("b", f32(4))],
               {"pads": [0, 1, 2, 0], "group": 2, "dilations": [1, 2]})
    for op in ("Add", "Sub", "Mul", "Div"):
        yield case(f"{op.lower()}_broadcast", op, [("a", f32(2, 3, 4)), ("b", f32(3, 1))])
    yield case("pow_scalar", "Pow", [("a", np.abs(f32(3, 4)) + 0.1), ("b", np.array(1.7, np.float32))])
    yield case("div_int_truncates", "Div", [("a", np.array([7, -7, 9, -9], np.int64)), ("b", np.array([2, 2, -4, 4], np.int64))])
    for op in ("Sqrt", "Erf", "Tanh", "Relu", "Sigmoid", "Neg", "Exp", "Abs", "Log", "Reciprocal", "Floor", "Ceil", "Softplus", "Softsign", "Sin", "Cos", "Sign"):
        a = np.abs(f32(3, 4)) + 0.1 if op in ("Sqrt", "Log", "Reciprocal") else f32(3, 4)
        yield case(op.lower(), op, [("a", a)])
    yield case("softmax_axis1_opset13", "Softmax", [("x", x)], {"axis": 1}, opset=13)
    yield case("softmax_default_axis_opset11", "Softmax", [("x", x)], {}, opset=11)
    yield case("logsoftmax_last", "LogSoftmax", [("x", x)], {"axis": -1})
    yield case("layernorm_axis2", "LayerNormalization", [("x", x), ("s", f32(4, 5)), ("b", f32(4, 5))], {"axis": 2, "epsilon": 1e-3})
    yield case("layernorm_no_bias", "LayerNormalization", [("x", x), ("s", f32(5))], {"epsilon": 1e-5})
    yield case("batchnorm_inference", "BatchNormalization", [("x", x), ("s", f32(3)), ("b", f32(3)), ("m", f32(3)), ("v", np.abs(f32(3)) + 0.5)],
               {"epsilon": 1e-4})
    yield case("instancenorm", "InstanceNormalization", [("x", x), ("s", f32(3)), ("b", f32(3))])
    yield case("reducemean_opset13_attr", "ReduceMean", [("x", x)], {"axes": [1, 3], "keepdims": 0}, opset=13)
    yield case("reducemean_opset18_input", "ReduceMean", [("x", x)], {"keepdims": 1}, opset=18, inits=[const("axes", np.array([-1], np.int64))])
    yield case("reducesum_opset13_input", "ReduceSum", [("x", x)], {"keepdims": 0}, opset=13, inits=[const("axes", np.array([0, 2], np.int64))])
    yield case("reducesum_all", "ReduceSum", [("x", x)], {}, opset=13)
    yield case("reducemax_opset18", "ReduceMax", [("x", x)], {"keepdims": 0}, opset=18, inits=[const("axes", np.array([2], np.int64))])
    yield case("reducemax_opset13", "ReduceMax", [("x", x)], {"axes": [1]}, opset=13)
    yield case("reducemin", "ReduceMin", [("x", x)], {"axes": [1]}, opset=13)
    yield case("reshape_zero_minus1", "Reshape", [("x", x)], inits=[const("shape", np.array([0, -1, 5], np.int64))])
    yield case("transpose_perm", "Transpose", [("x", x)], {"perm": [2, 0, 3, 1]})
    yield case("transpose_default", "Transpose", [("x", x)])
    yield case("squeeze_opset13", "Squeeze", [("x", f32(1, 3, 1, 2))], inits=[const("axes", np.array([0, -2], np.int64))])
    yield case("unsqueeze_opset13", "Unsqueeze", [("x", f32(3, 2))], inits=[const("axes", np.array([0, 3], np.int64))])
    yield case("concat_neg_axis", "Concat", [("a", f32(2, 3)), ("b", f32(2, 5))], {"axis": -1})
    yield case("split_opset13_sizes", "Split", [("x", f32(7, 4))], {"axis": 0}, opset=13, outputs=2, inits=[const("split", np.array([3, 4], np.int64))])
    yield case("split_opset13_equal", "Split", [("x", f32(6, 4))], {"axis": 0}, opset=13, outputs=3)
    yield case("split_opset18_num_outputs", "Split", [("x", f32(4, 7))], {"axis": 1, "num_outputs": 3}, opset=18, outputs=3)
    yield case("slice_steps_negative", "Slice", [("x", f32(6, 8))], inits=[
        const("starts", np.array([-1, 1], np.int64)), const("ends", np.array([-100, 7], np.int64)),
        const("axes", np.array([0, 1], np.int64)), const("steps", np.array([-2, 3], np.int64))])
    yield case("slice_int_max_end", "Slice", [("x", f32(5, 4))], inits=[
        const("starts", np.array([1], np.int64)), const("ends", np.array([np.iinfo(np.int64).max], np.int64)), const("axes", np.array([0], np.int64))])
    yield case("gather_negative_indices", "Gather", [("x", f32(5, 4, 3))], {"axis": 1}, inits=[const("i", np.array([[0, -1], [2, 1]], np.int64))])
    yield case("gather_scalar_index", "Gather", [("x", f32(5, 4))], {"axis": 0}, inits=[const("i", np.array(3, np.int64))])
    yield case("shape_slice_opset15", "Shape", [("x", x)], {"start": 1, "end": -1}, opset=15, out_types={"y0": I64})
    yield case("constant_of_shape", "ConstantOfShape", [], {"value": numpy_helper.from_array(np.array([2.5], np.float32))},
               inits=[const("s", np.array([2, 3], np.int64))])
    yield case("cast_to_int64", "Cast", [("x", f32(3, 4) * 10)], {"to": I64})
    yield case("cast_to_bool", "Cast", [("x", np.array([0.0, 1.5, -2.0], np.float32))], {"to": BOOL})
    yield case("where_broadcast", "Where", [("c", rng.random((3, 1)) > 0.5), ("a", f32(3, 4)), ("b", f32(4))])
    yield case("equal_int", "Equal", [("a", np.array([1, 2, 3], np.int64)), ("b", np.array([1, 0, 3], np.int64))])
    yield case("less_greater", "Less", [("a", f32(3, 4)), ("b", f32(4))])
    yield case("greater", "Greater", [("a", f32(3, 4)), ("b", f32(4))])
    yield case("expand_bidirectional", "Expand", [("x", f32(3, 1))], inits=[const("s", np.array([2, 1, 4], np.int64))])
    yield case("flatten_axis2", "Flatten", [("x", x)], {"axis": 2})
    yield case("flatten_axis0", "Flatten", [("x", x)], {"axis": 0})
    yield case("identity", "Identity", [("x", x)])
    yield case("dropout_inference", "Dropout", [("x", x)], {}, opset=13)
    yield case("maxpool_ceil_pads", "MaxPool", [("x", f32(1, 2, 7, 7))], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1})
    yield case("maxpool_same_lower", "MaxPool", [("x", f32(1, 2, 6, 5))], {"kernel_shape": [2, 3], "auto_pad": "SAME_LOWER"})
    yield case("avgpool_include_pad", "AveragePool", [("x", f32(1, 2, 6, 6))], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1})
    yield case("avgpool_exclude_pad", "AveragePool", [("x", f32(1, 2, 6, 6))], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]})
    yield case("global_average_pool", "GlobalAveragePool", [("x", x)])
    yield case("global_max_pool", "GlobalMaxPool", [("x", x)])
    yield case("einsum_gcn", "Einsum", [("a", f32(2, 3, 4, 5)), ("b", f32(5, 5))], {"equation": "nctv,vw->nctw"})
    yield case("einsum_attention", "Einsum", [("q", f32(2, 4, 3)), ("k", f32(2, 6, 3))], {"equation": "bqd, bkd -> bqk"})
    yield case("range_float", "Range", [], inits=[const("s", np.array(1.0, np.float32)), const("l", np.array(4.0, np.float32)), const("d", np.array(0.5, np.float32))])
    yield case("range_int", "Range", [], inits=[const("s", np.array(10, np.int64)), const("l", np.array(2, np.int64)), const("d", np.array(-3, np.int64))])
    yield case("clip_opset13_inputs", "Clip", [("x", f32(3, 4))], inits=[const("lo", np.array(-0.5, np.float32)), const("hi", np.array(0.7, np.float32))], opset=13)
    yield case("clip_min_only", "Clip", [("x", f32(3, 4)), ("lo", np.array(-0.2, np.float32))], opset=13)
    yield case("pad_reflect_opset13", "Pad", [("x", f32(1, 2, 4, 5))], {"mode": "reflect"}, opset=13, inits=[const("p", np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64))])
    yield case("pad_constant_opset18_axes", "Pad", [("x", f32(3, 4))], {"mode": "constant"}, opset=18,
               inits=[const("p", np.array([1, 2], np.int64)), const("v", np.array(0.5, np.float32)), const("a", np.array([-1], np.int64))])
    yield case("leaky_relu", "LeakyRelu", [("x", f32(3, 4))], {"alpha": 0.2})
    yield case("prelu_channel", "PRelu", [("x", x), ("s", f32(3, 1, 1))])
    yield case("hard_sigmoid", "HardSigmoid", [("x", f32(3, 4))], {"alpha": 0.3, "beta": 0.4})
    yield case("tile", "Tile", [("x", f32(2, 3))], inits=[const("r", np.array([2, 1], np.int64))])
    yield case("max_variadic", "Max", [("a", f32(3, 4)), ("b", f32(4)), ("c", f32(3, 1))])
    yield case("mean_variadic", "Mean", [("a", f32(3, 4)), ("b", f32(3, 4))])
    yield case("trilu_lower", "Trilu", [("x", f32(4, 4))], {"upper": 0}, opset=14, inits=[const("k", np.array(1, np.int64))])
    yield case("cumsum", "CumSum", [("x", f32(3, 4))], opset=14, inits=[const("ax", np.array(1, np.int64))])
    yield case("argmax", "ArgMax", [("x", f32(3, 4))], {"axis": 1, "keepdims": 0})
    yield case("gather_elements", "GatherElements", [("x", f32(3, 4))], {"axis": 1}, inits=[const("i", np.array([[0, 3], [1, -1], [2, 2]], np.int64))])


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    names = []
    for name, model, feeds in cases():
        onnx.save(model, os.path.join(out, f"{name}.onnx"))
        safetensors.write(os.path.join(out, f"{name}.inputs.safetensors"), feeds)
        names.append(name)
    print(json.dumps(names))

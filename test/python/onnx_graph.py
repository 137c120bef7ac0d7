"""Test/bench helper: ONNX file -> Rankscope graph JSON + safetensors, using the `onnx` package.
The product does this in TypeScript (src/worker/graphExport.ts); this independent copy lets the
Python tests and the GPU benchmark run where there is no Node. Same format, same names."""
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "worker", "python"))
from rankscope_worker import safetensors  # noqa: E402

_CODES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
          np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
          np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}
_ELEM = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16",
         11: "float64", 16: "bfloat16"}


def _value_info(v):
    t = v.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim] \
        if t.HasField("shape") else None
    return {"name": v.name, "dtype": _ELEM.get(t.elem_type, "unknown"), "shape": shape}


def _tensor(t):
    arr = numpy_helper.to_array(t)
    if t.data_type == 16:  # bfloat16: numpy_helper widens; keep the bits
        return ("BF16", (np.asarray(arr, np.float32).view(np.uint32) >> 16).astype(np.uint16))
    return (_CODES[arr.dtype], np.array(arr, order="C"))  # not ascontiguousarray: it makes 0-d arrays 1-d


def convert(model_path, out_graph, lowrank_factors=()):
    """`lowrank_factors`: the factor tensors of factorized layers, which the product's exporter lists
    from its inventory (graphExport.ts `lowrankFactors`); the tests pass what their fixture wrote."""
    model = onnx.load(model_path)
    g = model.graph
    tensors = {}
    for init in g.initializer:
        tensors[init.name] = _tensor(init)
    init_names = [i.name for i in g.initializer]
    nodes = []
    for k, node in enumerate(g.node):
        attrs = {}
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                key = f"{node.output[0]}::{a.name}"
                tensors[key] = _tensor(a.t)
                attrs[a.name] = {"tensor": key}
            elif a.type == onnx.AttributeProto.STRING:
                attrs[a.name] = a.s.decode("utf-8")
            elif a.type == onnx.AttributeProto.STRINGS:
                attrs[a.name] = [s.decode("utf-8") for s in a.strings]
            else:
                attrs[a.name] = onnx.helper.get_attribute_value(a)
        nodes.append({"name": node.name or f"{node.op_type}_{k}", "op": node.op_type, "domain": node.domain,
                      "inputs": list(node.input), "outputs": list(node.output), "attrs": attrs})
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    inits = set(init_names)
    weights = os.path.splitext(os.path.basename(out_graph))[0].replace(".graph", "") + ".safetensors"
    graph = {
        "format": "rankscope-graph", "version": 1, "source": os.path.abspath(model_path), "opset": opset,
        "inputs": [_value_info(v) for v in g.input if v.name not in inits],
        "outputs": [_value_info(v) for v in g.output],
        "initializers": init_names, "nodes": nodes, "weights": weights,
        "metadata": {p.key: p.value for p in model.metadata_props},
        "lowrankFactors": list(lowrank_factors),
    }
    with open(out_graph, "w", encoding="utf-8") as f:
        json.dump(graph, f)
    safetensors.write(os.path.join(os.path.dirname(out_graph), weights), tensors)
    return out_graph


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])

"""Test helper: `check_cases.py LIST.json` where LIST is [[graph.json, onnx test case folder], …]
(graphs exported by the TypeScript side). Runs each graph in the executor on the case's inputs,
compares with its expected outputs (|Δ| ≤ 1e-4 + 1e-4·|expected|, NaN where expected), prints
{"passed": [...], "failed": [...], "skipped": [...]} as JSON."""
import glob
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "worker", "python"))
from rankscope_worker.executor import OnnxModule, load_graph, unsupported_ops  # noqa: E402


def read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def check(graph_path, case_dir):
    graph, tensors = load_graph(graph_path)
    missing = unsupported_ops(graph)
    if missing:
        return "skipped", ", ".join(missing)
    module = OnnxModule(graph, tensors).eval()
    for data_dir in sorted(glob.glob(os.path.join(case_dir, "test_data_set_*"))):
        inputs = [torch.from_numpy(read_pb(p).copy()) for p in sorted(glob.glob(os.path.join(data_dir, "input_*.pb")))]
        expected = [read_pb(p) for p in sorted(glob.glob(os.path.join(data_dir, "output_*.pb")))]
        with torch.no_grad():
            module(*inputs[: len(module.input_names)])
            got = module(*inputs[: len(module.input_names)])  # the replayed (generated) path
        for g, e in zip(got, expected):
            g = g.numpy()
            if g.shape != e.shape:
                return "failed", f"shape {g.shape} != {e.shape}"
            if not np.array_equal(np.isnan(g), np.isnan(e)):
                return "failed", "NaN positions differ"
            ok = ~np.isnan(e)
            err = float((np.abs(g[ok].astype(np.float64) - e[ok]) - 1e-4 * np.abs(e[ok])).max(initial=0))
            if err > 1e-4:
                return "failed", f"max error {err}"
    return "passed", ""


if __name__ == "__main__":
    result = {"passed": [], "failed": [], "skipped": []}
    for graph_path, case_dir in json.load(open(sys.argv[1])):
        name = os.path.basename(case_dir)
        try:
            status, why = check(graph_path, case_dir)
        except Exception as e:  # noqa: BLE001 — reported per case
            status, why = "failed", f"{type(e).__name__}: {e}"
        result[status].append(f"{name}{': ' + why if why else ''}")
    print(json.dumps(result))

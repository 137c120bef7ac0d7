"""Test helper: `run_graph.py GRAPH.json IN.npy OUT.npy` runs the executor (eval mode, float32,
CPU) on IN and saves the first output: lets the TS tests compare with ONNX Runtime."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "worker", "python"))
from rankscope_worker.executor import OnnxModule, load_graph  # noqa: E402

if __name__ == "__main__":
    graph, tensors = load_graph(sys.argv[1])
    module = OnnxModule(graph, tensors).eval()
    with torch.no_grad():
        out = module(torch.from_numpy(np.load(sys.argv[2])))[0]
    np.save(sys.argv[3], out.numpy())

"""Builds the small fine-tuning fixture used by the Python and TypeScript tests:

  original.onnx    an MLP (MatMul+Add, Relu) trained natively in PyTorch on a synthetic task
  compressed.onnx  the same with its hidden layers replaced by rank-k factors A·B (truncated SVD),
                   recorded in metadata `rankscope.compressed` as Rankscope's compressor does
  data.npz         x_train/y_train/x_test/y_test (labels one-hot, like NTU)

`python fixtures.py DIR [rank]` writes them and prints a JSON line with the accuracies."""
import json
import os
import sys

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

IN, HIDDEN, CLASSES = 24, 96, 8


def make_data(seed=0, n_train=2048, n_test=512):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(CLASSES * 3, IN)).astype(np.float32) * 1.2  # 3 clusters per class

    def sample(n):
        k = rng.integers(0, CLASSES * 3, size=n)
        x = centers[k] + rng.normal(size=(n, IN)).astype(np.float32) * 0.7
        return x.astype(np.float32), np.eye(CLASSES, dtype=np.float32)[k % CLASSES]
    x_train, y_train = sample(n_train)
    x_test, y_test = sample(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def train_native(data, seed=0, epochs=30):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                              torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    x = torch.from_numpy(data["x_train"])
    y = torch.from_numpy(data["y_train"].argmax(1))
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in net if isinstance(m, torch.nn.Linear)]


def write_model(path, layers, rank=None, source=None):
    """layers: [(W [in, out], b)]; layers 0 and 1 are factorized at `rank` when given.
    Returns the names of the factor tensors written."""
    nodes, inits, meta = [], [], []
    x = "input"
    for i, (w, b) in enumerate(layers):
        name = f"fc{i}"
        if rank is not None and i < len(layers) - 1:
            u, s, vt = np.linalg.svd(w.T.astype(np.float64), full_matrices=False)  # matrix [out, in]
            a = (u[:, :rank] * np.sqrt(s[:rank])).astype(np.float32)            # [out, k]
            bb = (np.sqrt(s[:rank])[:, None] * vt[:rank]).astype(np.float32)    # [k, in]
            energy = float((s[:rank] ** 2).sum() / (s ** 2).sum())
            an, bn = f"{name}.lowrank_A", f"{name}.lowrank_B"
            # x·Wᵀ... stored [in, out]: x·W ≈ (x·Bᵀ)·Aᵀ
            inits += [numpy_helper.from_array(a.T.copy(), an), numpy_helper.from_array(bb.T.copy(), bn)]
            nodes += [helper.make_node("MatMul", [x, bn], [f"{name}/h"], name=f"/{name}/MatMul_B"),
                      helper.make_node("MatMul", [f"{name}/h", an], [f"{name}/mm"], name=f"/{name}/MatMul_A")]
            meta.append({"layer": name, "weight": f"{name}.weight", "factors": [an, bn], "rank": rank,
                         "originalShape": [w.shape[1], w.shape[0]], "energyKept": energy, "method": "svd",
                         "sourceFile": source})
        else:
            inits.append(numpy_helper.from_array(w, f"{name}.weight"))
            nodes.append(helper.make_node("MatMul", [x, f"{name}.weight"], [f"{name}/mm"], name=f"/{name}/MatMul"))
        inits.append(numpy_helper.from_array(b, f"{name}.bias"))
        nodes.append(helper.make_node("Add", [f"{name}/mm", f"{name}.bias"], [f"{name}/out"], name=f"/{name}/Add"))
        x = f"{name}/out"
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"{name}/relu"], name=f"/{name}/Relu"))
            x = f"{name}/relu"
    nodes.append(helper.make_node("Identity", [x], ["logits"], name="/out/Identity"))
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", IN])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", CLASSES])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="rankscope-tests")
    model.ir_version = 8
    if meta:
        helper.set_model_props(model, {"rankscope.compressed": json.dumps(meta)})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return [f for entry in meta for f in entry["factors"]]


def accuracy(layers, x, y):
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    return float((h.argmax(1) == y.argmax(1)).mean())


def build(out_dir, rank=2):
    os.makedirs(out_dir, exist_ok=True)
    data = make_data()
    np.savez(os.path.join(out_dir, "data.npz"), **data)
    layers = train_native(data)
    original = os.path.join(out_dir, "original.onnx")
    write_model(original, layers)
    factors = write_model(os.path.join(out_dir, "compressed.onnx"), layers, rank, source=original)
    return {"originalAccuracy": accuracy(layers, data["x_test"], data["y_test"]), "factors": factors}


if __name__ == "__main__":
    print(json.dumps(build(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)))

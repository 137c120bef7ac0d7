// Fixtures the suites build for themselves: a small MLP-shaped ONNX model written by Python's
// `onnx` package (names like a PyTorch export: `/encoder/layers.0/fc1/MatMul`), weights with a
// decaying spectrum, labelled data, and the expected layer facts computed independently by
// numpy's LAPACK SVD — never by Rankscope's own code.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython } from '../helpers/python';

export interface ExpectedLayer {
  name: string;
  shape: [number, number];
  params: number;
  /** Singular values, descending (numpy). */
  sv: number[];
  r90: number;
  r95: number;
  r99: number;
}

export interface Fixture {
  dir: string;
  model: string;
  data: string;
  layers: ExpectedLayer[];
  totalParams: number;
}

const script = String.raw`
import json, sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
out = sys.argv[1]
rng = np.random.default_rng(7)
def decaying(m, n, scale, rate):
    k = min(m, n)
    u, _ = np.linalg.qr(rng.standard_normal((m, k)))
    v, _ = np.linalg.qr(rng.standard_normal((n, k)))
    s = scale * np.exp(-np.arange(k) / rate) + 1e-3
    return (u * s) @ v.T
# (node path, stored tensor shape, op); MatMul stores [in, out], Gemm(transB=1) stores [out, in].
specs = [("/encoder/layers.0/fc1/MatMul", (64, 128)), ("/encoder/layers.0/fc2/MatMul", (128, 64)),
         ("/encoder/layers.1/fc1/MatMul", (64, 128)), ("/encoder/layers.1/fc2/MatMul", (128, 64))]
inits, nodes, expected = [], [], []
x = "x"
for i, (path, shape) in enumerate(specs):
    w = decaying(shape[0], shape[1], 2.0, [3.0, 6.0, 10.0, 15.0][i]).astype(np.float32)
    name = "onnx::MatMul_%d" % (100 + i)
    inits.append(numpy_helper.from_array(w, name))
    y = "h%d" % i
    nodes.append(helper.make_node("MatMul", [x, name], [y], name=path))
    x = y
    if i % 2 == 0:
        nodes.append(helper.make_node("Relu", [x], [x + "_relu"], name=path.rsplit("/", 1)[0] + "/Relu"))
        x = x + "_relu"
    expected.append((path.strip("/").rsplit("/", 1)[0].replace("/", "."), w.T))
wh = decaying(10, 64, 3.0, 4.0).astype(np.float32)
bh = (0.1 * rng.standard_normal(10)).astype(np.float32)
inits += [numpy_helper.from_array(wh, "head.weight"), numpy_helper.from_array(bh, "head.bias")]
nodes.append(helper.make_node("Gemm", [x, "head.weight", "head.bias"], ["logits"], name="/head/Gemm", transB=1))
expected.append(("head", wh))
graph = helper.make_graph(nodes, "mlp",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], inits)
model = helper.make_model(graph, producer_name="rankscope-it", opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, out + "/model.onnx")
# Data labelled by the model itself: the original scores 100 %, compression shows its cost.
def forward(v):
    for i, (_, shape) in enumerate(specs):
        v = v @ numpy_helper.to_array(inits[i])
        if i % 2 == 0: v = np.maximum(v, 0)
    return v @ wh.T + bh
xs = rng.standard_normal((384, 64)).astype(np.float32)
ys = forward(xs).argmax(1).astype(np.int64)
np.savez(out + "/data.npz", x_train=xs[:256], y_train=ys[:256], x_test=xs[256:], y_test=ys[256:])
layers = []
for name, m in expected:
    s = np.linalg.svd(m.astype(np.float64), compute_uv=False)
    e = np.cumsum(s ** 2) / np.sum(s ** 2)
    r = lambda t: int(np.argmax(e >= t - 1e-12) + 1)
    layers.append(dict(name=name, shape=list(m.shape), params=int(m.size), sv=s.tolist(), r90=r(0.9), r95=r(0.95), r99=r(0.99)))
print(json.dumps(dict(layers=layers, totalParams=int(sum(t.size for t in [numpy_helper.to_array(i) for i in inits])))))
`;

/** Writes model.onnx + data.npz into a fresh temp folder (or `dir`). */
export function makeFixture(dir = mkdtempSync(join(tmpdir(), 'rankscope-fixture-'))): Fixture {
  const out = JSON.parse(runPython(script, [dir])) as { layers: ExpectedLayer[]; totalParams: number };
  return { dir, model: join(dir, 'model.onnx'), data: join(dir, 'data.npz'), ...out };
}

/** SHA-256 of a file, to prove a model was not touched. */
export function fileHash(path: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { readFileSync } = require('node:fs') as typeof import('node:fs');
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

// Small ONNX classifiers and datasets written by numpy/onnx in the test setup, with numpy's own
// forward pass saved beside them as the independent reference.
import { runPython } from '../../helpers/python';
import { layerMatrices } from '../../../src/core/model/matrix';
import type { Model } from '../../../src/core/model/types';
import { singularValues } from '../../../src/core/linalg';
import type { SpectrumLike } from '../../../src/core/compress/plan';

/**
 * Writes into `dir`:
 * - mlp.onnx: x (N, 16) → MatMul(16×32) → Relu → MatMul(32×10) + b → logits (N, 10)
 * - mlp_perturbed.onnx: the same with noise on the second weight
 * - data.npz: x (200, 16) float32, y (200,) int64, y_onehot (200, 10) float32, x64 float64, xbad (200, 15)
 * - ref.json: numpy float64 logits-based top1/top5 for both models and fidelity of perturbed vs original
 */
export function writeMlpFixture(dir: string): void {
  runPython(String.raw`
import numpy as np, onnx, json, sys, os
from onnx import helper, TensorProto, numpy_helper
d = sys.argv[1]
rng = np.random.default_rng(3)
W1 = rng.standard_normal((16, 32)).astype(np.float32) / 4
W2 = rng.standard_normal((32, 10)).astype(np.float32) / 4
b = rng.standard_normal(10).astype(np.float32) / 10
W2p = (W2 + rng.standard_normal(W2.shape).astype(np.float32) * 0.08).astype(np.float32)
def model(w2, path):
    nodes = [helper.make_node('MatMul', ['x', 'W1'], ['h']), helper.make_node('Relu', ['h'], ['r']),
             helper.make_node('MatMul', ['r', 'W2'], ['z']), helper.make_node('Add', ['z', 'b'], ['logits'])]
    g = helper.make_graph(nodes, 'mlp', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 16])],
                          [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', 10])],
                          [numpy_helper.from_array(W1, 'W1'), numpy_helper.from_array(w2, 'W2'), numpy_helper.from_array(b, 'b')])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
    onnx.checker.check_model(m); onnx.save(m, path)
model(W2, os.path.join(d, 'mlp.onnx')); model(W2p, os.path.join(d, 'mlp_perturbed.onnx'))
x = rng.standard_normal((200, 16)).astype(np.float32)
def fwd(w2): return (np.maximum(x.astype(np.float64) @ W1, 0) @ w2 + b)
L0, L1 = fwd(W2), fwd(W2p)
y = np.argmax(L0 + rng.standard_normal(L0.shape) * 0.6, axis=1).astype(np.int64)  # labels: mostly, not always, the model's choice
np.savez(os.path.join(d, 'data.npz'), x=x, y=y, y_onehot=np.eye(10, dtype=np.float32)[y], x64=x.astype(np.float64), xbad=x[:, :15], y_short=y[:150])
def acc(L):
    order = np.argsort(-L, axis=1)
    return float(np.mean(order[:, 0] == y)), float(np.mean((order[:, :5] == y[:, None]).any(axis=1)))
def logsoftmax(L): m = L.max(1, keepdims=True); return L - m - np.log(np.exp(L - m).sum(1, keepdims=True))
p0 = logsoftmax(L0); p1 = logsoftmax(L1)
ref = {'orig': acc(L0), 'pert': acc(L1),
       'agreement': float(np.mean(L0.argmax(1) == L1.argmax(1))),
       'relativeError': float(np.linalg.norm(L1 - L0) / np.linalg.norm(L0)),
       'meanKL': float(np.mean((np.exp(p0) * (p0 - p1)).sum(1)))}
json.dump(ref, open(os.path.join(d, 'ref.json'), 'w'))
`, [dir]);
}

/**
 * NTU layout: ntu.npz with x_test (8, 300, 150) float32 (valid frame counts below, zero padded),
 * y_test one-hot (8, 60); ntu.onnx: (N, 3, 64, 25, 2) → flatten → MatMul → (N, 60);
 * ntu_ref.npy: CTR-GCN's valid_crop_resize of each sample (torch F.interpolate), (8, 3, 64, 25, 2);
 * ntu_logits.npy: numpy logits from that input.
 */
export const NTU_VALID = [300, 120, 37, 64, 1, 0, 299, 200];
export function writeNtuFixture(dir: string): void {
  runPython(String.raw`
import numpy as np, onnx, torch, torch.nn.functional as F, sys, os
from onnx import helper, TensorProto, numpy_helper
d = sys.argv[1]
valid = [int(v) for v in sys.argv[2].split(',')]
rng = np.random.default_rng(5)
N, T = len(valid), 64
x = np.zeros((N, 300, 150), dtype=np.float32)
for i, v in enumerate(valid):
    x[i, :v] = rng.standard_normal((v, 150)).astype(np.float32) + 0.1
    if v > 10: x[i, 3, :] = 0.0; x[i, 3, 0] = 1.0; x[i, 3, 1] = -1.0  # sums to 0: CTR-GCN does not count it
y = rng.integers(0, 60, N)
np.savez(os.path.join(d, 'ntu.npz'), x_test=x, y_test=np.eye(60, dtype=np.float32)[y], x_train=x[:2], y_train=np.eye(60, dtype=np.float32)[y[:2]])
# CTR-GCN feeders/tools.py valid_crop_resize, p_interval [0.95], window 64
def crop_resize(data_numpy, valid_frame_num, p, window):
    C, T_, V, M = data_numpy.shape
    begin, end = 0, valid_frame_num
    valid_size = end - begin
    bias = int((1 - p) * valid_size / 2)
    data = data_numpy[:, begin + bias:end - bias, :, :]
    cropped_length = data.shape[1]
    data = torch.tensor(data, dtype=torch.float)
    data = data.permute(0, 2, 3, 1).contiguous().view(C * V * M, cropped_length)
    data = data[None, None, :, :]
    data = F.interpolate(data, size=(C * V * M, window), mode='bilinear', align_corners=False).squeeze()
    return data.contiguous().view(C, V, M, window).permute(0, 3, 1, 2).contiguous().numpy()
ref = np.zeros((N, 3, T, 25, 2), dtype=np.float32)
for i in range(N):
    s = x[i].reshape((300, 2, 25, 3)).transpose(3, 0, 2, 1)
    vf = int(np.sum(s.sum(0).sum(-1).sum(-1) != 0))
    if vf > 0: ref[i] = crop_resize(s, vf, 0.95, T)
np.save(os.path.join(d, 'ntu_ref.npy'), ref)
W = (rng.standard_normal((3 * T * 25 * 2, 60)) / 40).astype(np.float32)
nodes = [helper.make_node('Flatten', ['x'], ['f'], axis=1), helper.make_node('MatMul', ['f', 'W'], ['logits'])]
g = helper.make_graph(nodes, 'ntu', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3, T, 25, 2])],
                      [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', 60])], [numpy_helper.from_array(W, 'W')])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
onnx.save(m, os.path.join(d, 'ntu.onnx'))
np.save(os.path.join(d, 'ntu_logits.npy'), ref.reshape(N, -1).astype(np.float64) @ W)
`, [dir, NTU_VALID.join(',')]);
}

/**
 * A model whose layers differ in sensitivity: two parallel branches of the same shapes, one
 * scaled by 0.05 before it joins the logits. Uniform allocation cuts both alike; compressing
 * the quiet branch costs almost nothing. Writes two_branch.onnx and two_branch.npz
 * (x (512, 64) float32, y (512,) int64 = the model's own class with some label noise).
 */
export function writeTwoBranchFixture(dir: string): void {
  runPython(String.raw`
import numpy as np, onnx, sys, os
from onnx import helper, TensorProto, numpy_helper
d = sys.argv[1]
rng = np.random.default_rng(11)
Wa = (rng.standard_normal((64, 128)) / 8).astype(np.float32)
Wo = (rng.standard_normal((128, 10)) / 11).astype(np.float32)
Wb = (rng.standard_normal((64, 128)) / 8).astype(np.float32)
Wq = (rng.standard_normal((128, 10)) / 11).astype(np.float32)
s = np.array(0.05, dtype=np.float32)
nodes = [
  helper.make_node('MatMul', ['x', 'Wa'], ['ha'], name='/loud/in/MatMul'), helper.make_node('Relu', ['ha'], ['ra']),
  helper.make_node('MatMul', ['ra', 'Wo'], ['la'], name='/loud/out/MatMul'),
  helper.make_node('MatMul', ['x', 'Wb'], ['hb'], name='/quiet/in/MatMul'), helper.make_node('Relu', ['hb'], ['rb']),
  helper.make_node('MatMul', ['rb', 'Wq'], ['lb0'], name='/quiet/out/MatMul'), helper.make_node('Mul', ['lb0', 's'], ['lb']),
  helper.make_node('Add', ['la', 'lb'], ['logits']),
]
g = helper.make_graph(nodes, 'two_branch', [helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 64])],
                      [helper.make_tensor_value_info('logits', TensorProto.FLOAT, ['N', 10])],
                      [numpy_helper.from_array(a, n) for a, n in [(Wa, 'Wa'), (Wo, 'Wo'), (Wb, 'Wb'), (Wq, 'Wq'), (s, 's')]])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
onnx.checker.check_model(m); onnx.save(m, os.path.join(d, 'two_branch.onnx'))
x = rng.standard_normal((512, 64)).astype(np.float32)
L = np.maximum(x @ Wa, 0) @ Wo + 0.05 * (np.maximum(x @ Wb, 0) @ Wq)
y = np.argmax(L + rng.standard_normal(L.shape) * 0.3, axis=1).astype(np.int64)
np.savez(os.path.join(d, 'two_branch.npz'), x=x, y=y)
`, [dir]);
}

/**
 * Models whose outputs are not (N, classes), or whose batch is fixed, and label arrays good and bad:
 * - cls32.onnx: x (N, 16) → (N, 32) logits; fixed1.onnx / fixed4.onnx: the same with the batch fixed to 1 / 4
 * - seq.onnx / seq_perturbed.onnx: x (N, 16) → (N, 6, 5), a recogniser's (N, T, C)
 * - square.onnx: x (N, 16) → (N, 5, 5) (which axis is the class?); seg.onnx: x (N, 16) → (N, 4, 3, 2), classes on axis 1
 * - labels.npz: x (40, 16); y (40,) good; bad ones: y_big (1000 at sample 7), y_neg (−1 at 3), y_nan (NaN at 5),
 *   y_frac (2.5 at 9), y_narrow one-hot (40, 10), y_tie (a zero one-hot row at 11), y_col (40, 1) = y, y_float = y as float64;
 *   y_seq (40, 6), y_seq_onehot (40, 6, 5), y_seq_big (5 at sample 2, position 4), y_square (40, 5), y_seg (40, 3, 2)
 * - labels_ref.json: numpy float64 scores (top1 for y; per-position top1/agreement/relative error/KL for seq; top1 for seg)
 */
export function writeLabelFixtures(dir: string): void {
  runPython(String.raw`
import numpy as np, onnx, json, sys, os
from onnx import helper, TensorProto, numpy_helper
d = sys.argv[1]
rng = np.random.default_rng(21)
def save(name, W, out_shape, batch='N'):
    nodes = [helper.make_node('MatMul', ['x', 'W'], ['z'])]
    inits = [numpy_helper.from_array(W, 'W')]
    if len(out_shape) > 1:
        inits.append(numpy_helper.from_array(np.array([-1] + list(out_shape), dtype=np.int64), 'shape'))
        nodes.append(helper.make_node('Reshape', ['z', 'shape'], ['y']))
    else:
        nodes.append(helper.make_node('Identity', ['z'], ['y']))
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info('x', TensorProto.FLOAT, [batch, 16])],
                          [helper.make_tensor_value_info('y', TensorProto.FLOAT, [batch] + list(out_shape))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)]); m.ir_version = 8
    onnx.checker.check_model(m); onnx.save(m, os.path.join(d, name + '.onnx'))
W32 = (rng.standard_normal((16, 32)) / 4).astype(np.float32)
save('cls32', W32, [32]); save('fixed1', W32, [32], 1); save('fixed4', W32, [32], 4)
Wseq = (rng.standard_normal((16, 30)) / 4).astype(np.float32)
Wseq_p = (Wseq + rng.standard_normal(Wseq.shape) * 0.05).astype(np.float32)
save('seq', Wseq, [6, 5]); save('seq_perturbed', Wseq_p, [6, 5])
save('square', (rng.standard_normal((16, 25)) / 4).astype(np.float32), [5, 5])
Wseg = (rng.standard_normal((16, 24)) / 4).astype(np.float32)
save('seg', Wseg, [4, 3, 2])
x = rng.standard_normal((40, 16)).astype(np.float32)
X = x.astype(np.float64)
L = X @ W32
y = np.argmax(L + rng.standard_normal(L.shape) * 0.8, axis=1).astype(np.int64)
def with_at(a, i, v): a = a.copy(); a[i] = v; return a
onehot = np.eye(32, dtype=np.float32)[y]
Ls = (X @ Wseq).reshape(40, 6, 5); Lp = (X @ Wseq_p).reshape(40, 6, 5)
y_seq = np.argmax(Ls + rng.standard_normal(Ls.shape) * 0.8, axis=2).astype(np.int64)
Lg = (X @ Wseg).reshape(40, 4, 3, 2)
y_seg = np.argmax(Lg + rng.standard_normal(Lg.shape) * 0.8, axis=1).astype(np.int64)
np.savez(os.path.join(d, 'labels.npz'), x=x, y=y,
    y_big=with_at(y, 7, 1000), y_neg=with_at(y, 3, -1), y_nan=with_at(y.astype(np.float64), 5, np.nan), y_frac=with_at(y.astype(np.float64), 9, 2.5),
    y_narrow=np.eye(10, dtype=np.float32)[y % 10], y_tie=with_at(onehot, 11, 0), y_col=y[:, None], y_float=y.astype(np.float64),
    y_seq=y_seq, y_seq_onehot=np.eye(5, dtype=np.float32)[y_seq], y_seq_big=with_at(y_seq, (2, 4), 5),
    y_square=rng.integers(0, 5, (40, 5)), y_seg=y_seg)
def logsoftmax(L, axis): m = L.max(axis, keepdims=True); return L - m - np.log(np.exp(L - m).sum(axis, keepdims=True))
p0, p1 = logsoftmax(Ls, 2), logsoftmax(Lp, 2)
ref = {'cls32_top1': float(np.mean(L.argmax(1) == y)),
       'seq_top1': float(np.mean(Ls.argmax(2) == y_seq)), 'seq_pert_top1': float(np.mean(Lp.argmax(2) == y_seq)),
       'seq_agreement': float(np.mean(Ls.argmax(2) == Lp.argmax(2))), 'seq_relativeError': float(np.linalg.norm(Lp - Ls) / np.linalg.norm(Ls)),
       'seq_meanKL': float(np.mean((np.exp(p0) * (p0 - p1)).sum(2))),
       'seg_top1': float(np.mean(Lg.argmax(1) == y_seg))}
json.dump(ref, open(os.path.join(d, 'labels_ref.json'), 'w'))
`, [dir]);
}

/** Spectra of every factorizable layer, on this thread (small test models only). */
export function spectraOnThread(model: Model): SpectrumLike[] {
  return model.layers.filter((l) => l.factorizable && !l.compressed).map((layer) => {
    const groups = layerMatrices(model, layer).map((m) => singularValues(m.data, m.rows, m.cols));
    const all = Float64Array.from(groups.flatMap((g) => [...g])).sort().reverse();
    return { layer: layer.name, singularValues: all, ...(groups.length > 1 ? { groups } : {}) };
  });
}

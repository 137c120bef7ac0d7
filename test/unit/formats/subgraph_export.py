# Real torch.onnx.export models with the constructs real models ship: weights used inside an If
# (torch.jit.script'ed branches), a Loop, an If nested in a Loop, float16 weights behind a Cast,
# and a weight reaching its Gemm through a constant Reshape; plus two made from the exports the
# way other tools write them: an If whose branches hold their weights as Constant nodes (Silero
# VAD does this) and a Loop body with its own initializer; and a Scan built with onnx.helper.
# Usage: subgraph_export.py OUT_DIR K
# Writes OUT_DIR/<name>.onnx and OUT_DIR/expected.json: per model its inputs, PyTorch's outputs,
# the outputs with every listed weight replaced by its rank-K truncated SVD (numpy), its layers
# (name -> [out, in] weight as hex float32, bias size) and the parameter count Python onnx sees
# (every initializer and Constant in every graph, subgraphs included).
import json, os, sys
import numpy as np
import onnx
import torch, torch.nn as nn, torch.nn.functional as F
from onnx import helper, numpy_helper

out, K = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
expected = {}


class Branchy(nn.Module):
    def __init__(s):
        super().__init__()
        s.a = nn.Linear(16, 24); s.b = nn.Linear(16, 24); s.head = nn.Linear(24, 8)
    def forward(s, x):
        if bool(x.sum() > 0):
            y = s.a(x)
        else:
            y = s.b(x)
        return s.head(y)


class Loopy(nn.Module):
    def __init__(s):
        super().__init__()
        s.cell = nn.Linear(16, 16); s.head = nn.Linear(16, 8)
    def forward(s, x, n: int):
        for i in range(n):
            x = torch.tanh(s.cell(x))
        return s.head(x)


class Nested(nn.Module):
    def __init__(s):
        super().__init__()
        s.even = nn.Linear(16, 16); s.odd = nn.Linear(16, 16); s.head = nn.Linear(16, 8)
    def forward(s, x, n: int):
        for i in range(n):
            if i % 2 == 0:
                x = torch.tanh(s.even(x))
            else:
                x = torch.tanh(s.odd(x))
        return s.head(x)


class HalfLinear(nn.Linear):
    """Weights kept in float16, widened for the float32 compute (mixed-precision exports)."""
    def forward(s, x):
        return F.linear(x, s.weight.float(), s.bias.float())


class Half(nn.Module):
    def __init__(s):
        super().__init__()
        s.enc = nn.Sequential(HalfLinear(16, 24), nn.ReLU(), HalfLinear(24, 24)).half()
        s.out = HalfLinear(24, 8).half()
    def forward(s, x):
        return s.out(s.enc(x))


class Reshaped(nn.Module):
    """A [out, in, 1] parameter viewed as the [out, in] Linear weight."""
    def __init__(s):
        super().__init__()
        s.proj = nn.Module()
        s.proj.weight = nn.Parameter(torch.randn(24, 16, 1) / 4)
        s.proj.bias = nn.Parameter(torch.randn(24))
        s.head = nn.Linear(24, 8)
    def forward(s, x):
        return s.head(F.linear(x, s.proj.weight.reshape(24, 16), s.proj.bias))


def truncated(w):
    """Rank-K truncated SVD of a [out, in] matrix, in float64 (numpy LAPACK)."""
    u, sv, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    k = min(K, len(sv))
    return (u[:, :k] * sv[:k]) @ vt[:k]


def onnx_params(path):
    m = onnx.load(path)
    def count(g):
        n = sum(int(np.prod(t.dims)) for t in g.initializer)
        for node in g.node:
            for a in node.attribute:
                if node.op_type == 'Constant' and a.name == 'value':
                    n += int(np.prod(a.t.dims))
                if a.type == onnx.AttributeProto.GRAPH:
                    n += count(a.g)
                for sub in a.graphs:
                    n += count(sub)
        return n
    return count(m.graph)


def export(name, module, args, input_names, linears, feeds_list, scripted=True, **kw):
    """Exports `module`; records its layers and PyTorch's outputs, full and with rank-K weights."""
    m = torch.jit.script(module) if scripted else module
    path = os.path.join(out, name + '.onnx')
    torch.onnx.export(m, args, path, opset_version=13, input_names=input_names, output_names=['y'], **kw)
    record(name, module, linears, feeds_list, path)


def feed(v):
    """One graph input as the test feeds it: a float32 tensor, or an int64 scalar (a trip count)."""
    if torch.is_tensor(v):
        return {'dtype': 'float32', 'shape': list(v.shape), 'data': v.flatten().tolist()}
    return {'dtype': 'int64', 'shape': [], 'data': [v]}


def record(name, module, linears, feeds_list, path):
    layers = {}
    for lname, lin in linears.items():
        w = lin.weight.detach().float().reshape(lin.weight.shape[0], -1).numpy()
        layers[lname] = {'weight': w.astype(np.float32).tobytes().hex(), 'shape': list(w.shape), 'bias': int(lin.bias.numel())}
    runs = []
    for feeds in feeds_list:
        with torch.no_grad():
            full = module(*feeds).float().numpy()
            saved = {lname: lin.weight.detach().clone() for lname, lin in linears.items()}
            for lname, lin in linears.items():
                w = lin.weight.detach().double().reshape(lin.weight.shape[0], -1).numpy()
                lin.weight.copy_(torch.from_numpy(truncated(w)).reshape(lin.weight.shape).to(lin.weight.dtype))
            low = module(*feeds).float().numpy()
            for lname, lin in linears.items():
                lin.weight.copy_(saved[lname])
        runs.append({'inputs': [feed(f) for f in feeds],
                     'full': full.flatten().tolist(), 'lowrank': low.flatten().tolist()})
    expected[name] = {'layers': layers, 'runs': runs, 'params': onnx_params(path)}


x = torch.randn(2, 16)
b = Branchy().eval()
export('if', b, (x,), ['x'], {'a': b.a, 'b': b.b, 'head': b.head}, [(x,), (-x,)])
lp = Loopy().eval()
export('loop', lp, (x, 3), ['x', 'n'], {'cell': lp.cell, 'head': lp.head}, [(x, 3)])
ns = Nested().eval()
export('nested', ns, (x, 3), ['x', 'n'], {'even': ns.even, 'odd': ns.odd, 'head': ns.head}, [(x, 3)])
h = Half().eval()
export('half', h, (x,), ['x'], {'enc.0': h.enc[0], 'enc.2': h.enc[2], 'out': h.out}, [(x,)], scripted=False, do_constant_folding=False)
r = Reshaped().eval()
export('reshape', r, (x,), ['x'], {'proj': r.proj, 'head': r.head}, [(x,)], scripted=False, do_constant_folding=False)


def rewrite(src, dst, edit):
    m = onnx.load(os.path.join(out, src + '.onnx'))
    edit(m)
    onnx.save(m, os.path.join(out, dst + '.onnx'))
    expected[dst] = dict(expected[src], params=onnx_params(os.path.join(out, dst + '.onnx')))


def branch_constants(m):
    """The If branches' weights become Constant nodes inside each branch (as in Silero VAD)."""
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    if_node = next(n for n in g.node if n.op_type == 'If')
    moved = set()
    for a in if_node.attribute:
        body = a.g
        used = [i for n in body.node for i in n.input if i in inits]
        consts = [helper.make_node('Constant', [], [i], name=f'{i}/Constant', value=inits[i]) for i in dict.fromkeys(used)]
        nodes = consts + list(body.node)
        del body.node[:]
        body.node.extend(nodes)
        moved.update(used)
    keep = [t for t in g.initializer if t.name not in moved]
    del g.initializer[:]
    g.initializer.extend(keep)


def body_initializer(m):
    """The Loop body holds the cell weight as its own initializer."""
    g = m.graph
    loop = next(n for n in g.node if n.op_type == 'Loop')
    body = next(a.g for a in loop.attribute if a.name == 'body')
    w = next(t for t in g.initializer if t.name == 'cell.weight')
    body.initializer.append(w)
    keep = [t for t in g.initializer if t.name != 'cell.weight']
    del g.initializer[:]
    g.initializer.extend(keep)


rewrite('if', 'if_constants', branch_constants)
rewrite('loop', 'loop_initializer', body_initializer)

# A Scan (no torch export makes one): the body multiplies each step by an outer-scope weight.
rng = np.random.default_rng(0)
W = (rng.standard_normal((16, 24)) / 4).astype(np.float32)  # [in, out]: x·W
body = helper.make_graph([
    helper.make_node('Identity', ['s'], ['s_out']),
    helper.make_node('MatMul', ['xt', 'scan.proj.weight'], ['h'], name='/scan/proj/MatMul'),
    helper.make_node('Tanh', ['h'], ['yt'], name='/scan/Tanh'),
], 'body', [helper.make_tensor_value_info('s', onnx.TensorProto.FLOAT, [1]), helper.make_tensor_value_info('xt', onnx.TensorProto.FLOAT, [16])],
   [helper.make_tensor_value_info('s_out', onnx.TensorProto.FLOAT, [1]), helper.make_tensor_value_info('yt', onnx.TensorProto.FLOAT, [24])])
graph = helper.make_graph([helper.make_node('Scan', ['s0', 'x'], ['s_final', 'y'], name='/scan/Scan', num_scan_inputs=1, body=body)], 'scan',
    [helper.make_tensor_value_info('s0', onnx.TensorProto.FLOAT, [1]), helper.make_tensor_value_info('x', onnx.TensorProto.FLOAT, [5, 16])],
    [helper.make_tensor_value_info('y', onnx.TensorProto.FLOAT, [5, 24])], [numpy_helper.from_array(W, 'scan.proj.weight')])
scan_path = os.path.join(out, 'scan.onnx')
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)]), scan_path)
xs = rng.standard_normal((5, 16)).astype(np.float32)
expected['scan'] = {
    'layers': {'scan.proj': {'weight': W.T.copy().tobytes().hex(), 'shape': [24, 16], 'bias': 0}},
    'runs': [{'inputs': [feed(torch.zeros(1)), feed(torch.from_numpy(xs))], 'full': np.tanh(xs.astype(np.float64) @ W).flatten().tolist(),
              'lowrank': np.tanh(xs.astype(np.float64) @ truncated(W.T.astype(np.float64)).T).flatten().tolist()}],
    'params': onnx_params(scan_path),
}

with open(os.path.join(out, 'expected.json'), 'w') as f:
    json.dump(expected, f)

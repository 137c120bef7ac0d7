# The ONNX path and the PyTorch path of compression, compared. Usage:
#   torch_factors.py build OUT_DIR WORKER_PYTHON_DIR TEST_DIR
#     writes {encoder,skeleton}.pt (+ skeleton.pt.rankscope.json), {encoder,skeleton}.onnx (the same
#     models by torch.onnx.export) and inputs.json (fixed inputs, the dense models' outputs)
#   torch_factors.py apply OUT_DIR WORKER_PYTHON_DIR TEST_DIR
#     for each model: a freshly initialised instance + rankscope_torch.apply_factors(<name>.lowrank.safetensors)
#     (written by `rankscope compress <name>.pt`), and the checkpoint's weights + factorize(plan);
#     writes apply.json {name: {"applied": outputs, "factorized": outputs, "params": n, "checks": {...}}}
import json, os, sys
import torch

mode, out = sys.argv[1], sys.argv[2]
sys.path[:0] = [sys.argv[3], sys.argv[4]]
from torch_models import Encoder, Skeleton, distinct_layers  # noqa: E402

BUILD = {'encoder': Encoder, 'skeleton': Skeleton}


def inputs():
    g = torch.Generator().manual_seed(1)
    return {'encoder': torch.randint(0, 50, (3, 7), generator=g), 'skeleton': torch.randn(2, 3, 20, 25, generator=g)}


if mode == 'build':
    torch.manual_seed(0)
    ref = {}
    for name, cls in BUILD.items():
        m = cls().eval()
        if name == 'encoder':
            distinct_layers(m)
        else:  # non-trivial BatchNorm statistics
            m.bn.running_mean.uniform_(-0.5, 0.5)
            m.bn.running_var.uniform_(0.5, 2.0)
        torch.save(m.state_dict(), os.path.join(out, f'{name}.pt'))
        x = inputs()[name]
        torch.onnx.export(m, (x,), os.path.join(out, f'{name}.onnx'), opset_version=13, input_names=['x'], output_names=['y'])
        with torch.no_grad():
            ref[name] = {'input': x.flatten().tolist(), 'shape': list(x.shape), 'dtype': str(x.dtype), 'dense': m(x).flatten().tolist()}
    json.dump({'groups': {'tconv': 4}}, open(os.path.join(out, 'skeleton.pt.rankscope.json'), 'w'))
    json.dump(ref, open(os.path.join(out, 'inputs.json'), 'w'))
else:
    from rankscope_torch import apply_factors, factorize, read_factors, LowRankLinear, LowRankConv, LowRankEmbedding
    result = {}
    for name, cls in BUILD.items():
        path = os.path.join(out, f'{name}.lowrank.safetensors')
        x = inputs()[name]
        torch.manual_seed(123)  # different from the checkpoint's: every value must come from the file
        applied = apply_factors(cls(), path).eval()
        tensors, records, plan = read_factors(path)
        dense = cls().eval()
        dense.load_state_dict(torch.load(os.path.join(out, f'{name}.pt')))
        factorized = factorize(dense, plan).eval()
        with torch.no_grad():
            ya, yf = applied(x), factorized(x)
        kinds = {r['layer']: type(applied.get_submodule(r['layer']) if r['param'] == 'weight' else applied.get_submodule(r['module'])).__name__ for r in records}
        result[name] = {
            'applied': ya.flatten().tolist(), 'factorized': yf.flatten().tolist(),
            'params': sum(p.numel() for p in applied.parameters()) + sum(b.numel() for b in applied.buffers() if b.is_floating_point()),
            'stateKeysMatchFile': sorted(applied.state_dict().keys()) == sorted(tensors.keys()),
            'kinds': kinds,
            'planModelParamsAfter': plan['totals']['modelParamsAfter'],
        }
    json.dump(result, open(os.path.join(out, 'apply.json'), 'w'))

# Checkpoints saved by the real torch.save, and what torch.load says is in them (the reference the
# TypeScript readers are checked against). Usage: torch_checkpoints.py OUT_DIR WORKER_PYTHON_DIR TEST_DIR
# Writes <name>.pt / .safetensors files and expected.json:
#   {file: {"keys": {key: {"dtype", "shape", "sha256"}}, "svd": {key: [[σ…] per group]}}}
# Keys are as torch.load returns them after the wrapper prefix (module.) is removed; sha256 is of
# the tensor's contiguous little-endian bytes; svd holds numpy's singular values (float64) of the
# [out, in] matrix per conv group.
import hashlib, json, os, sys
import numpy as np
import torch, torch.nn as nn

out = sys.argv[1]
sys.path[:0] = [sys.argv[2], sys.argv[3]]  # src/worker/python, test/unit/formats
from rankscope_worker import safetensors  # noqa: E402  (an independent writer: numpy, not our TypeScript)
from torch_models import Encoder, Skeleton  # noqa: E402

torch.manual_seed(0)


def bits(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


DTYPES = {torch.float32: 'float32', torch.float16: 'float16', torch.bfloat16: 'bfloat16', torch.int64: 'int64', torch.float64: 'float64'}


def describe(sd, groups=None):
    groups = groups or {}
    keys, svd = {}, {}
    for k, v in sd.items():
        keys[k] = {'dtype': DTYPES[v.dtype], 'shape': list(v.shape), 'sha256': hashlib.sha256(bits(v)).hexdigest()}
        if k.endswith('weight') and 2 <= v.dim() <= 5 and v.is_floating_point():
            w = v.detach().double().reshape(v.shape[0], -1).numpy()
            g = groups.get(k, 1)
            svd[k] = [np.linalg.svd(b, compute_uv=False).tolist() for b in np.split(w, g, axis=0)]
    return {'keys': keys, 'svd': svd}


expected = {}

# 1. A Transformer encoder's plain state dict.
enc = Encoder().eval()
torch.save(enc.state_dict(), os.path.join(out, 'transformer.pt'))
expected['transformer.pt'] = describe(enc.state_dict())

# 2. A skeleton model with convs, inside a training checkpoint; tconv's groups come from the sidecar.
sk = Skeleton()
opt = torch.optim.SGD(sk.parameters(), lr=0.1, momentum=0.9)
sk(torch.randn(2, 3, 20, 25)).sum().backward()
opt.step()
sk.eval()
torch.save({'epoch': 7, 'state_dict': sk.state_dict(), 'optimizer': opt.state_dict(), 'best_acc': np.float64(0.875), 'arch': 'skeleton'},
           os.path.join(out, 'skeleton.pth'))
json.dump({'groups': {'tconv': 4}}, open(os.path.join(out, 'skeleton.pth.rankscope.json'), 'w'))
expected['skeleton.pth'] = describe(sk.state_dict(), {'tconv.weight': 4, 'dwconv.weight': 32})

# 3. DataParallel: every key starts with `module.`.
dp = nn.DataParallel(Skeleton())
torch.save(dp.state_dict(), os.path.join(out, 'dataparallel.pt'))
assert all(k.startswith('module.') for k in dp.state_dict())
expected['dataparallel.pt'] = describe(dp.module.state_dict(), {'dwconv.weight': 32})

# 4. fp16 weights (and one bfloat16 tensor), saved as pytorch_model.bin is.
half = Encoder().half().eval()
sd = half.state_dict()
sd['extra.bf16_weight'] = torch.randn(12, 8).to(torch.bfloat16)
torch.save(sd, os.path.join(out, 'fp16.bin'))
expected['fp16.bin'] = describe(sd)

# 5. A nested dict: {'model': {'state_dict': …}}, with a non-contiguous (transposed) tensor and tied weights.
nest = Encoder().eval()
sd = nest.state_dict()
sd['tied.weight'] = sd['embed.weight']            # same storage: counted once
sd['proj.weight'] = torch.randn(20, 32).t()        # stride (1, 32): read by strides
sd['offset.weight'] = torch.randn(100)[36:].reshape(8, 8)  # storage offset 36
torch.save({'model': {'state_dict': sd}, 'epoch': 3, 'optimizer': {'state': {0: {'momentum_buffer': torch.randn(4, 4)}}}},
           os.path.join(out, 'nested.pt'))
expected['nested.pt'] = describe(sd)

# 6. safetensors of the encoder (by the worker's numpy writer), fp32 and one bf16.
st = {k: v.detach().numpy() for k, v in enc.state_dict().items()}
st['extra.bf16_weight'] = ('BF16', torch.randn(12, 8).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
safetensors.write(os.path.join(out, 'encoder.safetensors'), st, {'format': 'pt'})
ref = {k: v for k, v in enc.state_dict().items()}
ref_bf = torch.from_numpy(st['extra.bf16_weight'][1].view(np.int16)).view(torch.bfloat16)
ref['extra.bf16_weight'] = ref_bf
expected['encoder.safetensors'] = describe(ref)

# 7. The same encoder re-zipped with deflate by another tool (read by inflating).
import zipfile
with zipfile.ZipFile(os.path.join(out, 'transformer.pt')) as src, \
        zipfile.ZipFile(os.path.join(out, 'deflated.pt'), 'w', zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        dst.writestr(info.filename.replace('transformer/', 'deflated/'), src.read(info))
expected['deflated.pt'] = expected['transformer.pt']

# Files that are refused: the legacy format, TorchScript, a whole pickled module.
torch.save(enc.state_dict(), os.path.join(out, 'legacy.pt'), _use_new_zipfile_serialization=False)
torch.jit.save(torch.jit.script(nn.Linear(3, 2)), os.path.join(out, 'scripted.pt'))
torch.save(nn.Linear(3, 2), os.path.join(out, 'whole_module.pt'))

# Cross-check every file with torch.load itself (weights_only where this torch has it).
for name in ['transformer.pt', 'skeleton.pth', 'dataparallel.pt', 'fp16.bin', 'nested.pt']:
    obj = torch.load(os.path.join(out, name), map_location='cpu')
    sd = obj.get('state_dict', obj) if 'model' not in obj else obj['model']['state_dict']
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
    assert sorted(sd) == sorted(expected[name]['keys']), name
    for k, v in sd.items():
        assert hashlib.sha256(bits(v)).hexdigest() == expected[name]['keys'][k]['sha256'], (name, k)

json.dump(expected, open(os.path.join(out, 'expected.json'), 'w'))

# Exports a small skeleton-style PyTorch model (1×1 conv, grouped k×1 temporal conv with stride,
# a Linear applied over every (frame, joint) as a MatMul, one Linear used twice, a Gemm head) with
# torch.onnx.export (batch and frames symbolic), and writes the reference MAC count per module:
# forward hooks on the modules PyTorch really runs read each output's numel, times the inputs
# each output element sums over (Conv: in/groups · ∏kernel; Linear: in_features), per sample.
# Usage: macs_reference.py OUT_DIR FRAMES  (writes model.onnx, x.npy (2 samples), macs.json)
import json, os, sys
import numpy as np
import torch, torch.nn as nn

out, frames = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)

class M(nn.Module):
    def __init__(s):
        super().__init__()
        s.embed = nn.Conv2d(3, 16, 1)
        s.tconv = nn.Conv2d(16, 32, (5, 1), stride=(2, 1), padding=(2, 0), groups=4)
        s.mix = nn.Linear(32, 24)
        s.shared = nn.Linear(24, 24)
        s.head = nn.Linear(24, 7)
    def forward(s, x):                      # x: (N, 3, T, V)
        x = torch.relu(s.embed(x))
        x = s.tconv(x)                      # (N, 32, T/2, V)
        x = s.mix(x.permute(0, 2, 3, 1))    # (N, T/2, V, 24): MatMul
        x = s.shared(torch.relu(s.shared(x)))
        return s.head(x.mean(dim=(1, 2)))   # (N, 7): Gemm

m = M().eval()
macs = {}
def hook(name):
    def f(mod, inputs, output):
        per = mod.weight[0].numel() if isinstance(mod, nn.Conv2d) else mod.in_features
        macs[name] = macs.get(name, 0) + int(output.numel() // output.shape[0] * per)
    return f
hooks = [mod.register_forward_hook(hook(name)) for name, mod in m.named_modules() if isinstance(mod, (nn.Conv2d, nn.Linear))]

x = torch.randn(2, 3, frames, 5)
with torch.no_grad():
    m(x[:1])
for h in hooks: h.remove()
torch.onnx.export(m, (x,), os.path.join(out, 'model.onnx'), opset_version=13, input_names=['x'],
                  output_names=['y'], dynamic_axes={'x': {0: 'batch', 2: 'frames'}, 'y': {0: 'batch'}})
np.save(os.path.join(out, 'x.npy'), x.numpy())
json.dump(macs, open(os.path.join(out, 'macs.json'), 'w'))

# Exports a small PyTorch model (embedding, grouped Conv1d, 2-layer TransformerEncoder, Linear
# head) with torch.onnx.export, and writes what PyTorch itself says: every module's weight as
# the [out, in] matrix (per conv group) and the model's output for fixed ids.
# Usage: torch_export.py OUT_DIR  (writes model.onnx, torch.json)
import json, os, sys
import torch, torch.nn as nn

out = sys.argv[1]
torch.manual_seed(0)

class M(nn.Module):
    def __init__(s):
        super().__init__()
        s.embed = nn.Embedding(50, 32)
        s.conv = nn.Conv1d(32, 32, 3, padding=1, groups=4)
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        s.encoder = nn.TransformerEncoder(layer, 2)
        s.head = nn.Linear(32, 10)
    def forward(s, ids):
        x = s.embed(ids)
        x = s.conv(x.transpose(1, 2)).transpose(1, 2)
        x = s.encoder(x)
        return s.head(x[:, 0])

m = M().eval()
with torch.no_grad():  # distinct layers (identical copies would be deduplicated by the exporter)
    for p in m.encoder.layers[1].parameters(): p.add_(0.01 * torch.randn_like(p))
ids = torch.arange(14).reshape(2, 7) % 50
torch.onnx.export(m, (ids,), os.path.join(out, 'model.onnx'), opset_version=13, input_names=['ids'],
                  output_names=['logits'], dynamic_axes={'ids': {0: 'batch', 1: 'seq'}})
hexf = lambda t: t.detach().float().contiguous().numpy().tobytes().hex()
mats = {'embed': [hexf(m.embed.weight)], 'head': [hexf(m.head.weight)],
        'conv': [hexf(g.reshape(8, -1)) for g in m.conv.weight.chunk(4, 0)]}
for i in range(2):
    l = m.encoder.layers[i]; p = f'encoder.layers.{i}'
    mats[f'{p}.self_attn.in_proj'] = [hexf(l.self_attn.in_proj_weight)]
    mats[f'{p}.self_attn.out_proj'] = [hexf(l.self_attn.out_proj.weight)]
    mats[f'{p}.linear1'] = [hexf(l.linear1.weight)]
    mats[f'{p}.linear2'] = [hexf(l.linear2.weight)]
with torch.no_grad():
    logits = m(ids)
json.dump({'matrices': mats, 'ids': ids.flatten().tolist(), 'logits': logits.flatten().tolist()}, open(os.path.join(out, 'torch.json'), 'w'))

# A small BERT-style encoder for bench/quality.bench.ts, trained briefly on a synthetic task so its
# spectra are not random, exported to ONNX with this torch. Seeded; writes into DIR:
#   bert.onnx (input_ids (N, 32) int64 -> logits (N, 8)), bert.npz (x_train, y_train, x_test, y_test)
# usage: /usr/bin/python3 bench/quality_bert.py DIR
import json, math, os, sys, time
import numpy as np
import torch
from torch import nn

out = sys.argv[1]
torch.manual_seed(0)
torch.set_num_threads(1)
rng = np.random.default_rng(0)
VOCAB, SEQ, CLASSES, D, HEADS, LAYERS, FFN = 1000, 32, 8, 128, 4, 4, 512

# Each class is a pair of topics (each topic prefers 40 tokens); the first half draws
# from the first topic and the second half from the second; 70 % of the tokens are Zipfian
# noise shared by all classes.
topics = rng.permutation(VOCAB - 100)[:320].reshape(8, 40) + 100
pairs = [(i, (i * 3 + 1) % 8) for i in range(CLASSES)]
zipf = 1.0 / np.arange(1, 101); zipf /= zipf.sum()

def make_data(count):
    x = np.empty((count, SEQ), np.int64); y = rng.integers(0, CLASSES, count)
    for s in range(count):
        a, b = pairs[y[s]]
        for t in range(SEQ):
            if rng.random() < 0.7: x[s, t] = rng.choice(100, p=zipf)
            else: x[s, t] = rng.choice(topics[a if t < SEQ // 2 else b])
    return x, y

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.fc1, self.fc2 = nn.Linear(D, FFN), nn.Linear(FFN, D)
    def forward(self, h):
        n = h.shape[0]
        split = lambda t: t.view(n, SEQ, HEADS, D // HEADS).transpose(1, 2)
        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D // HEADS), dim=-1)
        h = self.ln1(h + self.o((att @ v).transpose(1, 2).reshape(n, SEQ, D)))
        return self.ln2(h + self.fc2(torch.nn.functional.gelu(self.fc1(h))))

class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.pos = nn.Parameter(torch.randn(1, SEQ, D) * 0.02)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.pool = nn.Linear(D, D)
        self.head = nn.Linear(D, CLASSES)
    def forward(self, ids):
        h = self.embed(ids) + self.pos
        for b in self.blocks: h = b(h)
        return self.head(torch.tanh(self.pool(h.mean(1))))

t0 = time.time()
x_train, y_train = make_data(4000)
x_test, y_test = make_data(1000)
model = Bert()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
X, Y = torch.from_numpy(x_train), torch.from_numpy(y_train)
for epoch in range(4):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 64):
        idx = perm[i:i + 64]
        loss = nn.functional.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad(); loss.backward(); opt.step()
model.eval()
with torch.no_grad():
    acc = float((model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean())
torch.onnx.export(model, (X[:2],), os.path.join(out, 'bert.onnx'), input_names=['input_ids'], output_names=['logits'],
                  dynamic_axes={'input_ids': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=14)
np.savez(os.path.join(out, 'bert.npz'), x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
json.dump({'test_top1': acc, 'seconds': time.time() - t0, 'loss': float(loss)}, open(os.path.join(out, 'bert.json'), 'w'))
print(json.dumps({'test_top1': acc, 'seconds': round(time.time() - t0, 1)}))

"""Small networks written natively in PyTorch and exported with torch.onnx.export, for the
whole-model checks (executor vs ONNX Runtime, executor vs native PyTorch) and the GPU benchmark:
a Transformer encoder classifier and a skeleton (N, 3, T, 25, 2) GCN + temporal-attention model."""
import torch
from torch import nn


class TransformerClassifier(nn.Module):
    def __init__(self, d_in=24, d=64, heads=4, layers=2, classes=8, seq=16):
        super().__init__()
        self.embed = nn.Linear(d_in, d)
        self.pos = nn.Parameter(torch.randn(1, seq, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):  # (N, seq, d_in)
        h = self.encoder(self.embed(x) + self.pos)
        return self.head(self.norm(h).mean(dim=1))


class SkeletonNet(nn.Module):
    """CTR-GCN-flavoured: graph conv over joints (einsum with a learned adjacency), BatchNorm,
    temporal conv, attention over time, pooled over persons/joints/time."""

    def __init__(self, classes=10, c=32, joints=25):
        super().__init__()
        self.data_bn = nn.BatchNorm1d(2 * 3 * joints)
        self.adj = nn.Parameter(torch.eye(joints) + 0.01 * torch.randn(joints, joints))
        self.gcn = nn.Conv2d(3, c, 1)
        self.bn1 = nn.BatchNorm2d(c)
        self.tcn = nn.Conv2d(c, c, (5, 1), padding=(2, 0), stride=(2, 1))
        self.bn2 = nn.BatchNorm2d(c)
        self.attn = nn.MultiheadAttention(c, 4, batch_first=True)
        self.pool = nn.MaxPool2d((2, 1))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):  # (N, C=3, T, V, M)
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        x = self.data_bn(x)
        x = x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        x = torch.einsum("nctv,vw->nctw", x, torch.softmax(self.adj, dim=-1))
        x = torch.relu(self.bn1(self.gcn(x)))
        x = torch.relu(self.bn2(self.tcn(x)))
        x = self.pool(x)                               # (N·M, C, T', V)
        seq = x.mean(dim=3).transpose(1, 2)            # (N·M, T', C)
        seq, _ = self.attn(seq, seq, seq, need_weights=False)
        feat = seq.mean(dim=1).reshape(n, m, -1).mean(dim=1)
        return self.fc(torch.clamp(feat, -10, 10))


def example_input(kind, batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    if kind == "transformer":
        return torch.randn(batch, 16, 24, generator=g)
    return torch.randn(batch, 3, 32, 25, 2, generator=g)


def build(kind, seed=0):
    torch.manual_seed(seed)
    net = TransformerClassifier() if kind == "transformer" else SkeletonNet()
    if kind == "skeleton":  # non-trivial running statistics
        for bn in (net.data_bn, net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def export(net, kind, path, opset=17, batch=4):
    x = example_input(kind, batch)
    import inspect
    # torch >= 2.9 defaults to the dynamo exporter (needs onnxscript); keep the TorchScript one.
    extra = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(net, (x,), path, opset_version=opset, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True, **extra)
    return x

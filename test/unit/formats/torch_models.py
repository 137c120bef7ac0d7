"""Small PyTorch models for the state-dict tests (torch_checkpoints.py, torch_factors.py)."""
import torch
import torch.nn as nn


class Encoder(nn.Module):
    """Embedding, a 2-layer nn.TransformerEncoder, a Linear head."""
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(32, 10)

    def forward(self, ids):
        return self.head(self.encoder(self.embed(ids))[:, 0])


class Skeleton(nn.Module):
    """CTR-GCN-shaped: (N, C, T, V) convs, a grouped temporal conv, a depthwise conv, BatchNorm, a head."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 1)
        self.bn = nn.BatchNorm2d(16)
        self.tconv = nn.Conv2d(16, 32, (9, 1), padding=(4, 0), groups=4)
        self.dwconv = nn.Conv2d(32, 32, (3, 3), padding=1, groups=32)
        self.conv1d = nn.Conv1d(32, 24, 3, padding=1)
        self.fc = nn.Linear(24, 60)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = self.dwconv(self.tconv(x)).mean(-1)
        return self.fc(self.conv1d(x).mean(-1))


def distinct_layers(model):
    """Perturbs the encoder's second layer so torch.onnx.export keeps it apart from the first."""
    with torch.no_grad():
        for p in model.encoder.layers[1].parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model

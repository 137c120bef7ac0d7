"""The sample models: a Hyperformer-like skeleton Transformer and an MLP variant.

Both take the NTU/CTR-GCN input (N, C=3, T, V=25, M=2), as EVAL's NTU preset feeds it after
resampling each sequence's valid frames to T, and return class logits (N, classes).
Centring happens inside the graph, so the ONNX file takes raw camera coordinates.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

NUM_JOINTS = 25


def center_skeletons(x):
    """Subtract the first person's spine_mid in the first frame; absent persons stay zero."""
    present = (x.abs().sum(dim=(1, 3), keepdim=True) > 0).to(x.dtype)  # (N, 1, T, 1, M)
    origin = x[:, :, 0:1, 1:2, 0:1]
    return (x - origin) * present


class JointAttention(nn.Module):
    """Multi-head self-attention over the 25 joints of each frame. q/k/v and the output
    projection are 1x1 convs (as in Hyperformer); a learned per-head joint-pair bias stands in
    for Hyperformer's skeleton-structure prior."""

    def __init__(self, channels, heads):
        super().__init__()
        self.heads = heads
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.joint_bias = nn.Parameter(torch.zeros(heads, NUM_JOINTS, NUM_JOINTS))

    def forward(self, x):  # x: (B, C, T, V)
        b, c, t, v = x.shape
        h, d = self.heads, c // self.heads

        def split(y):  # (B, C, T, V) -> (B, h, T, V, d)
            return y.reshape(b, h, d, t, v).permute(0, 1, 3, 4, 2)

        q, k, val = split(self.q(x)), split(self.k(x)), split(self.v(x))
        attn = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d) + self.joint_bias[None, :, None]
        out = torch.matmul(attn.softmax(dim=-1), val)  # (B, h, T, V, d)
        out = out.permute(0, 1, 4, 2, 3).reshape(b, c, t, v)
        return self.proj(out)


class Block(nn.Module):
    """Joint attention, a pointwise feed-forward, then a strided temporal convolution."""

    def __init__(self, channels, heads, stride, kernel=5):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.attn = JointAttention(channels, heads)
        self.norm2 = nn.BatchNorm2d(channels)
        self.ffn = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.GELU(), nn.Conv2d(2 * channels, channels, 1))
        self.tconv = nn.Conv2d(channels, channels, (kernel, 1), stride=(stride, 1), padding=(kernel // 2, 0))
        self.norm3 = nn.BatchNorm2d(channels)
        self.stride = stride

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.ffn(self.norm2(x))
        return x[:, :, ::self.stride] + F.gelu(self.norm3(self.tconv(x)))


class SkeletonTransformer(nn.Module):
    """Hyperformer-like: frame-patch embedding, joint-attention blocks with strided temporal
    convs, and a head over per-joint features (pooled over time and persons)."""

    def __init__(self, classes, channels=64, heads=4, strides=(2, 1, 2, 1), patch=4, hidden=640, dropout=0.3):
        super().__init__()
        self.embed = nn.Conv2d(3, channels, (patch, 1), stride=(patch, 1))
        self.joint_embed = nn.Parameter(torch.zeros(1, channels, 1, NUM_JOINTS))
        self.blocks = nn.Sequential(*[Block(channels, heads, s) for s in strides])
        self.norm = nn.BatchNorm2d(channels)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * NUM_JOINTS, hidden), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(hidden, classes))

    def forward(self, x):  # (N, 3, T, V, M)
        n, c, t, v, m = x.shape
        x = center_skeletons(x)
        x = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)  # persons share the weights
        x = self.blocks(self.embed(x) + self.joint_embed)
        x = self.norm(x).mean(dim=2)  # (N*M, C, V)
        x = x.reshape(n, m, -1, v).mean(dim=1)
        return self.head(x)


class SkeletonMLP(nn.Module):
    """The MLP variant: time-pooled coordinates through large square linear layers, where a
    low-rank factorization saves the most (like STEP-CATFormer's 6400x6400 layers)."""

    def __init__(self, classes, frames=64, pooled_frames=8, hidden=1024, depth=3, dropout=0.3):
        super().__init__()
        self.pool = frames // pooled_frames
        layers = [nn.Flatten(), nn.Linear(3 * pooled_frames * NUM_JOINTS * 2, hidden), nn.GELU()]
        for _ in range(depth - 1):
            layers += [nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.GELU()]
        layers += [nn.Dropout(dropout), nn.Linear(hidden, classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):  # (N, 3, T, V, M)
        x = center_skeletons(x)
        x = F.avg_pool3d(x, kernel_size=(self.pool, 1, 1))
        return self.net(x)


MODELS = {'transformer': SkeletonTransformer, 'mlp': SkeletonMLP}

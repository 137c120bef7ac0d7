"""The sample models: a Hyperformer-like skeleton Transformer and a STEP-CATFormer-like variant.

Both take the NTU/CTR-GCN input (N, C=3, T, V=25, M=2), as EVAL's NTU preset feeds it after
resampling each sequence's valid frames to T, and return class logits (N, classes). The two
persons are folded into the batch (they share the weights) and averaged before the classifier.
Centring happens inside the graph, so the ONNX file takes raw camera coordinates.
"""
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from skeleton import NUM_JOINTS, PARENT

# Hyperformer's body parts for NTU (its config's joint_label): 0 torso/head, 1 hands,
# 2 arms/hips, 3 legs, 4 spine_mid. A hyperedge is the mean of its joints' features.
JOINT_PARTS = [0, 4, 2, 2, 2, 2, 1, 1, 2, 2, 1, 1, 2, 3, 3, 3, 2, 3, 3, 3, 1, 0, 1, 0, 1]


def hop_distances():
    """(V, V) int64: bones between two joints on the skeleton tree (0 on the diagonal)."""
    adj = np.zeros((NUM_JOINTS, NUM_JOINTS), dtype=bool)
    for child, parent in enumerate(PARENT):
        if parent >= 0:
            adj[child, parent] = adj[parent, child] = True
    hops = np.full((NUM_JOINTS, NUM_JOINTS), -1, dtype=np.int64)
    for start in range(NUM_JOINTS):
        hops[start, start], frontier, d = 0, [start], 0
        while frontier:
            d += 1
            frontier = [j for i in frontier for j in np.flatnonzero(adj[i]) if hops[start, j] < 0]
            for j in frontier:
                hops[start, j] = d
    return hops


def center_skeletons(x):
    """Subtract the first person's spine_mid in the first frame; absent persons stay zero."""
    present = (x.abs().sum(dim=(1, 3), keepdim=True) > 0).to(x.dtype)  # (N, 1, T, 1, M)
    origin = x[:, :, 0:1, 1:2, 0:1]
    return (x - origin) * present


def fold_persons(x):
    """(N, C, T, V, M) -> (N*M, C, T, V): the persons share the weights."""
    n, c, t, v, m = x.shape
    return x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)


class JointAttention(nn.Module):
    """Hyperformer's MHSA over the 25 joints of each frame: q and kv 1x1 convs; attention logits
    q.k + q.(hop-distance embedding) + q.(hyperedge feature) + a per-head hyperedge bias;
    output (alpha * softmax + per-head 25x25 joint matrix) @ v; a grouped 1x1 projection."""

    def __init__(self, dim_in, dim, heads, proj_groups):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.scale = (dim // heads) ** -0.5
        hops = hop_distances()
        self.register_buffer('hops', torch.from_numpy(hops), persistent=False)
        self.hop_embed = nn.Parameter(torch.zeros(int(hops.max()) + 1, dim))
        self.edge_bias = nn.Parameter(torch.zeros(heads, dim // heads))
        self.joint_matrix = nn.Parameter(torch.eye(NUM_JOINTS).repeat(heads, 1, 1))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.q = nn.Conv2d(dim_in, dim, 1, bias=False)
        self.kv = nn.Conv2d(dim_in, 2 * dim, 1, bias=False)
        self.proj = nn.Conv2d(dim, dim, 1, groups=proj_groups)

    def forward(self, x, e):  # x: (B, C_in, T, V); e: hyperedge features (B, C, T, V)
        b, _, t, v = x.shape
        h, d = self.heads, self.dim // self.heads
        q = self.q(x).reshape(b, h, d, t, v).permute(0, 3, 1, 4, 2)  # (B, T, h, V, d)
        kv = self.kv(x).reshape(b, 2, h, d, t, v).permute(1, 0, 4, 2, 5, 3)
        k, val = kv[0], kv[1]
        e = e.reshape(b, h, d, t, v).permute(0, 3, 1, 4, 2)
        k_hop = self.hop_embed[self.hops].reshape(v, v, h, d)
        # q.k + q.e in one product: the same sum as Hyperformer's, one matmul fewer.
        logits = (q @ (k + e).transpose(-2, -1)
                  + torch.einsum('bthnc,nmhc->bthnm', q, k_hop)
                  + torch.einsum('hc,bthmc->bthm', self.edge_bias, e).unsqueeze(-2))
        attn = (logits * self.scale).softmax(dim=-1)
        out = (self.alpha * attn + self.joint_matrix) @ val  # (B, T, h, V, d)
        out = out.permute(0, 2, 4, 1, 3).reshape(b, h * d, t, v)
        return self.proj(out)


class HyperedgeAttentionUnit(nn.Module):
    """LayerNorm, hyperedge features (part means through a 1x1 projection), joint attention,
    and the skip connection (a 1x1 conv where the channels change)."""

    def __init__(self, dim_in, dim, heads, proj_groups):
        super().__init__()
        self.norm = nn.LayerNorm(dim_in)
        # Index gathers, not matmuls with constant 25x5 matrices: those would read as weight layers.
        self.part_joints = [torch.tensor([j for j, p in enumerate(JOINT_PARTS) if p == part]) for part in range(max(JOINT_PARTS) + 1)]
        self.joint_part = torch.tensor(JOINT_PARTS)
        self.edge_proj = nn.Conv2d(dim_in, dim, 1, bias=False)
        self.attn = JointAttention(dim_in, dim, heads, proj_groups)
        self.skip = nn.Conv2d(dim_in, dim, 1, bias=False) if dim_in != dim else None

    def forward(self, x):
        parts = torch.stack([x.index_select(3, joints).mean(dim=3) for joints in self.part_joints], dim=3)  # (B, C, T, P)
        e = self.edge_proj(parts).index_select(3, self.joint_part)  # (B, C, T, V): each joint gets its part's feature
        y = self.attn(self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), e)
        return (self.skip(x) if self.skip is not None else x) + y


class MultiScaleTemporal(nn.Module):
    """Hyperformer's multi-scale temporal block: four 1x1 branches of C/4 channels; two go on to
    kernel-5 temporal convs (dilation 1 and 2), one to a 3-frame max-pool, one is strided."""

    def __init__(self, channels, stride, kernel=5, dilations=(1, 2)):
        super().__init__()
        c = channels // (len(dilations) + 2)

        def pointwise(stride_=1):
            return [nn.Conv2d(channels, c, 1, stride=(stride_, 1)), nn.BatchNorm2d(c)]

        self.branches = nn.ModuleList([
            nn.Sequential(*pointwise(), nn.ReLU(),
                          nn.Conv2d(c, c, (kernel, 1), stride=(stride, 1), padding=((kernel - 1) * dl // 2, 0), dilation=(dl, 1)),
                          nn.BatchNorm2d(c))
            for dl in dilations])
        self.branches.append(nn.Sequential(*pointwise(), nn.ReLU(), nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)), nn.BatchNorm2d(c)))
        self.branches.append(nn.Sequential(*pointwise(stride)))

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Block(nn.Module):
    """Hyperformer's TCN_ViT_unit: attention unit, multi-scale temporal block, block residual
    (identity, or a strided 1x1 conv + BN where the channels or the stride change), ReLU."""

    def __init__(self, dim_in, dim, heads, proj_groups, stride):
        super().__init__()
        self.attention = HyperedgeAttentionUnit(dim_in, dim, heads, proj_groups)
        self.temporal = MultiScaleTemporal(dim, stride)
        self.residual = None
        if dim_in != dim or stride != 1:
            self.residual = nn.Sequential(nn.Conv2d(dim_in, dim, 1, stride=(stride, 1)), nn.BatchNorm2d(dim))

    def forward(self, x):
        res = self.residual(x) if self.residual is not None else x
        return F.relu(self.temporal(self.attention(x)) + res)


class SkeletonTransformer(nn.Module):
    """Hyperformer-like: data BN, `depth` blocks of `channels` channels (the first takes the
    3 coordinates), stride 2 where `strides` says, then time/joint/person means and a linear
    classifier."""

    def __init__(self, classes, channels=60, heads=2, proj_groups=6, depth=6, downsample=(4, 6), dropout=0.0):
        super().__init__()
        self.data_bn = nn.BatchNorm1d(2 * 3 * NUM_JOINTS)
        dims = [3] + [channels] * depth
        self.blocks = nn.Sequential(*[
            Block(dims[i], dims[i + 1], heads, proj_groups, 2 if i + 1 in downsample else 1) for i in range(depth)])
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):  # (N, 3, T, V, M)
        n, c, t, v, m = x.shape
        x = center_skeletons(x)
        x = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t))
        x = x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        x = self.blocks(x)
        x = x.mean(dim=(2, 3)).reshape(n, m, -1).mean(dim=1)
        return self.classifier(self.dropout(x))


class CatBlock(nn.Module):
    """STEP-CATFormer-style: a dense linear layer over each frame's flattened joints x channels
    (all joints mix), GELU, residual; then a cheap depthwise temporal conv."""

    def __init__(self, width, kernel=5, dropout=0.1):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.dense = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.temporal = nn.Conv1d(width, width, kernel, padding=kernel // 2, groups=width)

    def forward(self, x):  # (B, T, W)
        x = x + self.dropout(F.gelu(self.dense(self.norm(x))))
        return x + self.temporal(x.transpose(1, 2)).transpose(1, 2)


class SkeletonCatformer(nn.Module):
    """STEP-CATFormer-like: a per-joint 1x1 embedding to `joint_channels`, then `depth` dense
    layers of (25 * joint_channels)^2 on each frame, time and person means, a linear classifier."""

    def __init__(self, classes, joint_channels=20, depth=6, dropout=0.2):
        super().__init__()
        width = NUM_JOINTS * joint_channels
        self.embed = nn.Conv2d(3, joint_channels, 1)
        self.joint_embed = nn.Parameter(torch.zeros(1, joint_channels, 1, NUM_JOINTS))
        self.blocks = nn.Sequential(*[CatBlock(width) for _ in range(depth)])
        self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(width, classes)

    def forward(self, x):  # (N, 3, T, V, M)
        n, c, t, v, m = x.shape
        x = fold_persons(center_skeletons(x))
        x = self.embed(x) + self.joint_embed  # (N*M, J, T, V)
        x = x.permute(0, 2, 3, 1).reshape(n * m, t, -1)  # each frame's joints x channels
        x = self.norm(self.blocks(x)).mean(dim=1).reshape(n, m, -1).mean(dim=1)
        return self.classifier(self.dropout(x))


MODELS = {'transformer': SkeletonTransformer, 'catformer': SkeletonCatformer}

"""Low-rank replacements for factorized layers, and putting them into a user's nn.Module.

W ≈ A·B with A = U√Σ (out×k) and B = √ΣVᵀ (k×in), as Rankscope writes them. Each replacement
keeps the original's bias, options, dtype and device, holds A and B as the parameters
`lowrank_A` and `lowrank_B` (so its state-dict keys are those of the factors file), and offers a
read-only `weight` (A·B) for code that reads a layer's weight directly (nn.MultiheadAttention reads
`out_proj.weight`). Works with torch 1.13 and 2.x.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class FactorsError(ValueError):
    """A factors file or plan that does not fit the model (names, shapes, groups)."""


class LowRankLinear(nn.Module):
    """nn.Linear(in, out) as two matmuls: x·Bᵀ (k features), then ·Aᵀ + bias."""

    def __init__(self, linear, a, b):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.rank = a.shape[1]
        self.lowrank_A = nn.Parameter(a)
        self.lowrank_B = nn.Parameter(b)
        self.bias = linear.bias

    @property
    def weight(self):
        return self.lowrank_A @ self.lowrank_B

    def forward(self, x):
        return F.linear(F.linear(x, self.lowrank_B), self.lowrank_A, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, bias={self.bias is not None}"


class LowRankConv(nn.Module):
    """nn.Conv1d/2d/3d as a conv with the original kernel into k·groups channels (weight B), then a
    1×1 conv back to the output channels (weight A, the bias), both with the original groups."""

    def __init__(self, conv, a, b):
        super().__init__()
        self.dims = conv.weight.dim() - 2
        self._conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[self.dims]
        self.in_channels, self.out_channels, self.groups = conv.in_channels, conv.out_channels, conv.groups
        self.kernel_size, self.stride, self.padding, self.dilation = conv.kernel_size, conv.stride, conv.padding, conv.dilation
        self.padding_mode = conv.padding_mode
        self._pad = getattr(conv, "_reversed_padding_repeated_twice", None)
        self.rank = a.shape[1]
        self.lowrank_A = nn.Parameter(a)
        self.lowrank_B = nn.Parameter(b)
        self.bias = conv.bias

    @property
    def weight(self):
        """The dense kernel A·B per group: [out, in/groups, k…]."""
        g, k = self.groups, self.rank
        a = self.lowrank_A.reshape(g, self.out_channels // g, k)
        b = self.lowrank_B.reshape(g, k, -1)
        return torch.bmm(a, b).reshape(self.out_channels, *self.lowrank_B.shape[1:])

    def forward(self, x):
        if self.padding_mode != "zeros":
            x = F.pad(x, self._pad, mode=self.padding_mode)
            y = self._conv(x, self.lowrank_B, None, self.stride, 0, self.dilation, self.groups)
        else:
            y = self._conv(x, self.lowrank_B, None, self.stride, self.padding, self.dilation, self.groups)
        return self._conv(y, self.lowrank_A, self.bias, 1, 0, 1, self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"groups={self.groups}, rank={self.rank}, bias={self.bias is not None}")


class LowRankEmbedding(nn.Module):
    """nn.Embedding(num, dim) as a lookup in A (num×k), then ·B (k×dim)."""

    def __init__(self, emb, a, b):
        super().__init__()
        self.num_embeddings, self.embedding_dim = emb.num_embeddings, emb.embedding_dim
        self.padding_idx, self.max_norm, self.norm_type = emb.padding_idx, emb.max_norm, emb.norm_type
        self.scale_grad_by_freq, self.sparse = emb.scale_grad_by_freq, emb.sparse
        self.rank = a.shape[1]
        self.lowrank_A = nn.Parameter(a)
        self.lowrank_B = nn.Parameter(b)

    @property
    def weight(self):
        return self.lowrank_A @ self.lowrank_B

    def forward(self, ids):
        rows = F.embedding(ids, self.lowrank_A, self.padding_idx, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse)
        return rows @ self.lowrank_B


class LowRankWeight(nn.Module):
    """A bare 2-D parameter (nn.MultiheadAttention's in_proj_weight) as A·B, computed when read."""

    def __init__(self, a, b):
        super().__init__()
        self.lowrank_A = nn.Parameter(a)
        self.lowrank_B = nn.Parameter(b)

    @property
    def weight(self):
        return self.lowrank_A @ self.lowrank_B


_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _unwrap(model):
    """The module DataParallel / DistributedDataParallel wrap (their state dicts add `module.`)."""
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    while isinstance(model, wrappers):
        model = model.module
    return model


def _submodule(root, path):
    module = root
    for part in path.split(".") if path else []:
        if not hasattr(module, part):
            raise FactorsError(f"the model has no module '{path}' (no '{part}' under it)")
        module = getattr(module, part)
    return module


def _set_submodule(root, path, new):
    parent_path, _, child = path.rpartition(".")
    setattr(_submodule(root, parent_path), child, new)


def _replace_parameter(module, param, sub_name, a, b):
    """Turns module.<param> into a read-only property returning module.<sub_name>.weight (= A·B),
    on a per-instance subclass (as torch.nn.utils.parametrize does)."""
    if hasattr(module, sub_name) and not isinstance(getattr(module, sub_name), LowRankWeight):
        raise FactorsError(f"cannot add '{sub_name}' to {type(module).__name__}: it already has an attribute of that name")
    del module._parameters[param]
    setattr(module, sub_name, LowRankWeight(a, b))
    cls = module.__class__
    module.__class__ = type(f"LowRank{cls.__name__}", (cls,), {param: property(lambda self: getattr(self, sub_name).weight)})


def replace_layer(root, record, a, b):
    """Puts the low-rank form of one factorized layer into `root` (the unwrapped model).

    record: the layer's entry of the factors file's `rankscope.factors` metadata (or one made by
    factorize): module, param, layer, groups, tensorShape. a, b: the stored factor tensors.
    """
    module_path, param = record["module"], record["param"]
    owner = _submodule(root, module_path)
    weight = getattr(owner, param, None)
    if not isinstance(weight, torch.Tensor):
        raise FactorsError(f"'{record['weight']}' is not a parameter of the model")
    if list(weight.shape) != list(record["tensorShape"]):
        raise FactorsError(f"'{record['weight']}' has shape {list(weight.shape)} in the model but {record['tensorShape']} in the factors")
    a = a.to(device=weight.device, dtype=weight.dtype)
    b = b.to(device=weight.device, dtype=weight.dtype)
    if param == "weight" and isinstance(owner, nn.Linear):
        new = LowRankLinear(owner, a, b)
    elif param == "weight" and isinstance(owner, _CONVS):
        if owner.groups != record["groups"]:
            raise FactorsError(f"'{record['layer']}' has groups={owner.groups} in the model but was factorized with "
                               f"groups={record['groups']}; give its groups in the checkpoint's .rankscope.json sidecar and compress again")
        new = LowRankConv(owner, a, b)
    elif param == "weight" and isinstance(owner, nn.Embedding):
        new = LowRankEmbedding(owner, a, b)
    elif param == "weight" and isinstance(owner, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        raise FactorsError(f"'{record['layer']}' is a {type(owner).__name__}, whose kernel layout Rankscope does not factorize")
    elif weight.dim() == 2 and param != "weight":
        _replace_parameter(owner, param, record["layer"].rpartition(".")[2], a, b)
        return
    else:
        raise FactorsError(f"'{record['layer']}' is a {type(owner).__name__}; apply_factors replaces nn.Linear, nn.Conv1d/2d/3d, "
                           "nn.Embedding and 2-D parameters named *_weight")
    if module_path:
        _set_submodule(root, module_path, new)
    else:
        raise FactorsError("the model itself is the factorized layer; wrap it in a module")


def balanced_factors(matrix, k):
    """A = U√Σ (m×k), B = √ΣVᵀ (k×n) of the top-k singular triplets, in float64."""
    u, s, vh = torch.linalg.svd(matrix.double(), full_matrices=False)
    root = s[:k].sqrt()
    return u[:, :k] * root, root[:, None] * vh[:k]


def factor_tensors(weight, k, groups, layout):
    """The stored A and B of `weight` at rank k, in Rankscope's layout (docs/pytorch.md)."""
    if layout == "out_in":
        return balanced_factors(weight.reshape(weight.shape[0], -1), k)
    out = weight.shape[0]
    parts = [balanced_factors(w.reshape(out // groups, -1), k) for w in weight.chunk(groups, 0)]
    spatial = weight.dim() - 2
    a = torch.cat([p[0] for p in parts], 0).reshape(out, k, *([1] * spatial))
    b = torch.cat([p[1] for p in parts], 0).reshape(k * groups, *weight.shape[1:])
    return a, b

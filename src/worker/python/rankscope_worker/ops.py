"""One torch function per ONNX op. Each takes (ctx, attrs, *inputs) and returns a tensor or a
tuple of tensors; absent optional inputs arrive as None. `ctx` carries the model's default-domain
opset (semantics changed across opsets 6-18, e.g. Softmax's axis, Split/Squeeze/Reduce* axes moving
from attributes to inputs) and whether the module is training (Dropout, BatchNormalization)."""
import math

import torch
import torch.nn.functional as F

# ONNX TensorProto.DataType -> torch dtype (Cast's `to`, ConstantOfShape).
ONNX_DTYPES = {
    1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32, 7: torch.int64,
    9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16,
}


class OpError(ValueError):
    pass


def _ints(t):
    """A shape-like input (int64 tensor, list or None) as a Python list of ints."""
    if t is None:
        return None
    if isinstance(t, torch.Tensor):
        return [int(v) for v in t.reshape(-1).tolist()]
    return [int(v) for v in t]


def _scalar(t):
    return t.reshape(-1)[0].item() if isinstance(t, torch.Tensor) else t


def _axes(ctx, attrs, inputs, index, input_since):
    """Axes given as an attribute before opset `input_since`, as input `index` from it on."""
    if ctx.opset >= input_since:
        return _ints(inputs[index]) if len(inputs) > index else None
    return attrs.get("axes")


def _old_broadcast(attrs, a, b):
    # Opset < 7 binary ops: `broadcast=1, axis=k` aligns b's dims with a's starting at axis k.
    if attrs.get("broadcast") and "axis" in attrs and b.dim() < a.dim():
        axis = attrs["axis"] % a.dim()
        b = b.reshape(list(b.shape) + [1] * (a.dim() - axis - b.dim()))
    return b


# ---- elementwise -------------------------------------------------------------------------------

def add(ctx, attrs, a, b): return a + _old_broadcast(attrs, a, b)
def sub(ctx, attrs, a, b): return a - _old_broadcast(attrs, a, b)
def mul(ctx, attrs, a, b): return a * _old_broadcast(attrs, a, b)


def div(ctx, attrs, a, b):
    b = _old_broadcast(attrs, a, b)
    if not a.is_floating_point():  # ONNX integer division truncates
        return torch.div(a, b, rounding_mode="trunc")
    return a / b


def pow_(ctx, attrs, a, b):
    out = torch.pow(a, b)
    return out.to(a.dtype) if out.dtype != a.dtype else out


def mod(ctx, attrs, a, b):
    return torch.fmod(a, b) if attrs.get("fmod") else torch.remainder(a, b)


def _unary(fn):
    return lambda ctx, attrs, x: fn(x)


def clip(ctx, attrs, x, lo=None, hi=None):
    if ctx.opset < 11:
        lo, hi = attrs.get("min"), attrs.get("max")
    else:
        lo = None if lo is None else _scalar(lo)
        hi = None if hi is None else _scalar(hi)
    if lo is None and hi is None:
        return x
    return torch.clamp(x, min=lo, max=hi)


def leaky_relu(ctx, attrs, x): return F.leaky_relu(x, attrs.get("alpha", 0.01))
def elu(ctx, attrs, x): return F.elu(x, attrs.get("alpha", 1.0))


def selu(ctx, attrs, x):
    alpha = attrs.get("alpha", 1.67326319217681884765625)
    gamma = attrs.get("gamma", 1.05070102214813232421875)
    return gamma * torch.where(x > 0, x, alpha * (torch.exp(x) - 1))


def hard_sigmoid(ctx, attrs, x):
    return torch.clamp(attrs.get("alpha", 0.2) * x + attrs.get("beta", 0.5), 0, 1)


def prelu(ctx, attrs, x, slope):
    if slope.dim() == 1 and x.dim() > 2 and slope.numel() == x.shape[1] and slope.numel() != x.shape[-1]:
        slope = slope.reshape([-1] + [1] * (x.dim() - 2))  # opset < 7 per-channel slope
    return torch.where(x < 0, x * slope, x)


def gelu(ctx, attrs, x):
    return F.gelu(x, approximate=attrs.get("approximate", "none"))


def variadic(fn):
    def run(ctx, attrs, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        return out
    return run


def mean(ctx, attrs, *xs):
    return variadic(torch.add)(ctx, attrs, *xs) / len(xs)


def where(ctx, attrs, cond, a, b): return torch.where(cond.bool(), a, b)


def cast(ctx, attrs, x):
    to = attrs["to"]
    if to not in ONNX_DTYPES:
        raise OpError(f"Cast to ONNX type {to} is not supported")
    return x.to(ONNX_DTYPES[to])


# ---- linear algebra ----------------------------------------------------------------------------

def matmul(ctx, attrs, a, b): return torch.matmul(a, b)


def gemm(ctx, attrs, a, b, c=None):
    if attrs.get("transA"):
        a = a.t()
    if attrs.get("transB"):
        b = b.t()
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    if c is not None and a.dim() == 2 and b.dim() == 2 and a.is_floating_point():
        return torch.addmm(c, a, b, beta=beta, alpha=alpha)  # one fused kernel, as nn.Linear uses
    y = a @ b
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return y


def einsum(ctx, attrs, *xs):
    return torch.einsum(attrs["equation"].replace(" ", ""), *xs)


# ---- convolution and pooling -------------------------------------------------------------------

def _spatial_pads(attrs, x, kernel, strides, dilations):
    """ONNX pads [b1..bn, e1..en] (or auto_pad) as a list of (begin, end) per spatial dim."""
    n = len(kernel)
    auto = attrs.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for i in range(n):
            size = x.shape[2 + i]
            target = -(-size // strides[i])
            total = max(0, (target - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
            small, big = total // 2, total - total // 2
            out.append((small, big) if auto == "SAME_UPPER" else (big, small))
        return out
    if auto == "VALID":
        return [(0, 0)] * n
    pads = attrs.get("pads", [0] * (2 * n))
    return [(pads[i], pads[i + n]) for i in range(n)]


def _torch_pad(pairs):
    """Per-dim (begin, end) pairs, first spatial dim first, as F.pad's last-dim-first list."""
    flat = []
    for b, e in reversed(pairs):
        flat += [b, e]
    return flat


def conv(ctx, attrs, x, w, b=None):
    kernel = list(w.shape[2:])
    n = len(kernel)
    strides = attrs.get("strides", [1] * n)
    dilations = attrs.get("dilations", [1] * n)
    pads = _spatial_pads(attrs, x, kernel, strides, dilations)
    if all(p == q for p, q in pads):
        padding = [p for p, _ in pads]
    else:
        x = F.pad(x, _torch_pad(pads))
        padding = 0
    fn = (F.conv1d, F.conv2d, F.conv3d)[n - 1]
    return fn(x, w, b, strides, padding, dilations, attrs.get("group", 1))


def conv_transpose(ctx, attrs, x, w, b=None):
    kernel = list(w.shape[2:])
    n = len(kernel)
    strides = attrs.get("strides", [1] * n)
    dilations = attrs.get("dilations", [1] * n)
    pads = attrs.get("pads", [0] * (2 * n))
    if "output_shape" in attrs or any(pads[i] != pads[i + n] for i in range(n)):
        raise OpError("ConvTranspose with output_shape or asymmetric pads is not supported")
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]
    return fn(x, w, b, strides, pads[:n], attrs.get("output_padding", [0] * n), attrs.get("group", 1), dilations)


def _pool_args(attrs, x):
    kernel = attrs["kernel_shape"]
    n = len(kernel)
    strides = attrs.get("strides", [1] * n)
    dilations = attrs.get("dilations", [1] * n)
    return kernel, strides, dilations, _spatial_pads(attrs, x, kernel, strides, dilations)


def max_pool(ctx, attrs, x):
    kernel, strides, dilations, pads = _pool_args(attrs, x)
    n = len(kernel)
    if all(p == q and p <= k // 2 for (p, q), k in zip(pads, kernel)):
        padding = [p for p, _ in pads]
    else:
        x = F.pad(x, _torch_pad(pads), value=float("-inf"))
        padding = 0
    fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[n - 1]
    return fn(x, kernel, strides, padding, dilations, ceil_mode=bool(attrs.get("ceil_mode", 0)))


def average_pool(ctx, attrs, x):
    kernel, strides, _, pads = _pool_args(attrs, x)
    n = len(kernel)
    include = bool(attrs.get("count_include_pad", 0))
    if all(p == q and p <= k // 2 for (p, q), k in zip(pads, kernel)):
        padding = [p for p, _ in pads]
    elif include:
        x = F.pad(x, _torch_pad(pads))
        padding = 0
    else:
        raise OpError("AveragePool with asymmetric pads and count_include_pad=0 is not supported")
    fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[n - 1]
    return fn(x, kernel, strides, padding, ceil_mode=bool(attrs.get("ceil_mode", 0)), count_include_pad=include)


def global_average_pool(ctx, attrs, x): return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
def global_max_pool(ctx, attrs, x): return x.amax(dim=tuple(range(2, x.dim())), keepdim=True)


def pad(ctx, attrs, x, pads=None, value=None, axes=None):
    if ctx.opset < 11:
        pads, value = attrs["pads"], attrs.get("value", 0.0)
    else:
        pads = _ints(pads)
        value = 0.0 if value is None or value.numel() == 0 else _scalar(value)
    axes = _ints(axes) if axes is not None else list(range(x.dim()))
    axes = [a % x.dim() for a in axes]
    k = len(axes)
    per_dim = [(0, 0)] * x.dim()
    for i, a in enumerate(axes):
        per_dim[a] = (pads[i], pads[i + k])
    first = next((d for d in range(x.dim()) if per_dim[d] != (0, 0)), x.dim())
    mode = attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    flat = _torch_pad(per_dim[first:])
    if mode == "constant":
        return F.pad(x, flat, value=value)
    return F.pad(x, flat, mode={"reflect": "reflect", "edge": "replicate"}[mode])


# ---- normalization -----------------------------------------------------------------------------

def _softmax_like(fn, ctx, attrs, x):
    if ctx.opset < 13:  # coerce to 2-D at `axis` (default 1)
        axis = attrs.get("axis", 1) % x.dim()
        shape = x.shape
        return fn(x.reshape(math.prod(shape[:axis]), -1), dim=1).reshape(shape)
    return fn(x, dim=attrs.get("axis", -1))


def softmax(ctx, attrs, x): return _softmax_like(torch.softmax, ctx, attrs, x)
def log_softmax(ctx, attrs, x): return _softmax_like(torch.log_softmax, ctx, attrs, x)


def layer_norm(ctx, attrs, x, scale, bias=None):
    axis = attrs.get("axis", -1) % x.dim()
    shape = list(x.shape[axis:])
    if list(scale.shape) == shape and (bias is None or list(bias.shape) == shape):
        return F.layer_norm(x, shape, scale, bias, attrs.get("epsilon", 1e-5))
    y = F.layer_norm(x, shape, None, None, attrs.get("epsilon", 1e-5)) * scale
    return y + bias if bias is not None else y


def batch_norm(ctx, attrs, x, scale, bias, running_mean, running_var):
    # Training updates the running statistics in place, as torch.nn.BatchNorm does; they are
    # initializers, so the fine-tuned values are written back with the rest.
    training = ctx.training and ctx.update_batch_norm
    return F.batch_norm(x, running_mean, running_var, scale, bias, training,
                        1.0 - attrs.get("momentum", 0.9), attrs.get("epsilon", 1e-5))


def instance_norm(ctx, attrs, x, scale, bias):
    return F.instance_norm(x, weight=scale, bias=bias, eps=attrs.get("epsilon", 1e-5))


def dropout(ctx, attrs, x, ratio=None, training_mode=None):
    p = attrs.get("ratio", 0.5) if ratio is None else float(_scalar(ratio))
    if ctx.training and p > 0:
        return F.dropout(x, p, True)
    return x


# ---- reductions --------------------------------------------------------------------------------

def _reduce(fn, input_since):
    def run(ctx, attrs, x, axes=None):
        ax = _axes(ctx, attrs, [x, axes], 1, input_since)
        keep = bool(attrs.get("keepdims", 1))
        if not ax:
            if attrs.get("noop_with_empty_axes"):
                return x
            ax = list(range(x.dim()))
        return fn(x, [a % x.dim() for a in ax], keep)
    return run


def _amax(x, dims, keep): return torch.amax(x, dim=dims, keepdim=keep)
def _amin(x, dims, keep): return torch.amin(x, dim=dims, keepdim=keep)
def _sum(x, dims, keep): return torch.sum(x, dim=dims, keepdim=keep)
def _mean(x, dims, keep): return torch.mean(x, dim=dims, keepdim=keep)


def _prod(x, dims, keep):
    for d in sorted(dims, reverse=True):
        x = torch.prod(x, dim=d, keepdim=keep)
    return x


def _l2(x, dims, keep): return torch.sqrt(torch.sum(x * x, dim=dims, keepdim=keep))


def arg_max(ctx, attrs, x):
    axis, keep = attrs.get("axis", 0), bool(attrs.get("keepdims", 1))
    if attrs.get("select_last_index"):
        flipped = torch.flip(x, [axis])
        return x.shape[axis] - 1 - torch.argmax(flipped, dim=axis, keepdim=keep)
    return torch.argmax(x, dim=axis, keepdim=keep)


# ---- shapes ------------------------------------------------------------------------------------

def reshape(ctx, attrs, x, shape=None):
    target = _ints(shape) if ctx.opset >= 5 else list(attrs["shape"])
    if not attrs.get("allowzero"):
        target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
    return x.reshape(target)


def transpose(ctx, attrs, x):
    return x.permute(attrs.get("perm", list(range(x.dim() - 1, -1, -1))))


def squeeze(ctx, attrs, x, axes=None):
    ax = _axes(ctx, attrs, [x, axes], 1, 13)
    if ax is None:
        return torch.squeeze(x)
    for a in sorted((a % x.dim() for a in ax), reverse=True):
        x = x.squeeze(a)
    return x


def unsqueeze(ctx, attrs, x, axes=None):
    ax = _axes(ctx, attrs, [x, axes], 1, 13)
    rank = x.dim() + len(ax)
    for a in sorted(a % rank for a in ax):
        x = x.unsqueeze(a)
    return x


def flatten(ctx, attrs, x):
    axis = attrs.get("axis", 1) % (x.dim() + 1) if x.dim() else 0
    return x.reshape(math.prod(x.shape[:axis]), -1)


def concat(ctx, attrs, *xs):
    axis = attrs.get("axis", 1 if ctx.opset < 4 else None)
    parts = [x for x in xs if x is not None and not (x.dim() == 1 and x.numel() == 0 and xs[0].dim() > 1)]
    return torch.cat(parts, dim=axis)


def split(ctx, attrs, x, sizes=None, *, _n_outputs=None):
    axis = attrs.get("axis", 0)
    given = _ints(sizes) if ctx.opset >= 13 else attrs.get("split")
    if given is None:
        n = attrs.get("num_outputs", _n_outputs)
        chunk = -(-x.shape[axis] // n)
        given = [chunk] * (n - 1) + [x.shape[axis] - chunk * (n - 1)]
    return tuple(torch.split(x, given, dim=axis))


def slice_(ctx, attrs, x, starts=None, ends=None, axes=None, steps=None):
    if ctx.opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends, axes, steps = _ints(starts), _ints(ends), _ints(axes), _ints(steps)
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    flips = []
    for s, e, a, st in zip(starts, ends, axes, steps):
        a %= x.dim()
        dim = x.shape[a]
        if st > 0:
            index[a] = slice(*slice(s, e, st).indices(dim))
        else:
            picks = list(range(*slice(s, e, st).indices(dim)))
            flips.append((a, picks))
    y = x[tuple(index)]
    for a, picks in flips:
        y = y.index_select(a, torch.tensor(picks, dtype=torch.long, device=y.device))
    return y


def gather(ctx, attrs, x, idx):
    axis = attrs.get("axis", 0) % x.dim()
    idx = idx.long()
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    out = x.index_select(axis, idx.reshape(-1))
    return out.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1:]))


def gather_elements(ctx, attrs, x, idx):
    axis = attrs.get("axis", 0) % x.dim()
    idx = idx.long()
    return torch.gather(x, axis, torch.where(idx < 0, idx + x.shape[axis], idx))


def shape(ctx, attrs, x):
    dims = list(x.shape)
    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
    return torch.tensor(dims[start:end], dtype=torch.int64)


def size(ctx, attrs, x): return torch.tensor(x.numel(), dtype=torch.int64)


def constant(ctx, attrs):
    for key, dtype in (("value_float", torch.float32), ("value_floats", torch.float32),
                       ("value_int", torch.int64), ("value_ints", torch.int64)):
        if key in attrs:
            return torch.tensor(attrs[key], dtype=dtype)
    if "value" in attrs:
        return attrs["value"]
    raise OpError("Constant without a supported value attribute (sparse/string constants are not supported)")


def constant_of_shape(ctx, attrs, shape_):
    value = attrs.get("value")
    dims = _ints(shape_)
    if value is None:
        return torch.zeros(dims, dtype=torch.float32)
    return torch.full(dims, value.reshape(-1)[0].item(), dtype=value.dtype)


def expand(ctx, attrs, x, shape_):
    target = torch.broadcast_shapes(tuple(x.shape), tuple(_ints(shape_)))
    return x.expand(target)


def tile(ctx, attrs, x, repeats):
    return x.repeat(_ints(repeats))


def range_(ctx, attrs, start, limit, delta):
    return torch.arange(_scalar(start), _scalar(limit), _scalar(delta), dtype=start.dtype)


def identity(ctx, attrs, x): return x


def trilu(ctx, attrs, x, k=None):
    k = 0 if k is None else int(_scalar(k))
    return torch.triu(x, k) if attrs.get("upper", 1) else torch.tril(x, k)


def cum_sum(ctx, attrs, x, axis):
    if attrs.get("exclusive") or attrs.get("reverse"):
        raise OpError("CumSum with exclusive/reverse is not supported")
    return torch.cumsum(x, int(_scalar(axis)))


# Fused forms (executor.fuse): never in a model file, produced from the patterns PyTorch exports.
def _linear(ctx, attrs, x, w, b): return F.linear(x, w.t(), b)
def _gelu(ctx, attrs, x): return F.gelu(x)


OPS = {
    "Add": add, "Sub": sub, "Mul": mul, "Div": div, "Pow": pow_, "Mod": mod,
    "Sqrt": _unary(torch.sqrt), "Erf": _unary(torch.erf), "Tanh": _unary(torch.tanh),
    "Relu": _unary(torch.relu), "Sigmoid": _unary(torch.sigmoid), "Neg": _unary(torch.neg),
    "Exp": _unary(torch.exp), "Log": _unary(torch.log), "Abs": _unary(torch.abs),
    "Reciprocal": _unary(torch.reciprocal), "Floor": _unary(torch.floor), "Ceil": _unary(torch.ceil),
    "Sin": _unary(torch.sin), "Cos": _unary(torch.cos), "Not": _unary(torch.logical_not),
    "Softplus": _unary(F.softplus), "Softsign": _unary(F.softsign), "Sign": _unary(torch.sign),
    "IsNaN": _unary(torch.isnan),
    "Equal": lambda c, a, x, y: torch.eq(x, y), "Less": lambda c, a, x, y: torch.lt(x, y),
    "Greater": lambda c, a, x, y: torch.gt(x, y), "LessOrEqual": lambda c, a, x, y: torch.le(x, y),
    "GreaterOrEqual": lambda c, a, x, y: torch.ge(x, y),
    "And": lambda c, a, x, y: torch.logical_and(x, y), "Or": lambda c, a, x, y: torch.logical_or(x, y),
    "Clip": clip, "LeakyRelu": leaky_relu, "Elu": elu, "Selu": selu, "HardSigmoid": hard_sigmoid,
    "PRelu": prelu, "Gelu": gelu, "Where": where, "Cast": cast,
    "Max": variadic(torch.maximum), "Min": variadic(torch.minimum), "Sum": variadic(torch.add), "Mean": mean,
    "MatMul": matmul, "Gemm": gemm, "Einsum": einsum,
    "Conv": conv, "ConvTranspose": conv_transpose, "MaxPool": max_pool, "AveragePool": average_pool,
    "GlobalAveragePool": global_average_pool, "GlobalMaxPool": global_max_pool, "Pad": pad,
    "Softmax": softmax, "LogSoftmax": log_softmax, "LayerNormalization": layer_norm,
    "BatchNormalization": batch_norm, "InstanceNormalization": instance_norm, "Dropout": dropout,
    "ReduceMean": _reduce(_mean, 18), "ReduceSum": _reduce(_sum, 13), "ReduceMax": _reduce(_amax, 18),
    "ReduceMin": _reduce(_amin, 18), "ReduceProd": _reduce(_prod, 18), "ReduceL2": _reduce(_l2, 18),
    "ArgMax": arg_max,
    "Reshape": reshape, "Transpose": transpose, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Flatten": flatten, "Concat": concat, "Split": split, "Slice": slice_, "Gather": gather,
    "GatherElements": gather_elements, "Shape": shape, "Size": size, "Constant": constant,
    "ConstantOfShape": constant_of_shape, "Expand": expand, "Tile": tile, "Range": range_,
    "Identity": identity, "Trilu": trilu, "CumSum": cum_sum,
    "_Linear": _linear, "_Gelu": _gelu,
}

# Inputs that are shapes/axes/indices into host-side Python: never moved to the accelerator, so
# reading them (`.tolist()`) does not synchronise the device.
HOST_INPUTS = {
    "Reshape": {1}, "Expand": {1}, "Tile": {1}, "Slice": {1, 2, 3, 4}, "Squeeze": {1}, "Unsqueeze": {1},
    "Split": {1}, "ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1}, "ReduceMin": {1},
    "ReduceProd": {1}, "ReduceL2": {1}, "ConstantOfShape": {0}, "Pad": {1, 2, 3}, "Range": {0, 1, 2},
    "Clip": {1, 2}, "Dropout": {1, 2}, "Trilu": {1}, "CumSum": {1},
}

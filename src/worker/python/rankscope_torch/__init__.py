"""rankscope_torch: Rankscope's low-rank factorization in your own PyTorch code.

    from rankscope_torch import apply_factors, factorize
    model = apply_factors(MyModel(), "model.lowrank.safetensors")   # what `rankscope compress model.pt` wrote
    model = factorize(model, "plan.json")                            # or: factorize in memory from a plan

Each factorized nn.Linear / nn.Conv1d/2d/3d / nn.Embedding becomes a two-layer module holding
A and B (bias kept, dtype and device kept); a bare 2-D parameter such as nn.MultiheadAttention's
in_proj_weight becomes A·B computed when read. Needs torch (1.13 or 2.x) and numpy. Put the folder
that `rankscope torch-path` prints on PYTHONPATH. See docs/pytorch.md.
"""
import json
import os

import numpy as np
import torch

from .lowrank import (FactorsError, LowRankConv, LowRankEmbedding, LowRankLinear, LowRankWeight,  # noqa: F401
                      balanced_factors, factor_tensors, replace_layer, _unwrap)

__version__ = "0.1.0"
__all__ = ["apply_factors", "factorize", "read_factors", "FactorsError", "LowRankLinear", "LowRankConv",
           "LowRankEmbedding", "LowRankWeight"]

FACTORS_KEY = "rankscope.factors"
PLAN_KEY = "rankscope.plan"


def _tensor(value):
    code, arr = value
    if code == "BF16":
        return torch.from_numpy(np.array(arr).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.array(arr))


def read_factors(path):
    """({name: tensor} of the whole file, [layer records], plan dict) of a factors file."""
    from rankscope_worker import safetensors  # the numpy safetensors reader shipped alongside

    tensors, meta = safetensors.read(os.fspath(path))
    if FACTORS_KEY not in meta:
        raise FactorsError(f"{path} is not a Rankscope factors file (no '{FACTORS_KEY}' metadata); "
                           "make one with `rankscope compress model.pt -o model.lowrank.safetensors`")
    return {k: _tensor(v) for k, v in tensors.items()}, json.loads(meta[FACTORS_KEY]), json.loads(meta.get(PLAN_KEY, "null"))


def apply_factors(model, path, load_untouched=True):
    """Replaces each layer factorized in the factors file `path` by its low-rank form, loaded with
    the file's A and B, and returns `model` (changed in place; DataParallel/DDP wrappers are looked
    through). With load_untouched, every other tensor of the file (biases, norms, layers left dense)
    is loaded too, so the result is the whole compressed model; the model's parameters must then
    match the file's names exactly."""
    tensors, records, _ = read_factors(path)
    root = _unwrap(model)
    for record in records:
        a_name, b_name = record["factors"]
        replace_layer(root, record, tensors[a_name], tensors[b_name])
    if load_untouched:
        result = root.load_state_dict(tensors, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise FactorsError(f"{path} does not match the model: missing in the file {result.missing_keys[:5]}, "
                               f"not in the model {result.unexpected_keys[:5]} (pass load_untouched=False to load only the factors)")
    return model


def factorize(model, plan):
    """Factorizes `model` in memory by a Rankscope plan (a dict, or the path of a plan JSON made
    for this model's checkpoint, e.g. `rankscope compress model.pt --dry-run --save-plan plan.json`):
    each planned layer gets its top-k balanced factors from torch.linalg.svd. Returns `model`."""
    if not isinstance(plan, dict):
        with open(os.fspath(plan), encoding="utf-8") as f:
            plan = json.load(f)
    if plan.get("format") != "rankscope.plan":
        raise FactorsError("not a Rankscope plan (format must be 'rankscope.plan')")
    root = _unwrap(model)
    params = dict(root.named_parameters())
    for row in plan["layers"]:
        if row.get("skipped"):
            continue
        key = row["weight"]
        if key not in params:
            raise FactorsError(f"the plan's layer '{row['layer']}' has weight '{key}', which is not a parameter of the model "
                               "(was the plan made for this model's checkpoint?)")
        weight = params[key].detach()
        module, _, param = key.rpartition(".")
        layout = "conv" if weight.dim() > 2 else "out_in"
        with torch.no_grad():
            a, b = factor_tensors(weight, row["k"], row.get("groups", 1), layout)
        record = {"layer": row["layer"], "weight": key, "module": module, "param": param, "groups": row.get("groups", 1),
                  "tensorShape": list(weight.shape)}
        replace_layer(root, record, a, b)
    return model

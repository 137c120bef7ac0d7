"""The user's own PyTorch model as the model to fine-tune, in place of an ONNX graph (docs/pytorch.md).

The start config's `module` says how to get it:
  factory      "package.module:function", imported with `factoryPath` first on sys.path and called
               with `factoryArgs` (keyword arguments); it returns the user's nn.Module
  stateDict    the dense checkpoint as safetensors, keys unwrapped (src/worker/finetuneModule.ts)
  factors      the factors file of `rankscope compress model.pt -o model.lowrank.safetensors`
  teacher      distil from the dense module (the checkpoint alone)
  result       {path, format: 'pt' | 'safetensors', metadata}: where the fine-tuned state dict goes
  verify       reload the written result into a freshly built module and compare its outputs

The student is the built module with the checkpoint loaded (every key must match) and the factors
applied (rankscope_torch.apply_factors). The Trainer drives it through ModuleAdapter, which offers
what it uses of executor.OnnxModule (forward returning a tuple, input/output names,
named_initializers), so there is one training loop for both sources."""
import importlib
import os
import sys
import traceback
from collections import OrderedDict

import torch
from torch import nn

from . import safetensors
from .executor import to_numpy, to_torch
from .trainer import WorkerFailure, _atomic_save

# The layers whose bias trains under trainable='lowrank' (as the ONNX path's biases of Gemm/Conv).
_DENSE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _where(e):
    """' (file.py:line)' of the innermost frame of an exception (a SyntaxError's own position)."""
    if isinstance(e, SyntaxError) and e.filename:
        return f" ({os.path.basename(e.filename)}:{e.lineno})"
    frames = traceback.extract_tb(e.__traceback__)
    return f" ({os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""


def _brief(e):
    """An exception in one line: type, first line of its message, where it was raised."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}{': ' + text[0] if text else ''}{_where(e)}"


def _names(keys, limit=5):
    keys = list(keys)
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_factory(factory, folder):
    """The callable named "package.module:function" (the function part may be dotted: Class.build),
    imported with `folder` first on sys.path. Every failure is a FACTORY error in one line."""
    module_name, _, attr = factory.partition(":")
    if not module_name or not attr:
        raise WorkerFailure("FACTORY", f"factory {factory!r} is not of the form package.module:function",
                            "E.g. --factory mypkg.models:build_model.")
    where = folder or "the worker's sys.path"
    if folder:
        if not os.path.isdir(folder):
            raise WorkerFailure("FACTORY", f"the factory folder {folder} does not exist", "Give --factory-path an existing folder.")
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise WorkerFailure("FACTORY", f"cannot import the factory module {module_name!r}: no module {e.name!r} in {where}",
                                f"Give --factory-path the folder from which `import {module_name}` works.")
        raise WorkerFailure("FACTORY", f"importing the factory module {module_name!r} failed: {_brief(e)}",
                            "Install what it imports for this Python (--python chooses the interpreter).")
    except (Exception, SystemExit) as e:  # the user's code ran and raised (a SyntaxError, a failed import, …)
        raise WorkerFailure("FACTORY", f"importing the factory module {module_name!r} failed: {_brief(e)}",
                            "Fix the module, or choose another --factory.")
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                            and getattr(v, "__module__", None) == module.__name__)
            raise WorkerFailure("FACTORY", f"the factory module {module_name!r} ({getattr(module, '__file__', '?')}) has no {attr!r}",
                                f"Its functions and classes: {_names(public, 8) or 'none'}.")
        target = getattr(target, part)
    if not callable(target):
        raise WorkerFailure("FACTORY", f"the factory {factory!r} is a {type(target).__name__}, not a function or class",
                            "Name a function (or class) that builds and returns the model.")
    return target


def build_module(factory, name, args):
    """Calls the factory; the result must be an nn.Module (DataParallel/DDP wrappers are looked through)."""
    try:
        module = factory(**(args or {}))
    except Exception as e:
        raise WorkerFailure("FACTORY", f"the factory {name} raised {_brief(e)}",
                            "Check --factory-args (a JSON object of keyword arguments for the factory).")
    while isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        module = module.module
    if not isinstance(module, nn.Module):
        raise WorkerFailure("FACTORY", f"the factory {name} returned a {type(module).__name__}, not a torch.nn.Module",
                            "The factory must build and return the model.")
    return module


def load_dense(module, state, name):
    """Loads the checkpoint into the module; keys must match both ways, and shapes."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # size mismatches: 'Error(s) in loading state_dict for Net:\n\tsize mismatch for …'
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise WorkerFailure("FACTORY", f"the checkpoint does not fit the module built by {name}: "
                            f"{lines[1] if len(lines) > 1 else lines[0] if lines else e}",
                            "--factory and --factory-args must build the architecture the checkpoint was saved from.")
    if result.missing_keys or result.unexpected_keys:
        parts = []
        if result.missing_keys:
            parts.append(f"missing in the checkpoint: {_names(result.missing_keys)}")
        if result.unexpected_keys:
            parts.append(f"not in the module: {_names(result.unexpected_keys)}")
        raise WorkerFailure("FACTORY", f"the checkpoint's keys do not match the module built by {name}; {'; '.join(parts)}",
                            "--factory and --factory-args must build the architecture the checkpoint was saved from.")


class ModuleAdapter(nn.Module):
    """The user's module as the Trainer drives a model: forward(x) -> tuple of outputs (the first
    is the logits), one input, and named_initializers() = the state dict (every tensor that
    checkpoints, best weights and the result hold)."""
    input_names = ["input"]
    # A module that ends in softmax cannot be told apart from one returning logits: it must return logits.
    outputs_probabilities = False

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.output_names = ["output"]
        self._checked = False

    def forward(self, x):
        if self._checked:
            out = self.inner(x)
        else:  # the first call: a failure here is almost always data that does not fit the model
            try:
                out = self.inner(x)
            except (WorkerFailure, MemoryError):
                raise
            except Exception as e:  # a shape check may raise anything: RuntimeError, AssertionError (MHA), ValueError, …
                if "out of memory" in str(e).lower():
                    raise
                raise WorkerFailure("SHAPE_MISMATCH", f"the model failed on the data (input shaped {tuple(x.shape)}): {_brief(e)}",
                                    "Check that --data holds inputs for this model (and --preset/--frames).")
            self._checked = True
        if isinstance(out, torch.Tensor):
            return (out,)
        if isinstance(out, (tuple, list)) and out and all(isinstance(o, torch.Tensor) for o in out):
            if len(out) != len(self.output_names):
                self.output_names = ["output"] + [f"output{i}" for i in range(1, len(out))]
            return tuple(out)
        raise WorkerFailure("SHAPE_MISMATCH", f"the model returned a {type(out).__name__}; fine-tuning needs its logits",
                            "Make forward return a tensor shaped (batch, classes), or a tuple whose first item is one.")

    def named_initializers(self):
        return list(self.inner.state_dict(keep_vars=True).items())


def lowrank_trainable_names(module):
    """Names trained under trainable='lowrank': every lowrank_A/lowrank_B and the biases of the
    (factorized or dense) Linear/Conv layers, and `<x>_bias` next to a factorized `<x>_weight`."""
    from rankscope_torch import LowRankConv, LowRankLinear, LowRankWeight

    layers = _DENSE_LAYERS + (LowRankLinear, LowRankConv)
    modules = dict(module.named_modules())
    names = set()
    for key in module.state_dict(keep_vars=True):
        owner_path, _, param = key.rpartition(".")
        owner = modules.get(owner_path)
        if param in ("lowrank_A", "lowrank_B"):
            names.add(key)
        elif param == "bias" and isinstance(owner, layers):
            names.add(key)
        elif param.endswith("_bias") and isinstance(getattr(owner, param[:-len("_bias")], None), LowRankWeight):
            names.add(key)
    return names


class ModuleSource:
    """Builds the student (checkpoint + factors) and, when asked, the teacher (checkpoint); writes
    and checks the result. The same interface as trainer.GraphSource."""

    def __init__(self, cfg):
        from rankscope_torch import FactorsError, apply_factors

        self.spec = spec = cfg["module"]
        self.name = spec["factory"]
        self.factory = load_factory(spec["factory"], spec.get("factoryPath"))
        tensors, _ = safetensors.read(spec["stateDict"])
        self.dense = {k: to_torch(code, arr) for k, (code, arr) in tensors.items()}
        student = self.build()
        load_dense(student, self.dense, self.name)
        try:
            apply_factors(student, spec["factors"], load_untouched=False)
        except FactorsError as e:
            raise WorkerFailure("FACTORS", f"the factors in {os.path.basename(spec['factors'])} do not fit the module built by "
                                f"{self.name}: {e}", "Compress this checkpoint with `rankscope compress` again, for this architecture.")
        self.model = ModuleAdapter(student)
        self.teacher = None
        if spec.get("teacher"):
            teacher = self.build()
            load_dense(teacher, self.dense, self.name)
            self.teacher = ModuleAdapter(teacher)
        self.inputs = [{"name": "input", "shape": None}]  # a module declares no input shape: data.py checks none

    def build(self):
        return build_module(self.factory, self.name, self.spec.get("factoryArgs"))

    def lowrank_names(self):
        return lowrank_trainable_names(self.model.inner)

    def finish(self, model, probe):
        """Writes the fine-tuned state dict (the model holds the best weights) and, with `verify`,
        loads it as docs/pytorch.md says into a freshly built module: its outputs on the probe
        inputs against the worker's. Returns the `done` message's `result` field."""
        result = self.spec["result"]
        state = OrderedDict((k, v.detach().cpu()) for k, v in model.inner.state_dict().items())
        if result["format"] == "safetensors":
            _atomic_save(lambda p: safetensors.write(p, {k: to_numpy(v) for k, v in state.items()}, result.get("metadata")),
                         result["path"])
        else:
            _atomic_save(lambda p: torch.save(state, p), result["path"])
        verification = self._verify(result, probe) if self.spec.get("verify", True) and probe else None
        return {"result": {"path": result["path"], "format": result["format"], "verification": verification}}

    @torch.no_grad()
    def _verify(self, result, probe):
        from rankscope_torch import apply_factors

        fresh = self.build()
        if result["format"] == "safetensors":  # it carries the factors' records: apply_factors loads it whole
            apply_factors(fresh, result["path"])
        else:
            apply_factors(fresh, self.spec["factors"], load_untouched=False)
            try:
                state = torch.load(result["path"], map_location="cpu", weights_only=True)
            except TypeError:  # torch < 1.13
                state = torch.load(result["path"], map_location="cpu")
            fresh.load_state_dict(state)
        fresh.eval()
        tensors, _ = safetensors.read(probe)
        x = to_torch(*tensors["input:input"])
        got = ModuleAdapter(fresh)(x)[0].float()
        want = to_torch(*tensors["output:output"]).float()
        return {"samples": int(x.shape[0]), "maxAbsDiff": float((got - want).abs().max()) if got.numel() else 0.0}

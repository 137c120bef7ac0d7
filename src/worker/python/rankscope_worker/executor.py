"""An ONNX graph, handed over as graph JSON + safetensors, executed as a torch.nn.Module.

Float initializers become nn.Parameters keyed by their ONNX names (BatchNormalization's running
statistics become buffers: they are updated, not trained); integer initializers and constants
(shapes, indices) stay on the CPU so shape arithmetic never waits for the accelerator."""
import json
import math
import os
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from . import safetensors
from .ops import HOST_INPUTS, OPS

_TORCH = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_CODE = {v: k for k, v in _TORCH.items()}
GRAPH_FORMAT = "rankscope-graph"
# Ops whose output is not a function of their inputs' values alone.
_NEVER_STATIC = {"Dropout", "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}


class GraphError(ValueError):
    """A graph the worker cannot run; `missing` lists every unsupported op (reported up front)."""

    def __init__(self, message, missing=None):
        super().__init__(message)
        self.missing = missing or []


def to_torch(code, arr):
    if code == "BF16":  # uint16 bits; torch < 2.3 has no uint16, so go through int16
        return torch.from_numpy(np.array(arr).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.array(arr))  # copy: the safetensors buffer is read-only


def to_numpy(t):
    """(dtype code, array) for safetensors; bf16 travels as its uint16 bits."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().view(np.uint16)
    return _CODE[t.dtype], t.numpy()


def load_graph(graph_path, weights_path=None):
    """Reads `<name>.graph.json` and its `.safetensors` (default: same stem)."""
    with open(graph_path, "r", encoding="utf-8") as f:
        graph = json.load(f)
    if graph.get("format") != GRAPH_FORMAT:
        raise GraphError(f"{graph_path}: not a Rankscope graph file (format {graph.get('format')!r})")
    if weights_path is None:
        weights_path = os.path.join(os.path.dirname(graph_path), graph["weights"])
    tensors, _ = safetensors.read(weights_path)
    return graph, {name: to_torch(code, arr) for name, (code, arr) in tensors.items()}


def unsupported_ops(graph):
    """Every op (domain-qualified) the executor has no function for, sorted, without repeats."""
    missing = set()
    for node in graph["nodes"]:
        domain = node.get("domain") or ""
        if domain not in ("", "ai.onnx") or node["op"] not in OPS:
            missing.add(f"{domain}::{node['op']}" if domain not in ("", "ai.onnx") else node["op"])
    return sorted(missing)


def _scalar_value(name, producer, tensors):
    """The value of a one-element constant (a Constant node's output or an initializer), else None."""
    node = producer.get(name)
    t = None
    if node is not None and node["op"] == "Constant":
        v = (node.get("attrs") or {}).get("value")
        t = tensors.get(v["tensor"]) if isinstance(v, dict) and "tensor" in v else None
    elif node is None:
        t = tensors.get(name)
    if t is None or t.numel() != 1 or not t.is_floating_point():
        return None
    return float(t.reshape(-1)[0])


def fuse(nodes, tensors, graph_outputs, initializers):
    """Rewrites two patterns PyTorch exports into the one torch call they came from (fewer kernels
    and autograd nodes; the same math): x·W + b with initializers W [in, out], b → F.linear, and
    x·½·(1 + erf(x/√2)) → F.gelu. Only where the intermediates have no other reader."""
    uses = {}
    for n in nodes:
        for i in n["inputs"]:
            uses[i] = uses.get(i, 0) + 1
    producer = {o: n for n in nodes for o in n["outputs"]}

    def only(name, op):
        """The single reader of `name` if it is an `op` node and `name` is internal."""
        if uses.get(name) != 1 or name in graph_outputs:
            return None
        reader = next((n for n in nodes if name in n["inputs"]), None)
        return reader if reader is not None and reader["op"] == op and not reader.get("domain") else None

    def other(node, name):
        a, b = node["inputs"]
        return b if a == name else a

    drop, replace = set(), {}
    for n in nodes:
        if id(n) in drop or n.get("domain"):
            continue
        if n["op"] == "MatMul" and n["inputs"][1] in initializers and tensors[n["inputs"][1]].dim() == 2:
            add = only(n["outputs"][0], "Add")
            w = tensors[n["inputs"][1]]
            if add is not None and id(add) not in drop:
                b = other(add, n["outputs"][0])
                if b in initializers and tensors[b].dim() == 1 and tensors[b].shape[0] == w.shape[1] and tensors[b].dtype == w.dtype:
                    drop.add(id(add))
                    replace[id(n)] = {"name": n["name"], "op": "_Linear", "domain": "", "inputs": [n["inputs"][0], n["inputs"][1], b],
                                      "outputs": add["outputs"], "attrs": {}}
        elif n["op"] == "Div" and abs((_scalar_value(n["inputs"][1], producer, tensors) or 0) - math.sqrt(2)) < 1e-4:
            x = n["inputs"][0]
            erf = only(n["outputs"][0], "Erf")
            add = erf and only(erf["outputs"][0], "Add")
            if not add or _scalar_value(other(add, erf["outputs"][0]), producer, tensors) != 1.0:
                continue
            mul = only(add["outputs"][0], "Mul")
            if not mul or other(mul, add["outputs"][0]) != x:
                continue
            half = only(mul["outputs"][0], "Mul")
            if not half or _scalar_value(other(half, mul["outputs"][0]), producer, tensors) != 0.5:
                continue
            drop.update((id(erf), id(add), id(mul), id(half)))
            replace[id(n)] = {"name": n["name"], "op": "_Gelu", "domain": "", "inputs": [x], "outputs": half["outputs"], "attrs": {}}
    return [replace.get(id(n), n) for n in nodes if id(n) not in drop]


class Step(NamedTuple):
    """One graph node as the executor runs it."""
    fn: Callable
    attrs: dict
    inputs: list
    outputs: list
    # Positions of inputs the op reads on the host (shapes, indices): never moved to the device.
    host_inputs: tuple
    op: str
    name: str


class _Context:
    __slots__ = ("opset", "training", "update_batch_norm")

    def __init__(self, opset):
        self.opset = opset
        self.training = False
        self.update_batch_norm = True


class OnnxModule(nn.Module):
    """forward(*inputs) -> tuple of graph outputs, in graph order."""

    def __init__(self, graph, tensors):
        super().__init__()
        missing = unsupported_ops(graph)
        if missing:
            raise GraphError(f"the model uses {len(missing)} op(s) the worker does not support: {', '.join(missing)}", missing)
        self.graph = graph
        self.ctx = _Context(int(graph.get("opset", 17)))
        self.input_names = [v["name"] for v in graph["inputs"]]
        self.output_names = [v["name"] for v in graph["outputs"]]
        self.initializer_names = list(graph["initializers"])
        last = next((n for n in graph["nodes"] if self.output_names and self.output_names[0] in n["outputs"]), None)
        self.outputs_probabilities = bool(last and last["op"] == "Softmax")
        stats = {n["inputs"][i] for n in graph["nodes"] if n["op"] == "BatchNormalization" for i in (3, 4)
                 if len(n["inputs"]) > i}
        # nn.Module forbids '.' in names and ONNX names are arbitrary, so parameters live in a
        # list and `self.index` maps ONNX name -> (kind, position).
        self.params = nn.ParameterList()
        self.stats = []
        self.host = {}
        self.index = {}
        for name in self.initializer_names:
            t = tensors[name]
            if t.is_floating_point() and name not in stats:
                self.index[name] = ("param", len(self.params))
                self.params.append(nn.Parameter(t))
            elif t.is_floating_point():
                self.register_buffer(f"stat{len(self.stats)}", t)
                self.index[name] = ("stat", len(self.stats))
                self.stats.append(f"stat{len(self.stats)}")
            else:
                self.host[name] = t
        # Identity nodes become aliases (PyTorch exports many); graph outputs keep their node.
        alias = {}
        outputs = set(self.output_names)
        for node in graph["nodes"]:
            if node["op"] == "Identity" and node["outputs"][0] not in outputs:
                alias[node["outputs"][0]] = alias.get(node["inputs"][0], node["inputs"][0])
        # Constant nodes' tensor attributes are stored in the same safetensors file.
        self.nodes = []
        for node in fuse(graph["nodes"], tensors, set(self.output_names), set(self.index)):
            if node["op"] == "Identity" and node["outputs"][0] in alias:
                continue
            node = {**node, "inputs": [alias.get(n, n) for n in node["inputs"]]}
            attrs = {}
            for k, v in (node.get("attrs") or {}).items():
                if isinstance(v, dict) and "tensor" in v:
                    v = tensors[v["tensor"]]
                attrs[k] = v
            self.nodes.append(Step(OPS[node["op"]], attrs, node["inputs"], node["outputs"],
                                   HOST_INPUTS.get(node["op"], ()), node["op"], node.get("name", "")))
        self.param_names = [n for n in self.initializer_names if self.index.get(n, ("",))[0] == "param"]
        self.stat_names = [(n, self.stats[self.index[n][1]]) for n in self.initializer_names if self.index.get(n, ("",))[0] == "stat"]
        # Shape arithmetic (Shape → Gather → Unsqueeze → Concat → Reshape, as PyTorch exports it)
        # depends only on the input shapes: such nodes run once per input-shape signature and their
        # outputs are replayed from a cache. Float initializers are trained, so never static.
        static_values = set(self.host)
        self.static = []
        for step in self.nodes:
            is_static = step.op in ("Shape", "Size", "Constant") or (
                step.op not in _NEVER_STATIC and all((not n) or n in static_values for n in step.inputs))
            self.static.append(is_static)
            if is_static:
                static_values.update(o for o in step.outputs if o)
        self.static_outputs = [o for step, st in zip(self.nodes, self.static) if st for o in step.outputs if o]
        self.shape_cache = {}
        self._device_copies = {}
        # Free every intermediate after its last use (eval memory); graph outputs are kept.
        last = {}
        for i, step in enumerate(self.nodes):
            for n in step.inputs:
                last[n] = i
        keep = set(self.output_names)
        self.release = [[n for n in set(step.inputs) if n and last.get(n) == i and n not in keep]
                        for i, step in enumerate(self.nodes)]
        self._const_slots, self._replay = self._generate(static_values)

    def _on(self, t, device):
        """`t` on `device`. Constants and cached shape values are the same objects call after call,
        so their device copies are kept: no host-to-device copy (and stall) inside the forward."""
        if t.requires_grad or t.numel() > 65536:
            return t.to(device)
        key = (id(t), device)
        hit = self._device_copies.get(key)
        if hit is None or hit[0] is not t:
            hit = (t, t.to(device))
            if len(self._device_copies) < 4096:
                self._device_copies[key] = hit
        return hit[1]

    def train(self, mode=True):
        super().train(mode)
        self.ctx.training = mode
        return self

    def tensor(self, name):
        kind, i = self.index[name]
        return self.params[i] if kind == "param" else getattr(self, self.stats[i])

    def named_initializers(self):
        """(ONNX name, tensor) for every float initializer: what write-back puts into the ONNX file."""
        return [(name, self.tensor(name)) for name in self.initializer_names if name in self.index]

    def forward(self, *inputs):
        device = inputs[0].device if inputs else torch.device("cpu")
        key = (tuple(tuple(x.shape) for x in inputs), str(device))
        consts = self.shape_cache.get(key)
        if consts is None:
            # First call for these shapes: interpret, and keep the shape arithmetic's results
            # (on the host, plus device copies where a device op reads them) for the replay.
            outputs, static = self._interpret(inputs)
            if len(self.shape_cache) < 16:
                values = {**self.host, **static}
                self.shape_cache[key] = [values[n].to(device) if on_device else values[n] for n, on_device in self._const_slots]
            return outputs
        return self._replay(self.ctx, inputs, consts, list(self.params), [getattr(self, n) for n in self.stats])

    def _generate(self, static_values):
        """Straight-line Python for the non-static nodes (what runs after the first call): no
        interpreter loop, no dict lookups, and intermediates freed after their last use."""
        names = {}
        lines = []
        const_slots = []

        def const(n, on_device):
            key = ("C", n, on_device)
            if key not in names:
                names[key] = f"c{len(const_slots)}"
                const_slots.append((n, on_device))
                lines.insert(0, f"    {names[key]} = C[{len(const_slots) - 1}]")
            return names[key]

        param_pos = {n: i for i, n in enumerate(self.param_names)}
        stat_pos = {n: self.stats.index(attr) for n, attr in self.stat_names}
        computed = {}
        for k, n in enumerate(self.input_names):
            computed[n] = f"x{k}"

        def ref(n, on_device):
            if n in computed:
                return computed[n]
            if n in param_pos:
                return f"P[{param_pos[n]}]"
            if n in stat_pos:
                return f"B[{stat_pos[n]}]"
            if n in static_values:
                return const(n, on_device)
            raise GraphError(f"the graph reads {n!r}, which no node produced")

        body = []
        for i, (step, static) in enumerate(zip(self.nodes, self.static)):
            if static:
                continue
            outs = step.outputs
            args = ", ".join("None" if not n else ref(n, j not in step.host_inputs) for j, n in enumerate(step.inputs))
            extra = f", _n_outputs={len(outs)}" if step.op == "Split" else ""
            call = f"F[{i}](ctx, A[{i}]{', ' if args else ''}{args}{extra})"
            if len(outs) == 1:
                computed[outs[0]] = f"v{i}"
                body.append(f"    v{i} = {call}")
            else:
                body.append(f"    r = {call}")
                for k, o in enumerate(outs):
                    if o:
                        computed[o] = f"v{i}_{k}"
                        body.append(f"    v{i}_{k} = r[{k}] if type(r) is tuple else {'r' if k == 0 else 'None'}")
            dead = [computed[n] for n in self.release[i] if n in computed and computed[n].startswith("v")]
            if dead:
                body.append(f"    del {', '.join(sorted(set(dead)))}")
        outputs = ", ".join(ref(n, True) for n in self.output_names)
        head = ["def replay(ctx, X, C, P, B):"] + [f"    x{k} = X[{k}]" for k in range(len(self.input_names))]
        source = "\n".join(head + lines + body + [f"    return ({outputs},)"]) + "\n"
        scope = {"F": [step.fn for step in self.nodes], "A": [step.attrs for step in self.nodes], "GraphError": GraphError}
        exec(compile(source, f"<rankscope graph {self.graph.get('source', '')}>", "exec"), scope)
        self.replay_source = source
        return const_slots, scope["replay"]

    def _interpret(self, inputs):
        """Runs every node in order; returns (outputs, {static value name: tensor})."""
        env = dict(self.host)
        env.update(zip(self.param_names, self.params))
        env.update((name, getattr(self, attr)) for name, attr in self.stat_names)
        env.update(zip(self.input_names, inputs))
        keep_static = {}
        for step, release, static in zip(self.nodes, self.release, self.static):
            args = []
            device = None
            for n in step.inputs:
                if not n:
                    args.append(None)
                    continue
                t = env.get(n)
                if t is None:
                    raise GraphError(f"node {step.name or step.op} reads {n!r}, which no node produced")
                if t.device.type != "cpu":
                    device = t.device
                args.append(t)
            if device is not None:  # CPU-held constants meet accelerator tensors: move them over
                args = [t if t is None or j in step.host_inputs or t.device == device else self._on(t, device)
                        for j, t in enumerate(args)]
            if step.op == "Split":
                result = step.fn(self.ctx, step.attrs, *args, _n_outputs=len(step.outputs))
            else:
                result = step.fn(self.ctx, step.attrs, *args)
            if isinstance(result, tuple):
                for o, r in zip(step.outputs, result):
                    if o:
                        env[o] = r
            else:
                env[step.outputs[0]] = result
            for n in release:
                env.pop(n, None)
            if static:
                keep_static.update((o, env[o]) for o in step.outputs if o)
        return tuple(env[n] for n in self.output_names), keep_static

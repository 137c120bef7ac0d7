"""Fine-tuning worker throughput: samples/s of a training step (forward + cross-entropy + backward
+ AdamW) and of inference, for our ONNX-graph-as-torch.nn.Module against the same network written
natively in PyTorch, on every device at hand (CPU, and cuda:0 when there is one), optionally with
torch.compile. Python only (no Node): runs on a bare CUDA box with torch (+ numpy).

  python bench/worker_gpu.py                        # both models, all devices
  python bench/worker_gpu.py --model skeleton --batch 128 --steps 30 --compile
  python bench/worker_gpu.py --export DIR           # where the `onnx` package is: write graph + weights
  python bench/worker_gpu.py --graph DIR            # on a box without `onnx`: use that export

The ONNX is exported from the native module itself (torch.onnx.export), so both run the same
weights; the script also reports max |ours − native| on each device (eval mode) as a check.
Goal from issue 7: ours ≥ 0.8× native on the GPU."""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "test", "python"))
sys.path.insert(0, os.path.join(ROOT, "src", "worker", "python"))

import torch_models as models  # noqa: E402
from rankscope_worker.executor import OnnxModule, load_graph  # noqa: E402

CLASSES = {"transformer": 8, "skeleton": 10}


def export(kind, out_dir):
    """Native module → ONNX (torch.onnx.export) → graph JSON + safetensors (needs `onnx`), and the
    native weights as a torch state dict so a box without `onnx` can rebuild the same native net."""
    import onnx_graph
    os.makedirs(out_dir, exist_ok=True)
    net = models.build(kind)
    path = os.path.join(out_dir, f"{kind}.onnx")
    models.export(net, kind, path, 17)
    torch.save(net.state_dict(), os.path.join(out_dir, f"{kind}.native.pt"))
    return onnx_graph.convert(path, os.path.join(out_dir, f"{kind}.graph.json"))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device, amp):
    if device.type != "cuda" or amp is None:
        return torch.autocast("cpu", enabled=False)
    return torch.autocast("cuda", dtype=amp)


def first(out):
    return out[0] if isinstance(out, tuple) else out


def train_rate(module, x, y, device, amp, steps, warmup):
    module.train()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-4)

    def step():
        with autocast(device, amp):
            loss = F.cross_entropy(first(module(x)).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for _ in range(warmup):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * x.shape[0] / (time.perf_counter() - t)


@torch.no_grad()
def infer_rate(module, x, device, amp, steps, warmup):
    module.eval()
    for _ in range(warmup):
        with autocast(device, amp):
            first(module(x))
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        with autocast(device, amp):
            first(module(x))
    sync(device)
    return steps * x.shape[0] / (time.perf_counter() - t)


def bench_model(kind, graph_path, devices, args):
    rows = []
    graph, tensors = load_graph(graph_path)
    native_state = os.path.join(os.path.dirname(graph_path), f"{kind}.native.pt")
    for device in devices:
        native = models.build(kind)
        if os.path.exists(native_state):
            native.load_state_dict(torch.load(native_state, map_location="cpu"))
        native = native.to(device)
        ours = OnnxModule(graph, {k: v.clone() for k, v in tensors.items()}).to(device)
        amp = None
        if device.type == "cuda" and args.amp != "off":
            amp = torch.bfloat16 if (args.amp == "bf16" or (args.amp == "auto" and torch.cuda.is_bf16_supported())) else torch.float16
        x = models.example_input(kind, batch=args.batch, seed=1).to(device)
        y = torch.randint(0, CLASSES[kind], (args.batch,), generator=torch.Generator().manual_seed(2)).to(device)
        with torch.no_grad():
            native.eval()
            ours.eval()
            diff = (first(native(x)) - first(ours(x))).abs().max().item()
        variants = [("native", native), ("onnx-module", ours)]
        if args.compile and hasattr(torch, "compile"):
            variants += [("native+compile", torch.compile(native)), ("onnx-module+compile", torch.compile(ours))]
        # CPU steps are slow: fewer of them.
        steps = args.steps if device.type != "cpu" else max(3, args.steps // 5)
        rates = {}
        # Variants alternate over several rounds and keep their best rate: on a shared machine
        # that compares them under the same load rather than whichever ran during a quiet spell.
        for _ in range(args.rounds):
            for name, module in variants:
                if "error" in rates.get(name, {}):
                    continue
                try:
                    r = {"train": train_rate(module, x, y, device, amp, steps, args.warmup),
                         "infer": infer_rate(module, x, device, amp, steps, args.warmup)}
                except Exception as e:  # torch.compile may fail on some setups: report, go on
                    rates[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
                    continue
                best = rates.setdefault(name, {"train": 0.0, "infer": 0.0})
                best["train"], best["infer"] = max(best["train"], r["train"]), max(best["infer"], r["infer"])
        rows.append({"model": kind, "device": str(device), "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                     "amp": str(amp).replace("torch.", "") if amp else None, "batch": args.batch, "steps": steps,
                     "maxAbsDiffEval": diff, "rates": rates})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["transformer", "skeleton", "both"], default="both")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best rate of each variant counts")
    ap.add_argument("--devices", default="auto", help="auto (cpu + cuda:0 if present) or a comma list")
    ap.add_argument("--amp", choices=["auto", "bf16", "fp16", "off"], default="auto")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (torch >= 2)")
    ap.add_argument("--export", metavar="DIR", help="only write the graph exports into DIR")
    ap.add_argument("--graph", metavar="DIR", help="use exports from --export instead of exporting now")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args()
    kinds = ["transformer", "skeleton"] if args.model == "both" else [args.model]
    if args.export:
        for k in kinds:
            print("wrote", export(k, args.export))
        return
    if args.devices == "auto":
        devices = [torch.device("cpu")] + ([torch.device("cuda:0")] if torch.cuda.is_available() else [])
    else:
        devices = [torch.device(d) for d in args.devices.split(",")]
    print(f"torch {torch.__version__}, numpy {np.__version__}, CPU threads {torch.get_num_threads()}, "
          f"CUDA {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}")
    if hasattr(os, "getloadavg"):
        print("load average: %.2f %.2f %.2f" % os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in kinds:
            graph = os.path.join(args.graph, f"{k}.graph.json") if args.graph else export(k, tmp)
            rows += bench_model(k, graph, devices, args)
    print(f"\n{'model':12} {'device':8} {'amp':9} {'variant':22} {'train samples/s':>16} {'infer samples/s':>16} {'ours/native':>12}")
    for r in rows:
        for name, rate in r["rates"].items():
            if "error" in rate:
                print(f"{r['model']:12} {r['device']:8} {str(r['amp']):9} {name:22} {rate['error']}")
                continue
            base = r["rates"].get(name.replace("onnx-module", "native"), {})
            ratio = f"{rate['train'] / base['train']:.2f}× / {rate['infer'] / base['infer']:.2f}×" if name.startswith("onnx") and "train" in base else ""
            print(f"{r['model']:12} {r['device']:8} {str(r['amp']):9} {name:22} {rate['train']:16.1f} {rate['infer']:16.1f} {ratio:>12}")
        print(f"{'':12} {r['device']:8} max |ours − native| (eval) = {r['maxAbsDiffEval']:.2e}")
    for k in kinds:
        by = {r["device"]: r for r in rows if r["model"] == k}
        if "cpu" in by and "cuda:0" in by:
            g, c = by["cuda:0"]["rates"]["onnx-module"], by["cpu"]["rates"]["onnx-module"]
            if "train" in g and "train" in c:
                print(f"{k}: GPU/CPU training speed-up (onnx-module) = {g['train'] / c['train']:.1f}×")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()

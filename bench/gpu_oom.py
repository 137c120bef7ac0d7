"""An out-of-memory case for the worker (issue 18's GPU check): a graph MLP 64 → 2^22 → 10 trained
at batch 65536 needs ~1 TiB for one hidden activation, far over any GPU. Expected: the worker
answers one `error` message with code OOM and the hint to lower --batch-size, exits (no hang), and
writes no checkpoint. --dry-run: a size that fits, on the CPU (checks the script itself).
Python only: python bench/gpu_oom.py [--device cuda:0] [--dry-run]"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
WORKER = os.path.join(ROOT, "src", "worker", "python")
sys.path.insert(0, WORKER)
from rankscope_worker import safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    hidden, batch, n = (256, 64, 400) if a.dry_run else (2 ** 22, 65536, 73000)
    device = "cpu" if a.dry_run else a.device
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(n, 64)).astype(np.float32)
        y = rng.integers(0, 10, size=n)
        np.savez(os.path.join(tmp, "d.npz"), x_train=x, y_train=y)
        graph = {"format": "rankscope-graph", "opset": 17, "inputs": [{"name": "x", "dtype": "float32", "shape": ["b", 64]}],
                 "outputs": [{"name": "logits", "dtype": "float32", "shape": ["b", 10]}], "initializers": ["w1", "w2"],
                 "nodes": [{"name": "mm1", "op": "MatMul", "inputs": ["x", "w1"], "outputs": ["h"], "attrs": {}},
                           {"name": "relu", "op": "Relu", "inputs": ["h"], "outputs": ["r"], "attrs": {}},
                           {"name": "mm2", "op": "MatMul", "inputs": ["r", "w2"], "outputs": ["logits"], "attrs": {}}],
                 "weights": "w.safetensors"}
        safetensors.write(os.path.join(tmp, "w.safetensors"), {
            "w1": (rng.normal(size=(64, hidden)) * 0.05).astype(np.float32), "w2": (rng.normal(size=(hidden, 10)) * 0.05).astype(np.float32)})
        with open(os.path.join(tmp, "g.json"), "w") as f:
            json.dump(graph, f)
        cfg = {"graph": os.path.join(tmp, "g.json"), "data": {"path": os.path.join(tmp, "d.npz")}, "epochs": 1, "batchSize": batch,
               "evalBatchSize": 256, "device": device, "outDir": os.path.join(tmp, "out")}
        with open(os.path.join(tmp, "c.json"), "w") as f:
            json.dump(cfg, f)
        t0 = time.time()
        r = subprocess.run([sys.executable, "-m", "rankscope_worker", "--config", os.path.join(tmp, "c.json")], capture_output=True,
                           text=True, timeout=900, env={**os.environ, "PYTHONPATH": WORKER}, stdin=subprocess.DEVNULL)
        msgs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        errors = [m for m in msgs if m["type"] == "error"]
        done = [m for m in msgs if m["type"] == "done"]
        wrote = os.path.exists(os.path.join(tmp, "out", "checkpoint.pt"))
        print(f"oom case ({device}, batch {batch}, hidden {hidden}): exit {r.returncode} after {time.time() - t0:.1f} s; "
              f"error {errors[0]['code'] + ': ' + errors[0]['message'][:160] + ' | hint: ' + str(errors[0].get('hint')) if errors else None}; "
              f"done {done[0]['status'] if done else None}; checkpoint written {wrote}")
        ok = (done and done[0]["status"] == "completed") if a.dry_run else \
            (errors and errors[0]["code"] == "OOM" and "batch-size" in (errors[0].get("hint") or "") and not wrote)
        if not ok:
            print(r.stderr[-3000:], file=sys.stderr)
        print("OOM CHECK", "PASS" if ok else "FAIL")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The worker end to end in Python alone (what runs on a GPU box without Node): build the small
compressed fixture, run `python -m rankscope_worker --config` on the best device (or
$RANKSCOPE_TEST_DEVICE), and check the protocol stream, the accuracy gain, the files it writes
and that the probe outputs equal a fresh forward with the best weights."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

from _setup import WORKER
from rankscope_worker import safetensors
from rankscope_worker.executor import OnnxModule, load_graph, to_torch

try:
    import onnx  # noqa: F401
    import fixtures
    import onnx_graph
except ImportError:  # pragma: no cover
    onnx = None


def run_worker(config_path):
    r = subprocess.run([sys.executable, "-m", "rankscope_worker", "--config", config_path], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": WORKER}, stdin=subprocess.DEVNULL, timeout=600)
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines()], r.stderr


@unittest.skipIf(onnx is None, "needs the onnx package to build the fixture")
class HeadlessTraining(unittest.TestCase):
    def test_fine_tune_on_the_best_device(self):
        device = os.environ.get("RANKSCOPE_TEST_DEVICE", "auto")
        with tempfile.TemporaryDirectory() as tmp:
            fixtures.build(tmp, 2)
            graph = onnx_graph.convert(os.path.join(tmp, "compressed.onnx"), os.path.join(tmp, "student.graph.json"))
            teacher = onnx_graph.convert(os.path.join(tmp, "original.onnx"), os.path.join(tmp, "teacher.graph.json"))
            config = {"graph": graph, "teacher": {"graph": teacher}, "kd": {"temperature": 2, "alpha": 0.5},
                      "data": {"path": os.path.join(tmp, "data.npz")}, "epochs": 3, "lr": 3e-3, "batchSize": 64,
                      "warmupEpochs": 0.5, "optimizer": "adamw", "device": device, "outDir": os.path.join(tmp, "out"), "seed": 3}
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump(config, f)
            code, msgs, err = run_worker(os.path.join(tmp, "config.json"))
            self.assertEqual(code, 0, err[-2000:])
            types = [m["type"] for m in msgs]
            self.assertEqual(types[0], "hello")
            self.assertEqual(types[1], "started")
            self.assertEqual(types[-1], "done")
            started = msgs[1]
            if device == "auto" and torch.cuda.is_available():
                self.assertTrue(started["device"].startswith("cuda"))
                self.assertIsNotNone(started["amp"])
            done = msgs[-1]
            summary = done["summary"]
            print(f"\nheadless fine-tune on {summary['device']} (amp {summary['amp']}): accuracy "
                  f"{summary['accuracyBefore']:.3f} -> {summary['accuracyAfter']:.3f}, "
                  f"{summary['samplesPerSec']:.0f} samples/s, {summary['wallSeconds']:.1f} s", file=sys.stderr)
            self.assertGreater(summary["accuracyAfter"], summary["accuracyBefore"] + 0.1)
            self.assertEqual(len(summary["epochs"]), 3)
            # The probe equals a fresh float32 forward of the graph with best.safetensors.
            g, tensors = load_graph(graph)
            best, _ = safetensors.read(done["weights"])
            for name, (code_, arr) in best.items():
                tensors[name] = to_torch(code_, arr)
            probe, _ = safetensors.read(done["probe"])
            x = torch.from_numpy(np.array(probe["input:input"][1]))
            with torch.no_grad():
                y = OnnxModule(g, tensors).eval()(x)[0].numpy()
            np.testing.assert_allclose(y, probe["output:logits"][1], atol=1e-5)
            with open(done["summaryPath"]) as f:
                self.assertEqual(json.load(f)["accuracyAfter"], summary["accuracyAfter"])


class SoftmaxOutputs(unittest.TestCase):
    def test_a_model_ending_in_softmax_trains_on_its_log_probabilities(self):
        from rankscope_worker.trainer import Trainer
        graph = {"format": "rankscope-graph", "opset": 17, "inputs": [{"name": "x", "dtype": "float32", "shape": ["b", 4]}],
                 "outputs": [{"name": "p", "dtype": "float32", "shape": ["b", 3]}], "initializers": ["w"],
                 "nodes": [{"name": "mm", "op": "MatMul", "inputs": ["x", "w"], "outputs": ["z"], "attrs": {}},
                           {"name": "sm", "op": "Softmax", "inputs": ["z"], "outputs": ["p"], "attrs": {"axis": -1}}]}
        w = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
        module = OnnxModule(graph, {"w": w.clone()})
        self.assertTrue(module.outputs_probabilities)
        x = torch.randn(5, 4)
        logits = Trainer._logits(module, x)
        torch.testing.assert_close(torch.log_softmax(logits, 1), torch.log_softmax(x @ w, 1), atol=1e-5, rtol=0)


if __name__ == "__main__":
    unittest.main()

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
            print(f"\nheadless fine-tune on {summary['device']} (amp {summary['amp']}): validation accuracy "
                  f"{summary['valAccuracyBefore']:.3f} -> {summary['valAccuracyBest']:.3f}, test {summary['testAccuracy']:.3f}, "
                  f"{summary['samplesPerSec']:.0f} samples/s, {summary['wallSeconds']:.1f} s", file=sys.stderr)
            self.assertGreater(summary["valAccuracyBest"], summary["valAccuracyBefore"] + 0.1)
            self.assertGreater(summary["testAccuracy"], summary["valAccuracyBefore"] + 0.1)
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
                self.assertEqual(json.load(f)["testAccuracy"], summary["testAccuracy"])


class _Channel:
    """The worker's channel as the Trainer uses it, recording what it sends."""

    def __init__(self, cancel_when=None):
        import threading
        self.sent, self.cancel, self._cancel_when = [], threading.Event(), cancel_when

    def send(self, type_, **fields):
        self.sent.append({"type": type_, **fields})
        if self._cancel_when and self._cancel_when(self.sent[-1]):
            self.cancel.set()

    def log(self, message, level="info"):
        self.send("log", level=level, message=message)

    def of(self, type_, phase=None):
        return [m for m in self.sent if m["type"] == type_ and (phase is None or m.get("phase") == phase)]


def linear_task(tmp, n_train=240, n_test=60, seed=0):
    """A linear 3-class task on 6 features and a graph (MatMul + Add) that starts at chance."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=(6, 3))
    xs = rng.normal(size=(n_train + n_test, 6)).astype(np.float32)
    ys = (xs @ w_true).argmax(1)
    path = os.path.join(tmp, "linear.npz")
    np.savez(path, x_train=xs[:n_train], y_train=ys[:n_train], x_test=xs[n_train:], y_test=ys[n_train:])
    graph = {"format": "rankscope-graph", "opset": 17, "inputs": [{"name": "x", "dtype": "float32", "shape": ["b", 6]}],
             "outputs": [{"name": "logits", "dtype": "float32", "shape": ["b", 3]}], "initializers": ["w", "b"],
             "nodes": [{"name": "mm", "op": "MatMul", "inputs": ["x", "w"], "outputs": ["z"], "attrs": {}},
                       {"name": "add", "op": "Add", "inputs": ["z", "b"], "outputs": ["logits"], "attrs": {}}]}
    tensors = {"w": np.zeros((6, 3), np.float32), "b": np.zeros(3, np.float32)}
    gpath = os.path.join(tmp, "linear.graph.json")
    safetensors.write(os.path.join(tmp, "linear.safetensors"), tensors)
    with open(gpath, "w") as f:
        json.dump({**graph, "weights": "linear.safetensors"}, f)
    return path, gpath, (xs[n_train:], ys[n_train:])


class EpochNumbersAndSplits(unittest.TestCase):
    """Issue 13 items 7 and 8 in the worker's events: one epoch convention (1-based, 0 = before
    fine-tuning), validation held out from training, test scored once at the end."""

    def run_trainer(self, tmp, channel, **config):
        from rankscope_worker.trainer import Trainer
        data, graph, _ = linear_task(tmp)
        cfg = {"graph": graph, "data": {"path": data}, "epochs": 3, "batchSize": 16, "lr": 0.05, "device": "cpu",
               "outDir": os.path.join(tmp, "out"), "progressEvery": 0, **config}
        return Trainer(cfg, channel).run()

    def test_every_event_numbers_epochs_from_1_and_steps_as_steps_done(self):
        with tempfile.TemporaryDirectory() as tmp:
            ch = _Channel()
            self.assertEqual(self.run_trainer(tmp, ch), "completed")
            started = ch.of("started")[0]
            spe = started["stepsPerEpoch"]
            # 10 % of 240 held out, stratified by class; test = the 60 x_test samples.
            self.assertEqual(started["valSamples"] + started["trainSamples"], 240)
            self.assertEqual(started["testSamples"], 60)
            self.assertEqual(started["splits"]["validation"]["by"], "stratified")
            self.assertEqual(spe, started["trainSamples"] // 16)
            progress = ch.of("progress")
            self.assertEqual(sorted({m["epoch"] for m in progress}), [1, 2, 3])
            self.assertEqual([m["globalStep"] for m in progress], list(range(1, 3 * spe + 1)))
            for m in progress:
                self.assertEqual(m["globalStep"], (m["epoch"] - 1) * spe + m["step"])
                self.assertTrue(1 <= m["step"] <= spe)
            self.assertEqual([m["epoch"] for m in ch.of("eval")], [0, 1, 2, 3, ch.of("done")[0]["summary"]["bestEpoch"]])
            self.assertEqual([m["phase"] for m in ch.of("eval")], ["before", "epoch", "epoch", "epoch", "test"])
            self.assertEqual([(m["epochsDone"], m["step"]) for m in ch.of("checkpoint")], [(1, 0), (2, 0), (3, 0)])
            # Test comes once, after the last validation, and is what the summary reports as test.
            types = [m["type"] + (":" + m["phase"] if m["type"] == "eval" else "") for m in ch.sent]
            self.assertEqual(types.count("eval:test"), 1)
            self.assertGreater(types.index("eval:test"), max(i for i, t in enumerate(types) if t == "eval:epoch"))
            summary = ch.of("done")[0]["summary"]
            test = ch.of("eval", "test")[0]
            self.assertEqual(summary["testAccuracy"], test["testAccuracy"])
            self.assertEqual(test["samples"], 60)
            self.assertEqual(summary["valAccuracyBest"], max([summary["valAccuracyBefore"]] + [e["valAccuracy"] for e in summary["epochs"]]))
            self.assertGreater(summary["valAccuracyBest"], summary["valAccuracyBefore"] + 0.3)
            self.assertEqual(summary["splits"], started["splits"])
            self.assertEqual(summary["epochsPlanned"], 3)

    def test_the_test_figure_is_the_best_weights_on_x_test(self):
        with tempfile.TemporaryDirectory() as tmp:
            ch = _Channel()
            self.run_trainer(tmp, ch)
            _, _, (x_test, y_test) = linear_task(tmp)
            done = ch.of("done")[0]
            best, _ = safetensors.read(done["weights"])
            logits = x_test @ np.array(best["w"][1]) + np.array(best["b"][1])
            self.assertAlmostEqual(done["summary"]["testAccuracy"], float((logits.argmax(1) == y_test).mean()), places=12)

    def test_cancelled_before_the_first_validation_reports_nothing_measured(self):
        with tempfile.TemporaryDirectory() as tmp:
            ch = _Channel(cancel_when=lambda m: m["type"] == "started")
            self.assertEqual(self.run_trainer(tmp, ch), "cancelled")
            summary = ch.of("done")[0]["summary"]
            self.assertEqual(summary["status"], "cancelled")
            self.assertIsNone(summary["valAccuracyBefore"])
            self.assertIsNone(summary["valAccuracyBest"])
            self.assertIsNone(summary["testAccuracy"])
            self.assertEqual(ch.of("eval"), [])

    def test_cancelled_mid_epoch_keeps_the_before_figure_and_resumes_in_the_same_epoch(self):
        with tempfile.TemporaryDirectory() as tmp:
            ch = _Channel(cancel_when=lambda m: m["type"] == "progress" and m["epoch"] == 2 and m["step"] == 3)
            self.assertEqual(self.run_trainer(tmp, ch), "cancelled")
            summary = ch.of("done")[0]["summary"]
            self.assertIsNotNone(summary["valAccuracyBefore"])
            self.assertEqual(len(summary["epochs"]), 1)
            self.assertIsNone(summary["testAccuracy"], "test is scored only when the run completes")
            self.assertEqual(ch.of("checkpoint")[-1]["epochsDone"], 1)
            self.assertEqual(ch.of("checkpoint")[-1]["step"], 3)
            resumed = _Channel()
            self.assertEqual(self.run_trainer(tmp, resumed, resume=os.path.join(tmp, "out", "checkpoint.pt")), "completed")
            self.assertEqual(resumed.of("started")[0]["resumedFrom"], {"epochsDone": 1, "step": 3})
            first = resumed.of("progress")[0]
            self.assertEqual((first["epoch"], first["step"]), (2, 4))
            self.assertEqual([m["epoch"] for m in resumed.of("eval", "epoch")], [2, 3])

    def test_a_checkpoint_from_another_validation_split_is_refused(self):
        from rankscope_worker.trainer import WorkerFailure
        with tempfile.TemporaryDirectory() as tmp:
            self.run_trainer(tmp, _Channel(cancel_when=lambda m: m["type"] == "progress"))
            with self.assertRaises(WorkerFailure) as e:
                self.run_trainer(tmp, _Channel(), valFraction=0.3, resume=os.path.join(tmp, "out", "checkpoint.pt"))
            self.assertIn("trainSamples", str(e.exception))


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

"""Every op the executor supports, checked against ONNX's own test data (PyTorch-exported layers
and operators with their expected outputs), in float32: |ours - expected| <= 1e-4 + 1e-4·|expected|."""
import glob
import os
import sys
import tempfile
import unittest

import numpy as np

import torch

from _setup import HERE
from rankscope_worker.executor import OnnxModule, load_graph, unsupported_ops

TESTDATA = os.path.join(HERE, "..", "..", "..", "shared", "onnx-testdata")
if not os.path.isdir(TESTDATA):
    TESTDATA = "/work/shared/onnx-testdata"

try:
    import onnx  # tests only: the worker itself never imports it
    from onnx import numpy_helper
    import onnx_graph
except ImportError:  # pragma: no cover
    onnx = None


def _read_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def cases():
    return sorted(glob.glob(os.path.join(TESTDATA, "pytorch-converted", "*", "model.onnx"))
                  + glob.glob(os.path.join(TESTDATA, "pytorch-operator", "*", "model.onnx")))


@unittest.skipIf(onnx is None, "the onnx package is needed to decode the test data")
class OnnxTestData(unittest.TestCase):
    def test_cases(self):
        passed, skipped, failed = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            for model_path in cases():
                name = os.path.basename(os.path.dirname(model_path))
                graph_path = onnx_graph.convert(model_path, os.path.join(tmp, name + ".graph.json"))
                graph, tensors = load_graph(graph_path)
                missing = unsupported_ops(graph)
                if missing:
                    skipped.append(f"{name} ({', '.join(missing)})")
                    continue
                module = OnnxModule(graph, tensors).eval()
                for data_dir in sorted(glob.glob(os.path.join(os.path.dirname(model_path), "test_data_set_*"))):
                    inputs = [torch.from_numpy(_read_pb(p)) for p in sorted(glob.glob(os.path.join(data_dir, "input_*.pb")))]
                    expected = [_read_pb(p) for p in sorted(glob.glob(os.path.join(data_dir, "output_*.pb")))]
                    try:
                        with torch.no_grad():
                            module(*inputs[: len(module.input_names)])
                            got = module(*inputs[: len(module.input_names)])  # the replayed (generated) path
                        for g, e in zip(got, expected):
                            g = g.numpy()
                            self.assertEqual(tuple(g.shape), tuple(e.shape), name)
                            self.assertTrue(np.array_equal(np.isnan(g), np.isnan(e)), f"{name}: NaN positions differ")
                            ok = ~np.isnan(e)
                            err = np.abs(g[ok].astype(np.float64) - e[ok]) - 1e-4 * np.abs(e[ok])
                            self.assertLessEqual(float(err.max(initial=0)), 1e-4, name)
                        passed.append(name)
                    except Exception as e:  # collect all, report together
                        failed.append(f"{name}: {type(e).__name__}: {e}")
        print(f"\nonnx-testdata: {len(passed)} passed, {len(skipped)} skipped, {len(failed)} failed", file=sys.stderr)
        for s in skipped:
            print(f"  skipped {s}", file=sys.stderr)
        self.assertEqual(failed, [])
        self.assertGreaterEqual(len(passed), 100)  # guards against a glob that silently finds nothing


if __name__ == "__main__":
    unittest.main()

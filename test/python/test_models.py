"""Whole models through the executor: PyTorch-exported Transformer and skeleton networks (opsets
13 and 17) against the native PyTorch modules they came from — outputs within 1e-4 and input
gradients within 1e-4 — plus the trainer's pieces (trainable selection, safetensors round trip,
stdout reserved for the protocol, the NTU preset)."""
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
from rankscope_worker.executor import OnnxModule, load_graph, unsupported_ops
from rankscope_worker.trainer import lowrank_trainable
from rankscope_worker.data import ntu_to_model

try:
    import onnx  # noqa: F401  (tests only: to convert exported models)
    import torch_models as models  # not `models`: scripts/sample/models.py (test_sample_models) has that name
    import onnx_graph
except ImportError:  # pragma: no cover
    onnx = None


@unittest.skipIf(onnx is None, "needs the onnx package")
class WholeModels(unittest.TestCase):
    def _pair(self, kind, opset, tmp):
        net = models.build(kind)
        path = os.path.join(tmp, f"{kind}{opset}.onnx")
        models.export(net, kind, path, opset)
        graph, tensors = load_graph(onnx_graph.convert(path, os.path.join(tmp, f"{kind}{opset}.graph.json")))
        self.assertEqual(unsupported_ops(graph), [])
        return net, OnnxModule(graph, tensors).eval()

    def test_outputs_and_gradients_match_native_pytorch(self):
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("transformer", "skeleton"):
                for opset in (13, 17):
                    with self.subTest(kind=kind, opset=opset):
                        net, module = self._pair(kind, opset, tmp)
                        x = models.example_input(kind, batch=7, seed=3)  # another batch size than exported
                        xa = x.clone().requires_grad_(True)
                        xb = x.clone().requires_grad_(True)
                        want = net(xa)
                        first = module(xb)[0]     # interpreted; caches the shape arithmetic
                        got = module(xb)[0]       # replayed by the generated code
                        self.assertLessEqual((got - first).abs().max().item(), 1e-6)
                        self.assertTrue(module.shape_cache, "the second call should replay")
                        self.assertEqual(tuple(got.shape), tuple(want.shape))
                        self.assertLessEqual((got - want).abs().max().item(), 1e-4)
                        # Gradients flow through every op the same way (what fine-tuning relies on).
                        w = torch.randn(want.shape, generator=torch.Generator().manual_seed(1))
                        (want * w).sum().backward()
                        (got * w).sum().backward()  # through the replayed graph
                        self.assertLessEqual((xa.grad - xb.grad).abs().max().item(), 1e-4)
                        self.assertGreater(xa.grad.abs().max().item(), 0)

    def test_exported_patterns_are_fused_back(self):
        with tempfile.TemporaryDirectory() as tmp:
            _, module = self._pair("transformer", 17, tmp)
            fused = [step.op for step in module.nodes if step.op.startswith("_")]
            self.assertEqual(fused.count("_Gelu"), 2)   # one per encoder layer
            self.assertGreaterEqual(fused.count("_Linear"), 4)

    def test_parameter_gradients_match_native_for_the_transformer(self):
        with tempfile.TemporaryDirectory() as tmp:
            net, module = self._pair("transformer", 17, tmp)
            x = models.example_input("transformer", batch=5, seed=4)
            net(x).square().sum().backward()
            module(x)[0].square().sum().backward()
            native = net.head.weight.grad  # Gemm weight keeps its name through export
            ours = dict(module.named_initializers())["head.weight"].grad
            self.assertLessEqual((native - ours).abs().max().item(), 1e-4)


class Pieces(unittest.TestCase):
    def test_lowrank_selection_is_factors_and_biases(self):
        with tempfile.TemporaryDirectory() as tmp:
            if onnx is None:
                self.skipTest("needs onnx")
            import fixtures
            built = fixtures.build(tmp, 2)
            graph, _ = load_graph(onnx_graph.convert(os.path.join(tmp, "compressed.onnx"), os.path.join(tmp, "c.graph.json"),
                                                     built["factors"]))
            self.assertEqual(sorted(lowrank_trainable(graph)), sorted(
                ["fc0.lowrank_A", "fc0.lowrank_B", "fc1.lowrank_A", "fc1.lowrank_B", "fc0.bias", "fc1.bias", "fc2.bias"]))

    def test_safetensors_round_trip_keeps_dtypes_and_bf16_bits(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "t.safetensors")
            bf = np.array([0x3F80, 0xC000, 0x7F80], np.uint16)
            safetensors.write(path, {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], np.int64),
                                     "c": ("BF16", bf), "d": np.array([True, False])})
            read, _ = safetensors.read(path)
            self.assertEqual(read["a"][0], "F32")
            np.testing.assert_array_equal(read["a"][1], np.arange(6, dtype=np.float32).reshape(2, 3))
            self.assertEqual(read["b"][0], "I64")
            self.assertEqual((read["c"][0], read["c"][1].tolist()), ("BF16", bf.tolist()))
            with open(path, "rb") as f:
                header_len = int.from_bytes(f.read(8), "little")
            self.assertEqual(header_len % 8, 0)

    def test_stdout_carries_only_protocol_lines(self):
        code = ("import os, sys, logging\n"
                "from rankscope_worker.protocol import Channel\n"
                "ch = Channel(cancel_on_eof=False)\n"
                "print('a stray print')\n"
                "logging.getLogger('x').warning('a warning')\n"
                "os.write(1, b'raw bytes from C\\n')\n"
                "ch.send('log', level='info', message='direct')\n"
                "sys.stdout.flush()\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": WORKER}, stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        self.assertEqual([(m["type"], m["message"]) for m in lines],
                         [("log", "a stray print"), ("log", "a warning"), ("log", "direct")])
        self.assertEqual(lines[1]["level"], "warn")
        self.assertIn("raw bytes from C", r.stderr)

    def test_bfloat16_tensors_cross_as_their_bits(self):
        from rankscope_worker.executor import to_numpy, to_torch
        t = to_torch("BF16", np.array([0x3F80, 0xC040, 0x0000], np.uint16))
        self.assertEqual(t.dtype, torch.bfloat16)
        self.assertEqual(t.float().tolist(), [1.0, -3.0, 0.0])
        code, bits = to_numpy(t * 2)
        self.assertEqual((code, bits.tolist()), ("BF16", [0x4000, 0xC0C0, 0x0000]))

    def test_stored_npz_members_are_memory_mapped_and_equal(self):
        from rankscope_worker.data import _load
        with tempfile.TemporaryDirectory() as tmp:
            a = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
            f = np.asfortranarray(np.arange(12.0).reshape(3, 4))
            np.savez(os.path.join(tmp, "s.npz"), a=a, f=f)
            np.savez_compressed(os.path.join(tmp, "c.npz"), a=a)
            mapped = _load(os.path.join(tmp, "s.npz"), "a")
            self.assertIsInstance(mapped, np.memmap)
            np.testing.assert_array_equal(mapped, a)
            np.testing.assert_array_equal(_load(os.path.join(tmp, "s.npz"), "f"), f)
            np.testing.assert_array_equal(_load(os.path.join(tmp, "c.npz"), "a"), a)

    def test_ntu_preset_crops_and_interpolates_valid_frames(self):
        rng = np.random.default_rng(0)
        x = np.zeros((2, 40, 150), np.float32)
        x[0, :30] = rng.normal(size=(30, 150))
        x[1, :40] = rng.normal(size=(40, 150))
        out = ntu_to_model(x, 20)
        self.assertEqual(out.shape, (2, 3, 20, 25, 2))
        # Reference: torch's linear interpolation (align_corners=False) of the centre-cropped clip.
        valid, p = 30, 0.95
        bias = int((1 - p) * valid / 2)
        clip = torch.from_numpy(x[0, bias:valid - bias]).T[None]  # (1, 150, L)
        ref = torch.nn.functional.interpolate(clip, size=20, mode="linear", align_corners=False)[0].T.numpy()
        ref = ref.reshape(20, 2, 25, 3).transpose(3, 0, 2, 1)
        np.testing.assert_allclose(out[0], ref, atol=1e-5)


if __name__ == "__main__":
    unittest.main()

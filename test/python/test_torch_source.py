"""rankscope_worker.torch_source, the user's nn.Module as the Trainer's model: which names
trainable='lowrank' trains (factors and layer biases, nn.MultiheadAttention's in_proj_bias next to
a factorized in_proj_weight; not norms or dense weights), what ModuleAdapter returns for tensor
and tuple outputs, and the one-line errors for a checkpoint that does not fit."""
import unittest

import torch
import torch.nn as nn

import _setup  # noqa: F401  (puts src/worker/python on sys.path)
from rankscope_torch import factorize
from rankscope_worker.torch_source import ModuleAdapter, load_dense, lowrank_trainable_names
from rankscope_worker.trainer import WorkerFailure


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.norm = nn.LayerNorm(16)
        self.conv = nn.Conv1d(16, 16, 3, padding=1)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        x = self.norm(x + self.attn(x, x, x, need_weights=False)[0])
        x = self.conv(x.transpose(1, 2)).mean(-1)
        return self.head(x), x


def plan(*rows):
    return {"format": "rankscope.plan", "layers": [{"layer": layer, "weight": weight, "k": 2} for layer, weight in rows]}


class TorchSource(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def test_lowrank_trainable_names(self):
        model = factorize(Block(), plan(("attn.in_proj", "attn.in_proj_weight"), ("conv", "conv.weight")))
        names = lowrank_trainable_names(model)
        self.assertEqual(sorted(names), sorted([
            "attn.in_proj.lowrank_A", "attn.in_proj.lowrank_B", "attn.in_proj_bias",
            "conv.lowrank_A", "conv.lowrank_B", "conv.bias",
            "attn.out_proj.bias", "head.bias",  # dense Linear layers keep their biases trainable
        ]))
        self.assertTrue(names <= set(model.state_dict()))

    def test_adapter_outputs_and_initializers(self):
        model = Block()
        adapter = ModuleAdapter(model)
        out = adapter(torch.randn(3, 5, 16))
        self.assertEqual(len(out), 2)
        self.assertEqual(adapter.output_names, ["output", "output1"])
        self.assertEqual(tuple(out[0].shape), (3, 4))
        self.assertEqual([n for n, _ in adapter.named_initializers()], list(model.state_dict()))
        self.assertIs(dict(adapter.named_initializers())["head.weight"], model.head.weight)

    def test_first_forward_failure_is_a_shape_mismatch(self):
        adapter = ModuleAdapter(Block())
        with self.assertRaises(WorkerFailure) as e:
            adapter(torch.randn(3, 5, 7))
        self.assertEqual(e.exception.code, "SHAPE_MISMATCH")
        self.assertIn("(3, 5, 7)", str(e.exception))

    def test_checkpoint_keys_and_sizes_are_named(self):
        state = Block().state_dict()
        state["extra.weight"] = torch.zeros(2)
        del state["head.bias"]
        with self.assertRaises(WorkerFailure) as e:
            load_dense(Block(), state, "m:build")
        self.assertIn("missing in the checkpoint: head.bias", str(e.exception))
        self.assertIn("not in the module: extra.weight", str(e.exception))
        state = Block().state_dict()
        state["head.weight"] = torch.zeros(5, 16)
        with self.assertRaises(WorkerFailure) as e:
            load_dense(Block(), state, "m:build")
        self.assertIn("size mismatch for head.weight", str(e.exception))
        self.assertNotIn("\n", str(e.exception))


if __name__ == "__main__":
    unittest.main()

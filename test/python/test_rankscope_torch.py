"""rankscope_torch's low-rank modules against the dense layers they replace: outputs equal the
original module run with weight A·B (float64 reference), bias/options/dtype/device kept, gradients
reach A and B, and misfits (groups, shapes, names) are clear errors."""
import json
import os
import tempfile
import unittest

import numpy as np
import torch
import torch.nn as nn

import _setup  # noqa: F401  (puts src/worker/python on sys.path)
from rankscope_worker import safetensors
from rankscope_torch import FactorsError, LowRankConv, LowRankEmbedding, LowRankLinear, apply_factors, factorize
from rankscope_torch.lowrank import factor_tensors, replace_layer


def record(layer, module, param, weight, groups=1):
    return {"layer": layer, "weight": f"{module}.{param}" if module else param, "module": module, "param": param,
            "groups": groups, "tensorShape": list(weight.shape)}


class Modules(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(0)

    def check_against_dense(self, holder, name, x, k, groups=1, tol=1e-5):
        dense = getattr(holder, name)
        w = dense.weight.detach()
        a, b = factor_tensors(w, k, groups, "conv" if w.dim() > 2 else "out_in")
        replace_layer(holder, record(name, name, "weight", w, groups), a, b)
        low = getattr(holder, name)
        # Reference: the dense module with its weight set to A·B (float64 math).
        ref = type(dense)(**self.options(dense)).double()
        ref.load_state_dict({k_: v.double() for k_, v in dense.state_dict().items()})
        with torch.no_grad():
            ref.weight.copy_(low.weight.double())
        self.assertLess(float((low(x) .double() - ref(x.double() if x.is_floating_point() else x)).abs().max()), tol)
        return low

    @staticmethod
    def options(m):
        if isinstance(m, nn.Linear):
            return dict(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
        if isinstance(m, nn.Embedding):
            return dict(num_embeddings=m.num_embeddings, embedding_dim=m.embedding_dim, padding_idx=m.padding_idx)
        return dict(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=m.kernel_size, stride=m.stride,
                    padding=m.padding, dilation=m.dilation, groups=m.groups, bias=m.bias is not None, padding_mode=m.padding_mode)

    def test_linear_conv_embedding_match_the_dense_layer_at_a_b(self):
        h = nn.Module()
        h.fc = nn.Linear(20, 12)
        h.c1 = nn.Conv1d(8, 12, 3, padding=1, stride=2)
        h.c2 = nn.Conv2d(8, 16, (3, 1), padding=(1, 0), groups=4)
        h.c3 = nn.Conv3d(4, 6, 3, padding=1, bias=False)
        h.cr = nn.Conv2d(4, 8, 3, padding=1, padding_mode="reflect")
        h.emb = nn.Embedding(30, 10, padding_idx=0)
        self.assertIsInstance(self.check_against_dense(h, "fc", torch.randn(5, 20), 4), LowRankLinear)
        self.assertIsInstance(self.check_against_dense(h, "c1", torch.randn(2, 8, 11), 5), LowRankConv)
        self.assertIsInstance(self.check_against_dense(h, "c2", torch.randn(2, 8, 9, 5), 2, groups=4), LowRankConv)
        self.check_against_dense(h, "c3", torch.randn(1, 4, 5, 5, 5), 3)
        self.check_against_dense(h, "cr", torch.randn(2, 4, 6, 6), 3)
        self.assertIsInstance(self.check_against_dense(h, "emb", torch.tensor([[0, 3, 29]]), 4), LowRankEmbedding)
        self.assertIsNone(h.c3.bias)
        self.assertEqual(h.c2.lowrank_B.shape, (2 * 4, 2, 3, 1))
        self.assertEqual(h.c2.lowrank_A.shape, (16, 2, 1, 1))

    def test_dtype_device_and_bias_are_kept_and_gradients_reach_the_factors(self):
        h = nn.Module()
        h.fc = nn.Linear(16, 8).half()
        bias = h.fc.bias
        w = h.fc.weight.detach().float()
        a, b = factor_tensors(w, 3, 1, "out_in")
        replace_layer(h, record("fc", "fc", "weight", w), a, b)
        self.assertEqual(h.fc.lowrank_A.dtype, torch.float16)
        self.assertIs(h.fc.bias, bias)
        h2 = nn.Module()
        h2.fc = nn.Linear(16, 8)
        replace_layer(h2, record("fc", "fc", "weight", h2.fc.weight), *factor_tensors(h2.fc.weight.detach(), 3, 1, "out_in"))
        h2.fc(torch.randn(4, 16)).sum().backward()
        self.assertIsNotNone(h2.fc.lowrank_A.grad)
        self.assertIsNotNone(h2.fc.lowrank_B.grad)
        self.assertEqual(sum(p.numel() for p in h2.parameters()), 3 * (16 + 8) + 8)

    def test_multihead_attention_in_proj_becomes_a_b_and_out_proj_still_works(self):
        torch.manual_seed(1)
        mha = nn.MultiheadAttention(16, 2, batch_first=True).eval()
        x = torch.randn(2, 5, 16)
        holder = nn.Module()
        holder.attn = mha
        w = mha.in_proj_weight.detach()
        a, b = factor_tensors(w, 6, 1, "out_in")
        wo = mha.out_proj.weight.detach()
        ao, bo = factor_tensors(wo, 6, 1, "out_in")
        ref = nn.MultiheadAttention(16, 2, batch_first=True).eval()
        ref.load_state_dict(mha.state_dict())
        with torch.no_grad():
            ref.in_proj_weight.copy_(a.float() @ b.float())
            ref.out_proj.weight.copy_(ao.float() @ bo.float())
        replace_layer(holder, {"layer": "attn.in_proj", "weight": "attn.in_proj_weight", "module": "attn", "param": "in_proj_weight",
                               "groups": 1, "tensorShape": list(w.shape)}, a, b)
        replace_layer(holder, record("attn.out_proj", "attn.out_proj", "weight", wo), ao, bo)
        self.assertNotIn("attn.in_proj_weight", dict(holder.named_parameters()))
        self.assertIn("attn.in_proj.lowrank_A", holder.state_dict())
        with torch.no_grad():
            self.assertLess(float((holder.attn(x, x, x)[0] - ref(x, x, x)[0]).abs().max()), 1e-5)

    def test_misfits_are_clear_errors(self):
        h = nn.Module()
        h.c = nn.Conv2d(8, 8, 3, groups=2)
        w = h.c.weight.detach()
        with self.assertRaisesRegex(FactorsError, "groups=2 in the model but was factorized with groups=1"):
            replace_layer(h, record("c", "c", "weight", w, groups=1), *factor_tensors(w, 2, 1, "conv"))
        with self.assertRaisesRegex(FactorsError, r"has shape \[8, 4, 3, 3\] in the model but \[8, 4, 3\]"):
            replace_layer(h, dict(record("c", "c", "weight", w, groups=2), tensorShape=[8, 4, 3]), *factor_tensors(w, 2, 2, "conv"))
        with self.assertRaisesRegex(FactorsError, "no module 'nope'"):
            replace_layer(h, record("nope", "nope", "weight", w), *factor_tensors(w, 2, 2, "conv"))
        h.t = nn.ConvTranspose2d(4, 4, 3)
        with self.assertRaisesRegex(FactorsError, "ConvTranspose2d"):
            replace_layer(h, record("t", "t", "weight", h.t.weight), *factor_tensors(h.t.weight.detach(), 2, 1, "conv"))


class Files(unittest.TestCase):
    def test_apply_factors_on_a_dataparallel_model_and_a_file_that_does_not_fit(self):
        torch.manual_seed(2)
        net = nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 4))
        w = net[0].weight.detach()
        a, b = factor_tensors(w, 3, 1, "out_in")
        tensors = {"0.lowrank_A": a.float().numpy(), "0.lowrank_B": b.float().numpy(), "0.bias": net[0].bias.detach().numpy(),
                   "2.weight": net[2].weight.detach().numpy(), "2.bias": net[2].bias.detach().numpy()}
        recs = [dict(record("0", "0", "weight", w), factors=["0.lowrank_A", "0.lowrank_B"])]
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "f.safetensors")
            safetensors.write(path, tensors, {"rankscope.factors": json.dumps(recs)})
            wrapped = nn.DataParallel(nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 4)))
            apply_factors(wrapped, path)
            x = torch.randn(3, 12)
            with torch.no_grad():
                want = net[2](torch.relu(x @ (a.float() @ b.float()).t() + net[0].bias))
                self.assertLess(float((wrapped.module(x) - want).abs().max()), 1e-5)
            with self.assertRaisesRegex(FactorsError, "does not match the model"):
                apply_factors(nn.Sequential(nn.Linear(12, 10), nn.ReLU(), nn.Linear(10, 4), nn.Linear(4, 2)), path)
            plain = os.path.join(tmp, "plain.safetensors")
            safetensors.write(plain, {"w": np.zeros(2, np.float32)})
            with self.assertRaisesRegex(FactorsError, "not a Rankscope factors file"):
                apply_factors(net, plain)
        with self.assertRaisesRegex(FactorsError, "not a Rankscope plan"):
            factorize(net, {"layers": []})


if __name__ == "__main__":
    unittest.main()

"""The sample models' structure (scripts/sample/models.py): Hyperformer's parameter shares, its
hop distances and hyperedges checked against the way its public code computes them, the
CATFormer variant's dense share, and the validation subjects of the training split."""
import os
import sys
import unittest

import numpy as np
import torch
import torch.nn.functional as F

from _setup import ROOT

sys.path.insert(0, os.path.join(ROOT, 'scripts', 'sample'))
from models import JOINT_PARTS, HyperedgeAttentionUnit, SkeletonCatformer, SkeletonTransformer, hop_distances  # noqa: E402
from shares import KINDS, transformer_shares  # noqa: E402
from skeleton import PARENT  # noqa: E402
from train import validation_subjects  # noqa: E402


class TransformerShares(unittest.TestCase):
    def test_every_layer_kind_within_5_points_of_hyperformer_and_a_small_classifier(self):
        model = SkeletonTransformer(15)
        total = sum(p.numel() for p in model.parameters())
        counts = transformer_shares(model)
        for kind, reference, _ in KINDS:
            share = 100 * counts[kind] / total
            self.assertGreater(counts[kind], 0, kind)
            self.assertLessEqual(abs(share - reference), 5, f'{kind}: {share:.1f} % vs Hyperformer {reference} %')
        self.assertLess(100 * counts['classifier'] / total, 2)
        # Hyperformer has no feed-forward: the 1x1 matrices of attention and temporal block dominate.
        pointwise = sum(counts[k] for k, _, _ in KINDS if '1x1' in k)
        self.assertGreater(pointwise / total, 0.7)


class HyperformerPriors(unittest.TestCase):
    def test_hop_distances_equal_hyperformers_adjacency_powers(self):
        # Hyperformer's MHSA: h[1] = A with self-loops, h[i] = binarised h[i-1] @ h[1]; hops = i where h[i] first reaches.
        v = len(PARENT)
        a = np.eye(v)
        for child, parent in enumerate(PARENT):
            if parent >= 0:
                a[child, parent] = a[parent, child] = 1
        reach, hops = np.eye(v), np.zeros((v, v), dtype=np.int64)
        for i in range(1, v):
            nxt = ((reach @ a) > 0).astype(float)
            hops[(nxt > 0) & (reach == 0)] = i
            reach = nxt
        np.testing.assert_array_equal(hop_distances(), hops)
        self.assertEqual(hop_distances().max(), 11)  # 12 embedding rows per block

    def test_hyperedge_features_equal_hyperformers_part_mean_matmul(self):
        torch.manual_seed(0)
        unit = HyperedgeAttentionUnit(12, 12, 2, 6)
        x = torch.randn(3, 12, 4, 25)
        label = F.one_hot(torch.tensor(JOINT_PARTS)).float()  # Hyperformer: z = x @ (label / label.sum(0)); e = z[joint_label]
        z = unit.edge_proj(x @ (label / label.sum(dim=0, keepdim=True)))
        expected = z[..., JOINT_PARTS]
        parts = torch.stack([x.index_select(3, j).mean(dim=3) for j in unit.part_joints], dim=3)
        got = unit.edge_proj(parts).index_select(3, unit.joint_part)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


class Catformer(unittest.TestCase):
    def test_dense_layers_hold_90_percent_and_the_file_stays_small(self):
        model = SkeletonCatformer(15)
        total = sum(p.numel() for p in model.parameters())
        dense = [m.dense for m in model.blocks]
        self.assertTrue(all(d.in_features == d.out_features and d.in_features % 25 == 0 for d in dense))
        self.assertGreaterEqual(sum(p.numel() for d in dense for p in d.parameters()) / total, 0.9)
        self.assertLessEqual(4 * total, 15 * 2**20)


class Split(unittest.TestCase):
    def test_validation_subjects_come_from_the_training_subjects_only(self):
        d = np.load(os.path.join(ROOT, 'media', 'samples', 'skeleton-actions.npz'))
        val = validation_subjects(d['s_train'])
        self.assertEqual(len(val), 4)
        self.assertTrue(set(val) <= set(d['s_train'].tolist()))
        self.assertFalse(set(val) & set(d['s_test'].tolist()))


if __name__ == '__main__':
    unittest.main()

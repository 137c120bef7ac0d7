"""The bundled skeleton-action sample: the committed .npz and the generator that makes it."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

from _setup import ROOT

SAMPLES = os.path.join(ROOT, 'media', 'samples')
DATASET = os.path.join(SAMPLES, 'skeleton-actions.npz')
SCRIPT = os.path.join(ROOT, 'scripts', 'sample', 'make_dataset.py')
sys.path.insert(0, os.path.join(ROOT, 'scripts', 'sample'))
from skeleton import J  # noqa: E402

TWO_PERSON = {'handshake', 'pushing', 'hugging', 'giving an object'}


def check_layout(test, d, classes):
    for part in ('train', 'test'):
        x, y, s = d['x_' + part], d['y_' + part], d['s_' + part]
        test.assertEqual(x.dtype, np.float32)
        test.assertEqual(x.shape[1:], (300, 150))
        test.assertEqual(y.dtype, np.float32)
        test.assertEqual(y.shape, (len(x), len(classes)))
        test.assertEqual(s.shape, (len(x),))
        # One-hot labels.
        test.assertTrue(np.all((y == 0) | (y == 1)))
        test.assertTrue(np.all(y.sum(1) == 1))
        # Class balance: every class equally often.
        counts = y.sum(0)
        test.assertEqual(counts.min(), counts.max(), f'{part} class counts {counts}')
        # Zero padding: valid frames (non-zero sum, as the feeders count them) come first, then only zeros.
        nonzero = np.any(x != 0, axis=2)
        valid = (x.astype(np.float64).sum(2) != 0)
        lengths = nonzero.sum(1)
        test.assertTrue(np.array_equal(nonzero, valid), 'a frame with values that sum to exactly 0')
        test.assertTrue(np.array_equal(nonzero, np.arange(300)[None] < lengths[:, None]),
                        'padding frames must follow the valid ones')
        test.assertGreaterEqual(lengths.min(), 35)
        test.assertLessEqual(lengths.max(), 150)
        # The second person is present exactly in two-person actions (absent = zeros, as in NTU).
        second = np.any(x[:, :, 75:] != 0, axis=(1, 2))
        two = np.array([classes[k] in TWO_PERSON for k in y.argmax(1)])
        test.assertTrue(np.array_equal(second, two))
        # Coordinates are rounded to 1/1024 m.
        test.assertTrue(np.all(np.round(x[:5] * 1024) == x[:5] * 1024))
        test.assertTrue(np.all(np.isfinite(x)))
    # Cross-subject split: no subject in both.
    test.assertEqual(set(d['s_train'].tolist()) & set(d['s_test'].tolist()), set())


class CommittedDataset(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with np.load(DATASET) as z:
            cls.d = {k: z[k] for k in z.files}
        with open(os.path.join(SAMPLES, 'skeleton-actions.classes.json')) as f:
            cls.classes = json.load(f)

    def test_size_budget(self):
        self.assertLessEqual(os.path.getsize(DATASET), 20 * 1024 * 1024)

    def test_layout_balance_split(self):
        self.assertGreaterEqual(len(self.classes), 12)
        check_layout(self, self.d, self.classes)
        self.assertGreaterEqual(len(self.d['x_train']), 800)
        self.assertGreaterEqual(len(self.d['x_test']), 400)
        self.assertGreaterEqual(len(set(self.d['s_test'].tolist())), 8)

    def test_plausible_bones(self):
        # Upper arm (shoulder -> elbow) of a 1.6-1.9 m adult: about 0.24-0.32 m; noise and
        # dropped joints aside, the median over all frames must sit there.
        x = self.d['x_train'][:200].reshape(-1, 300, 2, 25, 3)[:, :, 0]
        frames = np.any(x != 0, axis=(2, 3))
        sh, el = x[frames][:, J['shoulder_r']], x[frames][:, J['elbow_r']]
        ok = np.any(sh != 0, 1) & np.any(el != 0, 1)
        bone = np.linalg.norm(sh[ok] - el[ok], axis=1)
        self.assertTrue(0.22 < np.median(bone) < 0.33, np.median(bone))
        # Persons stand 2.5-4 m in front of the camera.
        depth = x[frames][:, J['spine_mid'], 2]
        self.assertTrue(2.3 < np.median(depth) < 4.1, np.median(depth))


class Generator(unittest.TestCase):
    def run_script(self, out, seed):
        subprocess.run([sys.executable, SCRIPT, '--out', out, '--seed', str(seed), '--subjects', '5',
                        '--train-subjects', '3', '--per-class-subject', '1'], check=True, capture_output=True)
        with np.load(out) as z:
            return {k: z[k] for k in z.files}

    def test_small_run_is_valid_and_reproducible(self):
        with tempfile.TemporaryDirectory() as tmp:
            a = self.run_script(os.path.join(tmp, 'a.npz'), 7)
            b = self.run_script(os.path.join(tmp, 'b.npz'), 7)
            c = self.run_script(os.path.join(tmp, 'c.npz'), 8)
            with open(os.path.join(tmp, 'a.classes.json')) as f:
                classes = json.load(f)
        check_layout(self, a, classes)
        self.assertEqual(len(a['x_train']), 3 * len(classes))
        for k in a:
            self.assertTrue(np.array_equal(a[k], b[k]), f'{k} differs between runs with one seed')
        self.assertFalse(np.array_equal(a['x_train'], c['x_train']))


if __name__ == '__main__':
    unittest.main()

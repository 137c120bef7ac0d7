"""Which split is which (issue 13 item 8): validation is held out from the training arrays (by
subject when the subjects are known, else stratified by class, seeded), the test arrays are kept
apart, and an explicit validation file replaces the hold-out. Checked on the bundled sample's
real subject ids and on small arrays built here."""
import os
import tempfile
import unittest

import numpy as np

import _setup
from rankscope_worker import data as data_mod

SAMPLE = os.path.join(_setup.ROOT, "media", "samples", "skeleton-actions.npz")
NTU_INPUT = {"name": "skeleton", "shape": ["batch", 3, 64, 25, 2]}


def write_npz(tmp, name, **arrays):
    path = os.path.join(tmp, name)
    np.savez(path, **arrays)
    return path


def rows(split):
    return split.rows if split.rows is not None else np.arange(len(split))


@unittest.skipUnless(os.path.exists(SAMPLE), "needs the bundled sample")
class BySubjectOnTheSample(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with np.load(SAMPLE) as z:
            cls.s_train = z["s_train"].copy()
            cls.n_test = len(z["y_test"])

    def test_whole_subjects_are_held_out_seeded_and_test_stays_apart(self):
        splits = data_mod.load({"path": SAMPLE, "preset": "ntu"}, NTU_INPUT, 0.1, 0)
        info = splits.info["validation"]
        self.assertEqual((info["source"], info["by"], info["subjectArray"]), ("held-out", "subject", "s_train"))
        val_subjects = set(self.s_train[splits.val.rows].tolist())
        train_subjects = set(self.s_train[splits.train.rows].tolist())
        self.assertEqual(val_subjects, set(info["subjects"]))
        self.assertEqual(val_subjects & train_subjects, set(), "a subject in both training and validation")
        self.assertEqual(len(splits.train) + len(splits.val), len(self.s_train))
        self.assertEqual(np.intersect1d(splits.train.rows, splits.val.rows).size, 0)
        # At least the asked share, and no more than one subject past it.
        share = len(splits.val) / len(self.s_train)
        self.assertGreaterEqual(share, 0.1)
        biggest = max(np.bincount(self.s_train.astype(np.int64)))
        self.assertLess(len(splits.val) - biggest, 0.1 * len(self.s_train))
        self.assertEqual(info["samples"], len(splits.val))
        self.assertEqual(info["subjectsTotal"], len(np.unique(self.s_train)))
        # The test split is x_test, whole and untouched.
        self.assertEqual(splits.info["test"], {"path": SAMPLE, "arrays": ["x_test", "y_test"], "samples": self.n_test})
        self.assertEqual(len(splits.test), self.n_test)
        # Seeded: the same seed gives the same subjects, another seed others.
        again, chosen = data_mod.hold_out_by_subject(self.s_train, 0.1, 0)
        np.testing.assert_array_equal(again, splits.val.rows)
        self.assertEqual(chosen, info["subjects"])
        other = [data_mod.hold_out_by_subject(self.s_train, 0.1, seed)[1] for seed in (1, 2, 3)]
        self.assertTrue(any(o != info["subjects"] for o in other), other)

    def test_a_held_out_batch_is_the_training_arrays_rows(self):
        splits = data_mod.load({"path": SAMPLE, "preset": "ntu"}, NTU_INPUT, 0.2, 5)
        x, y = splits.val.take(slice(3, 7))
        np.testing.assert_array_equal(x, splits.val.x[splits.val.rows[3:7]])
        with np.load(SAMPLE) as z:
            np.testing.assert_array_equal(y, z["y_train"].argmax(1)[splits.val.rows[3:7]])


class Stratified(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        rng = np.random.default_rng(0)
        self.y = np.repeat(np.arange(4), [30, 20, 10, 3])
        self.x = rng.normal(size=(len(self.y), 300, 150)).astype(np.float32)

    def test_ntu_data_without_subject_ids_falls_back_to_stratified_and_says_so(self):
        path = write_npz(self.tmp, "no-subjects.npz", x_train=self.x, y_train=np.eye(4)[self.y], x_test=self.x[:5], y_test=np.eye(4)[self.y[:5]])
        splits = data_mod.load({"path": path, "preset": "ntu"}, NTU_INPUT, 0.1, 0)
        info = splits.info["validation"]
        self.assertEqual(info["by"], "stratified")
        self.assertIn("s_train", info["note"])
        self.assertIn("also appear in training", info["note"])
        held = self.y[splits.val.rows]
        # round(10 % of 30, 20, 10) = 3, 2, 1; the class of 3 gives max(1, round(0.3)) = 1.
        self.assertEqual(np.bincount(held, minlength=4).tolist(), [3, 2, 1, 1])
        self.assertEqual(np.intersect1d(splits.train.rows, splits.val.rows).size, 0)
        self.assertEqual(len(splits.train) + len(splits.val), len(self.y))

    def test_without_the_preset_the_split_is_stratified_without_a_note(self):
        flat = self.x[:, 0, :8].copy()
        path = write_npz(self.tmp, "flat.npz", x_train=flat, y_train=self.y, x_test=flat[:4], y_test=self.y[:4])
        splits = data_mod.load({"path": path}, {"name": "x", "shape": ["b", 8]}, 0.25, 3)
        self.assertEqual(splits.info["validation"]["by"], "stratified")
        self.assertNotIn("note", splits.info["validation"])
        self.assertEqual(np.bincount(self.y[splits.val.rows], minlength=4).tolist(), [8, 5, 2, 1])

    def test_a_named_subject_array_that_is_missing_is_an_error(self):
        flat = self.x[:, 0, :8].copy()
        path = write_npz(self.tmp, "flat.npz", x_train=flat, y_train=self.y)
        with self.assertRaises(data_mod.DataError) as e:
            data_mod.load({"path": path, "subjects": "performer"}, {"name": "x", "shape": ["b", 8]}, 0.1, 0)
        self.assertIn("performer", str(e.exception))

    def test_too_few_samples_to_hold_out(self):
        path = write_npz(self.tmp, "tiny.npz", x_train=np.zeros((3, 8), np.float32), y_train=np.arange(3))
        with self.assertRaises(data_mod.DataError) as e:
            data_mod.load({"path": path}, {"name": "x", "shape": ["b", 8]}, 0.1, 0)
        self.assertIn("--val-data", e.exception.hint)


class ExplicitValidationAndTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        rng = np.random.default_rng(1)
        self.arrays = {k: rng.normal(size=(n, 8)).astype(np.float32) for k, n in (("x_train", 40), ("x_test", 12))}
        self.arrays.update(y_train=np.arange(40) % 4, y_test=np.arange(12) % 4)
        self.path = write_npz(self.tmp, "d.npz", **self.arrays)
        self.input = {"name": "x", "shape": ["b", 8]}

    def test_a_validation_file_replaces_the_hold_out(self):
        val = write_npz(self.tmp, "v.npz", x_test=self.arrays["x_test"][:6], y_test=self.arrays["y_test"][:6])
        splits = data_mod.load({"path": self.path, "valPath": val}, self.input, 0.1, 0)
        self.assertEqual(len(splits.train), 40)
        self.assertEqual(splits.info["validation"], {"source": "file", "path": val, "arrays": ["x_test", "y_test"], "samples": 6})
        self.assertEqual(len(splits.test), 12)

    def test_validating_on_the_test_arrays_reports_no_test_figure(self):
        splits = data_mod.load({"path": self.path, "valPath": self.path}, self.input, 0.1, 0)
        self.assertIsNone(splits.test)
        self.assertIn("the validation arrays are the test arrays", splits.info["test"]["missing"])

    def test_no_test_arrays_no_test_split(self):
        path = write_npz(self.tmp, "train-only.npz", x_train=self.arrays["x_train"], y_train=self.arrays["y_train"])
        splits = data_mod.load({"path": path}, self.input, 0.1, 0)
        self.assertIsNone(splits.test)
        self.assertIn("has no x_test/y_test", splits.info["test"]["missing"])

    def test_named_test_arrays_must_exist(self):
        with self.assertRaises(data_mod.DataError):
            data_mod.load({"path": self.path, "testX": "x_holdout"}, self.input, 0.1, 0)


if __name__ == "__main__":
    unittest.main()

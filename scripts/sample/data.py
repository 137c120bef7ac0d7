"""Loading the NTU-layout .npz and turning (N, 300, 150) sequences into model input (N, 3, T, 25, 2).

The resampling is the fine-tuning worker's `ntu_to_model`, which reproduces EVAL's NTU preset
(src/core/eval/ntu.ts, CTR-GCN's test-time feeder: valid frames, centre crop 0.95, linear
interpolation to T); so the sample models are trained on exactly what Rankscope feeds them.
"""
import os
import sys

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_ROOT, 'src', 'worker', 'python'))
from rankscope_worker.data import ntu_to_model  # noqa: E402


def valid_frame_count(seq):
    """Valid frames of one (300, 150) sequence: those whose values do not sum to 0 (CTR-GCN's test)."""
    return int((seq.astype(np.float64).sum(axis=1) != 0).sum())


def resample(x, frames=64, crop=0.95):
    """(N, 300, 150) -> (N, 3, frames, 25, 2) float32, as EVAL's NTU preset does."""
    return ntu_to_model(x, frames, crop=crop)


def load(path, frames=64):
    d = np.load(path)
    return {
        'x_train': resample(d['x_train'], frames), 'y_train': d['y_train'].argmax(1),
        'x_test': resample(d['x_test'], frames), 'y_test': d['y_test'].argmax(1),
    }

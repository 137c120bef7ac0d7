"""Builds the module fine-tuning fixture (finetuneModule.test.ts) in a folder: data.npz (6 classes
of noisy skeleton-shaped sequences, x (N, 3, 16, 25)), model.pt (skel.models:build trained on it,
saved with torch.save(model.state_dict())) and other.pt (the same architecture, other weights).

    python module_fixture.py OUT_DIR"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "factory"))
from skel.models import build  # noqa: E402


def data(rng, n, prototypes):
    y = rng.integers(0, len(prototypes), n)
    x = prototypes[y] + rng.standard_normal((n, 3, 16, 25)).astype(np.float32)
    return x.astype(np.float32), y.astype(np.int64)


def main(out):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # Each class: its own per-channel offsets and temporal pattern (the same for every joint).
    prototypes = (0.3 * rng.standard_normal((6, 3, 1, 1)) + 0.5 * rng.standard_normal((6, 3, 16, 1))).astype(np.float32)
    x_train, y_train = data(rng, 384, prototypes)
    x_test, y_test = data(rng, 128, prototypes)
    np.savez(os.path.join(out, "data.npz"), x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    model = build()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for step in range(150):
        idx = torch.randint(0, len(x), (64,))
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(x_test)).argmax(1).numpy() == y_test).mean()
    print(f"dense accuracy {accuracy:.3f}")
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))
    torch.save(build().state_dict(), os.path.join(out, "other.pt"))


if __name__ == "__main__":
    main(sys.argv[1])

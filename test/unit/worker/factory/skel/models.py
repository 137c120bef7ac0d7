"""The user's model code in the module fine-tuning tests (finetuneModule.test.ts): a small
skeleton-action model (N, 3, T, V) with 1×1 and temporal convs, BatchNorm and two Linear layers,
built by `build` — the factory the tests pass as --factory skel.models:build. The other names
are the wrong factories the error tests give."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class CustomLinear(nn.Module):
    """A linear layer that is not an nn.Linear: same state-dict keys, but apply_factors refuses it."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class SkelNet(nn.Module):
    def __init__(self, classes=6, channels=24, custom_fc=False, extra=False):
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 1)
        self.bn = nn.BatchNorm2d(channels)
        self.tconv = nn.Conv2d(channels, channels, (5, 1), padding=(2, 0))
        self.fc = (CustomLinear if custom_fc else nn.Linear)(channels, 48)
        self.head = nn.Linear(48, classes)
        if extra:
            self.extra = nn.Linear(classes, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.relu(self.tconv(x)).mean((2, 3))
        return self.head(F.relu(self.fc(x)))


def build(classes=6, channels=24, custom_fc=False, extra=False):
    return SkelNet(classes, channels, custom_fc, extra)


NOT_CALLABLE = 3


def not_a_module():
    return {"stem": 1}


def fails(**kwargs):
    raise ValueError("this variant is not built here")


def build_failing_on_rank_1(**kwargs):
    """The distributed test's factory: under torchrun, rank 1's module fails on its first batch
    (the failure of one rank alone); every other rank's is `build`'s."""
    import os
    net = build(**kwargs)
    if os.environ.get("RANK") == "1":
        def forward(x):
            raise RuntimeError("rank 1's forward is broken on purpose")
        net.forward = forward
    return net

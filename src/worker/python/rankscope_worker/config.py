"""Training option defaults for configs that leave options out (headless `--config` files; the
TypeScript side always sends every option). They equal TRAINING_DEFAULTS and KD_DEFAULTS in
src/worker/trainingOptions.ts, which is the one set users see; a unit test holds the two equal.
No torch import here, so the test (and tools) can read them cheaply."""

DEFAULTS = {
    "epochs": 3, "batchSize": 64, "lr": 1e-3, "optimizer": "adamw", "momentum": 0.9, "weightDecay": 0.01,
    "warmupEpochs": 0, "schedule": "cosine", "stepEpochs": 1, "gamma": 0.1, "gradClip": 1, "seed": 0,
    "trainable": "all", "device": "auto", "amp": "auto", "kd": None, "probeSamples": 16,
    "evalBatchSize": 256, "progressEvery": 0.5, "compile": False, "valFraction": 0.1,
}

KD_DEFAULTS = {"temperature": 4, "alpha": 0.5}


def with_defaults(config):
    """`config` with every option it leaves unset (or null) taken from DEFAULTS; kd's fields too."""
    cfg = {**DEFAULTS, **{k: v for k, v in config.items() if v is not None}}
    if cfg["kd"]:
        cfg["kd"] = {**KD_DEFAULTS, **{k: v for k, v in cfg["kd"].items() if v is not None}}
    return cfg

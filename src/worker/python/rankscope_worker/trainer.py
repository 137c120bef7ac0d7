"""Fine-tuning: cross-entropy (+ optional distillation from the uncompressed teacher), AdamW or
SGD-Nesterov, warm-up then cosine/step decay, grad clipping, autocast on CUDA, per-epoch
validation keeping the best weights, one test evaluation of those weights at the end, and
checkpoints a cancelled or crashed run resumes from.

Splits (data.py): validation is held out from the training data unless a validation file is given;
the best epoch is picked on validation only; test is scored once, at the end, with the best weights.
Epoch numbers in every event are 1-based (epoch 1 is the first epoch of training); epoch 0 means
"before fine-tuning". `globalStep` counts the optimizer steps done; checkpoints say how many epochs
are done (`epochsDone`) and how many steps of the next one (`step`).

Files in `outDir`: checkpoint.pt (resume state), best.safetensors (the best epoch's initializers,
ONNX names — what the TS side writes back), probe.safetensors (a few validation inputs and the
outputs this module computes for them with the best weights: the write-back check), summary.json.

On several processes (torchrun; distributed.py) the model is wrapped in DistributedDataParallel:
`batchSize` is the global batch, each rank takes batchSize / world of the same step's samples
(DistributedSampler over the epoch's permutation), so a step sees the samples one process would
see; validation and test are split across the ranks and their sums added. Cancel, progress
reports and divergence checks are decided together (one small collective per step), so every
rank stops at the same step. Rank 0 alone writes files and messages."""
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import data as data_mod
from . import safetensors
from .config import with_defaults
from .distributed import Ranks
from .executor import OnnxModule, load_graph, to_numpy, to_torch


class WorkerFailure(Exception):
    """An error with a protocol code and a hint for the user."""

    def __init__(self, code, message, hint=None):
        super().__init__(message)
        self.code, self.hint = code, hint


def pick_device(name, ranks=None):
    if ranks is not None and ranks.distributed:
        return _rank_device(name, ranks)
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise WorkerFailure("DEVICE", f"unknown device {name!r}", "Use auto, cpu, mps or cuda:N.")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise WorkerFailure("DEVICE", f"{name} requested but this torch sees no CUDA device",
                                "Use --device cpu, or a Python whose torch is built with CUDA.")
        if (device.index or 0) >= torch.cuda.device_count():
            raise WorkerFailure("DEVICE", f"{name} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise WorkerFailure("DEVICE", "mps requested but not available")
    return device


def _rank_device(name, ranks):
    """Under torchrun: rank r on cuda:LOCAL_RANK (of the GPUs CUDA_VISIBLE_DEVICES shows), or the CPU."""
    if name in (None, "", "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise WorkerFailure("BAD_CONFIG", f"--device {name} with {ranks.world} processes: each process takes its own device",
                            "Use --device auto, cuda or cpu, and choose the GPUs with --gpus.")
    if not torch.cuda.is_available():
        raise WorkerFailure("DEVICE", "cuda requested but this torch sees no CUDA device",
                            "Use --device cpu, or a Python whose torch is built with CUDA.")
    if ranks.local_rank >= torch.cuda.device_count():
        raise WorkerFailure("DEVICE", f"{ranks.world} processes but only {torch.cuda.device_count()} CUDA device(s)",
                            "Start at most one process per GPU (--nproc, --gpus).")
    torch.cuda.set_device(ranks.local_rank)
    return torch.device("cuda", ranks.local_rank)


def pick_amp(name, device):
    if device.type != "cuda" or name == "off":
        return None
    if name == "fp16":
        return torch.float16
    if name == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def lowrank_trainable(graph):
    """Names trained under trainable='lowrank': the factors Rankscope wrote (the graph's
    `lowrankFactors`, listed by the TypeScript exporter from the model's inventory) plus biases
    (1-D initializers feeding Gemm/Conv C/B or an Add after a MatMul)."""
    names = set(graph.get("lowrankFactors", []))
    inits = set(graph["initializers"])
    producer = {o: n for n in graph["nodes"] for o in n["outputs"]}
    for n in graph["nodes"]:
        if n["op"] in ("Gemm", "Conv") and len(n["inputs"]) > 2 and n["inputs"][2] in inits:
            names.add(n["inputs"][2])
        if n["op"] == "Add" and len(n["inputs"]) == 2:
            a, b = n["inputs"]
            for x, other in ((a, b), (b, a)):
                if x in inits and producer.get(other, {}).get("op") in ("MatMul", "Gemm", "Conv"):
                    names.add(x)
    return names


class GraphSource:
    """The model as an ONNX graph (graph JSON + safetensors from src/worker/graphExport.ts), run by
    executor.OnnxModule; the TypeScript side writes the result back into the ONNX file. A model
    source gives the Trainer `model` and `teacher` (modules with OnnxModule's interface), `inputs`,
    `name`, `lowrank_names()` and `finish(model, probe)` (extra fields of `done`); the other one is
    torch_source.ModuleSource, the user's own nn.Module."""

    def __init__(self, cfg):
        self.name = cfg["graph"]
        self.graph, tensors = load_graph(cfg["graph"], cfg.get("weights"))
        self.model = OnnxModule(self.graph, tensors)
        self.inputs = self.graph["inputs"]
        self.teacher = None
        if cfg.get("teacher"):
            tgraph, ttensors = load_graph(cfg["teacher"]["graph"], cfg["teacher"].get("weights"))
            self.teacher = OnnxModule(tgraph, ttensors)

    def lowrank_names(self):
        return lowrank_trainable(self.graph)

    def finish(self, model, probe):
        return {}


def open_source(cfg):
    """The model to train: the user's nn.Module when the config has `module`, else the ONNX graph."""
    if cfg.get("module"):
        from .torch_source import ModuleSource
        return ModuleSource(cfg)
    return GraphSource(cfg)


def _lr_factor(cfg, steps_per_epoch):
    warm = int(cfg["warmupEpochs"] * steps_per_epoch)
    total = max(1, cfg["epochs"] * steps_per_epoch)

    def factor(step):
        if step < warm:
            return (step + 1) / warm
        if cfg["schedule"] == "cosine":
            t = (step - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        if cfg["schedule"] == "step":
            return cfg["gamma"] ** (step // max(1, int(cfg["stepEpochs"] * steps_per_epoch)))
        return 1.0
    return factor


def _grad_scaler():
    amp = getattr(torch, "amp", None)
    if amp is not None and hasattr(amp, "GradScaler"):  # torch >= 2.3; torch.cuda.amp's is deprecated there
        return amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def _atomic_save(write, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _weights(model):
    return {name: to_numpy(t) for name, t in model.named_initializers()}


class _EpochSums:
    """Training loss and accuracy sums of the running epoch (carried over a resume). The per-step
    sums stay on the device between reports: reading them (.item()) every step would make the CPU
    wait for the GPU each step. Each rank sums its own samples (rank 0 also what a checkpoint
    carried over); `fold` adds them up over the ranks, so every figure is the whole batch's."""

    def __init__(self, state, device, ranks):
        self.ranks = ranks
        carried = ranks.main
        self._loss = state.get("epochLoss", 0.0) if carried else 0.0
        self._correct = state.get("epochCorrect", 0) if carried else 0
        self._n = state.get("epochN", 0) if carried else 0
        self.loss, self.correct, self.n = ranks.sum(self._loss, self._correct, self._n)
        self._device_loss = torch.zeros((), dtype=torch.float64, device=device)
        self._device_correct = torch.zeros((), dtype=torch.int64, device=device)

    def add(self, loss, logits, y, n):
        self._device_loss += loss.detach().double() * n
        self._device_correct += (logits.detach().argmax(1) == y).sum()
        self._n += n

    def fold(self):
        """Moves the device sums into this rank's host sums, and those of all ranks into the totals
        (a collective: every rank calls it at the same point)."""
        self._loss += self._device_loss.item()
        self._correct += int(self._device_correct.item())
        self._device_loss.zero_()
        self._device_correct.zero_()
        loss, correct, n = self.ranks.sum(self._loss, self._correct, self._n)
        self.loss, self.correct, self.n = loss, int(correct), int(n)

    def saved(self):
        return {"epochLoss": self.loss, "epochCorrect": self.correct, "epochN": self.n}

    @property
    def mean_loss(self):
        return self.loss / max(1, self.n)

    @property
    def accuracy(self):
        return self.correct / max(1, self.n)


class Trainer:
    def __init__(self, config, channel, ranks=None):
        self.cfg = with_defaults(config)
        self.channel = channel
        self.ranks = ranks or Ranks()
        cfg = self.cfg
        self.out_dir = cfg["outDir"]
        os.makedirs(self.out_dir, exist_ok=True)
        self.device = pick_device(cfg["device"], self.ranks)
        self.amp = pick_amp(cfg["amp"], self.device)
        if cfg["batchSize"] % self.ranks.world:
            raise WorkerFailure("BAD_CONFIG", f"--batch-size {cfg['batchSize']} is the global batch; it must divide "
                                f"evenly over {self.ranks.world} processes", "Choose a batch size that is a multiple of --nproc.")
        self.rank_batch = cfg["batchSize"] // self.ranks.world
        torch.manual_seed(cfg["seed"] + self.ranks.rank)  # rank 0: the one-process stream (dropout)
        self.source = open_source(cfg)
        self.model = self.source.model.to(self.device)
        self.teacher = self.source.teacher
        if self.teacher is not None:
            self.teacher = self.teacher.to(self.device).eval()
            for p in self.teacher.parameters():
                p.requires_grad_(False)
        if len(self.model.input_names) != 1:
            raise WorkerFailure("UNSUPPORTED", f"the model has {len(self.model.input_names)} inputs; fine-tuning handles one")
        splits = data_mod.load(cfg["data"], self.source.inputs[0], cfg["valFraction"], cfg["seed"])
        self.train_set, self.val_set, self.test_set, self.splits = splits.train, splits.val, splits.test, splits.info
        if cfg["trainable"] == "lowrank":
            keep = self.source.lowrank_names()
            if not any(n in keep for n, _ in self.model.named_initializers()):
                raise WorkerFailure("BAD_CONFIG", "trainable=lowrank but the model has no low-rank factors or biases",
                                    "Compress the model with Rankscope first, or train all parameters.")
        else:
            keep = None
        for name, t in self.model.named_initializers():
            if isinstance(t, torch.nn.Parameter):
                t.requires_grad_(keep is None or name in keep)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.forward_model = self._forward_model()
        if cfg["optimizer"] == "sgd":
            self.opt = torch.optim.SGD(self.params, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=True,
                                       weight_decay=cfg["weightDecay"])
        elif cfg["optimizer"] == "adamw":
            self.opt = torch.optim.AdamW(self.params, lr=cfg["lr"], weight_decay=cfg["weightDecay"])
        else:
            raise WorkerFailure("BAD_CONFIG", f"unknown optimizer {cfg['optimizer']!r}", "Use adamw or sgd.")
        self.steps_per_epoch = max(1, len(self.train_set) // cfg["batchSize"])
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_factor(cfg, self.steps_per_epoch))
        self.scaler = _grad_scaler() if self.amp == torch.float16 else None
        self.paths = {k: os.path.join(self.out_dir, f) for k, f in (
            ("checkpoint", "checkpoint.pt"), ("best", "best.safetensors"), ("probe", "probe.safetensors"),
            ("summary", "summary.json"))}

    def _forward_model(self):
        """What the training step calls: the model, in DistributedDataParallel on several processes
        (gradients averaged over the ranks in backward), compiled when asked (torch >= 2; wraps the
        forward only, the parameters stay those of self.model)."""
        model = self.model
        if self.ranks.distributed:
            from torch.nn.parallel import DistributedDataParallel
            group = self.ranks.ddp_group(self.device)
            model = DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                            process_group=group)
        if self.cfg["compile"]:
            if hasattr(torch, "compile"):
                return torch.compile(model)
            self.channel.log(f"torch {torch.__version__} has no torch.compile; running uncompiled", "warn")
        return model

    # ---- helpers ---------------------------------------------------------------------------------

    def _batch(self, split, idx):
        x, y = split.take(idx)
        # A slice of a memory-mapped file is read-only; torch wants its own writable copy.
        x = torch.from_numpy(np.ascontiguousarray(x) if x.flags.writeable else np.array(x))
        y = torch.from_numpy(np.ascontiguousarray(y) if y.flags.writeable else np.array(y))
        if self.device.type == "cuda":  # pinned: the copy runs asynchronously
            x, y = x.pin_memory(), y.pin_memory()
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _autocast(self):
        if self.amp is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast("cuda", dtype=self.amp)

    @staticmethod
    def _logits(module, x):
        """The first output as logits. A model that ends in Softmax gives probabilities: their log
        is log_softmax of the logits, which is all cross-entropy and distillation need."""
        out = module(x)[0].float()
        inner = getattr(module, "_orig_mod", module)
        if isinstance(inner, torch.nn.parallel.DistributedDataParallel):
            inner = inner.module
        probabilities = inner.outputs_probabilities
        return torch.log(out.clamp_min(1e-30)) if probabilities else out

    def _check_classes(self, logits, y):
        if logits.dim() != 2:
            raise WorkerFailure("SHAPE_MISMATCH", f"the model's first output has shape {tuple(logits.shape)}; "
                                "fine-tuning needs logits shaped (batch, classes)")
        top = int(y.max().item()) if y.numel() else 0
        if top >= logits.shape[1]:
            raise WorkerFailure("SHAPE_MISMATCH", f"labels go up to class {top} but the model has {logits.shape[1]} outputs",
                                "Check that the data belongs to this model.")

    @torch.no_grad()
    def evaluate(self, split):
        """{loss, accuracy} on `split`, or None when cancelled. Each rank scores its contiguous part
        (the same number of batches on every rank, so the per-batch cancel checks line up)."""
        self.model.eval()
        total_loss, correct, n = 0.0, 0, len(split)
        bs = self.cfg["evalBatchSize"]
        lo, hi, most = self.ranks.span(n)
        for start in range(lo, lo + most, bs):
            if self._cancelled():
                return None
            if start >= hi:
                continue
            x, y = self._batch(split, slice(start, min(start + bs, hi)))
            with self._autocast():
                logits = self._logits(self.model, x)
            self._check_classes(logits, y)
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
        total_loss, correct = self.ranks.sum(total_loss, correct)
        return {"loss": total_loss / max(1, n), "accuracy": int(correct) / max(1, n)}

    def _cancelled(self):
        """True on every rank when any was asked to cancel (rank 0 by the client, any by Ctrl-C)."""
        return self.ranks.any(self.channel.cancel.is_set())[0]

    def _loss(self, x, y):
        with self._autocast():
            logits = self._logits(self.forward_model, x)
        self._check_classes(logits, y)
        loss = F.cross_entropy(logits, y)
        kd = self.cfg.get("kd")
        if self.teacher is not None and kd:
            t, alpha = float(kd["temperature"]), float(kd["alpha"])
            with torch.no_grad(), self._autocast():
                teacher = self._logits(self.teacher, x)
            distill = F.kl_div(F.log_softmax(logits / t, 1), F.softmax(teacher / t, 1), reduction="batchmean") * t * t
            loss = alpha * distill + (1 - alpha) * loss
        return loss, logits

    def _save_checkpoint(self, epochs_done, step, state, reason):
        if not self.ranks.main:
            return
        ckpt = {
            "epoch": epochs_done, "step": step, "state": state, "weights": {n: t.detach().cpu() for n, t in self.model.named_initializers()},
            "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None, "torch_rng": torch.get_rng_state(),
            "source": self.source.name, "batchSize": self.cfg["batchSize"], "trainSamples": len(self.train_set),
            "valSamples": len(self.val_set), "worldSize": self.ranks.world,
        }
        _atomic_save(lambda p: torch.save(ckpt, p), self.paths["checkpoint"])
        self.channel.send("checkpoint", path=self.paths["checkpoint"], epochsDone=epochs_done, step=step,
                          epochs=self.cfg["epochs"], reason=reason)

    def _load_checkpoint(self, path):
        try:  # our own file: torch >= 2.6 defaults to weights_only=True, which refuses the optimizer state
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except TypeError:  # torch < 1.13 has no weights_only
            ckpt = torch.load(path, map_location="cpu")
        with torch.no_grad():
            for name, t in self.model.named_initializers():
                if name not in ckpt["weights"] or tuple(ckpt["weights"][name].shape) != tuple(t.shape):
                    raise WorkerFailure("BAD_CONFIG", f"checkpoint {path} does not belong to this model (tensor {name!r})",
                                        "Resume with the same compressed model, or start without --resume.")
                t.copy_(ckpt["weights"][name])
        for key, now in (("batchSize", self.cfg["batchSize"]), ("trainSamples", len(self.train_set)),
                         ("valSamples", len(self.val_set))):
            if key in ckpt and ckpt[key] != now:
                raise WorkerFailure("BAD_CONFIG", f"checkpoint {path} was made with {key} {ckpt[key]}, this run has {now}",
                                    "Resume with the same data, validation split, seed and batch size, or start without --resume.")
        self.opt.load_state_dict(ckpt["optimizer"])
        self.sched.load_state_dict(ckpt["scheduler"])
        if self.scaler and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        if self.ranks.main:  # the other ranks keep their own seeded streams
            torch.set_rng_state(ckpt["torch_rng"])
        return ckpt

    def _write_best(self):
        if self.ranks.main:
            _atomic_save(lambda p: safetensors.write(p, _weights(self.model)), self.paths["best"])

    # ---- the run ---------------------------------------------------------------------------------

    def run(self):
        """Start (or resume), validate the untrained model, train epoch by epoch keeping the best
        weights, finish. Returns 'completed' or 'cancelled'; a diverged run raises NUMERIC."""
        t_start = time.time()
        state, done, step = self._start()
        if state["before"] is None and not self._evaluate_before(state):
            return self._finish("cancelled", state, t_start)
        while done < self.cfg["epochs"]:  # trains epoch number done + 1
            sums = _EpochSums(state, self.device, self.ranks)
            step, seconds, seen = self._train_epoch(done + 1, step, sums)
            val = self.evaluate(self.val_set) if step == self.steps_per_epoch else None
            if val is None:  # cancelled while training or validating (then validation is redone on resume)
                return self._stop_cancelled(done, step, state, sums, t_start)
            self._end_epoch(done + 1, val, sums, seconds, seen, state)
            done, step = done + 1, 0
            self._save_checkpoint(done, step, {**state, "wallSeconds": state["wallSeconds"] + time.time() - t_start}, "epoch")
        return self._finish("completed", state, t_start)

    def _start(self):
        """(state, epochs done, steps done of the next): fresh, or from the checkpoint to resume; sends `started`."""
        state = {"curves": [], "before": None, "best": None, "bestEpoch": None, "wallSeconds": 0.0}
        done, step, resumed = 0, 0, None
        if self.cfg.get("resume") and os.path.exists(self.cfg["resume"]):
            ckpt = self._load_checkpoint(self.cfg["resume"])
            done, step, state = ckpt["epoch"], ckpt["step"], ckpt["state"]
            resumed = {"epochsDone": done, "step": step}
        self.channel.send("started", device=str(self.device), amp=str(self.amp).replace("torch.", "") if self.amp else None,
                          params={"total": sum(p.numel() for p in self.model.parameters()),
                                  "trainable": sum(p.numel() for p in self.params)},
                          trainSamples=len(self.train_set), valSamples=len(self.val_set),
                          testSamples=len(self.test_set) if self.test_set is not None else None, splits=self.splits,
                          stepsPerEpoch=self.steps_per_epoch, epochs=self.cfg["epochs"], resumedFrom=resumed,
                          processes=self._processes())
        return state, done, step

    def _processes(self):
        """How the run is spread: processes, the gradients' backend, global and per-process batch."""
        return {"worldSize": self.ranks.world, "backend": self.ranks.backend, "globalBatch": self.cfg["batchSize"],
                "perProcessBatch": self.rank_batch}

    def _evaluate_before(self, state):
        """Validation of the model as given: the baseline, and the best until an epoch beats it.
        False when cancelled."""
        before = self.evaluate(self.val_set)
        if before is None:
            return False
        if not math.isfinite(before["loss"]):
            raise WorkerFailure(
                "NUMERIC", f"the validation loss of the model before fine-tuning is {before['loss']}: "
                "the model or the validation data gives non-finite values",
                "Check the validation data for NaN/Inf, and that the model's outputs are finite (rankscope eval).")
        state["before"] = before
        state["best"] = before["accuracy"]
        state["bestEpoch"] = 0
        self._write_best()
        self.channel.send("eval", phase="before", epoch=0, valLoss=before["loss"], valAccuracy=before["accuracy"], best=True)
        return True

    def _train_epoch(self, epoch, step, sums):
        """Steps `step` … the end of epoch number `epoch` (1-based), or until cancelled; returns
        (step reached, seconds, samples seen)."""
        cfg = self.cfg
        bs = self.rank_batch
        self.model.train()
        # The permutation depends on (seed, epoch) only, so a resumed epoch sees the same batches
        # (whatever the number of processes: each takes its share of the same step's samples).
        perm = self.ranks.shard(np.random.default_rng(cfg["seed"] * 1000003 + epoch - 1).permutation(len(self.train_set)))
        t_epoch, seen, t_report = time.time(), 0, time.time()
        while step < self.steps_per_epoch and not self._cancelled():
            idx = np.sort(perm[step * bs:(step + 1) * bs])
            x, y = self._batch(self.train_set, idx)
            loss, logits = self._train_step(x, y)
            step += 1
            seen += cfg["batchSize"]  # over all ranks
            sums.add(loss, logits, y, len(idx))
            now = time.time()
            # Rank 0's clock decides the reports (a collective tells the others).
            if self.ranks.any(self.ranks.main and now - t_report >= cfg["progressEvery"] or step == self.steps_per_epoch)[0]:
                self._report(epoch, step, loss, sums, seen / max(1e-9, now - t_epoch))
                t_report = now
        return step, time.time() - t_epoch, seen

    def _train_step(self, x, y):
        """One optimizer step (gradient scaling under fp16, clipping); returns (loss, logits)."""
        loss, logits = self._loss(x, y)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
        else:
            loss.backward()
        if self.cfg["gradClip"]:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg["gradClip"])
        if self.scaler:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        self.sched.step()
        return loss, logits

    def _report(self, epoch, step, loss, sums, samples_per_sec):
        """A `progress` message; a non-finite loss (this step's, or any since the last report) is divergence."""
        value = self.ranks.sum(loss.item())[0] / self.ranks.world  # the global batch's mean loss
        if not math.isfinite(value):
            raise self._diverged(f"the training loss became {value} at epoch {epoch}, step {step}")
        sums.fold()
        if not math.isfinite(sums.loss):
            raise self._diverged(f"the training loss became {sums.mean_loss} by epoch {epoch}, step {step}")
        self.channel.send("progress", epoch=epoch, step=step, stepsPerEpoch=self.steps_per_epoch,
                          globalStep=(epoch - 1) * self.steps_per_epoch + step, loss=value,
                          lr=self.opt.param_groups[0]["lr"], samplesPerSec=samples_per_sec, globalBatch=self.cfg["batchSize"],
                          gpuMemory=torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None)

    def _end_epoch(self, epoch, val, sums, seconds, seen, state):
        """Records the finished epoch (number `epoch`, 1-based): its curve point, the best weights when
        it is the best so far."""
        if not math.isfinite(val["loss"]):  # the last steps blew the weights up: keep nothing of them
            raise self._diverged(f"the validation loss became {val['loss']} after epoch {epoch} "
                                 f"(training loss {sums.mean_loss:.4g})")
        best = val["accuracy"] > state["best"]
        if best:
            state["best"], state["bestEpoch"] = val["accuracy"], epoch
            self._write_best()
        point = {"epoch": epoch, "trainLoss": sums.mean_loss, "trainAccuracy": sums.accuracy,
                 "valLoss": val["loss"], "valAccuracy": val["accuracy"], "lr": self.opt.param_groups[0]["lr"],
                 "seconds": seconds, "samplesPerSec": seen / max(1e-9, seconds)}
        state["curves"].append(point)
        self.channel.send("eval", phase="epoch", **point, best=best)
        state.update(epochLoss=0.0, epochCorrect=0, epochN=0)

    def _stop_cancelled(self, done, step, state, sums, t_start):
        """Checkpoints where the run stopped (`done` epochs and `step` steps of the next, mid-epoch
        sums included) so --resume continues there."""
        sums.fold()
        state.update(sums.saved())
        state["wallSeconds"] += time.time() - t_start
        self._save_checkpoint(done, step, state, "cancel")
        return self._finish("cancelled", state, None)

    def _diverged(self, what):
        """The run diverged: a NUMERIC failure saying what and what to try (no model is written)."""
        cfg = self.cfg
        tries = [f"a lower learning rate (--lr {cfg['lr'] / 10:g}; now {cfg['lr']:g})"]
        if not cfg["gradClip"]:
            tries.append("gradient clipping (--grad-clip 1)")
        if not cfg["warmupEpochs"]:
            tries.append("a warm-up (--warmup 1)")
        return WorkerFailure("NUMERIC", f"fine-tuning diverged: {what}; no model was written.",
                             f"Try {', '.join(tries)}.")

    def _finish(self, status, state, t_start):
        if t_start is not None:
            state["wallSeconds"] += time.time() - t_start
        probe, test, extra = None, None, {}
        if status == "completed":
            self.ranks.barrier()  # rank 0 has written the best weights
            best, _ = safetensors.read(self.paths["best"])
            with torch.no_grad():
                for name, t in self.model.named_initializers():
                    t.copy_(to_torch(*best[name]))
            test = self._evaluate_test(state)
            if test is False:  # cancelled while testing: the last checkpoint resumes straight to the test
                status, test = "cancelled", None
            elif self.ranks.main:
                probe = self._write_probe()
                extra = self.source.finish(self.model, probe)
        if not self.ranks.main:
            return status
        summary = self._summary(status, state, test)
        _atomic_save(lambda p: _write_text(p, json.dumps(summary, indent=2)), self.paths["summary"])
        self.channel.send("done", status=status, summary=summary, checkpoint=self.paths["checkpoint"]
                          if os.path.exists(self.paths["checkpoint"]) else None,
                          weights=self.paths["best"] if status == "completed" else None, probe=probe,
                          summaryPath=self.paths["summary"], **extra)
        return status

    def _evaluate_test(self, state):
        """The test split, scored once with the best weights (already loaded): {loss, accuracy},
        None when the data has no test split, False when cancelled."""
        if self.test_set is None:
            return None
        test = self.evaluate(self.test_set)
        if test is None:
            return False
        self.channel.send("eval", phase="test", epoch=state["bestEpoch"], testLoss=test["loss"],
                          testAccuracy=test["accuracy"], samples=len(self.test_set))
        return test

    def _summary(self, status, state, test):
        """summary.json: every figure named by the split it comes from (val…, test…, train… in the epochs)."""
        curves, before = state["curves"], state["before"]
        return {
            "status": status, "device": str(self.device), "amp": str(self.amp).replace("torch.", "") if self.amp else None,
            "splits": self.splits,
            "valAccuracyBefore": before["accuracy"] if before else None, "valLossBefore": before["loss"] if before else None,
            # The best validation accuracy so far and its epoch (0 = before fine-tuning): the weights written back.
            "valAccuracyBest": state["best"], "bestEpoch": state["bestEpoch"],
            "testAccuracy": test["accuracy"] if test else None, "testLoss": test["loss"] if test else None,
            "testSamples": len(self.test_set) if test else None,
            "epochs": curves, "epochsPlanned": self.cfg["epochs"], "wallSeconds": state["wallSeconds"],
            "samplesPerSec": (sum(c["samplesPerSec"] for c in curves) / len(curves)) if curves else None,
            "trainable": self.cfg["trainable"], "teacher": self.teacher is not None,
            "params": {"total": sum(p.numel() for p in self.model.parameters()), "trainable": sum(p.numel() for p in self.params)},
            "torch": torch.__version__, "processes": self._processes(),
        }

    @torch.no_grad()
    def _write_probe(self):
        """The outputs this module computes (float32, eval mode) for the first validation samples."""
        n = min(self.cfg["probeSamples"], len(self.val_set))
        if n == 0:
            return None
        self.model.eval()
        x, _ = self._batch(self.val_set, slice(0, n))
        outs = self.model(x)
        tensors = {f"input:{self.model.input_names[0]}": x.cpu().numpy()}
        for name, t in zip(self.model.output_names, outs):
            tensors[f"output:{name}"] = to_numpy(t)
        _atomic_save(lambda p: safetensors.write(p, tensors), self.paths["probe"])
        return self.paths["probe"]

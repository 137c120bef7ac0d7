"""Fine-tuning on several processes (torchrun + DDP; docs/worker.md), in Python alone (what runs on
a GPU box without Node): 2 processes on CPU (gloo) train to the same weights as 1 process with the
same global batch; on CUDA ($RANKSCOPE_TEST_DEVICE=cuda:N) every GPU gets a process (NCCL).

Why they are equal: both take the same permutation per (seed, epoch); at step s the ranks' shares
(DistributedSampler: every world-th sample) are together exactly the 1-process batch s; DDP averages
the ranks' mean-loss gradients, which is the mean over the whole batch (equal per-rank batches);
clipping then sees the same averaged gradient and every rank makes the same optimizer step. What
is not the same is the order of the floating-point sums (two half-batch means averaged vs one
mean over the batch, then gloo's sum): ~1e-7 relative per step, which Adam's normalized steps
carry along. The model has no Dropout or BatchNorm: per-rank random masks and per-rank batch
statistics (plain DDP; no SyncBatchNorm for ONNX graphs) would make the runs differ by design."""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import torch

from _setup import WORKER
from rankscope_worker import safetensors
from rankscope_worker.distributed import Ranks

# Max |Δw| between the 1- and 2-process runs after 2 epochs (14 AdamW steps at lr 0.01, i.e. a
# total move of ~0.14 per weight): float32 summation order only, measured ~1e-8..1e-7; 1e-5 leaves
# room for other BLAS/threading orders (GPU: TF32 is off in the worker's float32 path).
WEIGHTS_TOLERANCE = 1e-5


def mlp_task(tmp, n_train=288, n_test=64, seed=0):
    """A 3-class task on 8 features and a graph MLP 8 → 16 (Relu) → 3 with a seeded random start."""
    rng = np.random.default_rng(seed)
    w_true = rng.normal(size=(8, 3))
    xs = rng.normal(size=(n_train + n_test, 8)).astype(np.float32)
    ys = (np.tanh(xs) @ w_true).argmax(1)
    data = os.path.join(tmp, "mlp.npz")
    np.savez(data, x_train=xs[:n_train], y_train=ys[:n_train], x_test=xs[n_train:], y_test=ys[n_train:])
    graph = {"format": "rankscope-graph", "opset": 17, "inputs": [{"name": "x", "dtype": "float32", "shape": ["b", 8]}],
             "outputs": [{"name": "logits", "dtype": "float32", "shape": ["b", 3]}], "initializers": ["w1", "b1", "w2", "b2"],
             "nodes": [{"name": "mm1", "op": "MatMul", "inputs": ["x", "w1"], "outputs": ["z1"], "attrs": {}},
                       {"name": "add1", "op": "Add", "inputs": ["z1", "b1"], "outputs": ["h1"], "attrs": {}},
                       {"name": "relu", "op": "Relu", "inputs": ["h1"], "outputs": ["r1"], "attrs": {}},
                       {"name": "mm2", "op": "MatMul", "inputs": ["r1", "w2"], "outputs": ["z2"], "attrs": {}},
                       {"name": "add2", "op": "Add", "inputs": ["z2", "b2"], "outputs": ["logits"], "attrs": {}}]}
    tensors = {"w1": rng.normal(scale=0.5, size=(8, 16)).astype(np.float32), "b1": np.zeros(16, np.float32),
               "w2": rng.normal(scale=0.5, size=(16, 3)).astype(np.float32), "b2": np.zeros(3, np.float32)}
    safetensors.write(os.path.join(tmp, "mlp.safetensors"), tensors)
    gpath = os.path.join(tmp, "mlp.graph.json")
    with open(gpath, "w") as f:
        json.dump({**graph, "weights": "mlp.safetensors"}, f)
    return data, gpath


def worker_command(nproc):
    """The worker as the client starts it: plain, or under torchrun (rankscope_worker.torchrun)."""
    if nproc is None:
        return [sys.executable, "-m", "rankscope_worker"]
    return [sys.executable, "-m", "rankscope_worker.torchrun", "--nnodes=1", f"--nproc_per_node={nproc}",
            "--rdzv_backend=c10d", "--rdzv_endpoint=127.0.0.1:0", f"--rdzv_id=test-{os.getpid()}-{time.time_ns()}",
            "--max_restarts=0", "--monitor_interval=1", "-m", "rankscope_worker"]


def run_headless(tmp, name, nproc, **options):
    """Runs one headless fine-tune (`--config`); returns (exit code, protocol messages, stderr, outDir)."""
    data, graph = mlp_task(tmp)
    out = os.path.join(tmp, name)
    cfg = {"graph": graph, "data": {"path": data}, "epochs": 2, "batchSize": 32, "lr": 0.01, "device": "cpu",
           "outDir": out, "progressEvery": 0, "seed": 5, "amp": "off", **options}
    path = os.path.join(tmp, f"{name}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    t0 = time.time()
    r = subprocess.run(worker_command(nproc) + ["--config", path], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": WORKER, "OMP_NUM_THREADS": "1", "RANKSCOPE_DIST_TIMEOUT_S": "60"},
                       stdin=subprocess.DEVNULL)
    msgs = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return r.returncode, msgs, r.stderr, out, time.time() - t0


def final_weights(out):
    ckpt = torch.load(os.path.join(out, "checkpoint.pt"), map_location="cpu")
    return {k: v.numpy() for k, v in ckpt["weights"].items()}


def start_two_process_run(tmp, data, graph, name, epochs, stderr=subprocess.PIPE, env=None):
    """Writes TMP/NAME.json (CPU, global batch 32, output in TMP/NAME) and starts it on 2 processes."""
    cfg = {"graph": graph, "data": {"path": data}, "epochs": epochs, "batchSize": 32, "device": "cpu",
           "outDir": os.path.join(tmp, name), "progressEvery": 0}
    with open(os.path.join(tmp, f"{name}.json"), "w") as f:
        json.dump(cfg, f)
    return subprocess.Popen(worker_command(2) + ["--config", os.path.join(tmp, f"{name}.json")], stdout=subprocess.PIPE,
                            stderr=stderr, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": WORKER, "OMP_NUM_THREADS": "1", **(env or {})})


def _running(pid):
    """True while `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _environ(pid):
    with open(f"/proc/{pid}/environ") as f:
        return f.read().split("\0")


class Shards(unittest.TestCase):
    def test_the_ranks_shares_of_a_step_are_the_one_process_batch(self):
        order = np.random.default_rng(0).permutation(103)
        batch, world = 12, 3
        shares = []
        for rank in range(world):
            r = Ranks()
            r.rank, r.world = rank, world
            r.__class__ = type("TorchrunRanks", (Ranks,), {"distributed": property(lambda self: True)})
            shares.append(r.shard(order))
        per = batch // world
        for step in range(103 // batch):
            together = np.concatenate([s[step * per:(step + 1) * per] for s in shares])
            self.assertEqual(sorted(together.tolist()), sorted(order[step * batch:(step + 1) * batch].tolist()))

    def test_evaluation_spans_cover_each_sample_once(self):
        for n, world in ((10, 3), (2, 4), (64, 2)):
            spans = []
            for rank in range(world):
                r = Ranks()
                r.rank, r.world = rank, world
                spans.append(r.span(n))
            self.assertEqual([i for lo, hi, _ in spans for i in range(lo, hi)], list(range(n)))
            self.assertEqual(max(hi - lo for lo, hi, _ in spans), spans[0][2])


class TwoProcesses(unittest.TestCase):
    def test_two_processes_train_like_one_with_the_same_global_batch(self):
        device = os.environ.get("RANKSCOPE_TEST_DEVICE", "cpu")
        cuda = device.startswith("cuda")
        nproc = max(1, torch.cuda.device_count()) if cuda else 2
        with tempfile.TemporaryDirectory() as tmp:
            one = run_headless(tmp, "one", None, device=device)
            many = run_headless(tmp, "many", nproc, device="cuda" if cuda else "cpu")
            for code, msgs, err, _, _ in (one, many):
                self.assertEqual(code, 0, err[-3000:])
                self.assertEqual(msgs[-1]["type"], "done", err[-3000:])
            s1, s2 = one[1][-1]["summary"], many[1][-1]["summary"]
            self.assertEqual(s2["processes"], {"worldSize": nproc, "backend": "nccl" if cuda else "gloo",
                                               "globalBatch": 32, "perProcessBatch": 32 // nproc})
            self.assertEqual(s1["processes"]["worldSize"], 1)
            w1, w2 = final_weights(one[3]), final_weights(many[3])
            diff = max(float(np.abs(w1[k] - w2[k]).max()) for k in w1)
            moved = max(float(np.abs(w1[k] - safetensors.read(os.path.join(tmp, "mlp.safetensors"))[0][k][1]).max()) for k in w1)
            loss_diff = max(abs(a["trainLoss"] - b["trainLoss"]) for a, b in zip(s1["epochs"], s2["epochs"]))
            print(f"\n1 vs {nproc} processes ({device}): max |Δw| {diff:.2e} (weights moved up to {moved:.3f}), "
                  f"max |Δ train loss| {loss_diff:.2e}, val accuracy {s1['valAccuracyBest']:.4f} / {s2['valAccuracyBest']:.4f}, "
                  f"{s1['samplesPerSec']:.0f} / {s2['samplesPerSec']:.0f} samples/s, wall {one[4]:.1f} / {many[4]:.1f} s", file=sys.stderr)
            self.assertGreater(moved, 0.05, "the run must actually train")
            self.assertLessEqual(diff, WEIGHTS_TOLERANCE)
            self.assertLessEqual(loss_diff, 1e-5)
            self.assertEqual(s1["valAccuracyBest"], s2["valAccuracyBest"])
            self.assertEqual(s1["testAccuracy"], s2["testAccuracy"])
            # Only rank 0 speaks: one `started`, one `done`, progress with the global batch.
            types = [m["type"] for m in many[1]]
            self.assertEqual(types.count("hello"), 1)
            self.assertEqual(types.count("done"), 1)
            self.assertTrue(all(m["globalBatch"] == 32 for m in many[1] if m["type"] == "progress"))

    def test_no_rank_outlives_a_killed_torchrun(self):
        """SIGKILL of torchrun's agent alone (under torch 2.x the ranks are in sessions of their own,
        so a process-group kill reaches only the agent): every rank exits within seconds."""
        import signal
        with tempfile.TemporaryDirectory() as tmp:
            data, graph = mlp_task(tmp)
            agent = start_two_process_run(tmp, data, graph, "out", epochs=10000, stderr=subprocess.DEVNULL)
            try:
                for line in agent.stdout:  # training has started on every rank
                    if '"progress"' in line:
                        break
                ranks = [int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(agent.pid)], capture_output=True,
                                                        text=True).stdout.split()]
                self.assertEqual(len(ranks), 2)
                agent.send_signal(signal.SIGKILL)
                agent.wait()
                deadline = time.time() + 10
                alive = ranks
                while alive and time.time() < deadline:
                    time.sleep(0.2)
                    alive = [p for p in ranks if _running(p)]
                self.assertEqual(alive, [], "ranks still running after their agent was killed")
            finally:
                agent.kill()
                for p in ranks if "ranks" in locals() else []:
                    if _running(p):
                        os.kill(p, signal.SIGKILL)

    def test_two_runs_at_once_do_not_meet(self):
        """Each run's rendezvous is on a port of its own (c10d on port 0; torch 1.13's --standalone
        would put both on 29400): two 2-process runs at the same time both complete, each alone."""
        with tempfile.TemporaryDirectory() as tmp:
            data, graph = mlp_task(tmp)
            runs = []
            for name in ("a", "b"):
                runs.append(start_two_process_run(tmp, data, graph, name, epochs=1))
            for run in runs:
                out, err = run.communicate(timeout=300)
                self.assertEqual(run.returncode, 0, err[-2000:])
                msgs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
                self.assertEqual([m["type"] for m in msgs].count("done"), 1)
                self.assertEqual(msgs[-1]["summary"]["processes"]["worldSize"], 2)

    def test_a_rank_that_stops_answering_ends_the_run_after_the_timeout(self):
        """A stopped rank (SIGSTOP: alive, silent) does not hang the run: rank 0's collective times
        out ($RANKSCOPE_DIST_TIMEOUT_S) and torchrun ends the rest."""
        import signal
        with tempfile.TemporaryDirectory() as tmp:
            data, graph = mlp_task(tmp)
            agent = start_two_process_run(tmp, data, graph, "out", epochs=10000, env={"RANKSCOPE_DIST_TIMEOUT_S": "3"})
            ranks = []
            try:
                for line in agent.stdout:
                    if '"progress"' in line:
                        break
                ranks = [int(p) for p in subprocess.run(["ps", "-o", "pid=", "--ppid", str(agent.pid)], capture_output=True,
                                                        text=True).stdout.split()]
                rank1 = [p for p in ranks if "RANK=1" in _environ(p)]
                os.kill(rank1[0], signal.SIGSTOP)
                t0 = time.time()
                _, err = agent.communicate(timeout=120)
                print(f"\nrank 1 stopped: the run ended after {time.time() - t0:.1f} s (collective timeout 3 s, "
                      f"then torchrun's grace for the stopped rank)", file=sys.stderr)
                self.assertNotEqual(agent.returncode, 0)
                # rank 0 says it timed out waiting (a PEER failure: the client then names the rank torchrun killed)
                self.assertRegex(err, r'RANKSCOPE_RANK_ERROR \{"rank": 0, .*"code": "PEER", .*(?i:timed? ?out|timeout)', err[-3000:])
                self.assertEqual([p for p in ranks if _running(p)], [])
            finally:
                agent.kill()
                for p in ranks:
                    if _running(p):
                        os.kill(p, signal.SIGKILL)

    def test_a_batch_that_does_not_divide_over_the_processes_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            code, msgs, err, out, _ = run_headless(tmp, "odd", 2, batchSize=31)
            self.assertNotEqual(code, 0)
            errors = [m for m in msgs if m["type"] == "error"]
            self.assertEqual(errors[0]["code"], "BAD_CONFIG", err[-2000:])
            self.assertIn("multiple of --nproc", errors[0]["hint"])
            self.assertFalse(os.path.exists(os.path.join(out, "best.safetensors")))


if __name__ == "__main__":
    unittest.main()

"""Fine-tuning on several processes (torchrun + DistributedDataParallel; docs/worker.md).

The client starts `python -m rankscope_worker.torchrun … -m rankscope_worker` (torch.distributed.run
with one compatibility fix, see torchrun.py); each process is a rank. `Ranks` is what the worker
and the Trainer know of that: the rank, the world size, and the few collectives they use, which on
one process (no torchrun) cost nothing, so one code path serves both:

- the default process group is gloo on every device: the start config is broadcast on it, and the
  per-step agreement (cancel, report), the metric sums and barriers run on it with CPU tensors, so
  they never wait on a GPU stream;
- the gradients go over NCCL on CUDA (a second group, `ddp_group`), gloo on CPU.

Rank 0 alone speaks the protocol and writes files. A rank that fails writes one `RANK_ERROR` line
(JSON) to stderr; the client reads those to say which rank failed and why. A failure that is only
the consequence of another rank's (a collective whose peer is gone) is marked `PEER`, so the
client reports the cause, not the echo."""
import datetime
import json
import os
import sys
import threading
import time

RANK_ERROR = "RANKSCOPE_RANK_ERROR "
DEFAULT_TIMEOUT_S = 600

# Text of the errors a collective raises when a peer is gone or silent (gloo, NCCL, the store).
_PEER_SIGNS = ("connection closed by peer", "connection reset by peer", "broken pipe", "socket timeout",
               "timed out", "timeout", "nccl", "gloo", "no route to host", "connection refused")


def _exit_with_agent(every_s=0.5):
    """No rank outlives torchrun's agent. torch 2.x starts each rank in a session of its own
    (start_new_session), so killing the agent's process group (what the client does to stop a
    run) does not reach the ranks: each one watches its parent and exits once it is gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)
    threading.Thread(target=watch, name="rankscope-agent-watch", daemon=True).start()


def launched_by_torchrun():
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


class Ranks:
    """One process (rank 0 of 1) unless started by torchrun; then `init()` joins the process group."""

    def __init__(self):
        self.rank = int(os.environ.get("RANK", 0)) if launched_by_torchrun() else 0
        self.world = int(os.environ.get("WORLD_SIZE", 1)) if launched_by_torchrun() else 1
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0)) if launched_by_torchrun() else 0
        self.main = self.rank == 0
        self.backend = None  # of the gradients: 'gloo' or 'nccl' once ddp_group() ran
        self._ddp_group = None

    @property
    def distributed(self):
        """Started by torchrun (also with one process: DDP and NCCL run as with several)."""
        return launched_by_torchrun()

    def init(self):
        """Joins the gloo process group (timeout: $RANKSCOPE_DIST_TIMEOUT_S, for every collective)."""
        if not self.distributed:
            return
        _exit_with_agent()
        import torch.distributed as dist
        dist.init_process_group("gloo", timeout=self.timeout())

    @staticmethod
    def timeout():
        return datetime.timedelta(seconds=float(os.environ.get("RANKSCOPE_DIST_TIMEOUT_S", DEFAULT_TIMEOUT_S)))

    def ddp_group(self, device):
        """The group the gradients are averaged in: NCCL for CUDA, the gloo default group otherwise."""
        if not self.distributed:
            return None
        import torch.distributed as dist
        if device.type == "cuda":
            self.backend = "nccl"
            self._ddp_group = dist.new_group(backend="nccl", timeout=self.timeout())
        else:
            self.backend = "gloo"
            self._ddp_group = None  # the default group
        return self._ddp_group

    def broadcast(self, obj):
        """Rank 0's `obj` on every rank (the start config)."""
        if not self.distributed:
            return obj
        import torch.distributed as dist
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, *flags):
        """Per flag: true on any rank (cancel asked on one, a report due on rank 0). One collective."""
        if not self.distributed:
            return tuple(bool(f) for f in flags)
        import torch
        import torch.distributed as dist
        t = torch.tensor([1.0 if f else 0.0 for f in flags])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def sum(self, *values):
        """The sums over the ranks (float64; counts stay exact up to 2^53)."""
        if not self.distributed:
            return tuple(float(v) for v in values)
        import torch
        import torch.distributed as dist
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(t)
        return tuple(t.tolist())

    def barrier(self):
        if self.distributed:
            import torch.distributed as dist
            dist.barrier()

    def shard(self, order):
        """This rank's share of `order` (an epoch's permutation) by DistributedSampler: every
        world-th index from rank's. Step s's batch of b per rank is then, over all ranks, exactly
        order[s·b·world:(s+1)·b·world], the batch one process takes at the same global batch size."""
        if not self.distributed:
            return order
        from torch.utils.data.distributed import DistributedSampler
        sampler = DistributedSampler(range(len(order)), num_replicas=self.world, rank=self.rank, shuffle=False, drop_last=True)
        return order[list(sampler)]

    def span(self, n):
        """This rank's contiguous part [lo, hi) of n evaluation samples, and the most any rank has."""
        lo, hi = self.rank * n // self.world, (self.rank + 1) * n // self.world
        return lo, hi, -(-n // self.world)

    def is_peer_failure(self, error):
        """True when `error` is a collective failing because another rank is gone (not a cause)."""
        if not self.distributed:
            return False
        text = str(error).lower()
        return isinstance(error, RuntimeError) and any(s in text for s in _PEER_SIGNS) and "out of memory" not in text

    def report_failure(self, code, message, hint=None):
        """One stderr line the client reads: which rank failed, with what."""
        line = json.dumps({"rank": self.rank, "world": self.world, "code": code, "message": message[:1500], "hint": hint})
        os.write(2, (RANK_ERROR + line + "\n").encode("utf-8"))  # one write: lines of two ranks never interleave
        sys.stderr.flush()

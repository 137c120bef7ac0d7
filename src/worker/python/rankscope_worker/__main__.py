"""`python -m rankscope_worker` — speaks NDJSON on stdin/stdout (see protocol.py).

  (no args)          send `hello`, wait for `start` on stdin, train, send `done`, exit
  --config FILE      take the start config from FILE instead of stdin (headless runs, GPU boxes)
  --hello            send `hello` and exit (environment check)

Under torchrun (`python -m rankscope_worker.torchrun … -m rankscope_worker`, distributed.py) every
rank runs this; rank 0 alone speaks the protocol and receives `start`, which it broadcasts."""
import json
import platform
import sys
import traceback

from . import PROTOCOL_VERSION, __version__


def _fail_early(code, message, hint):
    # Before the channel exists (torch missing): one protocol line on the real stdout.
    sys.stdout.write(json.dumps({"type": "error", "code": code, "message": message, "hint": hint}) + "\n")
    sys.stdout.flush()
    sys.exit(3)


def _hello_fields(torch, numpy):
    cuda = {"available": torch.cuda.is_available(), "version": torch.version.cuda, "devices": []}
    if cuda["available"]:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            cuda["devices"].append({"index": i, "name": p.name, "totalMemory": p.total_memory,
                                    "capability": f"{p.major}.{p.minor}"})
    mps = getattr(torch.backends, "mps", None)
    return {
        "protocol": PROTOCOL_VERSION, "worker": __version__, "python": platform.python_version(),
        "executable": sys.executable, "platform": platform.platform(), "torch": torch.__version__,
        "numpy": numpy.__version__, "cuda": cuda, "mps": bool(mps is not None and mps.is_available()),
        "bf16": bool(cuda["available"] and torch.cuda.is_bf16_supported()),
    }


def main(argv):
    try:
        import numpy
        import torch
    except ImportError as e:
        _fail_early("NO_TORCH", f"{sys.executable} cannot import {e.name or 'torch'}: {e}",
                    f"Install PyTorch and numpy for this interpreter ({sys.executable} -m pip install torch numpy), "
                    "or choose a Python that has them: the rankscope.python.interpreter setting in VS Code, --python on the command line.")
    from .distributed import Ranks
    from .protocol import Channel

    ranks = Ranks()
    headless = "--config" in argv
    ch = Channel(cancel_on_eof=not headless, speaks=ranks.main)
    if headless or not ranks.main:  # no client to send `cancel`: Ctrl-C asks for the same clean stop
        import signal
        signal.signal(signal.SIGINT, lambda *_: ch.cancel.set())
    try:
        ranks.init()
    except Exception as e:  # the rendezvous failed or timed out
        ranks.report_failure("DISTRIBUTED", f"joining the other ranks failed: {e}")
        ch.send("error", code="DISTRIBUTED", message=f"joining the other ranks failed: {e}",
                hint="Check that nothing blocks local TCP connections; try --nproc 1.")
        return 1
    ch.send("hello", **_hello_fields(torch, numpy))
    if "--hello" in argv:
        return 0
    start = None
    if not ranks.main:
        pass  # the config comes from rank 0
    elif "--config" in argv:
        with open(argv[argv.index("--config") + 1], "r", encoding="utf-8") as f:
            start = {"type": "start", "config": json.load(f)}
    else:
        start = ch.commands.get()
        while start.get("type") not in ("start", "exit"):
            start = ch.commands.get()
    start = ranks.broadcast(start)
    if start["type"] == "exit":
        return 0
    from .data import DataError
    from .executor import GraphError
    from .ops import OpError
    from .trainer import Trainer, WorkerFailure

    try:
        status = Trainer(start["config"], ch, ranks).run()
        # Under torchrun a non-zero exit is a failure; a cancel is not one.
        return 0 if status == "completed" or ranks.distributed else 4
    except Exception as e:
        return _failed(e, ch, ranks, GraphError, DataError, OpError, WorkerFailure)


def _failed(e, ch, ranks, GraphError, DataError, OpError, WorkerFailure):
    """The `error` message for `e` (rank 0), and the rank's RANK_ERROR line when there are several.
    A peer's failure echoed by a collective is left to the rank that caused it."""
    if isinstance(e, WorkerFailure):
        err = {"code": e.code, "message": str(e), "hint": e.hint}
    elif isinstance(e, GraphError):
        err = {"code": "UNSUPPORTED", "message": str(e), "missing": e.missing,
               "hint": "These ops have no torch function in the worker yet; please report them."}
    elif isinstance(e, DataError):
        err = {"code": "SHAPE_MISMATCH", "message": str(e), "hint": e.hint}
    elif isinstance(e, OpError):
        err = {"code": "UNSUPPORTED", "message": str(e), "hint": None}
    elif isinstance(e, (RuntimeError, MemoryError)):
        oom = "out of memory" in str(e).lower() or isinstance(e, MemoryError)
        err = {"code": "OOM" if oom else "PEER" if ranks.is_peer_failure(e) else "INTERNAL",
               "message": str(e).splitlines()[0] if str(e) else type(e).__name__,
               "hint": "Lower --batch-size (or use a smaller model / another device)." if oom else None,
               "traceback": traceback.format_exc()}
    else:  # a bug: keep the traceback
        err = {"code": "INTERNAL", "message": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    if ranks.distributed:
        ranks.report_failure(err["code"], err["message"], err.get("hint"))
        if err["code"] == "INTERNAL":
            sys.stderr.write(err["traceback"])
    if err["code"] != "PEER":
        ch.send("error", **err)
    return 1

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

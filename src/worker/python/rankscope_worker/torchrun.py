"""`python -m rankscope_worker.torchrun ARGS` = `python -m torch.distributed.run ARGS`, with one fix:
torch 1.13's `Std.from_str` (the --redirects/--tee parser) finds no member for "0" on Python ≥ 3.11
(IntFlag iteration leaves out the zero member), so torchrun fails before starting any worker
(Debian's torch 1.13 on Python 3.11). Patched only where that bug is present; torch 2.x runs as is.
Imports torch only, not the worker."""
import sys


def _fix_std_parser():
    try:
        from torch.distributed.elastic.multiprocessing import api
        if api.Std.from_str("0") is not None:
            return
    except (ImportError, AttributeError):  # another torch layout: nothing to fix there
        return

    def from_str(cls, vm):
        if vm.isdigit():
            return cls(int(vm))
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}
    api.Std.from_str = classmethod(from_str)


def main():
    _fix_std_parser()
    from torch.distributed import run
    sys.argv[0] = "torchrun"
    run.main()


if __name__ == "__main__":
    main()

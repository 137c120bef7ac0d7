"""Path bootstrap shared by the Python tests: `from _setup import ...` (or `import _setup`) before
importing the worker. Puts this folder (the test helpers: fixtures, torch_models, onnx_graph…) and the
worker's source (src/worker/python, for `rankscope_worker`) on sys.path, worker first. Found because
`python -m unittest discover -s test/python` and running a test file directly both put
test/python on sys.path."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(ROOT, "src", "worker", "python")

for _path in (HERE, WORKER):
    if _path not in sys.path:
        sys.path.insert(0, _path)

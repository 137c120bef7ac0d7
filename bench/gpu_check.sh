#!/usr/bin/env bash
# Issue 18's one-shot GPU check, for a CUDA box with Python 3 + torch 2.x + numpy + onnx + onnxruntime
# and neither Node nor network. Prints every figure; one PASS/FAIL line per part, the exit status
# says whether all passed. Run from the repository root:
#   bash bench/gpu_check.sh              # on the GPU box (≈ 5–8 min)
#   bash bench/gpu_check.sh --dry-run    # the same parts on the CPU, tiny (checks the script)
# PYTHON picks the interpreter (default python3); RESULTS a folder for the JSON figures.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RESULTS=${RESULTS:-${OUT:-$(mktemp -d)}}
mkdir -p "$RESULTS"
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
export PYTHONPATH="$PWD/src/worker/python${PYTHONPATH:+:$PYTHONPATH}"
failed=0
part() {  # part NAME TIMEOUT_S COMMAND…: runs one part, prints its output and PASS/FAIL
  local name=$1 limit=$2; shift 2
  echo "=== $name"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$RESULTS/$name.log" | tail -n 60
  local rc=${PIPESTATUS[0]}
  echo "--- $name: $([ "$rc" = 0 ] && echo PASS || echo "FAIL (exit $rc)") in $((SECONDS - t0)) s"
  [ "$rc" = 0 ] || failed=1
}

echo "=== environment"
$PY - <<'PY'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda, "nccl",
      torch.cuda.nccl.version() if torch.cuda.is_available() else None)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name} {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}, bf16 {torch.cuda.is_bf16_supported()}")
for m in ("onnx", "onnxruntime"):
    try:
        print(m, __import__(m).__version__)
    except ImportError:
        print(m, "MISSING")
PY
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv

if [ $DRY = 1 ]; then DEV=cpu; else DEV=cuda:0; fi
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")

# 1. The worker's Python tests on the GPU (the headless fine-tune, module sources, DDP on every GPU with NCCL).
# (unittest runs in test/python, where the tests take their sys.path from)
part worker-tests 600 env -C test/python RANKSCOPE_TEST_DEVICE=$DEV $PY -m unittest -v test_trainer test_torch_source test_distributed
# 2. ONNX-as-module vs native PyTorch training throughput, bf16 autocast, torch.compile (goal ≥ 0.8×).
if [ $DRY = 1 ]; then
  part worker-gpu-bench 600 $PY bench/worker_gpu.py --devices cpu --model skeleton --steps 3 --rounds 1 --json "$RESULTS/worker_gpu.json"
else
  part worker-gpu-bench 600 $PY bench/worker_gpu.py --devices cuda:0 --amp bf16 --compile --json "$RESULTS/worker_gpu.json"
  part worker-gpu-bench-fp32 600 $PY bench/worker_gpu.py --devices cuda:0 --amp off --json "$RESULTS/worker_gpu_fp32.json"
fi
# 3. Out of memory: one OOM error with the hint, no hang, no checkpoint.
part oom 900 $PY bench/gpu_oom.py --device cuda:0 $([ $DRY = 1 ] && echo --dry-run)
# 4. DDP with all the GPUs there are (NCCL; gloo in the dry run) against one process, same global batch.
echo "GPUs: $GPUS"
part ddp-all-gpus 600 env -C test/python RANKSCOPE_TEST_DEVICE=$([ $DRY = 1 ] && echo cpu || echo cuda) $PY -m unittest -v test_distributed.TwoProcesses

echo "=== figures in $RESULTS"; ls "$RESULTS"
echo "GPU CHECK $([ $failed = 0 ] && echo PASS || echo FAIL)"
exit $failed

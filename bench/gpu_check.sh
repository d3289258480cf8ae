#!/usr/bin/env bash
# One-call GPU check for a session lent an H100/H200 for ~15 minutes (device time includes
# machine start-up, so this script aims to finish in ~8 minutes; TOTAL_S overrides):
#   1. GPU, driver, Python / numba / torch versions;
#   2. fastconv importable (builds the CPU extension with tools/dev_build.sh if needed);
#   3. the CUDA tests on the real device (tests/test_cuda_igemm.py: every GEMM tile incl. the
#      production 128x128 / 64x128 / 32x64 ones; tests/test_cuda_sim.py, tests/test_cuda_training.py,
#      NUMBA_ENABLE_CUDASIM=0);
#   4. bench/bench_cuda.py: correctness vs float64 (Winograd bounds F(2,3) <= 1e-5,
#      F(4,3) <= 5e-5) and timings vs PyTorch/cuDNN on VGG-16's 3x3 layers at batch 8 and 32,
#      forward and backward, plus max-pool, with the time left as its budget;
#   5. if time remains, registers / shared memory / spills per kernel (tools/ptx_check.py).
# Usage (repo root): bash bench/gpu_check.sh 2>&1 | tee gpu_check.log
set -uo pipefail
cd "$(dirname "$0")/.."
TOTAL_S=${TOTAL_S:-480}
START=$(date +%s)
left() { echo $(( TOTAL_S - ($(date +%s) - START) )); }
PY=${PY:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_ENABLE_CUDASIM=0

echo "== 1. device and versions =="
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | head -3
$PY - <<'PY'
import sys
print("python", sys.version.split()[0])
for m in ("numpy", "numba", "numba_cuda", "torch"):
    try:
        mod = __import__(m); print(m, mod.__version__)
    except Exception as e:
        print(m, "not importable:", e)
try:
    import torch; print("torch CUDA", torch.version.cuda, "cuDNN", torch.backends.cudnn.version(),
                        "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
except Exception as e:
    print("torch CUDA check failed:", e)
PY

echo "== 2. fastconv import =="
if ! $PY -c "import fastconv" 2>/dev/null; then
  if command -v cmake >/dev/null && $PY -m pybind11 --cmakedir >/dev/null 2>&1; then
    echo "building the CPU extension for this Python (timeout 150 s)"
    JOBS=16 timeout 150 tools/dev_build.sh >/tmp/fastconv_build.log 2>&1 || tail -5 /tmp/fastconv_build.log
  else
    echo "no cmake/pybind11 here: CPU extension not built"
  fi
fi
if $PY -c "import fastconv" 2>/dev/null; then HAVE_CPU=1; echo "fastconv imports"; else HAVE_CPU=0;
  echo "fastconv does not import (CPU extension missing): tests skipped, the bench runs CUDA-only"; fi

echo "== 3. CUDA tests on the device (timeout 200 s) =="
if [ "$HAVE_CPU" = 1 ]; then
  timeout 200 $PY -m pytest tests/test_cuda_igemm.py tests/test_cuda_sim.py tests/test_cuda_training.py -q -o addopts="" -m "not slow" -p no:cacheprovider \
    --durations=5 2>&1 | tail -25
  echo "pytest exit: ${PIPESTATUS[0]}"
fi

echo "== 4. bench (budget $(( $(left) - 60 )) s) =="
B=$(( $(left) - 60 ))
if [ "$B" -gt 30 ]; then
  timeout $(( B + 30 )) $PY bench/bench_cuda.py --batches "${BATCHES:-8,32}" --budget-s "$B"
  echo "bench exit: $?"
else
  echo "SKIPPED: no time left"
fi

echo "== 5. kernel resources (ptxas -v; $(left) s left) =="
if [ "$(left)" -gt 45 ]; then
  timeout $(( $(left) - 5 )) $PY tools/ptx_check.py --dtypes float32 --limits 2>&1 | tail -45
else
  echo "SKIPPED: no time left"
fi
echo "== done in $(( $(date +%s) - START )) s =="

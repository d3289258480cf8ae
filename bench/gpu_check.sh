#!/usr/bin/env bash
# One-call GPU check for a session lent an H100/H200 for ~15 minutes (device time includes
# machine start-up, so this script aims to finish in ~8 minutes; TOTAL_S overrides):
#   1. GPU, driver, Python / numba / torch versions;
#   2. fastconv importable (builds the CPU extension with tools/dev_build.sh if needed);
#   3. the CUDA tests on the real device (tests/test_cuda_igemm.py: every GEMM tile incl. the
#      production 128x128 / 64x128 / 32x64 ones; tests/test_cuda_sim.py, tests/test_cuda_training.py,
#      NUMBA_ENABLE_CUDASIM=0);
#   3b. fastconv.torch on CUDA tensors (the `input.is_cuda` branch of torch/functions.py, which a
#      CPU-only torch cannot reach): Conv2d (direct, Winograd), MaxPool2d, AvgPool2d, forward with
#      and without autograd and backward, against torch's own CUDA ops (TF32 off), float32 and float64;
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

echo "== 3b. fastconv.torch on CUDA tensors (timeout 150 s) =="
if [ "$HAVE_CPU" = 1 ]; then
  timeout 150 $PY - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    print(f"SKIPPED: this torch ({torch.__version__}) has no CUDA, so there are no CUDA tensors to check")
    sys.exit(0)
import fastconv.torch as ft
from fastconv import functional as F

torch.backends.cudnn.allow_tf32 = False  # the reference must be full float32
torch.backends.cuda.matmul.allow_tf32 = False
seen = []  # (op, type of the array fastconv.functional received): a CUDA tensor, never a copy to host
for name in ("conv2d", "conv2d_input", "conv2d_weight", "max_pool2d", "max_pool2d_backward", "avg_pool2d",
             "avg_pool2d_backward"):
    def spy(a, *args, _real=getattr(F, name), _name=name, **kwargs):
        seen.append((_name, getattr(a, "is_cuda", False) or hasattr(a, "__cuda_array_interface__")))
        return _real(a, *args, **kwargs)
    setattr(F, name, spy)

def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))

failures = []
def check(what, got, ref, tol):
    err = rel(got.detach(), ref.detach())
    ok = got.is_cuda and got.device == ref.device and got.dtype == ref.dtype and got.shape == ref.shape and err <= tol
    print(f"  {what:48s} rel err {err:.1e} (<= {tol:.0e}) {'ok' if ok else 'FAILED'}")
    if not ok:
        failures.append(what)

g = torch.Generator().manual_seed(0)
for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-4)):
    x0 = torch.randn(4, 8, 20, 18, generator=g, dtype=dtype).cuda()
    cases = [(f"Conv2d {a}", ft.Conv2d(8, 16, 3, padding=1, algorithm=a), torch.nn.Conv2d(8, 16, 3, padding=1))
             for a in ("direct", "winograd")]
    cases += [("Conv2d 5x5 stride 2 groups 2", ft.Conv2d(8, 6, 5, 2, 2, groups=2), torch.nn.Conv2d(8, 6, 5, 2, 2, groups=2)),
              ("MaxPool2d 3/2 pad 1", ft.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
              ("AvgPool2d 3/2 pad 1 exclude pad", ft.AvgPool2d(3, 2, 1, count_include_pad=False),
               torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False))]
    for what, ours, theirs in cases:
        theirs.load_state_dict(ours.state_dict())
        ours, theirs = ours.to("cuda", dtype), theirs.to("cuda", dtype)
        what = f"{what} {str(dtype)[6:]}"
        seen.clear()
        with torch.no_grad():
            check(what + " no_grad", ours(x0), theirs(x0), tol)
        x, xr = x0.clone().requires_grad_(), x0.clone().requires_grad_()
        y, yr = ours(x), theirs(xr)
        check(what + " forward", y, yr, tol)
        dy = torch.randn(y.shape, generator=g, dtype=dtype).cuda()
        y.backward(dy)
        yr.backward(dy)
        check(what + " input grad", x.grad, xr.grad, tol)
        for (pname, p), q in zip(ours.named_parameters(), theirs.parameters()):
            check(f"{what} {pname} grad", p.grad, q.grad, tol)
        ops = {op for op, _ in seen}
        if not seen or not all(on_gpu for _, on_gpu in seen) or not ops & {"conv2d_input", "max_pool2d_backward",
                                                                             "avg_pool2d_backward"}:
            failures.append(f"{what}: fastconv.functional saw {seen}")
print("fastconv.torch CUDA check:", "FAILED " + "; ".join(failures) if failures else "all ok")
sys.exit(1 if failures else 0)
PY
  echo "adapter CUDA check exit: $?"
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

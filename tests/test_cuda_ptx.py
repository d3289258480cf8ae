"""Resource limits of the GEMM kernels, from ptxas: the 256-thread tiles must fit in 128
registers (two blocks per SM; the kernels carry those launch bounds) without spilling.

Needs no GPU: tools/ptx_check.py compiles with NVVM and assembles with ptxas for sm_90. Skips,
with the reason, only where libNVVM / libNVRTC or ptxas are not installed (CI with the CUDA
toolkit runs it); anything else that stops the compile fails.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}


def _ptx_check(*args):
    return subprocess.run([sys.executable, str(REPO / "tools" / "ptx_check.py"), *args], env=ENV,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def toolchain():
    r = _ptx_check("--probe")
    if r.returncode == 3:
        pytest.skip(f"NVVM/NVRTC not installed (see tools/ptx_check.py): {r.stdout.strip()[-300:]}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    if shutil.which("ptxas") is None:
        pytest.skip("ptxas (CUDA toolkit) not on PATH: registers and spills cannot be read")


@pytest.mark.parametrize("only,dtypes", [
    # the 128x128 tile on each of its loaders (the heaviest index arithmetic), ~15 s
    ("igemm_conv_(forward|input|weight)_large|igemm_winograd_f4|igemm_dense_linear", "float32"),
    # every tile and loader, float64 included (which never takes the 128x128 tile), ~60 s
    pytest.param("igemm", "float32,float64", marks=pytest.mark.slow),
])
def test_gemm_kernels_fit_their_launch_bounds_without_spills(toolchain, only, dtypes):
    r = _ptx_check("--dtypes", dtypes, "--only", only, "--limits")
    assert r.returncode == 0 and "within limits" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("igemm_")]
    assert len(rows) >= 5
    for name, _dtype, regs, smem, stack, spills in rows:
        assert int(regs) <= 128 and spills == "0/0" and int(stack) == 0, (name, regs, spills)
        assert int(smem) <= 48 * 1024, name      # static shared memory per block

"""Resource limits of the GEMM kernels, from ptxas: the 256-thread tiles must fit in 128
registers (two blocks per SM; the kernels carry those launch bounds) without spilling.

Needs no GPU: tools/ptx_check.py compiles with NVVM and assembles with ptxas for sm_90. The
toolchain is software the test extra installs, so its absence fails (tests/cuda_toolchain.py).
"""
import pytest

pytest.importorskip("numba")
from cuda_toolchain import ptx_check, require_ptxas  # noqa: E402


@pytest.fixture(scope="module")
def toolchain():
    require_ptxas()


@pytest.mark.parametrize("only,dtypes", [
    # the 128x128 tile on each of its loaders (the heaviest index arithmetic), ~15 s
    ("igemm_conv_(forward|input|weight)_large|igemm_winograd_f4|igemm_dense_linear", "float32"),
    # every tile and loader, float64 included (which never takes the 128x128 tile), ~60 s
    pytest.param("igemm", "float32,float64", marks=pytest.mark.slow),
])
def test_gemm_kernels_fit_their_launch_bounds_without_spills(toolchain, only, dtypes):
    r = ptx_check("--dtypes", dtypes, "--only", only, "--limits")
    assert r.returncode == 0 and "within limits" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [ln.split() for ln in r.stdout.splitlines() if ln.startswith("igemm_")]
    assert len(rows) >= 5
    for name, _dtype, regs, smem, stack, spills in rows:
        assert int(regs) <= 128 and spills == "0/0" and int(stack) == 0, (name, regs, spills)
        assert int(smem) <= 48 * 1024, name      # static shared memory per block

"""The CUDA compile toolchain for the PTX tests (test_cuda_ptx.py, test_cuda_sim.py): libNVVM and
libNVRTC to compile, ptxas to read registers and spills. None needs a GPU, so each is software
the test extra installs (nvidia-cuda-nvrtc; nvidia-cuda-nvcc, which brings ptxas and, through
nvidia-nvvm, libNVVM): a missing one fails the test with what to install, it does not skip.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = 'pip install ".[test]" (nvidia-cuda-nvrtc, nvidia-cuda-nvcc) or a CUDA toolkit'


def ptxas():
    """ptxas on PATH, else the one in an NVIDIA wheel or CUDA_HOME (cuda-pathfinder, which
    numba-cuda installs, searches the places numba itself loads NVVM from); None if absent."""
    found = shutil.which("ptxas")
    if found:
        return found
    try:
        from cuda.pathfinder import find_nvidia_binary_utility
    except ImportError:
        return None
    return find_nvidia_binary_utility("ptxas")


def ptx_check_env():
    """The environment tools/ptx_check.py runs in: no simulator, ptxas's folder on PATH."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    found = ptxas()
    if found:
        env["PATH"] = os.pathsep.join([str(Path(found).parent), env.get("PATH", "")])
    return env


def ptx_check(*args, timeout=900):
    return subprocess.run([sys.executable, str(REPO / "tools" / "ptx_check.py"), *args], env=ptx_check_env(),
                          capture_output=True, text=True, timeout=timeout)


def require_nvvm():
    """tools/ptx_check.py --probe compiles a one-line kernel: anything but success fails."""
    r = ptx_check("--probe", timeout=120)
    why = (r.stdout + r.stderr).strip()
    if r.returncode == 3:
        pytest.fail(f"NVVM/NVRTC not installed ({INSTALL}): {why.splitlines()[-1] if why else ''}", pytrace=False)
    assert r.returncode == 0, f"tools/ptx_check.py --probe exited {r.returncode}:\n{why[-3000:]}"


def require_ptxas():
    require_nvvm()
    if ptxas() is None:
        pytest.fail(f"ptxas not found on PATH or in an NVIDIA wheel ({INSTALL}): registers and spills "
                    f"cannot be read", pytrace=False)

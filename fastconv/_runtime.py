"""Loads the compiled module and exposes run-time controls: threads, ISA, capabilities."""
from __future__ import annotations

import contextlib
import os
import warnings

# Kernels run in short bursts between Python calls. With libgomp's default wait policy the
# worker threads spin after each parallel region, stealing the core from the Python thread and
# from other processes; on a busy 2-core machine a LeNet-sized convolution measured 8.3 ms
# that way against 0.94 ms with sleeping workers (0.78 ms on one thread). The variable must
# be set before the OpenMP runtime loads with fastconv._C; an explicit user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fastconv import _C  # noqa: E402

ISAS = ("scalar", "avx2", "avx512")

_env_isa = os.environ.get("FASTCONV_ISA", "")
if _env_isa and _env_isa not in ISAS:
    warnings.warn(f"FASTCONV_ISA must be one of {ISAS}, got {_env_isa!r}; using {_C.active_isa()!r}",
                  RuntimeWarning, stacklevel=2)


def set_num_threads(n: int) -> None:
    """Threads used by the compiled kernels (OpenMP)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"num_threads must be an int, got {n!r}")
    _C.set_num_threads(n)


def get_num_threads() -> int:
    return _C.get_num_threads()


def set_isa(name: str) -> None:
    """Force the kernels of a lower ISA ('scalar', 'avx2', 'avx512'); see use_isa()."""
    if name not in ISAS:
        raise ValueError(f"isa must be one of {ISAS}, got {name!r}")
    _C.set_active_isa(name)


@contextlib.contextmanager
def use_isa(name: str):
    """Run a block with the kernels of one ISA, restoring the previous choice afterwards."""
    previous = _C.active_isa()
    set_isa(name)
    try:
        yield
    finally:
        _C.set_active_isa(previous)


def _cuda_info():
    try:
        from fastconv import cuda as fc_cuda
    except ImportError:
        return None
    return fc_cuda.device_info() if hasattr(fc_cuda, "device_info") else None


def capabilities() -> dict:
    """What this build and machine can do: ISA chosen and available, threads, CUDA."""
    return {
        "isa": _C.active_isa(),
        "detected_isa": _C.detected_isa(),
        "available_isas": list(_C.available_isas()),
        "gemm_kernel": _C.gemm_kernel_name("float32"),
        "threads": _C.get_num_threads(),
        "openmp": bool(_C.has_openmp),
        "cuda": _cuda_info(),
    }

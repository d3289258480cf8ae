"""Loads the compiled module and exposes run-time controls: threads, ISA, capabilities."""
from __future__ import annotations

import contextlib
import os
import warnings

# No environment edits here: the compiled kernels run on fastconv's own thread pool
# (csrc/common/thread_pool.cpp), so nothing needs setting before _C loads, and variables such
# as OMP_WAIT_POLICY would change torch's OpenMP runtime, which fastconv does not use.
from fastconv import _C
from fastconv._validate import check_int

ISAS = ("scalar", "avx2", "avx512")

_env_isa = os.environ.get("FASTCONV_ISA", "")
if _env_isa and _env_isa not in ISAS:
    warnings.warn(f"FASTCONV_ISA must be one of {ISAS}, got {_env_isa!r}; using {_C.active_isa()!r}",
                  RuntimeWarning, stacklevel=2)


def set_num_threads(n: int) -> None:
    """Threads used by the compiled kernels (fastconv's own pool; torch's and numpy's threads
    are not affected). Default: the CPUs this process may use, or FASTCONV_NUM_THREADS /
    OMP_NUM_THREADS when set. Safe to call from any thread, also while kernels run: a lower
    count applies to every thread at once; a higher one to the calling thread and to threads
    that have not run a kernel yet (a running kernel's thread count must never grow)."""
    _C.set_num_threads(check_int(n, "num_threads"))


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
        "thread_pool": dict(_C.thread_pool_info()),
        "cuda": _cuda_info(),
    }

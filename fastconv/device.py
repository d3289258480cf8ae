"""Where arrays live: the one module that asks.

is_cuda_array / device_of answer it (fastconv.backend.backend_of picks a backend by them);
check_device parses a device name; to_host / to_device / move are the only copies between
host and device. This module imports no other fastconv module, so everything may use it.
"""
from __future__ import annotations

import numpy as np


def _is_numba_device_array(a) -> bool:
    # Numba device arrays (and the CUDA simulator's FakeCUDAArray, which lacks
    # __cuda_array_interface__) mark themselves with a class attribute.
    return bool(getattr(type(a), "__cuda_ndarray__", False))


def is_cuda_array(a) -> bool:
    return not isinstance(a, np.ndarray) and (hasattr(a, "__cuda_array_interface__")
                                              or _is_numba_device_array(a))


def device_of(a):
    """'cuda' for a CUDA array, else 'cpu'."""
    return "cuda" if is_cuda_array(a) else "cpu"


def check_device(device):
    """'cpu' or 'cuda' ('cuda:0' and the like count as 'cuda')."""
    d = str(device).lower()
    if d.startswith("cuda"):
        return "cuda"
    if d == "cpu":
        return "cpu"
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")


def to_host(a):
    """a numpy array itself, or a host copy of a CUDA array or torch tensor."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "detach") and hasattr(a, "numpy"):  # torch tensor
        return a.detach().cpu().numpy()
    if hasattr(a, "copy_to_host"):  # numba device array
        return a.copy_to_host()
    if hasattr(a, "get"):  # cupy
        return a.get()
    return np.asarray(a)


def to_device(a):
    """A Numba device array holding a (CUDA arrays pass through unchanged; None stays None)."""
    if a is None or is_cuda_array(a):
        return a
    from numba import cuda  # lazily: numba is optional
    return cuda.to_device(np.ascontiguousarray(to_host(a)))


def move(a, device):
    """a on device ('cpu' or 'cuda'); None stays None."""
    if a is None:
        return None
    return to_host(a) if check_device(device) == "cpu" else to_device(a)

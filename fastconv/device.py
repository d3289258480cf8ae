"""Where arrays live: the one module that asks.

A backend is a module implementing every name in BACKEND_OPS with the same signature:
fastconv._cpu for numpy arrays, fastconv.cuda for arrays exposing ``__cuda_array_interface__``
(and the CUDA simulator's device arrays). ``backend_of(*arrays)`` picks it; functional, nn,
optim, losses and train call ops through it and never import a backend themselves. The rest
moves arrays between host and device: to_host / to_device / move are the only copies.
"""
from __future__ import annotations

import numpy as np

# The backend interface (tests/test_backend_interface.py checks both backends against it).
# Arguments arrive validated by fastconv.functional (or by the nn/optim caller); an op a
# backend cannot run raises TypeError naming it.
BACKEND_OPS = (
    "check_out", "choose_algorithm",
    "conv2d", "conv2d_input", "conv2d_weight",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
    "linear", "linear_backward", "bias_grad",
    "relu", "relu_backward", "epilogue", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
    "cross_entropy", "cross_entropy_backward", "mse_loss", "mse_backward",
    "dropout_mask_mul", "mul", "accumulate", "copy_into", "cast", "zeros_like",
    "sgd_step", "adam_step",
)


def _is_numba_device_array(a) -> bool:
    # Numba device arrays (and the CUDA simulator's FakeCUDAArray, which lacks
    # __cuda_array_interface__) mark themselves with a class attribute.
    return bool(getattr(type(a), "__cuda_ndarray__", False))


def is_cuda_array(a) -> bool:
    return not isinstance(a, np.ndarray) and (hasattr(a, "__cuda_array_interface__")
                                              or _is_numba_device_array(a))


def backend_of(*arrays):
    """fastconv._cpu when every array (None skipped) is a host array, fastconv.cuda when every
    one is a CUDA array; mixing them is a TypeError."""
    cuda = [is_cuda_array(a) for a in arrays if a is not None]
    if any(cuda):
        if not all(cuda):
            raise TypeError("arguments mix CUDA arrays and host (numpy) arrays; move them to one device")
        from fastconv import cuda as cuda_backend  # imported lazily: numba is optional
        return cuda_backend
    from fastconv import _cpu  # lazily: _cpu's imports reach back here through _validate
    return _cpu


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

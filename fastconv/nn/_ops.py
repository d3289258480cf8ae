"""The few array operations layers need that fastconv.functional does not provide.

numpy arrays are handled here; any other array (CUDA) is handed to the function of the same
name in fastconv.cuda, so the CUDA backend adds one function per name to support training
there. Keep this list short: bias_grad, accumulate, dropout_mask_mul, mul, softmax_backward,
copy_into, cast; to_host / to_device move arrays between host and device (the only copies).
"""
from __future__ import annotations

import numpy as np


def _cuda(name, a):
    from fastconv import cuda  # lazily: numba is optional
    fn = getattr(cuda, name, None)
    if fn is None:
        raise NotImplementedError(f"fastconv.cuda has no {name}(); needed for {type(a).__name__} arrays")
    return fn


def bias_grad(dy):
    """Sum of grad_output over every axis but 1: (N, K, H, W) -> (K,), or (N, K) -> (K,)."""
    if isinstance(dy, np.ndarray):
        if dy.ndim == 4:
            # sum the contiguous H*W axis first (one reduction, no temporary transpose)
            return dy.reshape(dy.shape[0], dy.shape[1], -1).sum(axis=2).sum(axis=0)
        return dy.sum(axis=0)
    return _cuda("bias_grad", dy)(dy)


def accumulate(acc, g):
    """acc + g, in place into acc when acc exists (parameter gradients accumulate like torch)."""
    if acc is None:
        return g
    if isinstance(acc, np.ndarray):
        acc += g
        return acc
    return _cuda("accumulate", acc)(acc, g)


def dropout_mask_mul(x, p, rng):
    """(x * mask / (1-p), mask / (1-p)) with mask ~ Bernoulli(1-p), drawn from rng."""
    if isinstance(x, np.ndarray):
        from fastconv import _cpu
        return _cpu.dropout_mask_mul(x, p, rng)
    return _cuda("dropout_mask_mul", x)(x, p, rng)


def mul(a, b):
    if isinstance(a, np.ndarray):
        return a * b
    return _cuda("mul", a)(a, b)


def softmax_backward(grad_output, output, dim):
    """d softmax: y * (g - sum(g * y, dim))."""
    if isinstance(output, np.ndarray):
        from fastconv import _cpu
        return _cpu.softmax_backward(grad_output, output, dim)
    return _cuda("softmax_backward", output)(grad_output, output, dim)


def to_host(a):
    """A numpy copy-free view (numpy) or a host copy (CUDA array, torch tensor)."""
    if isinstance(a, np.ndarray):
        return a
    if hasattr(a, "detach") and hasattr(a, "numpy"):  # torch tensor
        return a.detach().cpu().numpy()
    if hasattr(a, "copy_to_host"):  # numba device array
        return a.copy_to_host()
    if hasattr(a, "get"):  # cupy
        return a.get()
    return np.asarray(a)


def copy_into(dst, src):
    """Overwrite dst's contents with the host array src (dst keeps its device and identity)."""
    if isinstance(dst, np.ndarray):
        dst[...] = src
        return dst
    if hasattr(dst, "copy_to_device"):
        dst.copy_to_device(np.ascontiguousarray(src, dtype=np.dtype(dst.dtype)))
        return dst
    return _cuda("copy_into", dst)(dst, src)


def is_host(a):
    return isinstance(a, np.ndarray)


def cast(a, dtype):
    """a converted to dtype, on a's device (a itself when it already has that dtype)."""
    dtype = np.dtype(dtype)
    if np.dtype(a.dtype) == dtype:
        return a
    if isinstance(a, np.ndarray):
        return a.astype(dtype)
    return _cuda("cast", a)(a, dtype)


def to_device(a):
    """A Numba device array holding a (CUDA arrays pass through unchanged; None stays None)."""
    if a is None or not isinstance(a, np.ndarray) and (hasattr(a, "__cuda_array_interface__")
                                                      or getattr(type(a), "__cuda_ndarray__", False)):
        return a
    from numba import cuda  # lazily: numba is optional
    return cuda.to_device(np.ascontiguousarray(to_host(a)))


def move(a, device):
    """a on device ('cpu' or 'cuda'); None stays None."""
    if a is None:
        return None
    device = check_device(device)
    return to_host(a) if device == "cpu" else to_device(a)


def check_device(device):
    d = str(device).lower()
    if d.startswith("cuda"):
        return "cuda"
    if d == "cpu":
        return "cpu"
    raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")

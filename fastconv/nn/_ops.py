"""The few array operations layers need that fastconv.functional does not provide, each run by
the backend of its arrays (fastconv.backend.backend_of: _cpu or cuda implement them all).
Keep this list short: bias_grad, accumulate, dropout_mask_mul, mul, softmax_backward,
copy_into, cast. Where an array lives, and moving it, is fastconv.device's.
"""
from __future__ import annotations

import numpy as np

from fastconv.backend import backend_of


def bias_grad(dy):
    """Sum of grad_output over every axis but 1: (N, K, H, W) -> (K,), or (N, K) -> (K,)."""
    return backend_of(dy).bias_grad(dy)


def accumulate(acc, g):
    """acc + g, in place into acc when acc exists (parameter gradients accumulate like torch)."""
    return g if acc is None else backend_of(acc).accumulate(acc, g)


def dropout_mask_mul(x, p, rng):
    """(x * mask / (1-p), mask / (1-p)) with mask ~ Bernoulli(1-p), drawn from rng."""
    return backend_of(x).dropout_mask_mul(x, p, rng)


def mul(a, b):
    return backend_of(a, b).mul(a, b)


def softmax_backward(grad_output, output, dim):
    """d softmax: y * (g - sum(g * y, dim))."""
    return backend_of(grad_output, output).softmax_backward(grad_output, output, dim)


def copy_into(dst, src):
    """Overwrite dst's contents with src (dst keeps its device and identity)."""
    return backend_of(dst).copy_into(dst, src)


def cast(a, dtype):
    """a converted to dtype, on a's device (a itself when it already has that dtype)."""
    dtype = np.dtype(dtype)
    return a if np.dtype(a.dtype) == dtype else backend_of(a).cast(a, dtype)

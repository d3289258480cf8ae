"""Device kernels for training: the element-wise helpers fastconv.nn._ops hands to CUDA arrays
(in-place gradient accumulation, element-wise product, dtype cast) and dropout. The dense
gradients are in dense_backward.py, adaptive pooling in adaptive_pool.py, the optimizer
updates in optim.py.

Conventions as in elementwise.py: grid-stride loops over flattened C-contiguous arrays, lazy
compilation (no eager signatures), every kernel of an op on the stream of its inputs, small
blocks under the simulator (_device.launch_1d).

Dropout draws its mask on the device from a counter-based hash (lowbias32) of (seed, element
index); the seed is drawn from the layer's numpy Generator on the host (no device round
trip). The mask therefore differs from the CPU path's for the same generator state.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from fastconv.cuda import _device
from fastconv.cuda.elementwise import _flat, _launch, contiguous


# ---------------------------------------------------------------------------- element-wise

@cuda.jit
def _add_inplace(acc, g):
    for i in range(cuda.grid(1), acc.size, cuda.gridsize(1)):
        acc[i] += g[i]


@cuda.jit
def _mul(a, b, out):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        out[i] = a[i] * b[i]


@cuda.jit
def _cast(src, dst):
    for i in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        dst[i] = src[i]


def accumulate(acc, g, stream):
    """acc += g in place; returns acc (which must be C-contiguous: it is our own gradient)."""
    _device.check_pair(acc, g, ("accumulated gradient", "gradient"))
    if not _device.is_c_contiguous(acc):
        raise ValueError("the accumulated gradient must be C-contiguous")
    g = contiguous(g, stream)
    _launch(_add_inplace, acc.size, stream, _flat(acc), _flat(g))
    return acc


def mul(a, b, stream):
    _device.check_pair(a, b)
    a, b = contiguous(a, stream), contiguous(b, stream)
    out = _device.empty(a.shape, a.dtype, stream)
    _launch(_mul, a.size, stream, _flat(a), _flat(b), _flat(out))
    return out


def cast(a, dtype, stream):
    """A C-contiguous copy of a with dtype (float32 <-> float64)."""
    a = contiguous(a, stream)
    out = _device.empty(a.shape, dtype, stream)
    _launch(_cast, a.size, stream, _flat(a), _flat(out))
    return out


# ---------------------------------------------------------------------------- dropout

_M32 = np.uint64(0xFFFFFFFF)
_S15, _S16 = np.uint64(15), np.uint64(16)
_S32 = np.uint64(32)
_H1, _H2 = np.uint64(0x7FEB352D), np.uint64(0x846CA68B)


@cuda.jit(device=True, inline=True)
def _hash32(x):
    # lowbias32 on a 32-bit value held in a uint64 (products of two 32-bit values cannot
    # overflow 64 bits, so the masks keep it exact on the simulator too)
    x ^= x >> _S16
    x = (x * _H1) & _M32
    x ^= x >> _S15
    x = (x * _H2) & _M32
    x ^= x >> _S16
    return x


@cuda.jit
def _dropout(x, y, mask, seed_lo, seed_hi, p, scale):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        k = np.uint64(i)
        h = _hash32(_hash32((k & _M32) ^ seed_lo) ^ (k >> _S32) ^ seed_hi)
        u = np.float64(h) * 2.3283064365386963e-10      # / 2**32, in [0, 1)
        m = scale if u >= p else 0.0
        mask[i] = m
        y[i] = x[i] * m


def dropout_mask_mul(x, p, rng, stream):
    """(x * mask, mask) with mask = Bernoulli(1-p) / (1-p), drawn on the device."""
    x = contiguous(x, stream)
    seed = int(rng.integers(2**63))
    y = _device.empty(x.shape, x.dtype, stream)
    mask = _device.empty(x.shape, x.dtype, stream)
    _launch(_dropout, x.size, stream, _flat(x), _flat(y), _flat(mask), np.uint64(seed & 0xFFFFFFFF),
            np.uint64((seed >> 32) & 0xFFFFFFFF), float(p), float(1.0 / (1.0 - p)))
    return y, mask

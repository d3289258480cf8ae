"""Device kernels for the dense side of training: the bias gradient (sum over every axis but 1),
MSE loss and its gradient, and softmax backward. Reductions are one block per output with a
shared-memory tree in a fixed order: deterministic, no atomics.
Conventions as in elementwise.py: grid-stride loops over flattened C-contiguous arrays, lazy
compilation, every kernel of an op on the stream of its inputs (see fastconv.cuda.training).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from fastconv.cuda import _device
from fastconv.cuda._reduce import RED_THREADS, block_tree_sum, red_threads
from fastconv.cuda.elementwise import _flat, _launch, contiguous


# ---------------------------------------------------------------------------- reductions

@cuda.jit
def _bias_grad(dy, out):
    # dy viewed as (N, K, L): block k sums dy[:, k, :] (strided partials, then a fixed tree)
    nthreads = cuda.blockDim.x
    buf = cuda.shared.array(RED_THREADS, np.float64)
    k = cuda.blockIdx.x
    t = cuda.threadIdx.x
    n_, l_ = dy.shape[0], dy.shape[2]
    acc = 0.0
    for j in range(t, n_ * l_, nthreads):
        n = j // l_
        acc += dy[n, k, j - n * l_]
    buf[t] = acc
    block_tree_sum(buf, t, nthreads)
    if t == 0:
        out[k] = buf[0]


def bias_grad(dy, stream):
    """(N, K, H, W) or (N, K) -> (K,): the sum over every axis but 1."""
    if dy.ndim not in (2, 4):
        raise ValueError(f"bias_grad takes (N, K) or (N, K, H, W), got shape {tuple(dy.shape)}")
    dy = contiguous(dy, stream)
    shape = tuple(dy.shape)
    l_ = shape[2] * shape[3] if dy.ndim == 4 else 1
    out = _device.empty((shape[1],), dy.dtype, stream)
    if shape[1]:
        _bias_grad[shape[1], red_threads(), stream](dy.reshape((shape[0], shape[1], l_)), out)
    return out


@cuda.jit
def _sq_diff_sum(a, b, diff, out, scale):
    # one block: diff = a - b, out[0] = scale * sum(diff^2)
    nthreads = cuda.blockDim.x
    buf = cuda.shared.array(RED_THREADS, np.float64)
    t = cuda.threadIdx.x
    acc = 0.0
    for i in range(t, a.size, nthreads):
        d = a[i] - b[i]
        diff[i] = d
        acc += np.float64(d) * d
    buf[t] = acc
    block_tree_sum(buf, t, nthreads)
    if t == 0:
        out[0] = buf[0] * scale


@cuda.jit
def _scale(a, out, s):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        out[i] = a[i] * s


def mse_loss(input, target, reduction, stream):
    """(loss as a 0-d device array, diff = input - target) for MSELoss."""
    _device.check_pair(input, target, ("input", "target"))
    input, target = contiguous(input, stream), contiguous(target, stream)
    diff = _device.empty(input.shape, input.dtype, stream)
    out = _device.empty((1,), input.dtype, stream)
    scale = 1.0 / max(input.size, 1) if reduction == "mean" else 1.0
    _sq_diff_sum[1, red_threads(), stream](_flat(input), _flat(target), _flat(diff), out, scale)
    return out.reshape(()), diff


def mse_backward(diff, reduction, stream):
    out = _device.empty(diff.shape, diff.dtype, stream)
    s = 2.0 / max(diff.size, 1) if reduction == "mean" else 2.0
    _launch(_scale, diff.size, stream, _flat(diff), _flat(out), s)
    return out


# ---------------------------------------------------------------------------- softmax backward

@cuda.jit
def _softmax_backward_lines(g, y, dx, inner):
    # (outer, D, inner) views: one thread per line, dx = y * (g - sum(g * y))
    outer, d = y.shape[0], y.shape[1]
    t = cuda.grid(1)
    if t >= outer * inner:
        return
    o = t // inner
    i = t - o * inner
    s = 0.0
    for j in range(d):
        s += g[o, j, i] * y[o, j, i]
    for j in range(d):
        dx[o, j, i] = y[o, j, i] * (g[o, j, i] - s)


def softmax_backward(grad_output, output, dim, stream):
    _device.check_pair(grad_output, output, ("grad_output", "output"))
    g, y = contiguous(grad_output, stream), contiguous(output, stream)
    shape = tuple(y.shape)
    dim = dim % len(shape)
    d = shape[dim]
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    dx = _device.empty(shape, y.dtype, stream)
    if outer * inner:
        blocks, threads = _device.launch_1d(outer * inner)
        v = (outer, d, inner)
        _softmax_backward_lines[blocks, threads, stream](g.reshape(v), y.reshape(v), dx.reshape(v), inner)
    return dx

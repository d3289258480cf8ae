"""Dense ops: linear (+ backward) on the tiled GEMM of _igemm, softmax / log_softmax over any
dim, and cross-entropy (+ backward) from logits.

    linear            y[m, n]  = sum_k x[m, k] w[n, k] + b[n]     x (M, in), w (out, in)
    linear_backward   gx[m, n] = sum_k dy[m, k] w[k, n]            dy (M, out)
                      gw[m, n] = sum_k dy[k, m] x[k, n]            (reduction over the batch)
                      gb[n]    = sum_k dy[k, n]                    one thread per column, fixed order
Softmax views the array as (outer, D, inner) around ``dim``: one thread per (outer, inner)
line makes three passes (max, sum of exp, write), which is right for classifier widths.
The loss reduction ('mean'/'sum') is one block summing per-row losses in shared memory:
deterministic, no atomics.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda

from fastconv.cuda import _device, _igemm
from fastconv.cuda._reduce import block_tree_sum
from fastconv.cuda.elementwise import contiguous


@functools.lru_cache(maxsize=None)
def _loaders():
    @cuda.jit(device=True, inline=True)
    def row(a, p, b, m, k):          # a[m, k]
        return a[m, k]

    @cuda.jit(device=True, inline=True)
    def col(a, p, b, k, n):          # a[k, n] as the B operand
        return a[k, n]

    @cuda.jit(device=True, inline=True)
    def trans_b(a, p, b, k, n):      # a[n, k] as the B operand (x @ w.T)
        return a[n, k]

    @cuda.jit(device=True, inline=True)
    def trans_a(a, p, b, m, k):      # a[k, m] as the A operand (dy.T @ x)
        return a[k, m]

    @cuda.jit(device=True, inline=True)
    def store_bias(c, bias, p, b, split, m, n, v):
        if bias.shape[0] > 0:
            v += bias[n]
        c[m, n] = v

    return {"linear": (row, trans_b, store_bias), "grad_input": (row, col, store_bias),
            "grad_weight": (trans_a, col, store_bias)}


@functools.lru_cache(maxsize=None)
def _no_bias(dtype):
    return cuda.device_array(0, dtype=np.dtype(dtype))


def _gemm(kind, A, B, M, N, K, bias, stream):
    C = _device.empty((M, N), A.dtype, stream)
    aux = bias if bias is not None else _no_bias(A.dtype.str)
    _igemm.launch(_loaders()[kind], A.dtype, A, B, C, aux, M, N, K, 1, (), stream)
    return C


def linear(x, w, b, stream):
    shape = tuple(x.shape)  # a plain tuple: the simulator's shape object rejects negative indices
    lead = shape[:-1]
    m = int(np.prod(lead, dtype=np.int64)) if lead else 1
    x2 = x.reshape((m, shape[-1]))
    y = _gemm("linear", x2, w, m, w.shape[0], w.shape[1], b, stream)
    return y.reshape(lead + (w.shape[0],))


@cuda.jit
def _col_sum(a, out):
    j = cuda.grid(1)
    if j < a.shape[1]:
        acc = a[0, j]
        for i in range(1, a.shape[0]):
            acc += a[i, j]
        out[j] = acc


def linear_backward(x, w, dy, needs_bias, stream):
    if x.ndim != 2 or dy.ndim != 2:
        raise ValueError(f"linear_backward takes 2-D input and grad_output, got {tuple(x.shape)} and {tuple(dy.shape)}")
    n, fin = x.shape
    fout = w.shape[0]
    if tuple(dy.shape) != (n, fout) or tuple(w.shape) != (fout, fin):
        raise ValueError(f"shapes do not match: input {tuple(x.shape)}, weight {tuple(w.shape)}, "
                         f"grad_output {tuple(dy.shape)}")
    gx = _gemm("grad_input", dy, w, n, fin, fout, None, stream)
    gw = _gemm("grad_weight", dy, x, fout, fin, n, None, stream)
    gb = None
    if needs_bias:
        gb = _device.empty((fout,), dy.dtype, stream)
        blocks, threads = _device.launch_1d(fout)
        _col_sum[blocks, threads, stream](dy, gb)
    return gx, gw, gb


# ---------------------------------------------------------------------------- softmax

@cuda.jit
def _softmax_lines(x, y, inner, log):
    # x, y viewed as (outer, D, inner)
    outer, d = x.shape[0], x.shape[1]
    t = cuda.grid(1)
    if t >= outer * inner:
        return
    o = t // inner
    i = t - o * inner
    m = x[o, 0, i]
    for j in range(1, d):
        v = x[o, j, i]
        if v > m or math.isnan(v):
            m = v
    s = 0.0
    for j in range(d):
        s += math.exp(x[o, j, i] - m)
    if log:
        ls = math.log(s)
        for j in range(d):
            y[o, j, i] = x[o, j, i] - m - ls
    else:
        for j in range(d):
            y[o, j, i] = math.exp(x[o, j, i] - m) / s


def _softmax(x, dim, log, stream):
    x = contiguous(x, stream)
    dim = dim % x.ndim
    d = x.shape[dim]
    shape = tuple(x.shape)
    outer = int(np.prod(shape[:dim], dtype=np.int64))
    inner = int(np.prod(shape[dim + 1:], dtype=np.int64))
    y = _device.empty(x.shape, x.dtype, stream)
    blocks, threads = _device.launch_1d(outer * inner)
    _softmax_lines[blocks, threads, stream](x.reshape((outer, d, inner)), y.reshape((outer, d, inner)),
                                            inner, bool(log))
    return y


def softmax(x, dim, stream):
    return _softmax(x, dim, False, stream)


def log_softmax(x, dim, stream):
    return _softmax(x, dim, True, stream)


# ---------------------------------------------------------------------------- cross-entropy

@cuda.jit(device=True, inline=True)
def _row_lse(x, i):
    # (max, log-sum-exp) of row i; NaN propagates through both
    k = x.shape[1]
    m = x[i, 0]
    for j in range(1, k):
        v = x[i, j]
        if v > m or math.isnan(v):
            m = v
    s = 0.0
    for j in range(k):
        s += math.exp(x[i, j] - m)
    return m, m + math.log(s)


@cuda.jit
def _ce_rows(x, target, smoothing, loss):
    i = cuda.grid(1)
    n, k = x.shape
    if i >= n:
        return
    t = target[i]
    m, lse = _row_lse(x, i)
    if t < 0 or t >= k:
        loss[i] = math.nan  # an out-of-range class on the device: NaN rather than a wild read
        return
    nll = lse - x[i, t]
    if smoothing != 0:
        mean = 0.0
        for j in range(k):
            mean += x[i, j]
        mean = mean / k - lse          # mean log-probability of the row
        nll = (1 - smoothing) * nll - smoothing * mean
    loss[i] = nll


_RED_THREADS = 128


@cuda.jit
def _sum_block(v, out, scale):
    # one block: strided partial sums per thread, then a shared-memory tree (fixed order)
    buf = cuda.shared.array(_RED_THREADS, np.float64)
    t = cuda.threadIdx.x
    acc = 0.0
    for i in range(t, v.shape[0], _RED_THREADS):
        acc += v[i]
    buf[t] = acc
    block_tree_sum(buf, t, _RED_THREADS)
    if t == 0:
        out[0] = buf[0] * scale


def _rows_loss(x, target, label_smoothing, stream):
    n = x.shape[0]
    loss = _device.empty((n,), x.dtype, stream)
    blocks, threads = _device.launch_1d(n)
    _ce_rows[blocks, threads, stream](x, target, float(label_smoothing), loss)
    return loss


def cross_entropy(x, target, reduction, label_smoothing, stream):
    x = contiguous(x, stream)
    loss = _rows_loss(x, target, label_smoothing, stream)
    if reduction == "none":
        return loss
    out = _device.empty((1,), x.dtype, stream)
    scale = 1.0 / x.shape[0] if reduction == "mean" else 1.0
    _sum_block[1, _RED_THREADS, stream](loss, out, scale)
    return out.reshape(())


@cuda.jit
def _ce_grad(x, target, smoothing, scale, g):
    i = cuda.grid(1)
    n, k = x.shape
    if i >= n:
        return
    t = target[i]
    m, lse = _row_lse(x, i)
    for j in range(k):
        onehot = (1 - smoothing) * (1.0 if j == t else 0.0) + smoothing / k
        g[i, j] = (math.exp(x[i, j] - lse) - onehot) * scale


def cross_entropy_backward(x, target, reduction, label_smoothing, stream):
    x = contiguous(x, stream)
    g = _device.empty(x.shape, x.dtype, stream)
    scale = 1.0 / x.shape[0] if reduction == "mean" else 1.0
    blocks, threads = _device.launch_1d(x.shape[0])
    _ce_grad[blocks, threads, stream](x, target, float(label_smoothing), scale, g)
    return g

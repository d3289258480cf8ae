"""Device kernels for training: the helpers fastconv.nn._ops hands to CUDA arrays (bias
gradient, in-place gradient accumulation, dropout, element-wise product, softmax backward,
copy into an existing array), a dtype cast, MSE loss, adaptive average pooling with torch's
uneven bins, and the fused optimizer updates (SGD with momentum / Nesterov / weight decay,
Adam with bias correction; torch.optim semantics).

Conventions as in elementwise.py: grid-stride loops over flattened C-contiguous arrays, lazy
compilation (no eager signatures), every kernel of an op on the stream of its inputs, small
blocks under the simulator (_device.launch_1d). Reductions (bias gradient, MSE sum) are one
block per output with a shared-memory tree in a fixed order: deterministic, no atomics.
Optimizer updates run in place on the parameter and its state buffers: one kernel per
parameter per step, no allocation after the first step and no host synchronisation.

Dropout draws its mask on the device from a counter-based hash (lowbias32) of (seed, element
index); the seed is drawn from the layer's numpy Generator on the host (no device round
trip). The mask therefore differs from the CPU path's for the same generator state.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from fastconv.cuda import _device
from fastconv.cuda._reduce import block_tree_sum
from fastconv.cuda.elementwise import _flat, _launch

_RED_THREADS = 128          # reduction block (a power of two); 32 under the simulator
_RED_THREADS_SIM = 32


def _red_threads():
    return _RED_THREADS_SIM if _device.SIMULATOR else _RED_THREADS


def _check_pair(a, b, what=("a", "b")):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{what[0]} {tuple(a.shape)} and {what[1]} {tuple(b.shape)} must have the same shape")
    if np.dtype(a.dtype) != np.dtype(b.dtype):
        raise TypeError(f"{what[0]} has dtype {a.dtype} but {what[1]} has dtype {b.dtype}; they must match")


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
    _check_pair(acc, g, ("accumulated gradient", "gradient"))
    if not _device.is_c_contiguous(acc):
        raise ValueError("the accumulated gradient must be C-contiguous")
    g = _device.contiguous(g, stream)
    _launch(_add_inplace, acc.size, stream, _flat(acc), _flat(g))
    return acc


def mul(a, b, stream):
    _check_pair(a, b)
    a, b = _device.contiguous(a, stream), _device.contiguous(b, stream)
    out = _device.empty(a.shape, a.dtype, stream)
    _launch(_mul, a.size, stream, _flat(a), _flat(b), _flat(out))
    return out


def cast(a, dtype, stream):
    """A C-contiguous copy of a with dtype (float32 <-> float64)."""
    a = _device.contiguous(a, stream)
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
    x = _device.contiguous(x, stream)
    seed = int(rng.integers(2**63))
    y = _device.empty(x.shape, x.dtype, stream)
    mask = _device.empty(x.shape, x.dtype, stream)
    _launch(_dropout, x.size, stream, _flat(x), _flat(y), _flat(mask), np.uint64(seed & 0xFFFFFFFF),
            np.uint64((seed >> 32) & 0xFFFFFFFF), float(p), float(1.0 / (1.0 - p)))
    return y, mask


# ---------------------------------------------------------------------------- reductions

@cuda.jit
def _bias_grad(dy, out):
    # dy viewed as (N, K, L): block k sums dy[:, k, :] (strided partials, then a fixed tree)
    nthreads = cuda.blockDim.x
    buf = cuda.shared.array(_RED_THREADS, np.float64)
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
    dy = _device.contiguous(dy, stream)
    shape = tuple(dy.shape)
    l_ = shape[2] * shape[3] if dy.ndim == 4 else 1
    out = _device.empty((shape[1],), dy.dtype, stream)
    if shape[1]:
        _bias_grad[shape[1], _red_threads(), stream](dy.reshape((shape[0], shape[1], l_)), out)
    return out


@cuda.jit
def _sq_diff_sum(a, b, diff, out, scale):
    # one block: diff = a - b, out[0] = scale * sum(diff^2)
    nthreads = cuda.blockDim.x
    buf = cuda.shared.array(_RED_THREADS, np.float64)
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
    _check_pair(input, target, ("input", "target"))
    input, target = _device.contiguous(input, stream), _device.contiguous(target, stream)
    diff = _device.empty(input.shape, input.dtype, stream)
    out = _device.empty((1,), input.dtype, stream)
    scale = 1.0 / max(input.size, 1) if reduction == "mean" else 1.0
    _sq_diff_sum[1, _red_threads(), stream](_flat(input), _flat(target), _flat(diff), out, scale)
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
    _check_pair(grad_output, output, ("grad_output", "output"))
    g, y = _device.contiguous(grad_output, stream), _device.contiguous(output, stream)
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


# ---------------------------------------------------------------------------- adaptive avg pool

@cuda.jit
def _adaptive_avg(x, y):
    # x (NC, H, W) -> y (NC, oh, ow) with torch's bins [floor(i*H/oh), ceil((i+1)*H/oh))
    nc, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for t in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        c = t // (oh * ow)
        r = t - c * (oh * ow)
        i = r // ow
        j = r - i * ow
        h0, h1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        w0, w1 = (j * w) // ow, -((-(j + 1) * w) // ow)
        acc = 0.0
        for a in range(h0, h1):
            for b in range(w0, w1):
                acc += x[c, a, b]
        y[c, i, j] = acc / ((h1 - h0) * (w1 - w0))


@cuda.jit
def _adaptive_avg_backward(dy, dx):
    # one thread per input element: the sum over the (possibly overlapping) bins holding it
    nc, h, w = dx.shape
    oh, ow = dy.shape[1], dy.shape[2]
    for t in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        c = t // (h * w)
        r = t - c * (h * w)
        a = r // w
        b = r - a * w
        acc = 0.0
        for i in range(oh):
            h0, h1 = (i * h) // oh, -((-(i + 1) * h) // oh)
            if h0 <= a < h1:
                for j in range(ow):
                    w0, w1 = (j * w) // ow, -((-(j + 1) * w) // ow)
                    if w0 <= b < w1:
                        acc += dy[c, i, j] / ((h1 - h0) * (w1 - w0))
        dx[c, a, b] = acc


def adaptive_avg_pool2d(x, output_size, stream):
    x = _device.contiguous(x, stream)
    n, c, h, w = (int(v) for v in x.shape)
    oh, ow = output_size
    y = _device.empty((n, c, oh, ow), x.dtype, stream)
    _launch(_adaptive_avg, n * c * oh * ow, stream, x.reshape((n * c, h, w)), y.reshape((n * c, oh, ow)))
    return y


def adaptive_avg_pool2d_backward(dy, input_shape, stream):
    dy = _device.contiguous(dy, stream)
    n, c, h, w = (int(v) for v in input_shape)
    oh, ow = int(dy.shape[2]), int(dy.shape[3])
    dx = _device.empty((n, c, h, w), dy.dtype, stream)
    _launch(_adaptive_avg_backward, n * c * h * w, stream, dy.reshape((n * c, oh, ow)), dx.reshape((n * c, h, w)))
    return dx


# ---------------------------------------------------------------------------- optimizers

@cuda.jit
def _sgd(p, grad, buf, lr, mu, dampening, wd, nesterov, first):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        g = grad[i] + wd * p[i]
        if mu != 0:
            if first:
                b = g
            else:
                b = mu * buf[i] + (1 - dampening) * g
            buf[i] = b
            g = g + mu * b if nesterov else b
        p[i] = p[i] - lr * g


def sgd_step(p, grad, buf, lr, momentum, dampening, weight_decay, nesterov, first, stream):
    """One fused torch.optim.SGD update of p in place (buf: the momentum buffer, updated in
    place; ignored when momentum is 0; first: buf = g as torch does on the first step)."""
    _check_pair(p, grad, ("parameter", "gradient"))
    grad = _device.contiguous(grad, stream)
    b = p if buf is None else buf
    _launch(_sgd, p.size, stream, _flat(p), _flat(grad), _flat(b), float(lr), float(momentum),
            float(dampening), float(weight_decay), bool(nesterov), bool(first))


@cuda.jit
def _adam(p, grad, m, v, lr_c1, b1, b2, inv_sqrt_c2, eps, wd):
    for i in range(cuda.grid(1), p.size, cuda.gridsize(1)):
        g = grad[i] + wd * p[i]
        mi = b1 * m[i] + (1 - b1) * g
        vi = b2 * v[i] + (1 - b2) * (g * g)
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - lr_c1 * mi / (math.sqrt(vi) * inv_sqrt_c2 + eps)


def adam_step(p, grad, m, v, lr, b1, b2, c1, c2, eps, weight_decay, stream):
    """One fused torch.optim.Adam update (m, v updated in place; c1, c2 the bias corrections)."""
    _check_pair(p, grad, ("parameter", "gradient"))
    grad = _device.contiguous(grad, stream)
    _launch(_adam, p.size, stream, _flat(p), _flat(grad), _flat(m), _flat(v), float(lr / c1), float(b1),
            float(b2), float(1.0 / math.sqrt(c2)), float(eps), float(weight_decay))

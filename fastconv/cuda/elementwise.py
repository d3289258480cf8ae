"""Element-wise kernels: activations and their gradients, fill (zeros), strided copy (contiguous).

One thread per element over the flattened (C-contiguous) arrays, grid-stride loops so any
size runs with a bounded grid. Activation gradients take the forward OUTPUT, like the
functional API: relu'(y) = y > 0, sigmoid'(y) = y(1-y), tanh'(y) = 1-y^2.
"""
from __future__ import annotations

import math

from numba import cuda

from fastconv.cuda import _device


def _flat(d):
    return d.reshape(d.size)


def _launch(kernel, n, stream, *args):
    blocks, threads = _device.launch_1d(n)
    kernel[min(blocks, 65535), threads, stream](*args)


@cuda.jit
def _fill(out, value):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = value


def fill(out, value, stream):
    f = _flat(out)
    _launch(_fill, f.size, stream, f, f.dtype.type(value))


@cuda.jit
def _relu(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        # v > 0 is False for NaN, so test the negative side: NaN propagates as in torch.relu
        y[i] = 0 if v <= 0 else v


@cuda.jit
def _relu_backward(dy, y, dx):
    for i in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
        g = dy[i]
        dx[i] = g if y[i] > 0 else 0


@cuda.jit
def _sigmoid(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        v = x[i]
        # split by sign so exp never overflows
        if v >= 0:
            y[i] = 1 / (1 + math.exp(-v))
        else:
            e = math.exp(v)
            y[i] = e / (1 + e)


@cuda.jit
def _sigmoid_backward(dy, y, dx):
    for i in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
        s = y[i]
        dx[i] = dy[i] * s * (1 - s)


@cuda.jit
def _tanh(x, y):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        y[i] = math.tanh(x[i])


@cuda.jit
def _tanh_backward(dy, y, dx):
    for i in range(cuda.grid(1), dy.size, cuda.gridsize(1)):
        t = y[i]
        dx[i] = dy[i] * (1 - t * t)


def unary(kernel, x, stream):
    x = contiguous(x, stream)
    y = _device.empty(x.shape, x.dtype, stream)
    _launch(kernel, x.size, stream, _flat(x), _flat(y))
    return y


def binary(kernel, dy, y, stream):
    if tuple(dy.shape) != tuple(y.shape):
        raise ValueError(f"grad_output {tuple(dy.shape)} and output {tuple(y.shape)} must have the same shape")
    if dy.dtype != y.dtype:
        raise TypeError(f"grad_output has dtype {dy.dtype} but output has dtype {y.dtype}; they must match")
    dy = contiguous(dy, stream)
    y = contiguous(y, stream)
    dx = _device.empty(dy.shape, dy.dtype, stream)
    _launch(kernel, dy.size, stream, _flat(dy), _flat(y), _flat(dx))
    return dx


KERNELS = {"relu": _relu, "sigmoid": _sigmoid, "tanh": _tanh,
           "relu_backward": _relu_backward, "sigmoid_backward": _sigmoid_backward,
           "tanh_backward": _tanh_backward}


# ---------------------------------------------------------------------------- fused epilogue

# act codes: 0 none, 1 relu, 2 clamp(lo, hi), 3 silu (as csrc/elementwise/epilogue.cpp)
@cuda.jit
def _epilogue(x, scale, bias, residual, y, channels, inner, flags, act, lo, hi):
    """y = act(x * scale[c] + bias[c] (+ residual)); flags: bit 0 scale, 1 bias, 2 residual,
    3 residual after the activation. Unused arrays are one-element placeholders."""
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        c = (i // inner) % channels
        v = x[i]
        if flags & 1:
            v = v * scale[c]
        if flags & 2:
            v = v + bias[c]
        if (flags & 4) and not (flags & 8):
            v = v + residual[i]
        if act == 1:
            v = 0 if v <= 0 else v  # NaN propagates, as torch.relu
        elif act == 2:
            v = lo if v < lo else (hi if v > hi else v)
        elif act == 3:
            v = v / (1 + math.exp(-v))
        if flags & 8:
            v = v + residual[i]
        y[i] = v


_EPILOGUE_CODES = {None: 0, "relu": 1, "clamp": 2, "silu": 3}


def epilogue(x, scale, bias, residual, act, residual_after_act, bounds, out, stream):
    """One pass of _epilogue over contiguous arrays; out may be x."""
    placeholder = _device.empty((1,), x.dtype, stream)
    flags = ((scale is not None) | (bias is not None) << 1 | (residual is not None) << 2
             | (residual is not None and residual_after_act) << 3)
    y = out if out is not None else _device.empty(x.shape, x.dtype, stream)
    inner = 1
    for d in x.shape[2:]:
        inner *= d
    lo, hi = bounds if bounds is not None else (0.0, 0.0)
    if x.size:
        _launch(_epilogue, x.size, stream, _flat(x), placeholder if scale is None else scale,
                placeholder if bias is None else bias, placeholder if residual is None else _flat(residual),
                _flat(y), x.shape[1], inner, flags, _EPILOGUE_CODES[act], x.dtype.type(lo), x.dtype.type(hi))
    return y


# ---------------------------------------------------------------------------- strided copy

@cuda.jit
def _copy1(src, dst):
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        dst[i] = src[i]


@cuda.jit
def _copy2(src, dst):
    n1 = dst.shape[1]
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        a = i // n1
        dst[a, i - a * n1] = src[a, i - a * n1]


@cuda.jit
def _copy3(src, dst):
    n1, n2 = dst.shape[1], dst.shape[2]
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        a = i // (n1 * n2)
        r = i - a * (n1 * n2)
        b = r // n2
        dst[a, b, r - b * n2] = src[a, b, r - b * n2]


@cuda.jit
def _copy4(src, dst):
    n1, n2, n3 = dst.shape[1], dst.shape[2], dst.shape[3]
    for i in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        a = i // (n1 * n2 * n3)
        r = i - a * (n1 * n2 * n3)
        b = r // (n2 * n3)
        r = r - b * (n2 * n3)
        c = r // n3
        dst[a, b, c, r - c * n3] = src[a, b, c, r - c * n3]


_COPY = {1: _copy1, 2: _copy2, 3: _copy3, 4: _copy4}


def copy_strided(src, dst, stream):
    """dst (C-contiguous) = src (any strides), for 1- to 4-D arrays."""
    if src.ndim not in _COPY:
        raise ValueError(f"non-contiguous CUDA arrays of {src.ndim} dimensions are not supported; "
                         "pass a contiguous array")
    _launch(_COPY[src.ndim], dst.size, stream, src, dst)


def zeros(shape, dtype, stream):
    out = _device.empty(shape, dtype, stream)
    fill(out, 0.0, stream)
    return out


def contiguous(d, stream):
    """``d`` itself when C-contiguous, else a C-contiguous device copy (on the device)."""
    if _device.is_c_contiguous(d):
        return d
    out = _device.empty(d.shape, d.dtype, stream)
    copy_strided(d, out, stream)
    return out

"""The CPU backend: numpy arrays in, compiled kernels (fastconv._C) run, numpy arrays out.
Arguments arrive validated and normalised by fastconv.functional."""
from __future__ import annotations

import numpy as np

from fastconv import _C

ALGORITHMS = ("auto", "direct")


def choose_algorithm(requested, in_shape, w_shape, geometry):
    """The convolution algorithm to run for this shape."""
    if requested not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {requested!r}")
    return "direct"


def _pad_extra(x, extra):
    if extra == (0, 0):
        return x
    return np.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))


def conv2d(x, w, bias, g, algorithm, out):
    x = np.ascontiguousarray(_pad_extra(x, g.extra_pad))
    w = np.ascontiguousarray(w)
    bias = None if bias is None else np.ascontiguousarray(bias)
    y = out if out is not None else np.empty((x.shape[0], w.shape[0]) + g.out_hw, x.dtype)
    choose_algorithm(algorithm, x.shape, w.shape, g)
    _C.conv2d_direct(x, w, bias, y, g.stride, g.padding, g.dilation, g.groups)
    return y


def conv2d_input(input_shape, w, dy, g, algorithm, out):
    n, c, h, wd = input_shape
    padded = (n, c, h + g.extra_pad[0], wd + g.extra_pad[1])
    w = np.ascontiguousarray(w)
    dy = np.ascontiguousarray(dy)
    direct_out = out if (out is not None and padded == tuple(input_shape)) else None
    dx = direct_out if direct_out is not None else np.empty(padded, dy.dtype)
    choose_algorithm(algorithm, padded, w.shape, g)
    _C.conv2d_direct_input_grad(dy, w, dx, g.stride, g.padding, g.dilation, g.groups)
    if padded != tuple(input_shape):
        dx = dx[:, :, :h, :wd]
        if out is not None:
            out[...] = dx
            return out
        return np.ascontiguousarray(dx)
    return dx


def conv2d_weight(x, weight_shape, dy, g, out):
    x = np.ascontiguousarray(_pad_extra(x, g.extra_pad))
    dy = np.ascontiguousarray(dy)
    dw = out if out is not None else np.empty(weight_shape, x.dtype)
    _C.conv2d_direct_weight_grad(x, dy, dw, g.stride, g.padding, g.dilation, g.groups)
    return dw


def max_pool2d(x, g, out):
    x = np.ascontiguousarray(x)
    shape = x.shape[:2] + g.out_hw
    y = out if out is not None else np.empty(shape, x.dtype)
    idx = np.empty(shape, np.int64)
    _C.max_pool2d(x, y, idx, g.kernel, g.stride, g.padding, g.dilation)
    return y, idx


def max_pool2d_backward(dy, indices, input_shape, out):
    dy = np.ascontiguousarray(dy)
    indices = np.ascontiguousarray(indices)
    dx = out if out is not None else np.empty(input_shape, dy.dtype)
    _C.max_pool2d_backward(dy, indices, dx)
    return dx


def avg_pool2d(x, g, count_include_pad, divisor_override, out):
    x = np.ascontiguousarray(x)
    y = out if out is not None else np.empty(x.shape[:2] + g.out_hw, x.dtype)
    _C.avg_pool2d(x, y, g.kernel, g.stride, g.padding, bool(count_include_pad), int(divisor_override or 0))
    return y


def avg_pool2d_backward(dy, input_shape, g, count_include_pad, divisor_override, out):
    dy = np.ascontiguousarray(dy)
    dx = out if out is not None else np.empty(input_shape, dy.dtype)
    _C.avg_pool2d_backward(dy, dx, g.kernel, g.stride, g.padding, bool(count_include_pad),
                           int(divisor_override or 0))
    return dx

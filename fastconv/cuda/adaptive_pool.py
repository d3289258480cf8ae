"""Adaptive average pooling on the device with torch's uneven bins, and its gradient.
Conventions as in elementwise.py: grid-stride loops over flattened C-contiguous arrays, lazy
compilation, every kernel of an op on the stream of its inputs (see fastconv.cuda.training).
"""
from __future__ import annotations

from numba import cuda

from fastconv.cuda import _device
from fastconv.cuda.elementwise import _launch, contiguous


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
    x = contiguous(x, stream)
    n, c, h, w = (int(v) for v in x.shape)
    oh, ow = output_size
    y = _device.empty((n, c, oh, ow), x.dtype, stream)
    _launch(_adaptive_avg, n * c * oh * ow, stream, x.reshape((n * c, h, w)), y.reshape((n * c, oh, ow)))
    return y


def adaptive_avg_pool2d_backward(dy, input_shape, stream):
    dy = contiguous(dy, stream)
    n, c, h, w = (int(v) for v in input_shape)
    oh, ow = int(dy.shape[2]), int(dy.shape[3])
    dx = _device.empty((n, c, h, w), dy.dtype, stream)
    _launch(_adaptive_avg_backward, n * c * h * w, stream, dy.reshape((n * c, oh, ow)), dx.reshape((n * c, h, w)))
    return dx

"""Max and average pooling, forward and backward, PyTorch semantics.

Forward: one thread per output element. Max pool keeps the running maximum in row-major
window order, replacing it when a value is greater or NaN: the first maximum wins, NaN
propagates (the last NaN's index is kept, as PyTorch's CPU kernel does). Indices are int64,
flat (h*W + w) within each (n, c) plane.

Average-pool backward without atomics or races: one thread per INPUT pixel gathers from the
outputs whose window covers it (for each kernel tap a, the output row oh with oh*s - p + a = ih,
if any), so every dx element is written exactly once, in a fixed order (deterministic).
Max-pool backward only has the indices (the backend interface carries no geometry), so it
scatters with atomic adds, which collide only where windows overlap.
Geometry tuple q: H W OH OW kh kw sh sw ph pw dh dw.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from fastconv.cuda import _device


def _q(in_hw, out_hw, g):
    return (in_hw[0], in_hw[1], out_hw[0], out_hw[1], g.kernel[0], g.kernel[1], g.stride[0],
            g.stride[1], g.padding[0], g.padding[1], g.dilation[0], g.dilation[1])


@cuda.jit
def _max_fwd(x, y, idx, q):
    H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW = q
    planes = x.shape[0] * x.shape[1]
    for t in range(cuda.grid(1), planes * OH * OW, cuda.gridsize(1)):
        pl = t // (OH * OW)
        r = t - pl * (OH * OW)
        oh = r // OW
        ow = r - oh * OW
        n = pl // x.shape[1]
        c = pl - n * x.shape[1]
        h0 = oh * SH - PH
        w0 = ow * SW - PW
        best = -math.inf
        bi = -1
        for a in range(KH):
            ih = h0 + a * DH
            if ih < 0 or ih >= H:
                continue
            for b in range(KW):
                iw = w0 + b * DW
                if iw < 0 or iw >= W:
                    continue
                v = x[n, c, ih, iw]
                if bi < 0 or v > best or math.isnan(v):
                    best = v
                    bi = ih * W + iw
        y[n, c, oh, ow] = best
        idx[n, c, oh, ow] = bi


@cuda.jit
def _max_bwd(dy, idx, dx):
    # one thread per OUTPUT: atomic add into the input plane at its argmax. Two outputs hit
    # the same input only where windows overlap (stride < kernel); elsewhere every add lands
    # on its own element.
    OH, OW = dy.shape[2], dy.shape[3]
    W = dx.shape[3]
    planes = dy.shape[0] * dy.shape[1]
    for t in range(cuda.grid(1), planes * OH * OW, cuda.gridsize(1)):
        pl = t // (OH * OW)
        r = t - pl * (OH * OW)
        oh = r // OW
        ow = r - oh * OW
        n = pl // dy.shape[1]
        c = pl - n * dy.shape[1]
        j = idx[n, c, oh, ow]
        ih = j // W
        if j >= 0 and ih < dx.shape[2]:
            cuda.atomic.add(dx, (n, c, ih, j - ih * W), dy[n, c, oh, ow])


def max_pool2d(x, g, y, stream):
    n, c, h, w = x.shape
    idx = _device.empty(y.shape, np.int64, stream)
    blocks, threads = _device.launch_1d(y.size)
    _max_fwd[min(blocks, 65535), threads, stream](x, y, idx, _q((h, w), g.out_hw, g))
    return y, idx


def max_pool2d_backward(dy, indices, dx, stream):
    """dx (zeroed here) += dy scattered at indices. The backend interface gives no window
    geometry, so the race-free gather (as in _avg_bwd) is not possible; atomics it is."""
    from fastconv.cuda.elementwise import fill
    fill(dx, 0.0, stream)
    blocks, threads = _device.launch_1d(dy.size)
    _max_bwd[min(blocks, 65535), threads, stream](dy, indices, dx)
    return dx


@cuda.jit(device=True, inline=True)
def _avg_window(i, size, k, s, p):
    # (start, end, pool extent) of window i along one axis, as PyTorch computes them
    lo = i * s - p
    hi = min(lo + k, size + p)
    pool = hi - lo
    return max(lo, 0), min(hi, size), pool


@cuda.jit
def _avg_fwd(x, y, q, include_pad, divisor, zero):
    H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW = q
    planes = x.shape[0] * x.shape[1]
    for t in range(cuda.grid(1), planes * OH * OW, cuda.gridsize(1)):
        pl = t // (OH * OW)
        r = t - pl * (OH * OW)
        oh = r // OW
        ow = r - oh * OW
        n = pl // x.shape[1]
        c = pl - n * x.shape[1]
        h0, h1, ph = _avg_window(oh, H, KH, SH, PH)
        w0, w1, pw = _avg_window(ow, W, KW, SW, PW)
        acc = zero
        for ih in range(h0, h1):
            for iw in range(w0, w1):
                acc += x[n, c, ih, iw]
        if h0 >= h1 or w0 >= w1:
            y[n, c, oh, ow] = 0
        else:
            div = divisor if divisor != 0 else (ph * pw if include_pad else (h1 - h0) * (w1 - w0))
            y[n, c, oh, ow] = acc / div


@cuda.jit
def _avg_bwd(dy, dx, q, include_pad, divisor, zero):
    H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW = q
    planes = dx.shape[0] * dx.shape[1]
    for t in range(cuda.grid(1), planes * H * W, cuda.gridsize(1)):
        pl = t // (H * W)
        r = t - pl * (H * W)
        ih = r // W
        iw = r - ih * W
        n = pl // dx.shape[1]
        c = pl - n * dx.shape[1]
        acc = zero
        for a in range(KH):
            th = ih + PH - a
            if th < 0:
                break
            oh = th // SH
            if oh * SH != th or oh >= OH:
                continue
            h0, h1, ph = _avg_window(oh, H, KH, SH, PH)
            for b in range(KW):
                tw = iw + PW - b
                if tw < 0:
                    break
                ow = tw // SW
                if ow * SW != tw or ow >= OW:
                    continue
                w0, w1, pw = _avg_window(ow, W, KW, SW, PW)
                div = divisor if divisor != 0 else (ph * pw if include_pad else (h1 - h0) * (w1 - w0))
                acc += dy[n, c, oh, ow] / div
        dx[n, c, ih, iw] = acc


def avg_pool2d(x, g, count_include_pad, divisor_override, y, stream):
    n, c, h, w = x.shape
    blocks, threads = _device.launch_1d(y.size)
    _avg_fwd[min(blocks, 65535), threads, stream](x, y, _q((h, w), g.out_hw, g), bool(count_include_pad),
                                                  int(divisor_override or 0), x.dtype.type(0))
    return y


def avg_pool2d_backward(dy, input_shape, g, count_include_pad, divisor_override, dx, stream):
    blocks, threads = _device.launch_1d(dx.size)
    _avg_bwd[min(blocks, 65535), threads, stream](dy, dx, _q(input_shape[2:], dy.shape[2:], g),
                                                  bool(count_include_pad), int(divisor_override or 0), dy.dtype.type(0))
    return dx

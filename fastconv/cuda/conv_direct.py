"""Direct convolution on the GPU as implicit GEMM (im2col never materialised), with its input
and weight gradients. All three are the tiled GEMM of _igemm with different loaders.

Geometry tuple g (appended to the GEMM's p, so g[i] is p[5 + i]):
    Nb C H W K OH OW R S sh sw ph pw dh dw Cg Kg
Padding is applied by bounds checks while loading, which also covers ``extra_pad`` ('same'
with even kernels: zeros beyond the bottom/right edge are what the checks return).

    forward       y[n,k,oh,ow]  : M=Kg (out ch),  N=Nb*OH*OW, Kred=Cg*R*S   A=w,  B=im2col(x)
    input grad    dx[n,c,ih,iw] : M=Cg (in ch),   N=Nb*H*W,   Kred=Kg*R*S   A=w^T, B=col2im gather(dy)
    weight grad   dw[k,c,r,s]   : M=Kg,           N=Cg*R*S,   Kred=Nb*OH*OW A=dy, B=im2col(x)^T
The weight gradient's reduction (over batch and pixels) is long and its output small, so it
is cut into splits written to a (splits, K, Cg*R*S) workspace and summed by a second kernel:
deterministic, no atomics.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda, from_dtype

from fastconv.cuda import _device, _igemm


def _geometry(x_shape, w_shape, g):
    nb, c, h, w = x_shape
    k, cg, r, s = w_shape
    oh, ow = g.out_hw
    return (nb, c, h, w, k, oh, ow, r, s, g.stride[0], g.stride[1], g.padding[0], g.padding[1],
            g.dilation[0], g.dilation[1], cg, k // g.groups)


@functools.lru_cache(maxsize=None)
def _loaders(dtype, R, S):
    """The three GEMMs' loaders for one dtype and kernel size. R and S are compiled in as
    constants: splitting a reduction index k into (c, r, s) is then a multiply-shift instead
    of two 64-bit divisions (Numba's integers are 64-bit) per loaded element."""
    nbt = from_dtype(np.dtype(dtype))
    zero = nbt(0)

    # ---- forward
    @cuda.jit(device=True, inline=True)
    def fwd_a(w, p, b, m, k):
        Kg = p[21]
        c = k // (R * S)
        rs = k - c * (R * S)
        r = rs // S
        return w[b * Kg + m, c, r, rs - r * S]

    @cuda.jit(device=True, inline=True)
    def im2col(x, p, b, k, n):
        # x value for reduction index k = (c, r, s) and output pixel n = (nb, oh, ow)
        H, W, OH, OW = p[7], p[8], p[10], p[11]
        c = k // (R * S)
        rs = k - c * (R * S)
        r = rs // S
        s = rs - r * S
        nb = n // (OH * OW)
        q = n - nb * (OH * OW)
        oh = q // OW
        ow = q - oh * OW
        ih = oh * p[14] - p[16] + r * p[18]
        iw = ow * p[15] - p[17] + s * p[19]
        if ih >= 0 and ih < H and iw >= 0 and iw < W:
            return x[nb, b * p[20] + c, ih, iw]
        return zero

    @cuda.jit(device=True, inline=True)
    def fwd_store(y, bias, p, b, split, m, n, v):
        OH, OW = p[10], p[11]
        nb = n // (OH * OW)
        q = n - nb * (OH * OW)
        oh = q // OW
        k = b * p[21] + m
        if bias.shape[0] > 0:
            v += bias[k]
        y[nb, k, oh, q - oh * OW] = v

    # ---- input gradient
    @cuda.jit(device=True, inline=True)
    def dgrad_a(w, p, b, m, k):
        Kg = p[21]
        kg = k // (R * S)
        rs = k - kg * (R * S)
        r = rs // S
        return w[b * Kg + kg, m, r, rs - r * S]

    @cuda.jit(device=True, inline=True)
    def dgrad_b(dy, p, b, k, n):
        # dy value reaching input pixel n = (nb, ih, iw) through tap k = (kg, r, s), if any
        H, W, OH, OW = p[7], p[8], p[10], p[11]
        sh, sw = p[14], p[15]
        kg = k // (R * S)
        rs = k - kg * (R * S)
        r = rs // S
        s = rs - r * S
        nb = n // (H * W)
        q = n - nb * (H * W)
        ih = q // W
        iw = q - ih * W
        th = ih + p[16] - r * p[18]
        tw = iw + p[17] - s * p[19]
        if th < 0 or tw < 0:
            return zero
        oh = th // sh
        ow = tw // sw
        if oh * sh != th or ow * sw != tw or oh >= OH or ow >= OW:
            return zero
        return dy[nb, b * p[21] + kg, oh, ow]

    @cuda.jit(device=True, inline=True)
    def dgrad_store(dx, aux, p, b, split, m, n, v):
        H, W = p[7], p[8]
        nb = n // (H * W)
        q = n - nb * (H * W)
        ih = q // W
        dx[nb, b * p[20] + m, ih, q - ih * W] = v

    # ---- weight gradient
    @cuda.jit(device=True, inline=True)
    def wgrad_a(dy, p, b, m, k):
        OH, OW = p[10], p[11]
        nb = k // (OH * OW)
        q = k - nb * (OH * OW)
        oh = q // OW
        return dy[nb, b * p[21] + m, oh, q - oh * OW]

    @cuda.jit(device=True, inline=True)
    def wgrad_b(x, p, b, k, n):
        return im2col(x, p, b, n, k)

    @cuda.jit(device=True, inline=True)
    def wgrad_store(ws, aux, p, b, split, m, n, v):
        ws[split, b * p[21] + m, n] = v

    return {"forward": (fwd_a, im2col, fwd_store),
            "input": (dgrad_a, dgrad_b, dgrad_store),
            "weight": (wgrad_a, wgrad_b, wgrad_store)}


@functools.lru_cache(maxsize=None)
def _empty_aux(dtype):
    return cuda.device_array(0, dtype=np.dtype(dtype))


def conv2d(x, w, bias, g, y, stream):
    """y (N, K, OH, OW) = conv(x, w) + bias; all device arrays, y preallocated."""
    geo = _geometry(x.shape, w.shape, g)
    nb, kg = x.shape[0], w.shape[0] // g.groups
    cg, r, s = w.shape[1:]
    aux = bias if bias is not None else _empty_aux(x.dtype.str)
    _igemm.launch(_loaders(x.dtype.str, r, s)["forward"], x.dtype, w, x, y, aux,
                  kg, nb * g.out_hw[0] * g.out_hw[1], cg * r * s, g.groups, geo, stream)
    return y


def conv2d_input(input_shape, w, dy, g, dx, stream):
    """dx (N, C, H, W) from dy (N, K, OH, OW); extra_pad rows/cols are simply not produced."""
    geo = _geometry(input_shape, w.shape, g)
    nb, c, h, wd = input_shape
    kg = w.shape[0] // g.groups
    cg, r, s = w.shape[1:]
    _igemm.launch(_loaders(dy.dtype.str, r, s)["input"], dy.dtype, w, dy, dx, _empty_aux(dy.dtype.str),
                  cg, nb * h * wd, kg * r * s, g.groups, geo, stream)
    return dx


@cuda.jit
def _sum_splits(ws, out):
    # out[k, j] = sum over splits of ws[split, k, j]; fixed order: deterministic
    i = cuda.grid(1)
    kk = ws.shape[1]
    jj = ws.shape[2]
    if i < kk * jj:
        k = i // jj
        j = i - k * jj
        acc = ws[0, k, j]
        for sp in range(1, ws.shape[0]):
            acc += ws[sp, k, j]
        out[k, j] = acc


def _weight_splits(M, N, Kred, groups, cfg):
    """Enough splits of the (batch x pixels) reduction to give every SM a few blocks, while
    each split still reduces at least 64 steps of BK."""
    tiles = -(-M // cfg.BM) * -(-N // cfg.BN) * groups
    want = -(-4 * _device.multiprocessor_count() // tiles)
    return max(1, min(want, Kred // (cfg.BK * 64)))


def conv2d_weight(x, weight_shape, dy, g, dw, stream):
    """dw (K, Cg, R, S) = sum over (n, oh, ow) of dy x im2col(x)."""
    geo = _geometry(x.shape, weight_shape, g)
    k, cg, r, s = weight_shape
    kg = k // g.groups
    M, N, Kred = kg, cg * r * s, x.shape[0] * g.out_hw[0] * g.out_hw[1]
    cfg = _igemm.choose_config(M, N, g.groups, x.dtype.itemsize)
    splits, _ = _igemm.split_plan(Kred, _weight_splits(M, N, Kred, g.groups, cfg), cfg)
    dw2 = dw.reshape((1, k, N))
    ws = dw2 if splits == 1 else _device.workspace("wgrad_partials", (splits, k, N), dw.dtype, stream)
    loaders = _loaders(x.dtype.str, r, s)["weight"]
    _igemm.launch(loaders, x.dtype, dy, x, ws, _empty_aux(x.dtype.str), M, N, Kred, g.groups, geo,
                  stream, splits=splits, cfg=cfg)
    if splits > 1:
        blocks, threads = _device.launch_1d(k * N)
        _sum_splits[blocks, threads, stream](ws, dw.reshape((k, N)))
    return dw

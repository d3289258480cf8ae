"""Winograd convolution F(m x m, 3x3), m = 2 or 4, for 3x3 stride-1 dilation-1 layers.

    U[a, k, c] = (G g[k,c] G^T)[a]                      weight transform, one thread per (k, c)
    V[a, c, t] = (B^T d[c,t] B)[a]                      input transform, one thread per (c, tile)
    M[a, k, t] = sum_c U[a, k, c] V[a, c, t]            alpha^2 x groups batched GEMMs (_igemm)
    y[k, tile] = A^T M[:, k, t] A + bias                output transform, one thread per (k, tile)
with alpha = m + 2 and the tiles t running over (n, tile row, tile col) of the output.
Transforms multiply by the full constant matrices (zeros included): they are a small share of
the work next to the GEMM, which is where the alpha^2 / (m^2 * 9) multiply saving lives.

Matrices: the same float64 Toom-Cook construction the CPU backend uses (fastconv._C.winograd_matrices,
csrc/conv/winograd/winograd_matrices.cpp, where they are written out), so both backends compute F(2,3) from
the points 0, +-1, inf and F(4,3) from 0, +-1, +-1/2, inf, with the same fp32 error.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda, from_dtype

from fastconv import _C
from fastconv.cuda import _device, _igemm


def _matrices(m):
    """(B^T, G, A^T) of F(m x m, 3 x 3) in float64, from the CPU backend's builder."""
    AT, G, BT, _ = _C.winograd_matrices(m)
    return BT, G, AT


@functools.lru_cache(maxsize=None)
def _kernels(m, dtype):
    nbt = from_dtype(np.dtype(dtype))
    BT, G, AT = (a.astype(dtype) for a in _matrices(m))   # closure arrays: compiled in as constants
    AL = m + 2

    @cuda.jit
    def weight_transform(w, U):
        # w (K, Cg, 3, 3) -> U (AL*AL, K, Cg)
        kk, cg = w.shape[0], w.shape[1]
        t = cuda.grid(1)
        if t >= kk * cg:
            return
        k = t // cg
        c = t - k * cg
        tmp = cuda.local.array((AL, 3), nbt)
        for i in range(AL):
            for j in range(3):
                acc = nbt(0)
                for r in range(3):
                    acc += G[i, r] * w[k, c, r, j]
                tmp[i, j] = acc
        for i in range(AL):
            for j in range(AL):
                acc = nbt(0)
                for r in range(3):
                    acc += tmp[i, r] * G[j, r]
                U[i * AL + j, k, c] = acc

    @cuda.jit
    def input_transform(x, V, q):
        # x (N, C, H, W) -> V (AL*AL, C, N*TH*TW); q = (TH, TW, ph, pw)
        TH, TW, PH, PW = q
        n_, c_, H, W = x.shape
        P = n_ * TH * TW
        t = cuda.grid(1)
        if t >= c_ * P:
            return
        c = t // P
        tile = t - c * P
        n = tile // (TH * TW)
        r = tile - n * (TH * TW)
        th = r // TW
        tw = r - th * TW
        h0 = th * m - PH
        w0 = tw * m - PW
        d = cuda.local.array((AL, AL), nbt)
        tmp = cuda.local.array((AL, AL), nbt)
        for i in range(AL):
            for j in range(AL):
                ih = h0 + i
                iw = w0 + j
                d[i, j] = x[n, c, ih, iw] if (ih >= 0 and ih < H and iw >= 0 and iw < W) else nbt(0)
        for i in range(AL):
            for j in range(AL):
                acc = nbt(0)
                for r2 in range(AL):
                    acc += BT[i, r2] * d[r2, j]
                tmp[i, j] = acc
        for i in range(AL):
            for j in range(AL):
                acc = nbt(0)
                for r2 in range(AL):
                    acc += tmp[i, r2] * BT[j, r2]
                V[i * AL + j, c, tile] = acc

    @cuda.jit
    def output_transform(Mo, bias, y, q):
        # Mo (AL*AL, K, P) -> y (N, K, OH, OW); q = (TH, TW)
        TH, TW = q
        n_, k_, OH, OW = y.shape
        P = n_ * TH * TW
        t = cuda.grid(1)
        if t >= k_ * P:
            return
        k = t // P
        tile = t - k * P
        n = tile // (TH * TW)
        r = tile - n * (TH * TW)
        th = r // TW
        tw = r - th * TW
        tmp = cuda.local.array((m, AL), nbt)
        for i in range(m):
            for j in range(AL):
                acc = nbt(0)
                for r2 in range(AL):
                    acc += AT[i, r2] * Mo[r2 * AL + j, k, tile]
                tmp[i, j] = acc
        b = bias[k] if bias.shape[0] > 0 else nbt(0)
        for i in range(m):
            oh = th * m + i
            if oh < OH:
                for j in range(m):
                    ow = tw * m + j
                    if ow < OW:
                        acc = b
                        for r2 in range(AL):
                            acc += tmp[i, r2] * AT[j, r2]
                        y[n, k, oh, ow] = acc

    @cuda.jit(device=True, inline=True)
    def gemm_a(U, p, b, mm, kk):
        groups = p[5]
        a = b // groups
        g = b - a * groups
        return U[a, g * p[6] + mm, kk]

    @cuda.jit(device=True, inline=True)
    def gemm_b(V, p, b, kk, n):
        groups = p[5]
        a = b // groups
        g = b - a * groups
        return V[a, g * p[7] + kk, n]

    @cuda.jit(device=True, inline=True)
    def gemm_store(Mo, aux, p, b, split, mm, n, v):
        groups = p[5]
        a = b // groups
        g = b - a * groups
        Mo[a, g * p[6] + mm, n] = v

    return weight_transform, input_transform, output_transform, (gemm_a, gemm_b, gemm_store)


@functools.lru_cache(maxsize=None)
def _no_bias(dtype):
    return cuda.device_array(0, dtype=np.dtype(dtype))


def conv2d(x, w, bias, g, m, y, stream):
    """y = conv(x, w) + bias by F(m x m, 3x3); x is (N, C, H, W) and, with extra_pad, the
    zeros beyond the bottom/right edge come from the input transform's bounds checks."""
    wt, it, ot, loaders = _kernels(m, x.dtype.str)
    al2 = (m + 2) ** 2
    n, c, h, wd = x.shape
    k, cg = w.shape[:2]
    kg = k // g.groups
    oh, ow = g.out_hw
    th, tw = -(-oh // m), -(-ow // m)
    P = n * th * tw
    U = _device.workspace("winograd_U", (al2, k, cg), x.dtype, stream)
    V = _device.workspace("winograd_V", (al2, c, P), x.dtype, stream)
    Mo = _device.workspace("winograd_M", (al2, k, P), x.dtype, stream)
    blocks, threads = _device.launch_1d(k * cg, 128)
    wt[blocks, threads, stream](w, U)
    blocks, threads = _device.launch_1d(c * P, 128)
    it[blocks, threads, stream](x, V, (th, tw, g.padding[0], g.padding[1]))
    _igemm.launch(loaders, x.dtype, U, V, Mo, _no_bias(x.dtype.str), kg, P, cg, al2 * g.groups,
                  (g.groups, kg, cg), stream)
    blocks, threads = _device.launch_1d(k * P, 128)
    ot[blocks, threads, stream](Mo, bias if bias is not None else _no_bias(x.dtype.str), y, (th, tw))
    return y


@cuda.jit
def _flip_transpose(w, wt, groups):
    # wt[g*Cg + c, kg, r, s] = w[g*Kg + kg, c, R-1-r, S-1-s]: the kernel of the input gradient
    k_, cg, R, S = w.shape
    kg = k_ // groups
    t = cuda.grid(1)
    if t >= w.size:
        return
    k = t // (cg * R * S)
    rem = t - k * (cg * R * S)
    c = rem // (R * S)
    rem -= c * (R * S)
    r = rem // S
    s = rem - r * S
    grp = k // kg
    wt[grp * cg + c, k - grp * kg, R - 1 - r, S - 1 - s] = w[k, c, r, s]


def conv2d_input(input_shape, w, dy, g, m, dx, stream):
    """dx = full correlation of dy with the flipped, transposed kernel, by Winograd:
    a stride-1 3x3 convolution with padding 2 - p (requires p <= 2)."""
    from fastconv._geometry import ConvGeometry
    k, cg = w.shape[:2]
    wt = _device.workspace("winograd_flipped_w", (cg * g.groups, k // g.groups, 3, 3), w.dtype, stream)
    blocks, threads = _device.launch_1d(w.size)
    _flip_transpose[blocks, threads, stream](w, wt, g.groups)
    h, wd = input_shape[2:]
    # the forward ran on the input padded to H + extra; its gradient there is cropped away
    # simply by computing only the first H x W outputs (out_hw below)
    gi = ConvGeometry((1, 1), (2 - g.padding[0], 2 - g.padding[1]), (0, 0), (1, 1), g.groups, (h, wd))
    return conv2d(dy, wt, None, gi, m, dx, stream)

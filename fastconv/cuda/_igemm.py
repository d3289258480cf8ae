"""One shared-memory tiled, register-blocked GEMM kernel, specialised by loader functions.

    C[b][m, n] = sum_{k in split range} A_b[m, k] * B_b[k, n]        (b: batch entry, blockIdx.z)

The direct convolution (forward, input and weight gradients: implicit GEMM, im2col computed
on the fly while loading a tile), the Winograd batched element-wise GEMM and the dense layers
all are this loop; only how A and B elements are fetched and how C is written differ. Each
user passes three ``@cuda.jit(device=True)`` functions:

    load_a(A, p, b, m, k) -> value      only called with m < M, k < Kred
    load_b(B, p, b, k, n) -> value      only called with k < Kred, n < N
    store(C, aux, p, b, split, m, n, v) only called with m < M, n < N

``p`` is a tuple of ints: p[0]=M, p[1]=N, p[2]=Kred, p[3]=split length of the reduction,
p[4]=number of batch entries G (blockIdx.z = split * G + b); the rest is the caller's geometry.

Tiling (cfg): a block of TY x TX threads computes a BM x BN tile of C, each thread RM x RN
outputs at rows ty + i*TY and columns tx + j*TX (strided, so shared-memory reads of a warp
hit distinct banks or broadcast, and global stores of a warp are contiguous along n). Each
step stages a BM x BK tile of A (k fastest: contiguous for weights) and a BK x BN tile of B
(n fastest: contiguous pixels) in shared memory between two barriers.
"""
from __future__ import annotations

import functools
from collections import namedtuple

import numpy as np
from numba import cuda, from_dtype

TileConfig = namedtuple("TileConfig", "BM BN BK TY TX")

# production tile: 256 threads, 4x4 outputs per thread, 2 x 64x8 fp32 tiles (4 KiB) of shared memory
LARGE = TileConfig(64, 64, 8, 16, 16)
# fewer output channels (first layers, LeNet): 2x4 outputs per thread
NARROW = TileConfig(32, 64, 8, 16, 16)
# the simulator runs each CUDA thread as a Python thread and polls them at every barrier:
# few threads (8, each 4x4 outputs) and few barriers (BK=8) keep the tests fast
TINY = TileConfig(8, 16, 8, 2, 4)


def default_config(m_rows):
    from fastconv.cuda._device import SIMULATOR
    if SIMULATOR:
        return TINY
    return NARROW if m_rows <= 32 else LARGE


@functools.lru_cache(maxsize=None)
def make_kernel(load_a, load_b, store, cfg, dtype):
    """The compiled-on-first-launch kernel for these loaders, tile config and dtype."""
    BM, BN, BK, TY, TX = cfg
    RM, RN = BM // TY, BN // TX
    NT = TY * TX
    assert RM * TY == BM and RN * TX == BN
    nbt = from_dtype(np.dtype(dtype))

    @cuda.jit
    def kernel(A, B, C, aux, p):
        M, N, Kred, chunk, G = p[0], p[1], p[2], p[3], p[4]
        z = cuda.blockIdx.z
        split = z // G
        b = z - split * G
        m0 = cuda.blockIdx.y * BM
        n0 = cuda.blockIdx.x * BN
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * TX + tx
        kbeg = split * chunk
        kend = min(Kred, kbeg + chunk)

        As = cuda.shared.array((BK, BM), nbt)
        Bs = cuda.shared.array((BK, BN), nbt)
        acc = cuda.local.array((RM, RN), nbt)
        av = cuda.local.array(RM, nbt)
        bv = cuda.local.array(RN, nbt)
        for i in range(RM):
            for j in range(RN):
                acc[i, j] = 0

        for k0 in range(kbeg, kend, BK):
            for e in range(tid, BM * BK, NT):
                ml = e // BK
                kl = e - ml * BK
                m = m0 + ml
                k = k0 + kl
                v = nbt(0)
                if m < M and k < kend:
                    v = load_a(A, p, b, m, k)
                As[kl, ml] = v
            for e in range(tid, BK * BN, NT):
                kl = e // BN
                nl = e - kl * BN
                n = n0 + nl
                k = k0 + kl
                v = nbt(0)
                if n < N and k < kend:
                    v = load_b(B, p, b, k, n)
                Bs[kl, nl] = v
            cuda.syncthreads()
            for kl in range(BK):
                for i in range(RM):
                    av[i] = As[kl, ty + i * TY]
                for j in range(RN):
                    bv[j] = Bs[kl, tx + j * TX]
                for i in range(RM):
                    for j in range(RN):
                        acc[i, j] += av[i] * bv[j]
            cuda.syncthreads()

        for i in range(RM):
            m = m0 + ty + i * TY
            if m < M:
                for j in range(RN):
                    n = n0 + tx + j * TX
                    if n < N:
                        store(C, aux, p, b, split, m, n, acc[i, j])

    return kernel


def split_plan(Kred, splits, cfg):
    """(splits, chunk): the reduction cut into at most ``splits`` ranges of whole BK steps."""
    chunk = -(-Kred // max(1, splits))
    chunk = -(-chunk // cfg.BK) * cfg.BK
    return -(-Kred // chunk), chunk


def launch(loaders, dtype, A, B, C, aux, M, N, Kred, G, geometry, stream, splits=1, cfg=None):
    """Run C = A @ B for G batch entries, the reduction cut into ``splits`` ranges (see
    split_plan; each written separately by ``store``: the caller reduces them)."""
    cfg = cfg or default_config(M)
    splits, chunk = split_plan(Kred, splits, cfg)
    p = (int(M), int(N), int(Kred), int(chunk), int(G)) + tuple(int(v) for v in geometry)
    kernel = make_kernel(*loaders, cfg, np.dtype(dtype).str)
    grid = (-(-N // cfg.BN), -(-M // cfg.BM), G * splits)
    kernel[grid, (cfg.TX, cfg.TY), stream](A, B, C, aux, p)
    return splits

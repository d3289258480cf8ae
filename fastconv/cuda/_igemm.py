"""One shared-memory tiled, register-blocked, double-buffered GEMM kernel, specialised by loaders.

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

Tiling (TileConfig): a block of TY x TX threads computes a BM x BN tile of C, each thread
RM x RN = (BM/TY) x (BN/TX) outputs at rows ty + i*TY and columns tx + j*TX. Strided, so a
warp's shared-memory reads (16 tx x 2 ty) are 16 consecutive words (distinct banks) for B and
a broadcast of 2 words for A. (Runs of 4 consecutive columns per thread would allow 128-bit
reads, but NVVM does not merge Numba's scalar shared loads, and as scalar loads they would
2-way conflict.)

Pipeline (one barrier per BK step): the global loads of step s+1 are issued into registers
before the math of step s, and stored into the other shared buffer at the top of step s+1:

    fetch(0)
    for s:  store(s % 2); sync; if s+1 < steps: fetch(s+1); compute(s % 2)
The buffer stored at step s was last read at step s-2, before every thread passed the barrier
of step s-1; the buffer read at step s was stored before the barrier of step s. So one barrier
per step suffices, and the loads' latency hides behind BK x RM x RN FMAs per thread.

Shared layout: As[buf, k, m] (A transposed while storing, so the math reads rows along m) with
the row padded from BM to BM + 4: a warp stores 32/BK m's x BK k's of A per instruction, and
without padding all k's of one m would hit one bank (BM is a multiple of 32); with it, k
shifts the bank by 4 and the warp's 32 words fall in 32 banks. Bs[buf, k, n] is stored
n-fastest (32 consecutive words per warp: conflict-free) and needs no padding.

Epilogue: C goes out through shared memory in EP passes of BM/EP rows, each stored by the
whole block n-fastest (coalesced), so the accumulators are only ever read at constant indices.

Registers: the accumulators (RM*RN), one row and one column fragment (RM + RN), the prefetched
tile elements (BM*BK/NT + BK*BN/NT) and the loaders' index arithmetic; launch bounds ask
ptxas for at least MIN_BLOCKS blocks per SM, i.e. at most 65536 / (NT*MIN_BLOCKS) registers
(128 at 256 threads); tests/test_cuda_ptx.py checks that and that nothing spills.
"""
from __future__ import annotations

import functools
from collections import namedtuple

import numpy as np
from numba import cuda, from_dtype

TileConfig = namedtuple("TileConfig", "BM BN BK TY TX EP")

# 128x128 tile, 8x8 outputs per thread, 256 threads; shared 2 x (8 x 132 + 8 x 128) x 4 B = 16.3 KiB
LARGE = TileConfig(128, 128, 8, 16, 16, 4)
# 64 output channels (VGG's first block) or too few 128x128 tiles to fill the GPU: 4x8 per thread
WIDE = TileConfig(64, 128, 8, 16, 16, 2)
# few output channels (first layers, LeNet, small dense layers): 2x4 per thread
NARROW = TileConfig(32, 64, 8, 16, 16, 1)
# the simulator runs each CUDA thread as a Python thread and polls them at every barrier: few
# threads. SIM_LARGE is LARGE shrunk to 2x2 threads, each with LARGE's 8x8 outputs and 4
# epilogue passes, so the simulator runs the production loops and pipeline.
SIM_LARGE = TileConfig(16, 16, 4, 2, 2, 4)
TINY = TileConfig(8, 16, 8, 2, 4, 2)

CONFIGS = {"large": LARGE, "wide": WIDE, "narrow": NARROW}
# registers per thread at most 65536 / (threads * MIN_BLOCKS): 128 at 256 threads
MIN_BLOCKS = 2


def check_config(cfg):
    BM, BN, BK, TY, TX, EP = cfg
    nt = TY * TX
    ok = (BM % TY == 0 and BN % TX == 0 and (BM // TY) % EP == 0 and (BM * BK) % nt == 0
          and (BK * BN) % nt == 0)
    if not ok:
        raise ValueError(f"tile config {cfg}: BM must be a multiple of TY, BN of TX, BM/TY of EP, "
                         f"and BM*BK and BK*BN of the thread count")
    return cfg


def configs_for(itemsize):
    """The production tiles usable at this element size: 8-byte elements double the
    accumulators' registers, and the 8x8 tile would spill (ptx_check: ~1 KB per thread)."""
    return {name: c for name, c in CONFIGS.items() if itemsize <= 4 or c is not LARGE}


def choose_config(M, N, G=1, itemsize=4):
    """The tile for an M x N output (G batch entries): the largest whose block count still
    fills the GPU (one block per SM at least), else 64x128; M <= 32 takes NARROW (the 64-
    and 128-row tiles would be mostly padding); float64 never takes the 128x128 tile."""
    from fastconv.cuda._device import SIMULATOR, multiprocessor_count
    if SIMULATOR:
        return TINY
    if M <= 32:
        return NARROW
    sms = multiprocessor_count()
    if itemsize <= 4 and M > 64 and blocks(LARGE, M, N, G) >= sms:
        return LARGE
    return WIDE


def blocks(cfg, M, N, G=1):
    return -(-M // cfg.BM) * -(-N // cfg.BN) * G


def jit_options(cfg):
    """Options for cuda.jit / cuda.compile_ptx: launch bounds where this numba-cuda has them
    (the simulator takes none; older releases compile without, and may spill)."""
    import inspect
    from fastconv.cuda._device import SIMULATOR
    if SIMULATOR or "launch_bounds" not in inspect.signature(cuda.jit).parameters:
        return {}
    return {"launch_bounds": (cfg.TY * cfg.TX, MIN_BLOCKS)}


def kernel_source(load_a, load_b, store, cfg, dtype):
    """The kernel's Python function (for cuda.jit, and for tools/ptx_check.py's compile_ptx)."""
    BM, BN, BK, TY, TX, EP = check_config(cfg)
    RM, RN = BM // TY, BN // TX
    NT = TY * TX
    LA, LB = BM * BK // NT, BK * BN // NT   # tile elements each thread fetches per step
    BMP = BM + 4                            # padded A row (see the module docstring)
    RP = RM // EP                           # accumulator rows per thread per epilogue pass
    SR = RP * TY                            # rows of C staged per epilogue pass
    BOFF = 2 * BK * BMP
    SMEM = max(2 * BK * (BMP + BN), SR * BN)
    nbt = from_dtype(np.dtype(dtype))

    def kernel(A, B, C, aux, p):
        M, N, Kred, chunk, G = p[0], p[1], p[2], p[3], p[4]
        # the masks tell LLVM these are non-negative (they are: hardware limits are below
        # them), which drops Python's floor-division sign fix-ups and negative-index
        # wrap-around from every tile index below: fewer instructions and registers
        z = cuda.blockIdx.z & 0xFFFF
        split = z // G
        b = z - split * G
        m0 = (cuda.blockIdx.y & 0xFFFF) * BM
        n0 = (cuda.blockIdx.x & 0x7FFFFFFF) * BN
        tx = cuda.threadIdx.x & 1023
        ty = cuda.threadIdx.y & 1023
        tid = ty * TX + tx
        kbeg = split * chunk
        kend = min(Kred, kbeg + chunk)
        steps = max(0, (kend - kbeg + BK - 1) // BK)

        # one flat buffer: As[buf, k, m] at (buf*BK + k)*BMP + m, Bs[buf, k, n] at
        # BOFF + (buf*BK + k)*BN + n, and, after the main loop, the epilogue's staging rows
        smem = cuda.shared.array(SMEM, nbt)
        acc = cuda.local.array((RM, RN), nbt)
        av = cuda.local.array(RM, nbt)
        bv = cuda.local.array(RN, nbt)
        ra = cuda.local.array(LA, nbt)
        rb = cuda.local.array(LB, nbt)
        for i in range(RM):
            for j in range(RN):
                acc[i, j] = 0

        # fetch step 0: element e = tid + i*NT of the A tile is (m, k) = (e // BK, e % BK),
        # k fastest (weights are contiguous along k); of the B tile (e // BN, e % BN), n fastest
        for i in range(LA):
            e = tid + i * NT
            m = m0 + e // BK
            k = kbeg + e % BK
            v = nbt(0)
            if m < M and k < kend:
                v = load_a(A, p, b, m, k)
            ra[i] = v
        for i in range(LB):
            e = tid + i * NT
            k = kbeg + e // BN
            n = n0 + e % BN
            v = nbt(0)
            if n < N and k < kend:
                v = load_b(B, p, b, k, n)
            rb[i] = v

        for s in range(steps):
            buf = s & 1
            for i in range(LA):
                e = tid + i * NT
                smem[(buf * BK + e % BK) * BMP + e // BK] = ra[i]
            for i in range(LB):
                e = tid + i * NT
                smem[BOFF + (buf * BK + e // BN) * BN + e % BN] = rb[i]
            cuda.syncthreads()
            if s + 1 < steps:
                k0 = kbeg + (s + 1) * BK
                for i in range(LA):
                    e = tid + i * NT
                    m = m0 + e // BK
                    k = k0 + e % BK
                    v = nbt(0)
                    if m < M and k < kend:
                        v = load_a(A, p, b, m, k)
                    ra[i] = v
                for i in range(LB):
                    e = tid + i * NT
                    k = k0 + e // BN
                    n = n0 + e % BN
                    v = nbt(0)
                    if n < N and k < kend:
                        v = load_b(B, p, b, k, n)
                    rb[i] = v
            for kl in range(BK):
                for i in range(RM):
                    av[i] = smem[(buf * BK + kl) * BMP + i * TY + ty]
                for j in range(RN):
                    bv[j] = smem[BOFF + (buf * BK + kl) * BN + j * TX + tx]
                for i in range(RM):
                    for j in range(RN):
                        acc[i, j] += av[i] * bv[j]

        # epilogue through shared memory in EP passes: pass q stages the band of rows
        # [q*SR, (q+1)*SR) of the tile (thread rows i = q*RP ... q*RP + RP-1), then the block
        # stores it n-fastest. The accumulators are read only at constant indices, which keeps
        # them in registers: a store loop indexing them directly is too big for LLVM to unroll.
        for q in range(EP):
            cuda.syncthreads()   # the last step's reads of the tile buffers / last pass's stores
            for i in range(RM):
                if i // RP == q:
                    for j in range(RN):
                        smem[((i - q * RP) * TY + ty) * BN + j * TX + tx] = acc[i, j]
            cuda.syncthreads()
            for t in range(tid, SR * BN, NT):
                m = m0 + q * SR + t // BN
                n = n0 + t % BN
                if m < M and n < N:
                    store(C, aux, p, b, split, m, n, smem[t])

    return kernel


@functools.lru_cache(maxsize=None)
def make_kernel(load_a, load_b, store, cfg, dtype):
    """The kernel for these loaders, tile config and dtype (compiled per argument types on
    first launch, or ahead of it by fastconv.cuda.warm_up)."""
    return cuda.jit(**jit_options(cfg))(kernel_source(load_a, load_b, store, cfg, dtype))


def split_plan(Kred, splits, cfg):
    """(splits, chunk): the reduction cut into at most ``splits`` ranges of whole BK steps."""
    chunk = -(-Kred // max(1, splits))
    chunk = -(-chunk // cfg.BK) * cfg.BK
    return -(-Kred // chunk), chunk


def launch(loaders, dtype, A, B, C, aux, M, N, Kred, G, geometry, stream, splits=1, cfg=None):
    """Run C = A @ B for G batch entries, the reduction cut into ``splits`` ranges (see
    split_plan; each written separately by ``store``: the caller reduces them)."""
    cfg = cfg or choose_config(M, N, G, np.dtype(dtype).itemsize)
    splits, chunk = split_plan(Kred, splits, cfg)
    p = (int(M), int(N), int(Kred), int(chunk), int(G)) + tuple(int(v) for v in geometry)
    kernel = make_kernel(*loaders, cfg, np.dtype(dtype).str)
    grid = (-(-N // cfg.BN), -(-M // cfg.BM), G * splits)
    kernel[grid, (cfg.TX, cfg.TY), stream](A, B, C, aux, p)
    return splits

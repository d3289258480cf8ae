"""Block-level reduction shared by the CUDA kernels that sum into a scalar per block."""
from __future__ import annotations

from numba import cuda

from fastconv.cuda import _device

RED_THREADS = 128          # reduction block (a power of two); 32 under the simulator
RED_THREADS_SIM = 32


def red_threads():
    return RED_THREADS_SIM if _device.SIMULATOR else RED_THREADS


# inline: compile_ptx (the sm_90 check without a GPU) cannot compile a separately dispatched
# device function, which asks the driver for the current device.
@cuda.jit(device=True, inline=True)
def block_tree_sum(buf, t, nthreads):
    """Sum the shared array buf[0:nthreads] (one partial per thread, nthreads a power of two)
    into buf[0], pairwise in a fixed order, so the result is the same on every run. Every
    thread of the block must call it (it synchronises the block)."""
    cuda.syncthreads()
    step = nthreads // 2
    while step > 0:
        if t < step:
            buf[t] += buf[t + step]
        cuda.syncthreads()
        step //= 2

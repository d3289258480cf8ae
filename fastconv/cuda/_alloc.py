"""A caching device allocator for the arrays fastconv's CUDA ops return and use internally.

Without it every op result is a cuMemAlloc, and every dropped one a cuMemFree, which the
driver only performs after synchronising the device (Numba defers the frees and flushes them
in batches: a periodic stall inside whichever op triggers the flush). Here a dropped array's
block goes back to a free list and the next request of the same size class on the same stream
reuses it: no driver call, no synchronisation.

Reuse is per (device, stream): work queued on a stream runs in order, so a block released
while kernels that use it are still queued on that stream can be handed to the next op on the
same stream. An array used on a different stream than the one it was allocated on (a
``stream=`` another library chose) must be kept alive by its user until that work is done,
the same rule as PyTorch's caching allocator without ``record_stream``.

Size classes: multiples of 512 B up to 1 MiB, of 2 MiB above (at most 2 % waste on the large
activations, whose sizes repeat from step to step). Blocks are never split. When the driver
is out of memory, the cached free blocks are returned to it and the allocation retried once.
Only fastconv's own allocations go through the pool (no process-wide Numba memory manager).
"""
from __future__ import annotations

import threading

SMALL_STEP = 512
LARGE_STEP = 2 << 20
SMALL_LIMIT = 1 << 20


def size_class(nbytes):
    """The block size serving a request of ``nbytes`` (> 0)."""
    step = SMALL_STEP if nbytes <= SMALL_LIMIT else LARGE_STEP
    return -(-int(nbytes) // step) * step


class BlockPool:
    """Free lists of blocks keyed by (stream key, size class). ``raw_alloc(size)`` returns an
    object owning ``size`` bytes of device memory, freed when the pool drops its last reference;
    ``is_out_of_memory(exc)`` says whether an exception from it means the device is full."""

    def __init__(self, raw_alloc, is_out_of_memory=lambda e: False):
        self._raw_alloc = raw_alloc
        self._oom = is_out_of_memory
        self._free = {}
        self._lock = threading.RLock()   # re-entrant: a release may run from GC inside acquire
        self.held_bytes = 0              # everything the pool owns (in use + free)
        self.in_use_bytes = 0
        self.raw_allocations = 0

    def acquire(self, nbytes, key):
        """(block, size) for a request of nbytes on stream ``key``."""
        size = size_class(nbytes)
        with self._lock:
            blocks = self._free.get((key, size))
            if blocks:
                self.in_use_bytes += size
                return blocks.pop(), size
        try:
            block = self._raw_alloc(size)
        except Exception as e:
            if not self._oom(e):
                raise
            self.trim()
            block = self._raw_alloc(size)
        with self._lock:
            self.raw_allocations += 1
            self.held_bytes += size
            self.in_use_bytes += size
        return block, size

    def release(self, block, size, key):
        with self._lock:
            self._free.setdefault((key, size), []).append(block)
            self.in_use_bytes -= size

    def trim(self):
        """Return every free block to the driver (blocks in use are untouched)."""
        with self._lock:
            freed = sum(size * len(b) for (_, size), b in self._free.items())
            self._free.clear()
            self.held_bytes -= freed
        return freed


_POOL = None
_LIVE = {}            # id -> the AutoFreePointer of each array handed out (as Numba's context does)
_LIVE_LOCK = threading.Lock()


def _pool():
    global _POOL
    if _POOL is None:
        from numba import cuda
        from numba.cuda.cudadrv.driver import CudaAPIError

        def raw_alloc(size):
            return cuda.current_context().memalloc(size)

        def out_of_memory(e):
            return isinstance(e, CudaAPIError) and "OUT_OF_MEMORY" in str(e).upper().replace(" ", "_")

        _POOL = BlockPool(raw_alloc, out_of_memory)
    return _POOL


def device_empty(shape, dtype, stream, stream_key):
    """An uninitialised C-contiguous Numba device array from the pool (real GPU only)."""
    import numpy as np
    from numba import cuda
    from numba.cuda.cudadrv import devicearray, driver

    dtype = np.dtype(dtype)
    shape = tuple(int(v) for v in shape)
    n = 1
    for v in shape:
        n *= v
    nbytes = n * dtype.itemsize
    if nbytes == 0:
        return cuda.device_array(shape, dtype=dtype, stream=stream)
    ctx = cuda.current_context()
    key = (ctx.device.id, stream_key)
    pool = _pool()
    block, size = pool.acquire(nbytes, key)
    token = object()

    def give_back():
        # runs when the array and every view of it are gone (Numba's reference count)
        with _LIVE_LOCK:
            _LIVE.pop(id(token), None)
        pool.release(block, size, key)

    mem = driver.AutoFreePointer(ctx, block.device_pointer, nbytes, finalizer=give_back)
    with _LIVE_LOCK:
        _LIVE[id(token)] = (token, mem)
    strides = [dtype.itemsize] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return devicearray.DeviceNDArray(shape, tuple(strides), dtype, stream=stream, gpu_data=mem.own())


def stats():
    """{held_bytes, in_use_bytes, raw_allocations} of the pool (zeros before its first use)."""
    p = _POOL
    if p is None:
        return {"held_bytes": 0, "in_use_bytes": 0, "raw_allocations": 0}
    return {"held_bytes": p.held_bytes, "in_use_bytes": p.in_use_bytes, "raw_allocations": p.raw_allocations}


def trim():
    """Return the pool's free blocks to the driver; the bytes freed."""
    return _POOL.trim() if _POOL is not None else 0

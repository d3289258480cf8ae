"""fastconv/cuda/_alloc.py: the caching device allocator. The pool's bookkeeping runs here with
a fake driver allocation (no GPU, no numba needed); its Numba glue runs on a real GPU only
(bench/gpu_check.sh), where the last test checks that blocks come back and are reused."""
import gc
import os

import pytest

from conftest import hardware, require_cuda_backend
from fastconv.cuda import _alloc


class FakeBlock:
    def __init__(self, size):
        self.size = size


def test_size_classes():
    assert _alloc.size_class(1) == 512 and _alloc.size_class(512) == 512 and _alloc.size_class(513) == 1024
    assert _alloc.size_class(1 << 20) == 1 << 20
    assert _alloc.size_class((1 << 20) + 1) == 2 << 20
    big = 8 * 64 * 224 * 224 * 4                       # a VGG activation at batch 8
    assert big <= _alloc.size_class(big) <= big * 1.02


def test_blocks_are_reused_per_stream_and_size_class():
    made = []
    pool = _alloc.BlockPool(lambda size: made.append(size) or FakeBlock(size))
    a, sa = pool.acquire(1000, "s1")
    assert sa == 1024 and made == [1024] and pool.in_use_bytes == 1024
    pool.release(a, sa, "s1")
    assert pool.in_use_bytes == 0 and pool.held_bytes == 1024
    b, _ = pool.acquire(600, "s1")                      # same class, same stream: reused
    assert b is a and made == [1024]
    c, _ = pool.acquire(600, "s2")                      # another stream never gets it
    assert c is not a and made == [1024, 1024]
    d, _ = pool.acquire(5000, "s1")                     # another class
    assert made == [1024, 1024, 5120] and pool.raw_allocations == 3
    assert pool.in_use_bytes == pool.held_bytes == 1024 + 1024 + 5120


def test_out_of_memory_trims_the_free_blocks_and_retries():
    device = {"left": 4096, "freed": 0}

    class Block:                                        # gives its bytes back when dropped
        def __init__(self, size):
            self.size = size
            device["left"] -= size

        def __del__(self):
            device["left"] += self.size
            device["freed"] += self.size

    def raw(size):
        if size > device["left"]:
            raise MemoryError("out of memory")
        return Block(size)

    pool = _alloc.BlockPool(raw, lambda e: isinstance(e, MemoryError))
    blk, size = pool.acquire(3000, 0)
    pool.release(blk, size, 0)
    del blk
    assert device["left"] == 1024                       # cached, not freed
    other, _ = pool.acquire(3500, 0)                    # new class: fails, trims, retries
    assert device["freed"] == 3072 and device["left"] == 4096 - 3584
    assert pool.held_bytes == pool.in_use_bytes == 3584
    with pytest.raises(MemoryError):                    # still too big after trimming
        pool.acquire(8192, 0)
    with pytest.raises(ValueError):                     # other errors are not swallowed
        _alloc.BlockPool(lambda s: (_ for _ in ()).throw(ValueError("bad")), lambda e: False).acquire(1, 0)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason=hardware("no GPU: the pool serves real GPUs only"))
def test_gpu_arrays_come_back_to_the_pool():
    pytest.importorskip("numba")
    from numba import cuda
    require_cuda_backend(cuda)  # skips without a GPU; a GPU whose CUDA is broken fails
    import numpy as np
    from fastconv.cuda import _device
    a = _device.empty((3, 1000), np.float32, 0)
    ptr = a.device_ctypes_pointer.value
    view = a[1:]                                        # a view keeps the block in use
    del a
    gc.collect()
    b = _device.empty((3, 1000), np.float32, 0)
    assert b.device_ctypes_pointer.value != ptr
    del view, b
    gc.collect()
    before = _alloc.stats()["raw_allocations"]
    c = _device.empty((3000,), np.float32, 0)           # same size class: no driver call
    assert _alloc.stats()["raw_allocations"] == before
    c.copy_to_device(np.arange(3000, dtype=np.float32))
    assert (c.copy_to_host() == np.arange(3000)).all()


GLUE_CHECK = r"""
import contextlib, gc, types
import numpy as np
import fastconv.cuda
from numba import cuda
from numba.cuda.cudadrv import devices, driver
from fastconv.cuda import _alloc

devices._runtime.ensure_context = contextlib.nullcontext     # no driver here: views need none
freed, nxt = [], [0x10000]

class Ctx:                                                   # the driver allocation, faked
    device = types.SimpleNamespace(id=0)
    def memalloc(self, size):
        nxt[0] += size
        mem = driver.AutoFreePointer(self, driver.binding.CUdeviceptr(nxt[0] - size), size,
                                     finalizer=lambda: freed.append(size))
        self.keep = getattr(self, "keep", []) + [mem]
        return mem.own()

cuda.current_context = lambda: Ctx.inst
Ctx.inst = Ctx()
a = _alloc.device_empty((3, 1000), np.float32, 0, "s")
assert a.shape == (3, 1000) and a.strides == (4000, 4)
p = a.device_ctypes_pointer.value
v = a[1:]
del a; gc.collect()
assert _alloc.stats()["in_use_bytes"] == 12288               # the view holds the block
b = _alloc.device_empty((3000,), np.float32, 0, "s")
assert b.device_ctypes_pointer.value != p
del v; gc.collect()
c = _alloc.device_empty((2999,), np.float32, 0, "s")         # same class and stream: reused
assert c.device_ctypes_pointer.value == p and _alloc.stats()["raw_allocations"] == 2
d = _alloc.device_empty((10,), np.float32, 0, "other")       # another stream: its own block
assert _alloc.stats()["raw_allocations"] == 3
r = c.reshape((1, 2999)); del b, c, d; gc.collect()
assert _alloc.stats()["in_use_bytes"] == 12288 and len(_alloc._LIVE) == 1
del r; gc.collect()
assert _alloc.stats()["in_use_bytes"] == 0 and not _alloc._LIVE and not freed
assert _alloc.trim() == 2 * 12288 + 512 and sorted(freed) == [512, 12288, 12288]
print("glue ok")
"""


def test_numba_glue_returns_blocks_when_the_array_and_its_views_are_gone():
    """device_empty with Numba's real driver classes and a faked context (no GPU needed): the
    block returns to the pool only when the array and all its views are collected."""
    import subprocess
    import sys
    from children import child_kwargs
    pytest.importorskip("numba")
    r = subprocess.run([sys.executable, "-c", GLUE_CHECK], capture_output=True, timeout=120,
                       **child_kwargs({**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}))
    assert r.returncode == 0 and "glue ok" in r.stdout, r.stdout[-2000:] + r.stderr[-3000:]

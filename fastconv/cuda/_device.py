"""Device plumbing for the CUDA backend: availability, device_info, streams, array conversion.

Streams: every op launches all of its kernels on ONE stream, chosen from its arguments:
the first argument whose ``__cuda_array_interface__`` carries a ``"stream"`` entry (CAI v3,
e.g. CuPy's current stream) gives the stream; 1 and 2 mean the legacy / per-thread default
streams, any other integer is wrapped with ``cuda.external_stream`` (objects cached per handle).
A PyTorch tensor (whose CAI has no stream entry) gives ``torch.cuda.current_stream()``; a Numba
device array brings its own ``.stream``. Without any, Numba's default stream is used. Because our kernels run on the producer's stream, we convert with
``as_cuda_array(..., sync=False)``: ordering is already guaranteed by the stream, and the
host-side synchronisation Numba would otherwise do on every import is avoided. Results are
allocated on that stream and returned as Numba device arrays (wrap them with
``torch.as_tensor(..., device="cuda")`` / ``cupy.asarray`` without a copy).
"""
from __future__ import annotations

import functools

import numpy as np

from numba import config, cuda

SIMULATOR = bool(config.ENABLE_CUDASIM)


def device_info():
    """None when no usable GPU; else a dict describing it (the simulator says so)."""
    if SIMULATOR:
        return {"name": "Numba CUDA simulator (NUMBA_ENABLE_CUDASIM=1; runs on the CPU)",
                "simulator": True, "compute_capability": None}
    try:
        if not cuda.is_available():
            return None
        dev = cuda.get_current_device()
    except Exception:  # driver present but unusable: report no GPU rather than failing capabilities()
        return None
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return {"name": name, "simulator": False, "compute_capability": tuple(dev.compute_capability),
            "multiprocessors": int(dev.MULTIPROCESSOR_COUNT)}


@functools.lru_cache(maxsize=None)
def multiprocessor_count():
    if SIMULATOR:
        return 2
    return int(cuda.get_current_device().MULTIPROCESSOR_COUNT)


@functools.lru_cache(maxsize=64)
def _stream_from_handle(handle):
    # cached: building a stream object per launch would be a per-call cost in training loops
    if handle == 1:
        return cuda.legacy_default_stream()
    if handle == 2:
        return cuda.per_thread_default_stream()
    return cuda.external_stream(handle)


def stream_of(*arrays):
    """The stream an op on these arrays runs on (see the module docstring)."""
    if SIMULATOR:
        return 0
    for a in arrays:
        if a is None:
            continue
        if cuda.devicearray.is_cuda_ndarray(a):
            s = getattr(a, "stream", 0)
            if s:
                return s
            continue
        if type(a).__module__.startswith("torch"):
            # PyTorch exports CAI v2 without "stream": ask it for its current stream
            import torch
            handle = torch.cuda.current_stream(a.device).cuda_stream
            return _stream_from_handle(handle) if handle else 0
        cai = getattr(a, "__cuda_array_interface__", None)
        if cai is not None and cai.get("stream"):
            return _stream_from_handle(int(cai["stream"]))
    return 0


def as_device(a, name="input"):
    """A Numba device array viewing ``a`` (no copy); None passes through."""
    if a is None:
        return None
    if getattr(type(a), "__cuda_ndarray__", False):
        return a
    if SIMULATOR:
        raise TypeError(f"{name}: the CUDA simulator only accepts numba.cuda device arrays "
                        f"(cuda.to_device), got {type(a).__name__}")
    if not hasattr(a, "__cuda_array_interface__"):
        raise TypeError(f"{name} must be a CUDA array, got {type(a).__name__}")
    return cuda.as_cuda_array(a, sync=False)


def is_c_contiguous(d):
    return bool(d.is_c_contiguous()) if hasattr(d, "is_c_contiguous") else bool(d.flags["C_CONTIGUOUS"])


def stream_key(stream):
    """A hashable key for a stream (handles are ints; Stream objects are cached per handle)."""
    return stream if isinstance(stream, int) else id(stream)


def empty(shape, dtype, stream):
    """An uninitialised C-contiguous array on ``stream``: from the caching allocator on a GPU
    (fastconv.cuda._alloc: no cuMemAlloc / cuMemFree per op), plain Numba under the simulator."""
    if SIMULATOR:
        return cuda.device_array(tuple(int(v) for v in shape), dtype=np.dtype(dtype), stream=stream)
    from fastconv.cuda import _alloc
    return _alloc.device_empty(shape, dtype, stream, stream_key(stream))


def check_out(out, shape, dtype, name="out"):
    """A user-supplied result array: converted, and its shape/dtype/layout checked."""
    if out is None:
        return None
    d = as_device(out, name)
    if tuple(d.shape) != tuple(shape) or np.dtype(d.dtype) != np.dtype(dtype):
        raise ValueError(f"{name} must have shape {tuple(shape)} and dtype {np.dtype(dtype)}, "
                         f"got {tuple(d.shape)} {np.dtype(d.dtype)}")
    if not is_c_contiguous(d):
        raise ValueError(f"{name} must be C-contiguous")
    return d


def launch_1d(n, threads=256):
    """(blocks, threads) covering n elements; small blocks under the simulator, where every
    CUDA thread is a Python thread."""
    if SIMULATOR:
        threads = min(threads, 32)
    return max(1, (n + threads - 1) // threads), threads


_WORKSPACES = {}


def workspace(role, shape, dtype, stream):
    """A scratch array of ``shape`` for one internal role (Winograd U/V/M, weight-gradient
    partial sums), reused across calls so training loops do not allocate per launch.

    One growing buffer per (role, dtype, stream): a later op on the same stream runs after
    the previous one finished with it (stream order), so reuse is safe; other streams get
    their own buffer. The memory held is the largest request seen per role.
    """
    n = 1
    for v in shape:
        n *= int(v)
    key = (role, np.dtype(dtype).str, stream_key(stream))
    buf = _WORKSPACES.get(key)
    if buf is None or buf.size < n:
        buf = empty((max(n, 1),), dtype, stream)
        _WORKSPACES[key] = buf
    return buf[:n].reshape(tuple(int(v) for v in shape))


def release_workspaces():
    """Drop the cached scratch buffers and return the caching allocator's free blocks to the
    driver (memory still held by live arrays stays theirs)."""
    _WORKSPACES.clear()
    if not SIMULATOR:
        from fastconv.cuda import _alloc
        _alloc.trim()


def check_pair(a, b, what=("a", "b")):
    """Two device arrays of one shape and dtype (the element-wise kernels' operands)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{what[0]} {tuple(a.shape)} and {what[1]} {tuple(b.shape)} must have the same shape")
    if np.dtype(a.dtype) != np.dtype(b.dtype):
        raise TypeError(f"{what[0]} has dtype {a.dtype} but {what[1]} has dtype {b.dtype}; they must match")

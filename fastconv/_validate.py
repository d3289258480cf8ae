"""Argument checks shared by every public op. Each failure names the argument and what was
expected, and happens before any kernel touches memory."""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

from fastconv.device import _is_numba_device_array, is_cuda_array

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def array_meta(a, name):
    """(shape, dtype) of a numpy array or of anything exposing __cuda_array_interface__."""
    if isinstance(a, np.ndarray):
        return a.shape, a.dtype
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is not None:
        return tuple(cai["shape"]), np.dtype(cai["typestr"])
    if _is_numba_device_array(a):  # the CUDA simulator's arrays have no __cuda_array_interface__
        return tuple(a.shape), np.dtype(a.dtype)
    raise TypeError(f"{name} must be a numpy array or a CUDA array, got {type(a).__name__}")


def as_float_array(a, name):
    """numpy (or CUDA) float32/float64 array; lists and torch CPU tensors are converted."""
    if not isinstance(a, np.ndarray) and not is_cuda_array(a):
        if hasattr(a, "detach") and hasattr(a, "numpy"):
            a = a.detach().cpu().numpy()
        elif isinstance(a, (list, tuple, numbers.Number)):
            a = np.asarray(a)
        else:
            raise TypeError(f"{name} must be a numpy array or a CUDA array, got {type(a).__name__}")
    _, dtype = array_meta(a, name)
    check_float_dtype(dtype, name)
    return a


def check_float_dtype(dtype, name):
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {dtype}")


def check_same_dtype(a_dtype, b_dtype, a_name, b_name):
    if a_dtype != b_dtype:
        raise TypeError(f"{b_name} has dtype {b_dtype} but {a_name} has dtype {a_dtype}; they must match")


def check_ndim(shape, ndim, name, layout, empty_batch_ok=False):
    """shape has ndim non-empty dimensions; the first may be 0 where empty_batch_ok (as torch,
    conv and pooling accept an empty batch N = 0 but no other empty dimension)."""
    if len(shape) != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {tuple(shape)}")
    if any(d == 0 for d in shape[1 if empty_batch_ok else 0:]):
        raise ValueError(f"{name} must not have empty dimensions{' but N' if empty_batch_ok else ''}, "
                         f"got shape {tuple(shape)}")


# Scalar arguments: ints are int or numpy integers, numbers also float or numpy floats; bool is
# neither (True is an int to Python, but never a size or a rate a caller meant).

def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def check_int(v, name, minimum=None):
    """v as an int, >= minimum when given; TypeError for a non-int (bool included)."""
    if not _is_int(v):
        raise TypeError(f"{name} must be an int, got {v!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def positive_int(v, name):
    """v as an int >= 1."""
    return check_int(v, name, 1)


def finite_number(v, name):
    """v as a float: a finite int or float (numpy's too), never a bool."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v!r}")
    return float(v)


def number_in_range(v, name, low=None, high=None):
    """finite_number(v) within [low, high] (a bound of None is open)."""
    v = finite_number(v, name)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(f"{name} must lie in [{-math.inf if low is None else low:g}, "
                         f"{math.inf if high is None else high:g}], got {v}")
    return v


def int_pair(v, name, minimum):
    """An int or a pair of ints, each >= minimum, as a tuple (h, w)."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if _is_int(v):
        v = (int(v), int(v))
    else:
        try:
            v = tuple(v)
        except TypeError:
            raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}") from None
        if len(v) == 1:
            v = (v[0], v[0])
        if len(v) != 2 or not all(_is_int(e) for e in v):
            raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
        v = (int(v[0]), int(v[1]))
    if v[0] < minimum or v[1] < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def check_out(out, shape, dtype, name="out"):
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{name} must have shape {tuple(shape)} and dtype {dtype}, got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be C-contiguous and writable")


def _physical_memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: leave it to the allocator
        return None


PHYSICAL_MEMORY = _physical_memory_bytes()


def check_fits_in_memory(what, elements, itemsize=4):
    """MemoryError before allocating an array that could not fit in this machine's RAM even at
    itemsize bytes per element. Linux overcommits: such an allocation may succeed and the
    process be killed once the kernel writes it, so it is refused here, by size."""
    if PHYSICAL_MEMORY is not None and elements * itemsize > PHYSICAL_MEMORY:
        raise MemoryError(f"{what} would need {elements * itemsize / 2 ** 30:.1f} GiB ({elements} elements), "
                          f"more than this machine's {PHYSICAL_MEMORY / 2 ** 30:.1f} GiB of memory")

"""Remembered call plans for fastconv.functional's hot ops.

Validating a conv2d call (array types, ranks, dtypes, channel counts, geometry, out=) costs
~10-20 us of Python, more than the kernel of a small layer. A call whose arrays and arguments
exactly match an earlier call that passed validation needs none of it again: functional keeps
what that call resolved (the geometry, the backend function) under a key of

  * each array's exact type (plain numpy.ndarray only), shape, dtype and strides (so
    contiguity and layout; None stays None), and
  * each other argument by type and value, so that equal values of different types
    (True / 1 / 1.0, (1, 1) / (True, 1), np.int64(1) / 1) never share a plan: one of them may
    be invalid.

Anything else (CUDA or torch arrays, lists of arrays, out=, unhashable arguments) takes the
validated path every time. Nothing about array *values* is ever validated by these ops, so
skipping validation cannot let a bad call through.
"""
from __future__ import annotations

import numpy as np

_ndarray = np.ndarray
_PLANS = {}
LIMIT = 4096  # a bound for programs that sweep many shapes; the cache is then simply rebuilt


def find(op, arrays, args, out=None):
    """(key, plan) for a call of op; plan is None on a miss, key None when the call cannot have
    a plan (an array that is not a plain numpy array, an unhashable argument, an out= array)."""
    if out is not None:
        return None, None
    parts = [op]
    for a in arrays:
        if a is None:
            parts.append(None)
        elif type(a) is _ndarray:
            parts += (a.shape, a.dtype, a.strides)
        else:
            return None, None
    for v in args:
        t = type(v)
        if t is int or t is str or v is None:
            parts.append(v)
        elif t is tuple or t is list:
            parts.append((t,) + tuple(map(type, v)) + tuple(v))
        else:
            parts.append((t, v))
    key = tuple(parts)
    try:
        return key, _PLANS.get(key)
    except TypeError:  # an unhashable argument: validate every time
        return None, None


def remember(key, plan):
    """Keep plan for key (a no-op when key is None). Call only after the call validated."""
    if key is None:
        return
    if len(_PLANS) >= LIMIT:
        _PLANS.clear()
    _PLANS[key] = plan


def clear():
    """Forget every plan (tests; nothing else needs it)."""
    _PLANS.clear()

"""Shared pieces of the Hypothesis property tests (tests/test_fuzz_*.py).

Each property draws arguments, decides from torch's rules alone whether they are valid, and
then requires: valid -> the result matches the float64 reference; invalid -> ValueError or
TypeError (MemoryError for sizes past the machine). A crash, a hang, a wrong answer, or a valid
call that raises all fail. The default run is small and derandomized (the same examples every
run, so CI is reproducible); `pytest -m slow` runs the same properties much deeper.
"""
import os
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REJECTED = (ValueError, TypeError, MemoryError)
DEPTHS = [40, pytest.param(800, marks=pytest.mark.slow)]
BAD_DTYPES = (np.float16, np.int32, np.int64, np.complex64, np.bool_)


def run_property(prop, max_examples):
    """Run prop(data) as a Hypothesis test with max_examples examples, derandomized."""
    settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                    HealthCheck.filter_too_much])(given(st.data())(prop))()


def draw_dtype(data, bad_rate=8):
    """float32 or float64, and one time in bad_rate a dtype the ops must refuse."""
    if data.draw(st.integers(0, bad_rate - 1), label="bad dtype?") == 0:
        return np.dtype(data.draw(st.sampled_from(BAD_DTYPES), label="bad dtype"))
    return np.dtype(data.draw(st.sampled_from([np.float32, np.float64]), label="dtype"))


def draw_array(data, shape, dtype, label, low=-1.0, high=1.0):
    """An array of shape and dtype, laid out as drawn: C-contiguous, a transposed view, a strided
    slice of a bigger array, or reversed (negative strides). Values are exact in float16."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label=f"{label} seed"))
    layout = data.draw(st.sampled_from(["contiguous", "transposed", "strided", "reversed"]), label=f"{label} layout")
    shape = tuple(shape)

    def values(s):
        v = rng.uniform(low, high, s)
        return (np.round(v * 64) / 64).astype(dtype) if dtype.kind in "fc" else (v * 4).astype(dtype)

    if layout == "transposed" and len(shape) >= 2:
        return values(shape[:-2] + shape[-1:] + shape[-2:-1]).swapaxes(-1, -2)
    if layout == "strided" and len(shape) >= 1:
        return values(shape[:-1] + (2 * shape[-1],))[..., ::2]
    if layout == "reversed" and len(shape) >= 1:
        return values(shape)[..., ::-1]
    return values(shape)


def expect_rejected(call, why):
    """call must raise ValueError / TypeError / MemoryError (why says which rule was broken)."""
    try:
        result = call()
    except REJECTED as e:
        frame = traceback.extract_tb(e.__traceback__)[-1]
        # raised by fastconv's own checks, not by Python on a mistyped call in the test
        assert f"{os.sep}fastconv{os.sep}" in frame.filename, (why, repr(e), frame)
        return
    raise AssertionError(f"accepted invalid arguments ({why}); returned "
                         f"{getattr(result, 'shape', type(result).__name__)}")

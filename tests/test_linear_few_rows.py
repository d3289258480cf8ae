"""The few-rows linear kernels (_C.linear_few_rows and _C.linear_backward_few_rows: what
functional.linear / linear_backward run for 1-8 rows)
against float64 numpy, on every ISA."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _C
from conftest import ISAS, rel_err

SHAPES = [(1, 1, 1), (1, 15, 3), (2, 16, 17), (3, 77, 33), (4, 1000, 40), (1, 4099, 37), (5, 33, 9),
          (7, 65, 6), (8, 129, 21), (8, 16, 4)]


def tolerance(dtype):
    return 1e-5 if dtype == np.float32 else 1e-12


def check_forward(rows, n_in, n_out, dtype, rng):
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    for bias in (b, None):
        y = np.full((rows, n_out), np.nan, dtype)
        _C.linear_few_rows(x, w, bias, y)
        assert rel_err(y, want + (0 if bias is None else b)) < tolerance(dtype)


def check_backward(rows, n_in, n_out, dtype, rng):
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    dy = rng.standard_normal((rows, n_out)).astype(dtype)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    gx, gw = np.full((rows, n_in), np.nan, dtype), np.full((n_out, n_in), np.nan, dtype)
    _C.linear_backward_few_rows(x, w, dy, gx, gw, False)
    assert rel_err(gx, dy64 @ w64) < tolerance(dtype)
    assert rel_err(gw, dy64.T @ x64) < tolerance(dtype)
    start = rng.standard_normal((n_out, n_in)).astype(dtype)  # accumulate, no input gradient
    gw = start.copy()
    _C.linear_backward_few_rows(x, w, dy, None, gw, True)
    assert rel_err(gw, start + dy64.T @ x64) < tolerance(dtype)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, n_in, n_out", SHAPES)
def test_matches_float64(isa, dtype, rows, n_in, n_out):
    rng = np.random.default_rng(rows * n_in + n_out)
    with fastconv.use_isa(isa):
        check_forward(rows, n_in, n_out, dtype, rng)
        check_backward(rows, n_in, n_out, dtype, rng)


def test_functional_linear_takes_it_for_few_rows(monkeypatch):
    calls = []
    for name in ("linear_few_rows", "linear_backward_few_rows"):
        real = getattr(_C, name)
        monkeypatch.setattr(_C, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    rng = np.random.default_rng(0)
    x, w, b, dy = (rng.standard_normal(s).astype(np.float32) for s in ((8, 30), (7, 30), (7,), (8, 7)))
    np.testing.assert_allclose(F.linear(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-5)
    gx, gw, gb = F.linear_backward(x, w, dy)
    np.testing.assert_allclose(gx, dy @ w, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, dy.T @ x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb, dy.sum(axis=0), rtol=1e-5, atol=1e-5)
    assert calls == ["linear_few_rows", "linear_backward_few_rows"]
    x9 = rng.standard_normal((9, 30)).astype(np.float32)
    F.linear(x9, w, b)  # 9 rows: BLAS
    F.linear_backward(x9, w, rng.standard_normal((9, 7)).astype(np.float32))
    F.linear(x, np.asfortranarray(w), b)  # a transposed weight layout: BLAS
    assert len(calls) == 2


def test_bad_arguments_are_refused():
    x, w, y = np.zeros((9, 3), np.float32), np.zeros((2, 3), np.float32), np.zeros((9, 2), np.float32)
    with pytest.raises(ValueError, match="input must have 1 to 8 rows"):
        _C.linear_few_rows(x, w, None, y)
    with pytest.raises(ValueError, match="out must have shape"):
        _C.linear_few_rows(x[:1], w, None, y)
    with pytest.raises(TypeError, match="weight has dtype"):
        _C.linear_few_rows(x[:1], w.astype(np.float64), None, y[:1])
    gw = np.zeros_like(w)
    with pytest.raises(ValueError, match="input must have 1 to 8 rows"):
        _C.linear_backward_few_rows(x, w, y, None, gw, False)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        _C.linear_backward_few_rows(x[:2], w, y[:3], None, gw, False)
    with pytest.raises(ValueError, match="grad_weight must have shape"):
        _C.linear_backward_few_rows(x[:2], w, y[:2], None, gw[:1], False)
    with pytest.raises(ValueError, match="grad_input must have shape"):
        _C.linear_backward_few_rows(x[:2], w, y[:2], np.zeros((2, 4), np.float32), gw, False)
    with pytest.raises(ValueError, match="grad_weight must be writable"):
        gw.flags.writeable = False
        _C.linear_backward_few_rows(x[:2], w, y[:2], None, gw, False)

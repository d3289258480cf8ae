"""The few-rows linear kernel (_C.linear_few_rows, what functional.linear runs for inference on
1-4 rows through a layer of >= 4 MiB of weights) against float64 numpy, on every ISA."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _C, _cpu
from conftest import ISAS, rel_err


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, n_in, n_out", [(1, 1, 1), (1, 15, 3), (2, 16, 17), (3, 77, 33), (4, 1000, 40),
                                               (1, 4099, 37)])
def test_matches_float64(isa, dtype, rows, n_in, n_out):
    rng = np.random.default_rng(rows * n_in + n_out)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    with fastconv.use_isa(isa):
        for bias in (b, None):
            y = np.full((rows, n_out), np.nan, dtype)
            _C.linear_few_rows(x, w, bias, y)
            assert rel_err(y, want + (0 if bias is None else b)) < tol


def test_functional_linear_takes_it_for_big_layers(monkeypatch):
    monkeypatch.setattr(_cpu, "_STREAMED_WEIGHT_BYTES", 0)  # every layer counts as big
    calls = []
    real = _C.linear_few_rows
    monkeypatch.setattr(_C, "linear_few_rows", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 30), (7, 30), (7,)))
    np.testing.assert_allclose(F.linear(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-5)
    assert calls == [1]
    F.linear(rng.standard_normal((5, 30)).astype(np.float32), w, b)  # 5 rows: BLAS
    F.linear(x, np.asfortranarray(w), b)  # a transposed weight layout: BLAS
    assert calls == [1]


def test_bad_arguments_are_refused():
    x, w, y = np.zeros((5, 3), np.float32), np.zeros((2, 3), np.float32), np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError, match="1 to 4 rows"):
        _C.linear_few_rows(x, w, None, y)
    with pytest.raises(ValueError, match="out must have shape"):
        _C.linear_few_rows(x[:1], w, None, y)
    with pytest.raises(TypeError, match="weight has dtype"):
        _C.linear_few_rows(x[:1], w.astype(np.float64), None, y[:1])

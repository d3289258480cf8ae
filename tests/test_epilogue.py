"""fastconv.functional.epilogue's argument checks (its numerics run under every ISA in
tests/test_kernel_variants.py and on the CUDA simulator in tests/test_cuda_sim.py)."""
import numpy as np
import pytest

import fastconv.functional as F


def arrays(dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 3, 4, 5)).astype(dtype), rng.standard_normal(3).astype(dtype)


@pytest.mark.parametrize("call,error,match", [
    (lambda x, c: F.epilogue(x[0, 0, 0]), ValueError, "at least 2 dimensions"),
    (lambda x, c: F.epilogue(x, activation="gelu"), ValueError, "activation must be one of"),
    (lambda x, c: F.epilogue(x, c[:2]), ValueError, r"scale must have shape \(3,\)"),
    (lambda x, c: F.epilogue(x, None, c.astype(np.float64)), TypeError, "bias has dtype float64"),
    (lambda x, c: F.epilogue(x, residual=x[:1]), ValueError, "residual must have input's shape"),
    (lambda x, c: F.epilogue(x, activation="hardtanh", min_val=1.0, max_val=0.0), ValueError, "min_val"),
    (lambda x, c: F.epilogue(x, out=np.empty((2, 3), np.float32)), ValueError, "out must have shape"),
    (lambda x, c: F.epilogue(x, out=np.empty_like(x).transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)),
     ValueError, "C-contiguous"),
    (lambda x, c: F.epilogue(x.astype(np.int32)), TypeError, "float32 or float64"),
])
def test_bad_arguments_name_themselves(call, error, match):
    x, c = arrays()
    with pytest.raises(error, match=match):
        call(x, c)


def test_out_and_in_place():
    x, c = arrays(np.float64)
    want = np.maximum(x * c[:, None, None] + c[:, None, None], 0)
    out = np.empty_like(x)
    assert F.epilogue(x, c, c, activation="relu", out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-14)
    y = x.copy()
    F.epilogue(y, c, c, activation="relu", out=y)
    np.testing.assert_allclose(y, want, rtol=1e-14)
    np.testing.assert_allclose(F.epilogue(x[:, :, ::2], c, c, activation="relu"), want[:, :, ::2], rtol=1e-14)

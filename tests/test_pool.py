"""Max and average pooling, forward and backward, against the reference and PyTorch."""
import numpy as np
import pytest

import fastconv.functional as F
import fastconv.reference as R
from conftest import rel_err, torch

# (N, C, H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_SHAPES = [
    (1, 1, 4, 4, 2, None, 0, 1, False),
    (1, 3, 9, 7, 2, 2, 0, 1, False),      # 2x2 fast path, odd sizes
    (1, 3, 9, 7, 2, 2, 0, 1, True),       # ceil_mode: partial last windows
    (2, 3, 224 // 8, 224 // 8, 2, 2, 0, 1, False),
    (2, 5, 13, 11, 3, 2, 1, 1, False),
    (1, 4, 13, 11, 3, 2, 1, 1, True),
    (2, 3, 17, 19, (3, 2), (2, 1), (1, 0), 2, False),
    (1, 2, 9, 9, 3, 3, 1, 2, True),
    (3, 2, 7, 5, 1, 1, 0, 1, False),
    (1, 64, 55, 55, 3, 2, 0, 1, False),  # AlexNet pool
]


@pytest.mark.parametrize("shape", MAX_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_against_reference(shape, dtype, rng):
    n, c, h, w, k, s, p, d, ceil = shape
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    x[x > 1.5] = 1.5  # ties: the first maximum must win
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    yr, idxr = R.max_pool2d(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(y, yr)
    np.testing.assert_array_equal(idx, idxr)
    assert idx.dtype == np.int64 and y.dtype == dtype
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(F.max_pool2d_backward(dy, idx, x.shape), R.max_pool2d_backward(dy, idx, x.shape),
                               rtol=1e-6, atol=1e-6)


def test_max_pool_nan_propagates_and_last_nan_index():
    x = np.zeros((1, 1, 2, 4), np.float32)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 1, 1] = np.nan
    x[0, 0, 0, 2] = 5
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 5  # PyTorch: a later NaN replaces an earlier one
    assert y[0, 0, 0, 1] == 5 and idx[0, 0, 0, 1] == 2


def test_max_pool_all_negative_infinity_window():
    x = np.full((1, 1, 2, 2), -np.inf, np.float32)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert np.isneginf(y).all() and idx[0, 0, 0, 0] == 0


# (N, C, H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_SHAPES = [
    (2, 3, 8, 8, 2, None, 0, False, True, None),
    (1, 3, 9, 7, 2, 2, 0, False, True, None),
    (1, 3, 9, 7, 2, 2, 0, False, True, 3),
    (1, 3, 9, 7, 2, 2, 0, True, True, None),
    (2, 3, 13, 11, 3, 2, 1, False, True, None),
    (2, 3, 13, 11, 3, 2, 1, True, False, None),
    (1, 2, 10, 7, (3, 2), (2, 1), (1, 1), True, True, None),
    (1, 2, 10, 7, 3, 2, 1, False, True, 4),
    (2, 6, 28, 28, 2, 2, 0, False, True, None),  # LeNet subsampling
]


@pytest.mark.parametrize("shape", AVG_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool_against_reference(shape, dtype, rng):
    n, c, h, w, k, s, p, ceil, cip, div = shape
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = F.avg_pool2d(x, k, s, p, ceil, cip, div)
    yr = R.avg_pool2d(x, k, s, p, ceil, cip, div)
    assert rel_err(y, yr) < (1e-6 if dtype == np.float32 else 1e-14)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.avg_pool2d_backward(dy, x.shape, k, s, p, ceil, cip, div)
    assert rel_err(dx, R.avg_pool2d_backward(dy, x.shape, k, s, p, ceil, cip, div)) < 1e-6


def test_pool_gradients_match_finite_differences(rng):
    x = rng.standard_normal((1, 2, 7, 6))
    dy = rng.standard_normal(F.avg_pool2d(x, 3, 2, 1, True, False).shape)
    grad = F.avg_pool2d_backward(dy, x.shape, 3, 2, 1, True, False)
    y, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    dym = rng.standard_normal(y.shape)
    gradm = F.max_pool2d_backward(dym, idx, x.shape)
    eps = 1e-6
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up, upm = (F.avg_pool2d(x, 3, 2, 1, True, False) * dy).sum(), (F.max_pool2d(x, 3, 2, 1) * dym).sum()
        x[i] = old - eps
        dn, dnm = (F.avg_pool2d(x, 3, 2, 1, True, False) * dy).sum(), (F.max_pool2d(x, 3, 2, 1) * dym).sum()
        x[i] = old
        assert abs((up - dn) / (2 * eps) - grad[i]) < 1e-6
        assert abs((upm - dnm) / (2 * eps) - gradm[i]) < 1e-6


def test_unbatched_pooling(rng):
    x = rng.standard_normal((3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(F.max_pool2d(x, 2), F.max_pool2d(x[None], 2)[0])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2), F.avg_pool2d(x[None], 2)[0])


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("shape", MAX_SHAPES, ids=str)
def test_max_pool_against_torch(shape, rng):
    n, c, h, w, k, s, p, d, ceil = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    x[x > 1.0] = 1.0
    ty, tidx = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p, d, ceil, return_indices=True)
    y, idx = F.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("shape", AVG_SHAPES, ids=str)
def test_avg_pool_against_torch(shape, rng):
    n, c, h, w, k, s, p, ceil, cip, div = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil, cip, div)
    y = F.avg_pool2d(x, k, s, p, ceil, cip, div)
    assert rel_err(y, ty.detach().numpy()) < 1e-6
    dy = rng.standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.from_numpy(dy))
    assert rel_err(F.avg_pool2d_backward(dy, x.shape, k, s, p, ceil, cip, div), tx.grad.numpy()) < 1e-6

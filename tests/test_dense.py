"""The dense/element-wise ops nets need, against the reference and torch."""
import numpy as np
import pytest

import fastconv.functional as F
import fastconv.reference as R
from conftest import rel_err, torch


def test_linear_and_backward(rng):
    x = rng.standard_normal((5, 7)).astype(np.float32)
    w = rng.standard_normal((3, 7)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    assert rel_err(F.linear(x, w, b), R.linear(x, w, b)) < 1e-6
    dy = rng.standard_normal((5, 3)).astype(np.float32)
    gx, gw, gb = F.linear_backward(x, w, dy)
    assert rel_err(gx, dy.astype(np.float64) @ w) < 1e-6
    assert rel_err(gw, dy.T.astype(np.float64) @ x) < 1e-6
    assert rel_err(gb, dy.sum(0)) < 1e-6


DERIVATIVE_FROM_OUTPUT = {  # float64 d activation / dx, written in terms of y = activation(x)
    "relu": lambda y: (y > 0).astype(np.float64),
    "sigmoid": lambda y: y * (1 - y),
    "tanh": lambda y: 1 - y * y,
}


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh"])
def test_activations_and_backward(name, rng):
    # |x| < ~4: the derivatives stay well away from 0, so a relative error means something
    x = rng.standard_normal((4, 9)).astype(np.float32) * 1.5
    y = getattr(F, name)(x)
    ref = getattr(R, name)(x)
    assert y.dtype == np.float32
    assert np.abs(y - ref).max() <= 2 * np.finfo(np.float32).eps * np.abs(ref).max()
    dy = rng.standard_normal(x.shape).astype(np.float32)
    got = getattr(F, name + "_backward")(dy, y)
    assert got.dtype == np.float32
    assert rel_err(got, dy * DERIVATIVE_FROM_OUTPUT[name](ref)) < 1e-6
    x64 = x.astype(np.float64)
    assert rel_err(getattr(F, name + "_backward")(dy.astype(np.float64), getattr(F, name)(x64)),
                   dy * DERIVATIVE_FROM_OUTPUT[name](ref)) < 1e-14


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturating_activations_stay_finite(name):
    x = np.array([-700, -100, -30, 30, 100, 700], np.float32)  # exp overflows float32 past ~88
    y = getattr(F, name)(x)
    assert np.isfinite(y).all()
    # subnormal results (sigmoid(-100) ~ 4e-44) keep only their absolute precision
    np.testing.assert_allclose(y, getattr(R, name)(x), rtol=1e-7, atol=np.finfo(np.float32).tiny)


def test_relu_propagates_nan():
    assert np.isnan(F.relu(np.array([np.nan, -1, 2], np.float32))[0])


def test_softmax_family_and_cross_entropy(rng):
    logits = (rng.standard_normal((6, 10)) * 50).astype(np.float32)
    target = rng.integers(0, 10, 6)
    assert rel_err(F.softmax(logits, 1), R.softmax(logits, 1)) < 1e-5
    assert rel_err(F.log_softmax(logits, 1), R.log_softmax(logits, 1)) < 1e-5
    for red in ("mean", "sum", "none"):
        assert rel_err(F.cross_entropy(logits, target, reduction=red), R.cross_entropy(logits, target, reduction=red)) < 1e-5
    g = F.cross_entropy_backward(logits.astype(np.float64), target)
    eps = 1e-6
    l64 = logits.astype(np.float64)
    for i in [(0, 0), (3, int(target[3])), (5, 9)]:
        up, dn = l64.copy(), l64.copy()
        up[i] += eps
        dn[i] -= eps
        assert abs((R.cross_entropy(up, target) - R.cross_entropy(dn, target)) / (2 * eps) - g[i]) < 1e-6


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_cross_entropy_label_smoothing_against_torch(rng):
    logits = rng.standard_normal((8, 5)).astype(np.float32)
    target = rng.integers(0, 5, 8)
    tl = torch.from_numpy(logits).requires_grad_()
    loss = torch.nn.functional.cross_entropy(tl, torch.from_numpy(target), label_smoothing=0.1)
    loss.backward()
    assert abs(F.cross_entropy(logits, target, label_smoothing=0.1) - loss.item()) < 1e-5
    assert rel_err(F.cross_entropy_backward(logits, target, label_smoothing=0.1), tl.grad.numpy()) < 1e-5

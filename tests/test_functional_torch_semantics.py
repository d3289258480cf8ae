"""The ops and options added for torch.nn.functional conformance, against fastconv.reference
(float64) on many seeded random shapes: cross_entropy (weights, ignore_index, K-dimensional
input, class-probability targets, label smoothing, unbatched), adaptive average / max
pooling, dropout, unbatched gradients and 0-d / zero-size inputs. Parity with torch itself
is tests/test_opinfo.py; here the oracle is fastconv.reference and finite differences."""
import os

import numpy as np
import pytest

import fastconv.functional as F
from fastconv import reference as R
from conftest import hardware

REDUCTIONS = ("mean", "sum", "none")


def _random_cross_entropy_case(rng, probabilities):
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    extra = tuple(int(v) for v in rng.integers(1, 4, size=rng.integers(0, 3)))
    x = rng.standard_normal((n, c) + extra)
    if probabilities:
        t = rng.random(x.shape)
        return x, t / t.sum(axis=1, keepdims=True), {}
    t = rng.integers(0, c, size=(n,) + extra)
    ignore = int(rng.integers(0, c))
    t[rng.random(t.shape) < 0.3] = ignore + 100  # some ignored positions (an index outside [0, C))
    return x, t, {"ignore_index": ignore + 100}


@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
def test_cross_entropy_matches_reference(probabilities):
    rng = np.random.default_rng(11)
    for case in range(40):
        x, t, kw = _random_cross_entropy_case(rng, probabilities)
        kw["weight"] = rng.random(x.shape[1]) + 0.5 if case % 2 else None
        kw["label_smoothing"] = (0.0, 0.25)[case % 4 // 2]
        for reduction in REDUCTIONS:
            want = R.cross_entropy(x, t, reduction=reduction, **kw)
            for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
                cast = {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
                tt = t.astype(dtype) if probabilities else t
                got = F.cross_entropy(x.astype(dtype), tt, reduction=reduction, **cast)
                assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == dtype
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("probabilities", [False, True], ids=["indices", "probabilities"])
def test_cross_entropy_backward_matches_finite_differences(probabilities):
    rng = np.random.default_rng(12)
    eps = 1e-6
    for case in range(12):
        x, t, kw = _random_cross_entropy_case(rng, probabilities)
        kw["weight"] = rng.random(x.shape[1]) + 0.5 if case % 2 else None
        kw["label_smoothing"] = 0.1 * (case % 3)
        for reduction in REDUCTIONS:
            loss_shape = np.shape(R.cross_entropy(x, t, reduction=reduction, **kw))
            g = rng.standard_normal(loss_shape)
            got = F.cross_entropy_backward(x, t, reduction=reduction, grad_output=g, **kw)
            want = np.empty_like(x)
            for i in np.ndindex(x.shape):
                up, dn = x.copy(), x.copy()
                up[i] += eps
                dn[i] -= eps
                diff = R.cross_entropy(up, t, reduction=reduction, **kw) - R.cross_entropy(dn, t, reduction=reduction, **kw)
                want[i] = np.sum(g * diff) / (2 * eps)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_cross_entropy_matches_torch_where_opinfo_has_no_samples():
    """label_smoothing with weights, ignore_index and K-dimensional input together."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(18)
    for case in range(24):
        x, t, kw = _random_cross_entropy_case(rng, probabilities=case % 2 == 1)
        kw.update(weight=rng.random(x.shape[1]) + 0.5, label_smoothing=0.3, reduction=REDUCTIONS[case % 3])
        xt = torch.tensor(x, requires_grad=True)
        want = torch.nn.functional.cross_entropy(xt, torch.tensor(t), **{k: torch.tensor(v) if k == "weight" else v
                                                                          for k, v in kw.items()})
        g = rng.standard_normal(tuple(want.shape))
        (want_grad,) = torch.autograd.grad(want, xt, torch.tensor(g))
        np.testing.assert_allclose(F.cross_entropy(x, t, **kw), want.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(F.cross_entropy_backward(x, t, **kw, grad_output=g), want_grad.numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_cross_entropy_unbatched_and_all_ignored():
    rng = np.random.default_rng(13)
    x = rng.standard_normal(4)
    for t in (np.array(2), np.full(4, 0.25)):
        for reduction in REDUCTIONS:
            got = F.cross_entropy(x, t, reduction=reduction)
            assert np.shape(got) == ()
            np.testing.assert_allclose(got, R.cross_entropy(x, t, reduction=reduction), rtol=1e-12)
        np.testing.assert_allclose(F.cross_entropy_backward(x, t)[None],
                                   F.cross_entropy_backward(x[None], t[None]), rtol=1e-12)
    # every position ignored: 'mean' is 0/0 = NaN, as in torch; the gradient is zero
    x2, t2 = rng.standard_normal((3, 4)), np.full(3, -100)
    assert np.isnan(F.cross_entropy(x2, t2))
    assert not F.cross_entropy_backward(x2, t2).any()


def test_cross_entropy_rejects_bad_arguments():
    x, t = np.zeros((2, 3)), np.array([0, 1])
    with pytest.raises(TypeError, match="weight"):
        F.cross_entropy(x, t, "sum")  # the old positional reduction
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, t, np.ones(4))
    with pytest.raises(ValueError, match="ignore_index"):
        F.cross_entropy(x, np.full((2, 3), 1 / 3), ignore_index=1)
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(x, np.array([0, 3]))
    with pytest.raises(ValueError, match="target"):
        F.cross_entropy(np.zeros((2, 3, 4)), t)
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="grad_output"):
        F.cross_entropy_backward(x, t, reduction="none", grad_output=np.ones(3))


def _random_pool_input(rng):
    shape = tuple(int(v) for v in rng.integers(1, 4, size=2)) + tuple(int(v) for v in rng.integers(1, 10, size=2))
    out = tuple(int(v) for v in rng.integers(1, 8, size=2))  # also larger than the input
    return rng.standard_normal(shape), out


def test_adaptive_pools_match_reference():
    rng = np.random.default_rng(14)
    for _ in range(40):
        x, out = _random_pool_input(rng)
        x[rng.random(x.shape) < 0.05] = np.nan
        np.testing.assert_allclose(F.adaptive_avg_pool2d(x, out), R.adaptive_avg_pool2d(x, out), rtol=1e-12)
        y, idx = F.adaptive_max_pool2d(x, out, return_indices=True)
        ry, ridx = R.adaptive_max_pool2d(x, out)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(idx, ridx)
        dy = rng.standard_normal(y.shape)
        np.testing.assert_allclose(F.adaptive_max_pool2d_backward(dy, idx, x.shape),
                                   R.max_pool2d_backward(dy, ridx, x.shape), rtol=1e-12)
        # the backward of a linear map is its adjoint: <A x, dy> = <x, A^T dy>
        xf = np.nan_to_num(x)
        dx = F.adaptive_avg_pool2d_backward(dy, x.shape)
        np.testing.assert_allclose(np.sum(F.adaptive_avg_pool2d(xf, out) * dy), np.sum(xf * dx), rtol=1e-10)
        # unbatched and float32 give the same answers
        np.testing.assert_allclose(F.adaptive_avg_pool2d(x[0].astype(np.float32), out),
                                   R.adaptive_avg_pool2d(x[:1], out)[0], rtol=1e-5, atol=1e-6)


def test_adaptive_output_size_arguments():
    x = np.arange(2 * 6 * 5, dtype=np.float64).reshape(1, 2, 6, 5)
    assert F.adaptive_avg_pool2d(x, (None, 3)).shape == (1, 2, 6, 3)
    assert F.adaptive_max_pool2d(x, 4).shape == (1, 2, 4, 4)
    for bad, err in ((0, ValueError), ((2, 3, 4), ValueError), ("7", TypeError), (None, TypeError)):
        with pytest.raises(err, match="output_size"):
            F.adaptive_avg_pool2d(x, bad)


def test_dropout_torch_semantics_and_seeded_generator():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((200, 500)).astype(np.float32) + 5  # no zeros
    y, mask = F.dropout(x, 0.3, generator=7, return_mask=True)
    assert y.dtype == x.dtype and mask.dtype == x.dtype
    np.testing.assert_allclose(y, R.dropout(x, mask != 0, 0.3), rtol=1e-6)
    assert abs((y == 0).mean() - 0.3) < 0.01  # 100,000 Bernoulli draws: std ~0.0015
    np.testing.assert_array_equal(F.dropout(x, 0.3, generator=np.random.default_rng(7)), y)
    assert not np.array_equal(F.dropout(x, 0.3, generator=8), y)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(F.dropout_backward(dy, mask), dy * mask)
    assert F.dropout(x, 0.5, training=False) is x
    assert not F.dropout(x, 1.0).any()
    z = x.copy()
    assert F.dropout(z, 0.5, inplace=True, generator=1) is z and (z == 0).any()
    for bad, err in ((1.5, ValueError), (-0.1, ValueError), ("0.5", ValueError)):
        with pytest.raises(err, match="p"):
            F.dropout(x, bad)
    with pytest.raises(TypeError, match="generator"):
        F.dropout(x, generator=np.random.RandomState(0))


def test_unbatched_gradients_equal_batched_ones():
    rng = np.random.default_rng(16)
    x, w = rng.standard_normal((3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    dy = rng.standard_normal(F.conv2d(x, w, stride=2, padding=1).shape)
    np.testing.assert_array_equal(F.conv2d_input(x.shape, w, dy, 2, 1), F.conv2d_input((1,) + x.shape, w, dy[None], 2, 1)[0])
    np.testing.assert_array_equal(F.conv2d_weight(x, w.shape, dy, 2, 1), F.conv2d_weight(x[None], w.shape, dy[None], 2, 1))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(F.max_pool2d_backward(y, idx, x.shape), F.max_pool2d_backward(y[None], idx[None], (1,) + x.shape)[0])
    p = F.avg_pool2d(x, 3, 2, 1, divisor_override=-2)
    np.testing.assert_allclose(p, R.avg_pool2d(x[None], 3, 2, 1, divisor_override=-2)[0], rtol=1e-12)
    np.testing.assert_array_equal(F.avg_pool2d_backward(p, x.shape, 3, 2, 1), F.avg_pool2d_backward(p[None], (1,) + x.shape, 3, 2, 1)[0])
    with pytest.raises(ValueError, match="grad_output"):
        F.conv2d_input(x.shape, w, dy[None], 2, 1)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x, 3, divisor_override=0)


def test_zero_d_and_zero_size_inputs():
    for dtype in (np.float32, np.float64):
        s = np.array(-1.5, dtype)
        for op in (F.relu, F.sigmoid, F.tanh):
            assert op(s).shape == ()
        assert F.relu_backward(np.array(2.0, dtype), np.array(1.0, dtype)).shape == ()
        v = np.array([-1.0, 2.0], dtype)
        assert F.relu(v, True) is v and v.tolist() == [0.0, 2.0]
        assert F.softmax(s, 0) == 1 and F.log_softmax(s, -1) == 0 and F.softmax(s, 0).dtype == dtype
        assert F.softmax_backward(np.array(1.0, dtype), np.array(1.0, dtype), 0) == 0
        empty = np.zeros((5, 0, 0), dtype)
        for op in (F.softmax, F.log_softmax, F.relu, F.sigmoid, F.tanh):
            assert op(empty).shape == empty.shape
        y = F.linear(np.zeros((0, 3), dtype), np.ones((4, 3), dtype), np.ones(4, dtype))
        assert y.shape == (0, 4)
        gx, gw, gb = F.linear_backward(np.zeros((0, 3), dtype), np.ones((4, 3), dtype), y)
        assert gx.shape == (0, 3) and not gw.any() and not gb.any()
    assert F.softmax(np.zeros(3, np.float32), dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="dim"):
        F.softmax(np.array(1.0), 1)


def test_empty_batch():
    """N = 0 works for convolution and pooling, as in torch; other empty dimensions do not."""
    x, w = np.zeros((0, 3, 6, 5), np.float32), np.ones((4, 3, 3, 3), np.float32)
    y = F.conv2d(x, w, padding=1)
    assert y.shape == (0, 4, 6, 5)
    assert F.conv2d_input(x.shape, w, y, padding=1).shape == x.shape
    dw = F.conv2d_weight(x, w.shape, y, padding=1)
    assert dw.shape == w.shape and not dw.any()
    p, idx = F.max_pool2d(x, 2, return_indices=True)
    assert p.shape == idx.shape == (0, 3, 3, 2) and idx.dtype == np.int64
    assert F.max_pool2d_backward(p, idx, x.shape).shape == x.shape
    a = F.avg_pool2d(x, 2, ceil_mode=True)
    assert a.shape == (0, 3, 3, 3) and F.avg_pool2d_backward(a, x.shape, 2, ceil_mode=True).shape == x.shape
    for size, hw in ((2, (2, 2)), ((4, 3), (4, 3))):
        assert F.adaptive_avg_pool2d(x, size).shape == F.adaptive_max_pool2d(x, size).shape == (0, 3) + hw
    with pytest.raises(ValueError, match="empty"):
        F.max_pool2d(np.zeros((1, 0, 4, 4), np.float32), 2)
    with pytest.raises(ValueError, match="empty"):
        F.conv2d(np.zeros((1, 3, 0, 4), np.float32), w)
    with pytest.raises(ValueError, match="dim"):
        F.softmax(np.array(1.0), 1)


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1", reason=hardware("a GPU is present: runs on Numba's CUDA simulator"))
@pytest.mark.usefixtures("fast_simulator")
def test_cuda_arrays_get_the_reshape_based_options_and_name_the_rest():
    from numba import cuda
    rng = np.random.default_rng(17)
    x, w = rng.standard_normal((2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    dy = rng.standard_normal((3, 3, 3))
    np.testing.assert_allclose(F.conv2d_input(x.shape, cuda.to_device(w), cuda.to_device(dy)).copy_to_host(),
                               F.conv2d_input(x.shape, w, dy), rtol=1e-12)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(cuda.to_device(x[None]), 3).copy_to_host(),
                               R.adaptive_avg_pool2d(x[None], (3, 3)), rtol=1e-12)
    np.testing.assert_allclose(F.avg_pool2d(cuda.to_device(x), 3, 2, 1, divisor_override=-2).copy_to_host(),
                               R.avg_pool2d(x[None], 3, 2, 1, divisor_override=-2)[0], rtol=1e-12)
    y, mask = F.dropout(cuda.to_device(x), 0.5, generator=3, return_mask=True)
    np.testing.assert_allclose(y.copy_to_host(), R.dropout(x, mask.copy_to_host() != 0, 0.5), rtol=1e-12)
    logits, t = cuda.to_device(rng.standard_normal((2, 3))), cuda.to_device(np.array([0, 2]))
    with pytest.raises(TypeError, match="weight"):
        F.cross_entropy(logits, t, cuda.to_device(np.ones(3)))
    with pytest.raises(TypeError, match="CUDA"):
        F.adaptive_max_pool2d(cuda.to_device(x), 2)

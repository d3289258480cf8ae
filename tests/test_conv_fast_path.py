"""The remembered-plan fast path of fastconv.functional (fastconv._plans) and the remembered
algorithm choice of fastconv._cpu: a repeated call gives the same result as a validated one, and
any change of array type, shape, dtype, strides/contiguity or argument (also to an equal value of
another type) misses the plan and is validated again."""
from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import _cpu, _plans
from fastconv import functional as F
from fastconv import reference as ref


@pytest.fixture(autouse=True)
def _fresh_plans():
    _plans.clear()
    yield
    _plans.clear()


def _rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _conv_ref(x, w, b=None, **kw):
    return ref.conv2d(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64), **kw)


def test_repeated_conv2d_hits_a_plan_and_stays_correct_on_new_values():
    rng = np.random.default_rng(0)
    x, w, b = _rand(rng, (2, 3, 9, 8)), _rand(rng, (4, 3, 3, 3)), _rand(rng, (4,))
    F.conv2d(x, w, b, 2, 1)
    assert len(_plans._PLANS) == 1
    for _ in range(3):  # new values, same key: the plan runs and computes the new result
        x, w, b = _rand(rng, x.shape), _rand(rng, w.shape), _rand(rng, b.shape)
        np.testing.assert_allclose(F.conv2d(x, w, b, 2, 1), _conv_ref(x, w, b, stride=2, padding=1),
                                   rtol=1e-4, atol=1e-4)
    assert len(_plans._PLANS) == 1


def test_changed_shape_dtype_contiguity_or_type_misses_the_plan():
    rng = np.random.default_rng(1)
    x, w = _rand(rng, (2, 3, 8, 8)), _rand(rng, (4, 3, 3, 3))
    F.conv2d(x, w)
    # another shape: a new plan with the new geometry
    x2 = _rand(rng, (2, 3, 10, 7))
    np.testing.assert_allclose(F.conv2d(x2, w), _conv_ref(x2, w), rtol=1e-4, atol=1e-4)
    # a non-contiguous view of the same shape: its own plan, still right
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert xt.shape == x.shape and not xt.flags.c_contiguous
    np.testing.assert_allclose(F.conv2d(xt, w), _conv_ref(xt, w), rtol=1e-4, atol=1e-4)
    assert len(_plans._PLANS) == 3
    # another dtype: validated, so a mismatch still raises
    with pytest.raises(TypeError, match="weight has dtype float32 but input has dtype float64"):
        F.conv2d(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.conv2d(x.astype(np.float16), w)
    # float64 throughout: a plan of its own with float64 results
    y64 = F.conv2d(x.astype(np.float64), w.astype(np.float64))
    assert y64.dtype == np.float64
    # a torch-like or list input is never planned, but still converted and checked
    with pytest.raises(TypeError, match="input must be a numpy array"):
        F.conv2d(object(), w)


def test_changed_or_equal_but_differently_typed_args_miss_the_plan():
    rng = np.random.default_rng(2)
    x, w = _rand(rng, (1, 2, 7, 7)), _rand(rng, (2, 2, 3, 3))
    F.conv2d(x, w, None, 1, 1)
    np.testing.assert_allclose(F.conv2d(x, w, None, 2, 1), _conv_ref(x, w, stride=2, padding=1), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(F.conv2d(x, w, None, 1, 0), _conv_ref(x, w), rtol=1e-4, atol=1e-4)
    # True == 1 and 1.0 == 1 in Python, but the validated path rejects them: they must not hit 1's plan
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, w, None, True, 1)
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, w, None, (1.0, 1), 1)
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, w, None, (True, 1), 1)
    # an unknown algorithm after a valid one with the same arrays
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, w, None, 1, 1, algorithm="fft")
    # a bias appears: a new plan, which adds it
    b = _rand(rng, (2,))
    np.testing.assert_allclose(F.conv2d(x, w, b, 1, 1), _conv_ref(x, w, b, padding=1), rtol=1e-4, atol=1e-4)
    # a bias of the wrong shape after a right one
    with pytest.raises(ValueError, match="bias must have shape"):
        F.conv2d(x, w, _rand(rng, (3,)), 1, 1)
    # unhashable arguments are validated every time and work
    np.testing.assert_allclose(F.conv2d(x, w, None, [1, 1], [1, 1]), _conv_ref(x, w, padding=1), rtol=1e-4,
                               atol=1e-4)


def test_out_and_unbatched_calls_bypass_plans_and_stay_right():
    rng = np.random.default_rng(3)
    x, w = _rand(rng, (1, 2, 6, 6)), _rand(rng, (3, 2, 3, 3))
    out = np.empty((1, 3, 4, 4), np.float32)
    assert F.conv2d(x, w, out=out) is out
    assert F.conv2d(x, w, out=out) is out
    with pytest.raises(ValueError, match="out must have shape"):
        F.conv2d(x, w, out=np.empty((1, 3, 5, 4), np.float32))
    np.testing.assert_allclose(F.conv2d(x[0], w), _conv_ref(x, w)[0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(F.conv2d(x[0], w), _conv_ref(x, w)[0], rtol=1e-4, atol=1e-4)


def test_gradient_ops_repeat_correctly_and_validate_changes():
    rng = np.random.default_rng(4)
    x, w = _rand(rng, (2, 3, 7, 6), np.float64), _rand(rng, (4, 3, 3, 3), np.float64)
    for _ in range(2):
        dy = _rand(rng, (2, 4, 5, 4), np.float64)
        np.testing.assert_allclose(F.conv2d_input(x.shape, w, dy), ref.conv2d_input(x.shape, w, dy), rtol=1e-9,
                                   atol=1e-9)
        np.testing.assert_allclose(F.conv2d_weight(x, w.shape, dy), ref.conv2d_weight(x, w.shape, dy), rtol=1e-9,
                                   atol=1e-9)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        F.conv2d_input((2, 3, 8, 6), w, dy)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        F.conv2d_weight(x, (4, 3, 2, 3), dy)
    with pytest.raises(TypeError, match="grad_output has dtype float32"):
        F.conv2d_input(x.shape, w, dy.astype(np.float32))
    with pytest.raises(ValueError, match="input_size must be positive"):
        F.conv2d_input((2, 3, 0, 6), w, dy)


def test_pool_dense_and_relu_repeat_correctly_and_validate_changes():
    rng = np.random.default_rng(5)
    x = _rand(rng, (2, 3, 6, 6))
    for _ in range(2):
        x = _rand(rng, x.shape)
        y, idx = F.max_pool2d(x, 2, 2, return_indices=True)
        ry, ridx = ref.max_pool2d(x, 2, 2)
        np.testing.assert_array_equal(y, ry)
        np.testing.assert_array_equal(idx, ridx)
        np.testing.assert_array_equal(F.max_pool2d(x, 2, 2), y)  # return_indices=False: its own plan
        dy = _rand(rng, y.shape)
        np.testing.assert_allclose(F.max_pool2d_backward(dy, idx, x.shape),
                                   ref.max_pool2d_backward(dy, idx, x.shape), rtol=1e-6)
    for divisor in (None, None, 3, 3):  # repeated calls, then a changed argument
        x = _rand(rng, x.shape)
        kw = dict(count_include_pad=False, divisor_override=divisor)
        ya = F.avg_pool2d(x, 3, 2, 1, **kw)
        np.testing.assert_allclose(ya, ref.avg_pool2d(x, 3, 2, 1, **kw), rtol=1e-5, atol=1e-6)
        dya = _rand(rng, ya.shape)
        np.testing.assert_allclose(F.avg_pool2d_backward(dya, x.shape, 3, 2, 1, **kw),
                                   ref.avg_pool2d_backward(dya, x.shape, 3, 2, 1, **kw), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x, 3, 2, 1, count_include_pad=False, divisor_override=0)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        F.avg_pool2d_backward(dya[:, :, :1], x.shape, 3, 2, 1, count_include_pad=False, divisor_override=3)
    with pytest.raises(TypeError, match="indices must have dtype int64"):
        F.max_pool2d_backward(dy, idx.astype(np.int32), x.shape)
    with pytest.raises(TypeError, match="ceil_mode|kernel_size|stride"):
        F.max_pool2d(x, 2.0, 2)

    a, wl, bl = _rand(rng, (5, 8)), _rand(rng, (3, 8)), _rand(rng, (3,))
    for _ in range(2):
        a = _rand(rng, a.shape)
        np.testing.assert_allclose(F.linear(a, wl, bl), a @ wl.T + bl, rtol=1e-5, atol=1e-6)
        g = _rand(rng, (5, 3))
        gx, gw, gb = F.linear_backward(a, wl, g, True)
        np.testing.assert_allclose(gx, g @ wl, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gw, g.T @ a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gb, g.sum(0), rtol=1e-5, atol=1e-6)
        assert F.linear_backward(a, wl, g, False)[2] is None
    with pytest.raises(ValueError, match="in_features"):
        F.linear(_rand(rng, (5, 7)), wl)
    with pytest.raises(TypeError, match="bias has dtype"):
        F.linear(a, wl, bl.astype(np.float64))

    for inplace in (False, True, True):
        v = _rand(rng, (4, 5))
        expected = np.maximum(v, 0)
        r = F.relu(v, inplace=inplace)
        np.testing.assert_array_equal(r, expected)
        assert (r is v) == inplace
    g = _rand(rng, (4, 5))
    np.testing.assert_array_equal(F.relu_backward(g, expected), np.where(expected > 0, g, 0))
    with pytest.raises(ValueError, match="output must have the shape"):
        F.relu_backward(g, expected[:3])
    with pytest.raises(TypeError, match="float32 or float64"):
        F.relu(v.astype(np.int32))


def test_algorithm_choice_is_remembered_per_isa_and_thread_count():
    from fastconv._geometry import conv_geometry
    g = conv_geometry((1, 64, 28, 28), (64, 64, 3, 3), 1, 1, 1, 1)
    _cpu._CHOICES.clear()
    first = _cpu.choose_algorithm("auto", (1, 64, 28, 28), (64, 64, 3, 3), g)
    assert first == _cpu._heuristic((1, 64, 28, 28), (64, 64, 3, 3), g, False)
    assert len(_cpu._CHOICES) == 1
    assert _cpu.choose_algorithm("auto", (1, 64, 28, 28), (64, 64, 3, 3), g) == first
    assert len(_cpu._CHOICES) == 1
    threads = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1 if threads != 1 else 2)
        _cpu.choose_algorithm("auto", (1, 64, 28, 28), (64, 64, 3, 3), g)
    finally:
        fastconv.set_num_threads(threads)
    assert len(_cpu._CHOICES) == 2
    with fastconv.use_isa("avx2" if fastconv._C.active_isa() != "avx2" else "scalar"):
        other = _cpu.choose_algorithm("auto", (1, 64, 28, 28), (64, 64, 3, 3), g)
        assert other == _cpu._heuristic((1, 64, 28, 28), (64, 64, 3, 3), g, False)
    assert len(_cpu._CHOICES) == 3
    # a request that raises is not remembered, and raises again
    g7 = conv_geometry((1, 3, 8, 8), (4, 3, 7, 7), 1, 0, 1, 1)
    for _ in range(2):
        with pytest.raises(ValueError, match="cannot run this convolution"):
            _cpu.choose_algorithm("winograd_f4", (1, 3, 8, 8), (4, 3, 7, 7), g7)
    assert len(_cpu._CHOICES) == 3

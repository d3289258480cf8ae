"""Direct convolution and its gradients against the float64 reference, every ISA path."""
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fastconv
import fastconv.functional as F
import fastconv.reference as R
from conftest import ISAS, rel_err, tolerance, torch

LECTURE_IMAGE = np.array([[3, 3, 5, 1, 2, 3], [3, 4, 0, 1, 4, 5], [5, 1, 2, 3, 2, 0],
                          [5, 0, 4, 5, 2, 1], [3, 4, 3, 1, 0, 2], [2, 0, 4, 3, 5, 1]], np.float32)
LECTURE_KERNEL = np.array([[0, 1, 0], [-1, 2, -1], [0, 1, 0]], np.float32)


def test_lecture_worked_example(isa):
    once = F.conv2d(LECTURE_IMAGE[None, None], LECTURE_KERNEL[None, None])
    np.testing.assert_array_equal(once[0, 0], [[9, 2, 2, 6], [-1, 4, 8, 7], [-4, 8, 8, 0], [2, 9, 7, 4]])
    twice = F.conv2d(once, LECTURE_KERNEL[None, None])
    np.testing.assert_array_equal(twice[0, 0], [[11, 15], [25, 23]])


def test_receptive_field_of_two_3x3_convs_is_5x5():
    # Perturbing one input pixel changes exactly the outputs whose 5x5 window contains it.
    base = F.conv2d(F.conv2d(LECTURE_IMAGE[None, None], LECTURE_KERNEL[None, None]), LECTURE_KERNEL[None, None])
    for i in range(6):
        for j in range(6):
            img = LECTURE_IMAGE.copy()
            img[i, j] += 1
            out = F.conv2d(F.conv2d(img[None, None], LECTURE_KERNEL[None, None]), LECTURE_KERNEL[None, None])
            changed = out[0, 0] != base[0, 0]
            for a in range(2):
                for b in range(2):
                    sees = a <= i < a + 5 and b <= j < b + 5
                    assert not changed[a, b] or sees


def test_sobel_responds_to_horizontal_edge():
    img = np.zeros((1, 1, 10, 12), np.float32)
    img[:, :, 5:, :] = 1.0  # dark top, bright bottom: one horizontal edge between rows 4 and 5
    sobel = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32)[None, None]
    out = F.conv2d(img, sobel)[0, 0]
    rows = np.abs(out).sum(axis=1)
    assert set(np.nonzero(rows)[0]) == {3, 4}          # output rows whose window straddles the edge
    assert np.all(out[3:5] == -4)                        # uniform response along the edge
    vertical = F.conv2d(img, sobel.transpose(0, 1, 3, 2).copy())[0, 0]
    assert np.all(vertical == 0)                         # a vertical-edge detector sees nothing


# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
SHAPES = [
    (1, 1, 7, 7, 1, 3, 3, 1, 0, 1, 1),
    (2, 3, 17, 19, 8, 3, 3, 1, 1, 1, 1),
    (1, 13, 31, 29, 13, 3, 3, 1, "same", 1, 1),
    (1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1),
    (3, 3, 32, 32, 64, 3, 3, 1, 1, 1, 1),
    (2, 4, 11, 13, 6, 5, 5, 2, 2, 1, 2),
    (1, 6, 9, 9, 6, 3, 3, 1, 1, 2, 6),          # depthwise, dilated
    (2, 8, 16, 16, 16, 3, 3, 2, 1, 1, 8),       # depthwise multiplier 2, strided
    (3, 13, 23, 29, 25, 7, 7, 4, 3, 1, 1),
    (1, 3, 67, 61, 16, 11, 11, 4, 2, 1, 1),     # AlexNet-like first layer
    (2, 1, 32, 32, 6, 5, 5, 1, 0, 1, 1),        # LeNet conv1
    (2, 6, 14, 14, 16, 5, 5, 1, 0, 1, 1),       # LeNet conv2
    (1, 16, 13, 13, 24, 1, 1, 1, 0, 1, 1),      # 1x1
    (2, 12, 10, 10, 12, 3, 3, 1, 2, 2, 2),      # dilation 2, groups 2
    (1, 5, 8, 12, 7, 2, 4, 1, "same", 1, 1),    # even kernel, asymmetric 'same'
    (1, 4, 41, 37, 36, 3, 3, 1, 1, 1, 1),       # K not a multiple of the micro-tile rows
]


def _check_all(shape, dtype, rng):
    n, c, h, w, k, r, s, stride, padding, dilation, groups = shape
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    args = (stride, padding, dilation, groups)
    y = F.conv2d(x, wt, b, *args)
    ref_pad = padding
    if padding == "same":  # the reference takes symmetric padding: pad the extra row/col by hand
        total = (dilation * (r - 1), dilation * (s - 1))
        ref_pad = (total[0] // 2, total[1] // 2)
        xr = np.pad(x, ((0, 0), (0, 0), (0, total[0] % 2), (0, total[1] % 2)))
    else:
        xr = x
    yr = R.conv2d(xr, wt, b, stride, ref_pad, dilation, groups)
    assert y.shape == yr.shape and y.dtype == dtype
    red = (c // groups) * r * s
    assert rel_err(y, yr) < tolerance(dtype, red)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.conv2d_input(x.shape, wt, dy, *args)
    dxr = R.conv2d_input(xr.shape, wt, dy, stride, ref_pad, dilation, groups)[:, :, :h, :w]
    assert rel_err(dx, dxr) < tolerance(dtype, (k // groups) * r * s)
    dw = F.conv2d_weight(x, wt.shape, dy, *args)
    dwr = R.conv2d_weight(xr, wt.shape, dy, stride, ref_pad, dilation, groups)
    assert rel_err(dw, dwr) < tolerance(dtype, n * y.shape[2] * y.shape[3])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_against_reference_every_isa(shape, isa, rng):
    _check_all(shape, np.float32, rng)


@pytest.mark.parametrize("shape", SHAPES[:8], ids=lambda s: "x".join(map(str, s)))
def test_float64(shape, rng):
    _check_all(shape, np.float64, rng)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), cg=st.integers(1, 5), kg=st.integers(1, 7), groups=st.integers(1, 3),
       h=st.integers(1, 20), w=st.integers(1, 20), r=st.integers(1, 5), s=st.integers(1, 5),
       stride=st.integers(1, 3), pad=st.integers(0, 3), dil=st.integers(1, 2),
       isa_name=st.sampled_from(ISAS), seed=st.integers(0, 2**31))
def test_hypothesis_configurations(n, cg, kg, groups, h, w, r, s, stride, pad, dil, isa_name, seed):
    # a kernel that does not fit is the bad-input tests' case: not an example here
    assume(dil * (r - 1) + 1 <= h + 2 * pad and dil * (s - 1) + 1 <= w + 2 * pad)
    with fastconv.use_isa(isa_name):
        _check_all((n, cg * groups, h, w, kg * groups, r, s, stride, pad, dil, groups), np.float32,
                   np.random.default_rng(seed))


@pytest.mark.slow
@pytest.mark.parametrize("c,k,hw", [(3, 64, 56), (64, 64, 56), (128, 256, 28), (512, 512, 14)])
def test_vgg_layer_shapes(c, k, hw, rng):
    _check_all((2, c, hw, hw, k, 3, 3, 1, 1, 1, 1), np.float32, rng)


def test_gradients_match_finite_differences(rng):
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    args = (2, 1, 1, 1)
    dy = rng.standard_normal(F.conv2d(x, w, None, *args).shape)
    loss = lambda x_, w_: float((F.conv2d(x_, w_, None, *args) * dy).sum())
    dx = F.conv2d_input(x.shape, w, dy, *args)
    dw = F.conv2d_weight(x, w.shape, dy, *args)
    eps = 1e-6
    for arr, grad in ((x, dx), (w, dw)):
        for _ in range(12):
            i = tuple(rng.integers(0, d) for d in arr.shape)
            old = arr[i]
            arr[i] = old + eps
            up = loss(x, w)
            arr[i] = old - eps
            down = loss(x, w)
            arr[i] = old
            assert abs((up - down) / (2 * eps) - grad[i]) < 1e-6 * max(1, abs(grad[i]))


def test_non_contiguous_inputs_and_out(rng):
    x = rng.standard_normal((2, 12, 10, 8)).astype(np.float32).transpose(0, 3, 1, 2)  # NHWC memory
    w = rng.standard_normal((3, 16, 3, 3)).astype(np.float32)[:, ::2]                 # strided channels
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    out = np.empty((2, 3, 12, 10), np.float32)
    y = F.conv2d(x, w, padding=1, out=out)
    assert y is out
    assert rel_err(y, R.conv2d(x, w, padding=1)) < 1e-5


def test_unbatched_input(rng):
    x = rng.standard_normal((3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(F.conv2d(x, w), F.conv2d(x[None], w)[0])


def test_nan_and_inf_propagate():
    x = np.ones((1, 1, 7, 7), np.float32)
    x[0, 0, 5, 5] = np.nan
    x[0, 0, 0, 0] = np.inf
    y = F.conv2d(x, np.ones((1, 1, 3, 3), np.float32))[0, 0]
    assert np.isnan(y).sum() == 4 and np.isnan(y[3:, 3:]).all()  # the 4 windows holding the NaN
    assert np.isposinf(y[0, 0]) and np.isfinite(y[1:, 1:][~np.isnan(y[1:, 1:])]).all()


def test_two_python_threads_at_once(rng):
    x = rng.standard_normal((2, 32, 40, 40)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    expected = F.conv2d(x, w, padding=1)
    results = [None] * 4

    def run(i):
        for _ in range(3):
            results[i] = F.conv2d(x, w, padding=1)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r_ in results:
        np.testing.assert_array_equal(r_, expected)


def test_thread_count_does_not_change_results(rng):
    x = rng.standard_normal((1, 24, 20, 20)).astype(np.float32)
    w = rng.standard_normal((40, 24, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((1, 40, 20, 20)).astype(np.float32)
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        one = (F.conv2d(x, w, padding=1), F.conv2d_weight(x, w.shape, dy, padding=1))
        fastconv.set_num_threads(2)
        two = (F.conv2d(x, w, padding=1), F.conv2d_weight(x, w.shape, dy, padding=1))
    finally:
        fastconv.set_num_threads(before)
    np.testing.assert_array_equal(one[0], two[0])
    assert rel_err(two[1], one[1]) < 1e-5


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_against_torch(shape, rng):
    n, c, h, w, k, r, s, stride, padding, dilation, groups = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(wt).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b), stride, padding, dilation, groups)
    y = F.conv2d(x, wt, b, stride, padding, dilation, groups)
    tol = tolerance(np.float32, (c // groups) * r * s) * 2
    assert rel_err(y, ty.detach().numpy()) < tol
    dy = rng.standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.from_numpy(dy))
    assert rel_err(F.conv2d_input(x.shape, wt, dy, stride, padding, dilation, groups), tx.grad.numpy()) < tol
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, stride, padding, dilation, groups), tw.grad.numpy()) < \
        tolerance(np.float32, n * y.shape[2] * y.shape[3]) * 2


@pytest.mark.parametrize("stride", [1, 2])
def test_repeated_calls_are_bitwise_deterministic(stride, rng):
    # Training must be reproducible from a seed: the weight gradient's per-thread partial sums
    # are added in a fixed order, whatever thread ran which chunk.
    x = rng.standard_normal((4, 16, 23, 23)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    dy = rng.standard_normal(F.conv2d(x, w, None, stride, 1).shape).astype(np.float32)
    first = [F.conv2d_weight(x, w.shape, dy, stride, 1), F.conv2d_input(x.shape, w, dy, stride, 1)]
    for _ in range(5):
        np.testing.assert_array_equal(F.conv2d_weight(x, w.shape, dy, stride, 1), first[0])
        np.testing.assert_array_equal(F.conv2d_input(x.shape, w, dy, stride, 1), first[1])

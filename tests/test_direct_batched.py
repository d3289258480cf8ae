"""The batched stride-1 direct path (csrc/conv/direct/direct_batched.cpp: one GEMM over every image's
pixels, for small maps with >= 64 output channels per group): which shapes take it, and its
forward, input gradient and weight gradient against the float64 reference on every ISA."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
import fastconv.reference as R
from fastconv import _C
from conftest import ISAS, rel_err, tolerance


def paths(n, c, h, w, k, r, stride=1, pad=1, dil=1, groups=1, dtype=np.float32, s=None):
    """{pass: implementation} that conv2d_direct* runs for this shape (an r x s kernel, square
    unless s is given)."""
    s = r if s is None else s
    oh = (h + 2 * pad - dil * (r - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dil * (s - 1) - 1) // stride + 1
    x = np.zeros((n, c, h, w), dtype)
    wt = np.zeros((k, c // groups, r, s), dtype)
    y = np.zeros((n, k, oh, ow), dtype)
    return {p: _C.conv2d_direct_path(x, wt, y, (stride, stride), (pad, pad), (dil, dil), groups, p)
            for p in ("forward", "input_grad", "weight_grad")}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_maps_with_many_channels_take_the_batched_path(dtype):
    # VGG-16's last layers at batch 8: every pass of 3x3 maps (72 pixels: the GEMM runs with
    # pixels as rows, 72 = 6 x 12, rather than 96 padded columns), forward and dw of 7x7 maps
    # (392 pixels: columns as usual).
    p3 = paths(8, 512, 3, 3, 512, 3, dtype=dtype)
    assert p3 == {"forward": "batched_pixel_rows", "input_grad": "batched_pixel_rows", "weight_grad": "batched"}
    p7 = paths(8, 512, 7, 7, 512, 3, dtype=dtype)
    assert p7["forward"] == p7["weight_grad"] == "batched"


@pytest.mark.parametrize("shape,expected", [
    # stride 2: the gradients stay on im2col; the forward of small strided maps is batched
    # too (issue 21: the batch's real pixels, gathered at the stride; test_strided.py)
    (dict(n=8, c=512, h=6, w=6, k=512, r=3, stride=2), {"im2col", "batched_pixel_rows"}),
    (dict(n=4, c=64, h=5, w=7, k=64, r=3, stride=2, pad=2), {"im2col", "batched_pixel_rows"}),
    # depthwise keeps its own kernels
    (dict(n=8, c=128, h=3, w=3, k=128, r=3, groups=128), {"depthwise_dense"}),
    (dict(n=8, c=128, h=6, w=6, k=256, r=3, stride=2, groups=128), {"depthwise"}),
    # few output channels (LeNet c3): the gather would cost more than the padded columns
    (dict(n=64, c=6, h=14, w=14, k=16, r=5, pad=0), {"shifted"}),
    # large maps: the shifted rows waste little
    (dict(n=8, c=64, h=56, w=56, k=64, r=3), {"shifted"}),
])
def test_shapes_that_keep_their_old_path(shape, expected):
    assert set(paths(**shape).values()) == expected


def check_against_reference(n, c, h, w, k, r, s, pad, dil, groups, dtype, rng, stride=1):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    args = (stride, pad, dil, groups)
    y = F.conv2d(x, wt, b, *args, algorithm="direct")
    yr = R.conv2d(x, wt, b, *args)
    assert y.shape == yr.shape and y.dtype == dtype
    assert rel_err(y, yr) < tolerance(dtype, (c // groups) * r * s)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.conv2d_input(x.shape, wt, dy, *args, algorithm="direct")
    assert rel_err(dx, R.conv2d_input(x.shape, wt, dy, *args)) < tolerance(dtype, (k // groups) * r * s)
    dw = F.conv2d_weight(x, wt.shape, dy, *args)
    assert rel_err(dw, R.conv2d_weight(x, wt.shape, dy, *args)) < tolerance(dtype, n * y.shape[2] * y.shape[3])


# (N, C, H, W, K, R, S, padding, dilation, groups): small maps, >= 64 channels per group so the
# batched path runs (checked below); odd sizes, K not a multiple of any micro-tile's rows.
BATCHED_SHAPES = [
    (8, 64, 3, 3, 64, 3, 3, 1, 1, 1),
    (1, 64, 3, 3, 70, 3, 3, 1, 1, 1),        # N=1, 70 rows
    (3, 66, 5, 7, 67, 3, 3, 2, 1, 1),        # padding 2, odd everything
    (2, 128, 4, 5, 128, 3, 3, 1, 1, 2),      # groups 2
    (5, 64, 7, 7, 96, 5, 5, 2, 1, 1),        # 5x5 kernel
    (4, 64, 6, 6, 64, 3, 3, 2, 2, 1),        # dilation 2
    (2, 80, 5, 5, 64, 1, 1, 1, 1, 1),        # 1x1, padding 1 (padding 0 is a plain GEMM: test_pointwise.py)
    (3, 64, 6, 5, 64, 3, 2, 0, 1, 1),        # padding 0, non-square kernel
    (130, 64, 3, 3, 64, 3, 3, 1, 1, 1),      # 1170 columns: more than one column block
    (4, 64, 7, 7, 96, 3, 3, 1, 1, 1),        # 196 pixels, 96 rows: columns as usual
    (2, 96, 6, 7, 128, 3, 3, 1, 1, 1),       # 84 pixels: pixels as rows, both passes
    (3, 128, 3, 4, 132, 3, 3, 1, 1, 2),      # pixels as rows, groups 2, a partial column panel
    (8, 64, 4, 4, 72, 3, 3, 1, 1, 1),        # 128 pixels: columns as usual, input gradient too
]


@pytest.mark.parametrize("shape", BATCHED_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_batched_shapes_run_batched(shape):
    n, c, h, w, k, r, s, pad, dil, groups = shape
    assert paths(n, c, h, w, k, r, 1, pad, dil, groups, s=s)["forward"] in ("batched", "batched_pixel_rows")


def test_batched_shapes_cover_both_gemm_orientations():
    """The reference checks below run both orientations of the batched GEMM, each pass."""
    seen = {(p, v) for n, c, h, w, k, r, s, pad, dil, groups in BATCHED_SHAPES
            for p, v in paths(n, c, h, w, k, r, 1, pad, dil, groups, s=s).items()}
    for orientation in ("batched", "batched_pixel_rows"):
        assert ("forward", orientation) in seen and ("input_grad", orientation) in seen


@pytest.mark.parametrize("shape", BATCHED_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_batched_against_reference_every_isa(shape, isa, rng):
    check_against_reference(*shape, np.float32, rng)


@pytest.mark.parametrize("shape", BATCHED_SHAPES[:6], ids=lambda s: "x".join(map(str, s)))
def test_batched_float64(shape, rng):
    check_against_reference(*shape, np.float64, rng)


@pytest.mark.parametrize("isa_name", ISAS)
def test_batched_random_shapes(isa_name, rng):
    checked = 0
    with fastconv.use_isa(isa_name):
        for _ in range(8):
            n, h, w = rng.integers(1, 6), rng.integers(1, 8), rng.integers(1, 8)
            groups = int(rng.integers(1, 3))
            cg, kg = int(rng.integers(64, 80)), int(rng.integers(64, 80))
            r, pad, dil = int(rng.choice([1, 3, 5])), int(rng.integers(0, 3)), int(rng.integers(1, 3))
            if dil * (r - 1) + 1 > min(h, w) + 2 * pad:
                continue
            check_against_reference(n, cg * groups, h, w, kg * groups, r, r, pad, dil, groups, np.float32, rng)
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("stride", [2, 3])
def test_strided_small_maps_stay_correct(stride, rng):
    # (3x3 stride 3 has no zero taps as a 1x1 conv on its 9 phase images: test_strided.py; the
    # forward of both strides runs the batched GEMM over the batch's real pixels)
    got = paths(4, 64, 7, 9, 64, 3, stride=stride)
    assert got.pop("forward") in ("batched", "batched_pixel_rows")
    assert set(got.values()) == ({"im2col"} if stride == 2 else {"polyphase"})
    check_against_reference(4, 64, 7, 9, 64, 3, 3, 1, 1, 1, np.float32, rng, stride=stride)


@pytest.mark.parametrize("shape", [
    (8, 64, 3, 3, 64, 3, 1, 1),   # batched
    (2, 8, 12, 12, 8, 3, 1, 1),   # shifted
    (2, 8, 12, 12, 8, 3, 2, 1),   # im2col, stride 2
])
def test_weight_grad_overwrites_its_output(shape, rng):
    # The weight-gradient GEMMs write dw on their first reduction slice instead of zeroing it
    # first: whatever the output buffer held (here NaN) must not leak into the result.
    n, c, h, w, k, r, stride, pad = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    o = (h + 2 * pad - r) // stride + 1
    dy = rng.standard_normal((n, k, o, o)).astype(np.float32)
    dw = np.full((k, c, r, r), np.nan, np.float32)
    _C.conv2d_direct_weight_grad(x, dy, dw, (stride, stride), (pad, pad), (1, 1), 1)
    assert rel_err(dw, R.conv2d_weight(x, dw.shape, dy, stride, pad)) < tolerance(np.float32, n * o * o)


def test_path_query_names_a_bad_pass():
    x, w, y = np.zeros((1, 64, 3, 3), np.float32), np.zeros((64, 64, 3, 3), np.float32), np.zeros((1, 64, 3, 3), np.float32)
    with pytest.raises(ValueError, match="pass must be"):
        _C.conv2d_direct_path(x, w, y, (1, 1), (1, 1), (1, 1), 1, "backward")

"""The dense 3x3 depthwise path (csrc/conv/depthwise/depthwise_dense.*): stride 1 or 2, padding 1,
one output channel per input channel, computed along the flattened output plane with
out-of-plane taps masked off (stride 2 on the source's four phases, its input gradient as dx's
four phases zipped into dx). Which shapes take it; forward (with bias and the fused epilogue),
input gradient and weight gradient
against the float64 reference under every ISA on shapes whose widths put row ends in every lane
of a vector (1..70 wide, odd and even: planes narrower than a vector, vectors spanning several
rows, a plane's end mid-vector); NaN reaching exactly the outputs that read it; blocks of a
plane across thread counts; torch.

float32 tolerances as in test_depthwise.py: a forward / input-gradient value sums 9 products
(2e-5 leaves room for cancellation); a weight-gradient value sums N*H*W products in per-lane
partial sums (1e-4).
"""
import numpy as np
import pytest

import fastconv.functional as F
import fastconv.reference as R
from fastconv import _C, _cpu
from conftest import conv_passes_at_threads, rel_err, torch

TOL = {np.float64: dict(fwd=1e-12, dw=1e-12), np.float32: dict(fwd=2e-5, dw=1e-4)}
KW = lambda c, stride=1: dict(stride=stride, padding=1, groups=c)


def random_shapes(count, seed):
    """(n, c, h, w): widths biased to vector edges (lanes 8 and 16)."""
    rng = np.random.default_rng(seed)
    edges = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49]
    shapes = []
    for _ in range(count):
        w = int(rng.choice(edges)) if rng.random() < 0.5 else int(rng.integers(1, 71))
        shapes.append((int(rng.integers(1, 4)), int(rng.integers(2, 7)), int(rng.integers(1, 30)), w))
    return shapes


# MobileNetV2's maps scaled down, one-row and one-column planes, a 1x1 plane, a plane of exactly
# one vector, planes whose body (vectors touching neither the first nor the last row) is empty.
SHAPES = [(1, 8, 14, 14), (2, 5, 7, 7), (1, 3, 28, 28), (3, 2, 1, 1), (1, 4, 1, 37), (2, 3, 29, 1),
          (1, 2, 4, 4), (1, 3, 2, 16), (2, 2, 3, 17), (1, 2, 56, 56)] + random_shapes(30, 20261208)


def case(shape, dtype, rng, stride=1):
    n, c, h, w = shape
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c, 1, 3, 3)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    dy = rng.standard_normal((n, c, (h - 1) // stride + 1, (w - 1) // stride + 1)).astype(dtype)
    return x, wt, b, dy


def paths(x, wt, y=None, stride=1, padding=1, dilation=1, groups=None):
    pair = lambda v: (v, v)
    g = groups or x.shape[1]
    if y is None:
        oh, ow = ((n + 2 * padding - dilation * (k - 1) - 1) // stride + 1 for n, k in zip(x.shape[2:], wt.shape[2:]))
        y = np.zeros((x.shape[0], wt.shape[0], oh, ow), x.dtype)
    return {p: _C.conv2d_direct_path(x, wt, y, pair(stride), pair(padding), pair(dilation), g, p)
            for p in ("forward", "input_grad", "weight_grad")}


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "n{}c{}_{}x{}".format(*s))
def test_matches_reference(shape, dtype, stride, isa, rng):
    x, wt, b, dy = case(shape, dtype, rng, stride)
    kw = KW(shape[1], stride)
    assert set(paths(x, wt, stride=stride).values()) == {"depthwise_dense"}
    tol = TOL[dtype]
    assert rel_err(F.conv2d(x, wt, b, **kw), R.conv2d(x, wt, b, **kw)) < tol["fwd"]
    assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), R.conv2d_input(x.shape, wt, dy, **kw)) < tol["fwd"]
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, **kw), R.conv2d_weight(x, wt.shape, dy, **kw)) < tol["dw"]


def test_only_its_geometry_takes_it():
    x = np.zeros((1, 4, 9, 9), np.float32)
    w3 = np.zeros((4, 1, 3, 3), np.float32)
    assert set(paths(x, w3).values()) == {"depthwise_dense"}
    assert set(paths(x, w3, stride=2).values()) == {"depthwise_dense"}
    others = [
        (np.zeros((8, 1, 3, 3), np.float32), dict()),             # two outputs per channel
        (w3, dict(stride=3)),                                     # stride 3
        (w3, dict(padding=0)), (w3, dict(padding=2)),             # other paddings
        (w3, dict(dilation=2, padding=2)),                        # dilated
        (np.zeros((4, 1, 5, 5), np.float32), dict(padding=2)),    # 5x5
        (np.zeros((4, 2, 3, 3), np.float32), dict(groups=2)),     # grouped, not depthwise
    ]
    for wt, geometry in others:
        assert "depthwise_dense" not in paths(x, wt, **geometry).values(), geometry


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("width", [5, 16, 21, 70])  # narrower than a vector, one vector, across rows, many
def test_nan_reaches_exactly_the_outputs_whose_window_holds_it(width, stride, isa):
    """The masks that replace the padding never let a value reach an output that does not read it:
    not across a row end, not across the plane's end into the next channel."""
    kw = KW(3, stride)
    for row, col in ((0, 0), (4, width - 1), (8, width // 2), (3, 1)):
        x = np.ones((2, 3, 9, width), np.float32)
        x[1, 1, row, col] = np.nan
        wt = np.ones((3, 1, 3, 3), np.float32)
        y = F.conv2d(x, wt, None, **kw)
        reaches = R.conv2d(np.isnan(x).astype(np.float64), wt.astype(np.float64), None, **kw) > 0
        np.testing.assert_array_equal(np.isnan(y), reaches)
        dy = np.ones(y.shape, np.float32)
        dy[1, 1, row // stride, col // stride] = np.nan
        dx = F.conv2d_input(x.shape, wt, dy, **kw)
        reaches_dx = R.conv2d_input(x.shape, wt.astype(np.float64), np.isnan(dy).astype(np.float64), **kw) > 0
        np.testing.assert_array_equal(np.isnan(dx), reaches_dx)
        dw = F.conv2d_weight(x, wt.shape, np.ones(y.shape, np.float32), **kw)
        want = R.conv2d_weight(np.isnan(x).astype(np.float64), wt.shape, np.ones(y.shape), **kw) > 0
        np.testing.assert_array_equal(np.isnan(dw), want)


def test_weight_gradient_ignores_what_no_tap_reads(isa, rng):
    """dy zero past a row's end and past the plane: Inf in x at the border must reach only the
    taps that read it (a lane that multiplied it by a masked-off zero would give NaN)."""
    x = rng.standard_normal((1, 2, 6, 13)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    x[0, 0, :, -1] = np.inf  # the last column: read by taps s=1 (its own column) and s=2 (the left neighbour)
    got = F.conv2d_weight(x, (2, 1, 3, 3), dy, **KW(2))
    want = R.conv2d_weight(x.astype(np.float64), (2, 1, 3, 3), dy.astype(np.float64), **KW(2))
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    assert np.isfinite(got[0, 0, :, 0]).all() and np.isfinite(got[1]).all()


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("threads", [1, 3, 8])
def test_blocks_of_a_plane_across_threads(threads, stride, rng):
    """Few planes split each plane into element blocks (the weight gradient then sums one partial
    per block, in block order; stride 2 splits each block's phase rows): every thread count gives
    the reference."""
    x, wt, b, dy = case((1, 2, 75, 70), np.float64, rng, stride)
    kw = KW(2, stride)
    for g, w in conv_passes_at_threads(threads, x, wt, b, dy, kw):
        assert rel_err(g, w) < 1e-12


def test_epilogue_residual_is_read_at_each_block(rng):
    """The in-register epilogue reads the residual at the output's own offset, planes split
    into blocks or not (batch 1 with two channels: blocks; 40 channels: whole planes)."""
    for c, stride in ((2, 1), (40, 1), (2, 2), (40, 2)):
        x = rng.standard_normal((1, c, 65, 67)).astype(np.float32)
        wt = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
        conv = R.conv2d(x.astype(np.float64), wt.astype(np.float64), None, **KW(c, stride))
        res = rng.standard_normal(conv.shape).astype(np.float32)
        y = np.empty(conv.shape, np.float32)
        _C.conv2d_direct(x, wt, None, y, (stride, stride), (1, 1), (1, 1), c,
                         **_cpu.conv_epilogue_kwargs("relu", None, res, False))
        assert rel_err(y, np.maximum(conv + res, 0)) < 2e-5


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("c,h,stride", [(32, 28, 1), (16, 14, 1), (24, 7, 1), (8, 57, 1), (24, 28, 2), (16, 15, 2)])
def test_matches_torch(c, h, stride, isa, rng):
    x = rng.standard_normal((2, c, h, h)).astype(np.float32)
    wt = (rng.standard_normal((c, 1, 3, 3)) / 3).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(wt, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b), stride, 1, 1, c)
    dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.from_numpy(dy))
    kw = KW(c, stride)
    assert rel_err(F.conv2d(x, wt, b, **kw), ty.detach().numpy()) < 2e-5
    assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), tx.grad.numpy()) < 2e-5
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, **kw), tw.grad.numpy()) < 1e-4

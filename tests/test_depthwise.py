"""The depthwise family (csrc/conv/depthwise/: one input channel per group, any channel
multiplier): which shapes take it, and its forward, input gradient and weight gradient against the
float64 reference on random shapes under every ISA, and against torch.

The 3x3 padding-1 shapes with one output per channel take the dense path at stride 1 and 2
(tests/test_depthwise_dense.py covers it in depth). The other shapes cover both of its windows: narrow planes (output width <= 64, window <= 32 KB) are
windowed whole ("flat"), wider ones stream rows through a ring; 3x3 and 5x5 have their own
kernels, any other R x S the generic one. Widths run from 1 to 70 so that every vector tail
(1..15 lanes of 16, 1..7 of 8) and maps narrower than one vector occur.

float32 tolerances (rel_err: max |error| / max |reference|): a forward or input-gradient value
sums at most M*R*S <= 2*49 products, rounded once each into a float32 accumulator, so its error
stays below ~sqrt(98) * 6e-8 relative to the terms' scale: 2e-5 leaves room for cancellation. A
weight-gradient value sums N*OH*OW products (up to ~10^4 here) in per-lane float32 partial sums
added at the end: error ~ sqrt(N*OH*OW) * 6e-8 relative, hence 1e-4.
"""
import numpy as np
import pytest

import fastconv.functional as F
import fastconv.reference as R
from fastconv import _C
from conftest import ISAS, conv_passes_at_threads, rel_err, torch

TOL = {np.float64: dict(fwd=1e-12, dx=1e-12, dw=1e-12), np.float32: dict(fwd=2e-5, dx=2e-5, dw=1e-4)}


def out_size(n, k, stride, pad, dil):
    return (n + 2 * pad - dil * (k - 1) - 1) // stride + 1


def random_shapes(count, seed):
    """(n, c, m, h, w, r, s, stride, pad, dil): c channels, m output channels per input channel."""
    rng = np.random.default_rng(seed)
    shapes = []
    while len(shapes) < count:
        r = int(rng.choice([1, 2, 3, 3, 3, 5, 5, 7]))
        s = r if rng.random() < 0.75 else int(rng.choice([1, 2, 3, 4]))
        stride = int(rng.choice([1, 1, 2, 2, 3]))
        dil = int(rng.choice([1, 1, 1, 2, 3]))
        pad = int(rng.integers(0, max(r, s) + 2))  # up to past half the kernel
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 71))
        if out_size(h, r, stride, pad, dil) < 1 or out_size(w, s, stride, pad, dil) < 1:
            continue
        shapes.append((int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.choice([1, 2])), h, w, r, s,
                       stride, pad, dil))
    return shapes


# Chosen shapes first: MobileNetV2's (scaled down), a plane wide enough for the ring path with row
# blocks (batch 1, two channels), a 1x1 window, maps of one pixel, strides larger than the window.
SHAPES = [
    (1, 4, 1, 14, 14, 3, 3, 1, 1, 1), (1, 6, 1, 14, 14, 3, 3, 2, 1, 1), (2, 3, 1, 7, 7, 3, 3, 1, 1, 1),
    (1, 2, 1, 40, 70, 3, 3, 1, 1, 1), (1, 2, 2, 41, 69, 3, 3, 2, 1, 1), (1, 3, 1, 20, 67, 5, 5, 1, 2, 1),
    (2, 3, 2, 9, 66, 5, 5, 2, 2, 1), (1, 2, 1, 9, 70, 4, 2, 3, 3, 2), (2, 2, 1, 1, 1, 3, 3, 1, 1, 1),
    (1, 3, 2, 5, 5, 1, 1, 2, 0, 1), (1, 2, 1, 12, 13, 2, 2, 3, 0, 1), (3, 2, 1, 16, 17, 3, 3, 2, 4, 2),
] + random_shapes(36, 20261207)


def shape_id(shape):
    n, c, m, h, w, r, s, stride, pad, dil = shape
    return f"n{n}c{c}m{m}_{h}x{w}_k{r}x{s}_s{stride}p{pad}d{dil}"


def case(shape, dtype, rng):
    n, c, m, h, w, r, s, stride, pad, dil = shape
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c * m, 1, r, s)).astype(dtype)
    b = rng.standard_normal(c * m).astype(dtype)
    kw = dict(stride=stride, padding=pad, dilation=dil, groups=c)
    dy = rng.standard_normal((n, c * m, out_size(h, r, stride, pad, dil), out_size(w, s, stride, pad, dil)))
    return x, wt, b, dy.astype(dtype), kw


def paths(x, wt, y, kw):
    pair = lambda v: (v, v)
    return {p: _C.conv2d_direct_path(x, wt, y, pair(kw["stride"]), pair(kw["padding"]), pair(kw.get("dilation", 1)),
                                     kw["groups"], p) for p in ("forward", "input_grad", "weight_grad")}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
def test_matches_reference(shape, dtype, isa, rng):
    x, wt, b, dy, kw = case(shape, dtype, rng)
    n, c, m, h, w, r, s, stride, pad, dil = shape
    dense = (m, r, s, pad, dil) == (1, 3, 3, 1, 1) and stride in (1, 2)  # tests/test_depthwise_dense.py
    assert set(paths(x, wt, dy, kw).values()) == {"depthwise_dense" if dense else "depthwise"}
    tol = TOL[dtype]
    y = F.conv2d(x, wt, b, **kw)
    assert y.dtype == dtype
    assert rel_err(y, R.conv2d(x, wt, b, **kw)) < tol["fwd"]
    assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), R.conv2d_input(x.shape, wt, dy, **kw)) < tol["dx"]
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, **kw), R.conv2d_weight(x, wt.shape, dy, **kw)) < tol["dw"]


@pytest.mark.parametrize("geometry", [
    dict(stride=(1, 2), padding=(0, 3), dilation=(2, 1)), dict(stride=(3, 1), padding=(2, 0), dilation=(1, 2)),
    dict(stride=(2, 3), padding=(1, 4), dilation=(1, 1)), dict(stride=(1, 1), padding=(3, 1), dilation=(2, 3))])
@pytest.mark.parametrize("width", [9, 70])  # the flat window and the ring
def test_each_axis_keeps_its_own_stride_padding_and_dilation(geometry, width, isa, rng):
    x = rng.standard_normal((2, 3, 13, width))
    wt = rng.standard_normal((6, 1, 3, 4))
    kw = dict(groups=3, **geometry)
    y = F.conv2d(x, wt, None, **kw)
    assert rel_err(y, R.conv2d(x, wt, None, **kw)) < 1e-12
    dy = rng.standard_normal(y.shape)
    assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), R.conv2d_input(x.shape, wt, dy, **kw)) < 1e-12
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, **kw), R.conv2d_weight(x, wt.shape, dy, **kw)) < 1e-12


@pytest.mark.parametrize("threads", [1, 3, 8])
def test_row_blocks_and_partial_weight_gradients(threads, rng):
    """Batch 1 with few channels splits rows across threads (the weight gradient then sums one
    partial per block): the results do not depend on the thread count."""
    shape = (1, 2, 2, 37, 70, 3, 3, 1, 1, 1)
    x, wt, b, dy, kw = case(shape, np.float64, rng)
    for g, w in conv_passes_at_threads(threads, x, wt, b, dy, kw):
        assert rel_err(g, w) < 1e-12


def test_one_output_channel_per_group_input_gradient(isa, rng):
    """groups < C with K == groups: the input gradient's adjoint has one input channel per group,
    so it runs here too (summing over the group's input channels' windows)."""
    x = rng.standard_normal((2, 6, 11, 19))
    wt = rng.standard_normal((3, 2, 3, 3))
    dy = rng.standard_normal((2, 3, 6, 10))
    kw = dict(stride=2, padding=1, groups=3)
    assert paths(x, wt, dy, kw)["input_grad"] == "depthwise"
    assert paths(x, wt, dy, kw)["forward"] != "depthwise"
    assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), R.conv2d_input(x.shape, wt, dy, **kw)) < 1e-12


def test_ordinary_convolutions_stay_off_the_depthwise_path():
    x, wt, y = np.zeros((1, 4, 8, 8)), np.zeros((4, 2, 3, 3)), np.zeros((1, 4, 8, 8))
    assert set(paths(x, wt, y, dict(stride=1, padding=1, dilation=1, groups=2)).values()) != {"depthwise"}
    x1, w1 = np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 3, 3))  # one channel, groups=1: a plain conv
    assert "depthwise" not in paths(x1, w1, np.zeros((1, 1, 8, 8)), dict(stride=1, padding=1, dilation=1, groups=1)).values()


@pytest.mark.parametrize("width", [5, 70])  # the flat window and the ring
def test_nan_reaches_exactly_the_outputs_whose_window_holds_it(width, isa):
    """Window padding and vector tails never mix a value into an output that does not read it."""
    x = np.ones((1, 2, 9, width), np.float32)
    x[0, 1, 4, width // 2] = np.nan
    wt = np.ones((4, 1, 3, 3), np.float32)
    for stride in (1, 2):
        kw = dict(stride=stride, padding=1, groups=2)
        y = F.conv2d(x, wt, None, **kw)
        mask = np.isnan(x).astype(np.float64)
        reaches = R.conv2d(mask, wt.astype(np.float64), None, **kw) > 0
        np.testing.assert_array_equal(np.isnan(y), reaches)
        dy = np.ones(y.shape, np.float32)
        dy[0, 2, 0, 0] = np.nan  # only dx channel 1's top-left window reads it
        dx = F.conv2d_input(x.shape, wt, dy, **kw)
        reaches = R.conv2d_input(x.shape, wt.astype(np.float64), np.isnan(dy).astype(np.float64), **kw) > 0
        np.testing.assert_array_equal(np.isnan(dx), reaches)


@pytest.mark.parametrize("width", [6, 72])  # the flat window and the ring
def test_values_no_output_reads_stay_out_of_the_weight_gradient(width, isa, rng):
    """Stride 2 without padding leaves the last input column and row unread: NaN there must not
    reach dw through the lanes past a row's end (where dy is zero)."""
    x = rng.standard_normal((2, 3, 8, width)).astype(np.float32)
    x[:, :, :, -1] = np.nan
    x[:, :, -1, :] = np.inf
    kw = dict(stride=2, padding=0, groups=3)
    y = F.conv2d(x, np.ones((3, 1, 3, 3), np.float32), None, **kw)
    assert np.isfinite(y).all()
    dy = rng.standard_normal(y.shape).astype(np.float32)
    clean = np.nan_to_num(x, nan=0.0, posinf=0.0)
    got = F.conv2d_weight(x, (3, 1, 3, 3), dy, **kw)
    assert rel_err(got, R.conv2d_weight(clean, (3, 1, 3, 3), dy, **kw)) < 1e-4
    # The last column read is read by the last output column's tap s=2 only: NaN there reaches
    # dw[:, :, r, 2] and nothing else (the flat window's gap lanes read it for other taps).
    last = (y.shape[3] - 1) * 2 + 2
    clean[:, :, 3, last] = np.nan
    got = F.conv2d_weight(clean, (3, 1, 3, 3), dy, **kw)
    want = R.conv2d_weight(clean, (3, 1, 3, 3), dy, **kw)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(want).sum() == 3  # per channel one tap, (r=1, s=2): row 3 = 2*oh + r for oh=1 only


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("c,h,stride,m,k", [(32, 28, 1, 1, 3), (24, 29, 2, 1, 3), (16, 15, 1, 2, 5), (8, 71, 2, 1, 5)])
def test_matches_torch(c, h, stride, m, k, isa, rng):
    """torch.nn.functional.conv2d with groups=C, forward and both gradients by autograd (float32)."""
    pad = k // 2
    x = rng.standard_normal((2, c, h, h)).astype(np.float32)
    wt = (rng.standard_normal((c * m, 1, k, k)) / k).astype(np.float32)
    b = rng.standard_normal(c * m).astype(np.float32)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(wt, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b), stride, pad, 1, c)
    dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.from_numpy(dy))
    kw = dict(stride=stride, padding=pad, groups=c)
    assert rel_err(F.conv2d(x, wt, b, **kw), ty.detach().numpy()) < 2e-5
    assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), tx.grad.numpy()) < 2e-5
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, **kw), tw.grad.numpy()) < 1e-4


def test_every_isa_lists_each_window_once():
    names = {(e["op"], e["dtype"]): [] for e in _C.kernel_list() if e["op"].startswith("depthwise")}
    for e in _C.kernel_list():
        if e["op"].startswith("depthwise"):
            names[(e["op"], e["dtype"])].append(e["isa"])
    assert set(names) == {(op, dt) for op in ("depthwise_3x3", "depthwise_5x5", "depthwise_any", "depthwise_3x3_dense")
                          for dt in ("float32", "float64")}
    for (op, dt), isas in names.items():
        assert len(isas) == len(set(isas)) and "scalar" in isas
        if dt == "float32" and "avx512" in ISAS:
            assert set(isas) == {"scalar", "avx2", "avx512"}

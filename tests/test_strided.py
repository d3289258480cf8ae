"""Strided convolutions with large kernels (csrc/conv/strided/polyphase.cpp: a stride-s conv as a
stride-1 conv on the s*s phase images of its input): which shapes take the decomposition, and
its forward, input gradient and weight gradient against the float64 reference on every ISA and
against torch. Strided shapes that do not take it (3x3 stride 2, dilation) are checked too."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
import fastconv.reference as R
from conftest import ISAS, rel_err, tolerance, torch
from test_direct_batched import paths


# The forward reads the phase images in place with R*S taps (phase_shifted) unless the phase
# kernels are 3x3, which auto runs as Winograd F(4,3) (fastconv/_cpu.py asks for "polyphase").
@pytest.mark.parametrize("shape, forward", [
    (dict(n=1, c=3, h=224, w=224, k=64, r=7, stride=2, pad=3), "phase_shifted"),    # ResNet stem
    (dict(n=1, c=3, h=224, w=224, k=64, r=11, stride=4, pad=2), "polyphase"),       # AlexNet conv1
    (dict(n=2, c=6, h=20, w=20, k=8, r=8, stride=4, pad=1, groups=2), "phase_shifted"),  # 8x8 stride 4
])
def test_large_strided_kernels_take_the_polyphase_path(shape, forward):
    got = paths(**shape)
    assert got.pop("forward") == forward
    assert set(got.values()) == {"polyphase"}


@pytest.mark.parametrize("shape", [
    dict(n=1, c=64, h=56, w=56, k=128, r=3, stride=2, pad=1),    # +78% zero taps: stays im2col
    dict(n=1, c=3, h=30, w=30, k=8, r=7, stride=2, pad=3, dil=2),
    dict(n=1, c=16, h=30, w=30, k=16, r=7, stride=2, pad=3, groups=16),  # depthwise
])
def test_other_strided_shapes_do_not(shape):
    assert "polyphase" not in paths(**shape).values()


def check(n, c, h, w, k, r, s, stride, pad, groups, dtype, rng, dil=1, bias=True):
    """Forward, input and weight gradient of the direct algorithm against the reference; the
    gradients are written into NaN-filled out= arrays, so a skipped element shows."""
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    args = (stride, pad, dil, groups)
    y = F.conv2d(x, wt, b, *args, algorithm="direct")
    yr = R.conv2d(x, wt, b, *args)
    assert y.shape == yr.shape and y.dtype == dtype
    assert rel_err(y, yr) < tolerance(dtype, c // groups * r * s)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = F.conv2d_input(x.shape, wt, dy, *args, algorithm="direct", out=np.full(x.shape, np.nan, dtype))
    assert rel_err(dx, R.conv2d_input(x.shape, wt, dy, *args)) < tolerance(dtype, k // groups * r * s)
    dw = F.conv2d_weight(x, wt.shape, dy, *args, algorithm="direct", out=np.full(wt.shape, np.nan, dtype))
    assert rel_err(dw, R.conv2d_weight(x, wt.shape, dy, *args)) < tolerance(dtype, n * y.shape[2] * y.shape[3])


# (N, C, H, W, K, R, S, stride, padding, groups): odd sizes, padding wider than half the kernel,
# non-square kernels and strides, maps barely larger than the kernel, groups.
SHAPES = [
    (1, 3, 31, 29, 16, 7, 7, 2, 3, 1),      # the ResNet stem, scaled
    (2, 3, 67, 61, 16, 11, 11, 4, 2, 1),    # AlexNet conv1, scaled
    (1, 3, 13, 17, 5, 7, 7, 2, 5, 1),       # padding 5 > 7 // 2
    (3, 4, 9, 8, 6, 5, 4, 3, 2, 2),         # stride 3, 5x4 kernel, groups 2
    (1, 2, 7, 7, 3, 7, 7, 2, 0, 1),         # one output pixel
    (2, 6, 12, 11, 9, 4, 4, 2, 4, 3),       # padding equal to the kernel, groups 3
    (1, 8, 16, 16, 70, 5, 5, 2, 2, 1),      # 70 output channels: a partial row panel
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_against_reference_every_isa(shape, dtype, isa, rng):
    check(*shape, dtype, rng)


@pytest.mark.parametrize("isa_name", ISAS)
def test_random_strided_shapes(isa_name, rng):
    """Any strided shape, whichever path it takes (polyphase, im2col with dilation or small kernels)."""
    checked = 0
    with fastconv.use_isa(isa_name):
        for _ in range(16):
            groups = int(rng.choice([1, 2]))
            n, h, w = int(rng.integers(1, 4)), int(rng.integers(1, 24)), int(rng.integers(1, 24))
            r, s = int(rng.integers(1, 9)), int(rng.integers(1, 9))
            stride, dil = int(rng.integers(2, 5)), int(rng.choice([1, 1, 2]))
            pad = int(rng.integers(0, max(r, s) + 1))
            if dil * (max(r, s) - 1) + 1 > min(h, w) + 2 * pad:
                continue
            cg, kg = int(rng.integers(1, 9)), int(rng.integers(1, 20))
            check(n, cg * groups, h, w, kg * groups, r, s, stride, pad, groups,
                  rng.choice([np.float32, np.float64]), rng, dil=dil)
            checked += 1
    assert checked > 8


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("shape", [(2, 3, 64, 64, 64, 7, 2, 3), (1, 3, 99, 99, 64, 11, 4, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_matches_torch(shape, rng):
    n, c, h, w, k, r, stride, pad = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, r, r)) / np.sqrt(c * r * r)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(wt).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b), stride, pad)
    dy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.from_numpy(dy))
    assert rel_err(F.conv2d(x, wt, b, stride, pad), ty.detach().numpy()) < 1e-5
    assert rel_err(F.conv2d_input(x.shape, wt, dy, stride, pad), tx.grad.numpy()) < 1e-5
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, stride, pad), tw.grad.numpy()) < 1e-5


@pytest.mark.parametrize("shape", [(1, 3, 67, 61, 16, 11, 11, 4, 2, 1), (2, 4, 30, 33, 8, 6, 5, 2, 3, 2)],
                         ids=lambda s: "x".join(map(str, s)))
def test_auto_runs_3x3_phase_kernels_with_winograd(shape, isa, rng):
    """11x11 stride 4 (and 6x5 stride 2) split into 3x3 phase kernels, which auto runs with
    Winograd F(4,3), each pass: within F(4,3)'s error bound of the reference, and not the direct result."""
    n, c, h, w, k, r, s, stride, pad, groups = shape
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    assert paths(n, c, h, w, k, r, stride, pad, 1, groups)["forward"] == "polyphase" or r != s
    y = F.conv2d(x, wt, b, stride, pad, 1, groups)
    yr = R.conv2d(x, wt, b, stride, pad, 1, groups)
    assert rel_err(y, yr) < 5e-5
    assert not np.array_equal(y, F.conv2d(x, wt, b, stride, pad, 1, groups, algorithm="direct"))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    args = (stride, pad, 1, groups)
    dx = F.conv2d_input(x.shape, wt, dy, *args)
    assert rel_err(dx, R.conv2d_input(x.shape, wt, dy, *args)) < 5e-5
    assert not np.array_equal(dx, F.conv2d_input(x.shape, wt, dy, *args, algorithm="direct"))
    dw = F.conv2d_weight(x, wt.shape, dy, *args)
    assert rel_err(dw, R.conv2d_weight(x, wt.shape, dy, *args)) < 5e-5
    assert not np.array_equal(dw, F.conv2d_weight(x, wt.shape, dy, *args, algorithm="direct"))


def test_polyphase_winograd_binding_refuses_other_kernels():
    from fastconv import _C
    x, y = np.zeros((1, 3, 16, 16), np.float32), np.zeros((1, 4, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="3x3 phase kernels"):
        _C.conv2d_polyphase_winograd(x, w, None, y, (2, 2), (1, 1), 1, 4)
    with pytest.raises(ValueError, match="3x3 phase kernels"):
        _C.conv2d_polyphase_winograd_input_grad(y, w, x, (2, 2), (1, 1), 1, 4)
    with pytest.raises(ValueError, match="3x3 phase kernels"):
        _C.conv2d_polyphase_winograd_weight_grad(x, y, w, (2, 2), (1, 1), 1, 4)


# ---------------------------------------------------------------- issue 21: phase_shifted
# The forward of a strided conv as the shifted-row GEMM on the input's phase images (every tap a
# shift of its own phase, R*S taps per channel), and of small strided maps as the batched GEMM.

@pytest.mark.parametrize("shape, forward", [
    (dict(n=1, c=64, h=56, w=56, k=128, r=3, stride=2, pad=1), "phase_shifted"),   # ResNet-18 layer2.0.conv1
    (dict(n=1, c=128, h=56, w=56, k=128, r=3, stride=2, pad=1), "phase_shifted"),  # ResNet-50 layer2.0.conv2
    (dict(n=1, c=3, h=224, w=224, k=32, r=3, stride=2, pad=1), "phase_shifted"),   # MobileNetV2 stem
    (dict(n=1, c=256, h=28, w=28, k=256, r=3, stride=2, pad=1), "batched_pixel_rows"),  # 196 pixels
    (dict(n=1, c=512, h=14, w=14, k=512, r=3, stride=2, pad=1), "batched_pixel_rows"),  # 49 pixels: 54 rows of 6x64
])
def test_strided_forward_paths(shape, forward):
    got = paths(**shape)
    assert got["forward"] == forward
    assert got["input_grad"] == got["weight_grad"] == "im2col"


# (N, C, H, W, K, R, S, stride, padding, groups, dilation): odd sizes, padding 0..2, strides 2 and 3,
# dilation with stride, groups, batch > 1, output maps from 1x1 up, C=3.
PHASE_SHAPES = [
    (1, 3, 31, 33, 16, 3, 3, 2, 1, 1, 1),     # an RGB stem, scaled
    (2, 5, 17, 15, 7, 3, 3, 2, 0, 1, 1),      # no padding, batch 2
    (1, 4, 9, 11, 6, 3, 3, 3, 2, 2, 1),       # stride 3, padding 2, groups 2
    (3, 6, 8, 8, 9, 3, 2, 2, 1, 3, 1),        # 3x2 kernel, groups 3
    (1, 4, 3, 3, 5, 3, 3, 2, 1, 1, 1),        # 2x2 output map
    (1, 4, 5, 5, 5, 3, 3, 3, 0, 1, 1),        # 1x1 output map
    (2, 3, 16, 16, 8, 3, 3, 2, 2, 1, 2),      # dilation 2 with stride 2
    (1, 5, 40, 41, 11, 3, 3, 3, 1, 1, 2),     # dilation 2 with stride 3
    (1, 3, 25, 25, 16, 7, 7, 2, 3, 1, 1),     # 7x7 stride 2 (4x4 phase kernels: not polyphase)
    (2, 8, 31, 31, 46, 3, 3, 2, 1, 1, 1),     # 46 output channels: a partial row panel
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", PHASE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_phase_shifted_against_reference_every_isa(shape, dtype, isa, rng):
    n, c, h, w, k, r, s, stride, pad, groups, dil = shape
    assert paths(n, c, h, w, k, r, stride, pad, dil, groups, dtype, s=s)["forward"] == "phase_shifted"
    check(n, c, h, w, k, r, s, stride, pad, groups, dtype, rng, dil=dil)


def test_phase_shifted_non_square_strides(isa, rng):
    """Stride (2, 1) and (1, 3): the phase images split one axis only."""
    for stride, shape in (((2, 1), (2, 5, 13, 12, 7, 3, 3)), ((1, 3), (1, 4, 9, 20, 6, 3, 5))):
        n, c, h, w, k, r, s = shape
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = rng.standard_normal((k, c, r, s)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        y = F.conv2d(x, wt, b, stride, 1, algorithm="direct")
        assert rel_err(y, R.conv2d(x, wt, b, stride, 1)) < tolerance(np.float32, c * r * s)


@pytest.mark.parametrize("isa_name", ISAS)
def test_random_strided_forward_paths(isa_name, rng):
    """Random strided shapes with many output channels too, so phase_shifted, batched and
    batched_pixel_rows all run against the reference under every ISA."""
    seen = set()
    with fastconv.use_isa(isa_name):
        for _ in range(24):
            groups = int(rng.choice([1, 2]))
            n, h, w = int(rng.integers(1, 4)), int(rng.integers(3, 30)), int(rng.integers(3, 30))
            r = s = int(rng.choice([1, 3, 5]))
            stride, dil, pad = int(rng.integers(2, 4)), int(rng.choice([1, 1, 2])), int(rng.integers(0, 3))
            if dil * (r - 1) + 1 > min(h, w) + 2 * pad or (r == 1 and pad == 0):
                continue
            cg, kg = int(rng.integers(1, 9)), int(rng.choice([int(rng.integers(1, 20)), int(rng.integers(64, 80))]))
            x = rng.standard_normal((n, cg * groups, h, w)).astype(np.float32)
            wt = rng.standard_normal((kg * groups, cg, r, s)).astype(np.float32)
            b = rng.standard_normal(kg * groups).astype(np.float32)
            args = (stride, pad, dil, groups)
            y = F.conv2d(x, wt, b, *args, algorithm="direct")
            assert rel_err(y, R.conv2d(x, wt, b, *args)) < tolerance(np.float32, cg * r * s)
            seen.add(paths(n, cg * groups, h, w, kg * groups, r, stride, pad, dil, groups)["forward"])
    assert "phase_shifted" in seen and seen & {"batched", "batched_pixel_rows"}

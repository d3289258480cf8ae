"""Winograd F(2x2, 5x5) and F(4x4, 5x5) ("winograd_f2" / "winograd_f4" on a 5x5 kernel) against
the float64 reference and torch: the matrices, the forward, the input gradient, transformed
weights, and the choice of "auto".

Relative error = max|out - ref| / max|ref| (as tests/test_winograd.py). fp32 bounds: F(2,5)
3e-5, F(4,5) 1e-4. The largest errors measured (6 seeds of standard-normal data over this file's
forward shapes plus 256->256 @13 and 512->64 @8): F(2,5) 1.2e-5, F(4,5) 1.9e-5, direct 4.9e-6,
all at 512 input channels; at AlexNet conv2's 64 -> 192 @27: 5.6e-6, 9.0e-6, 2.1e-6. F(4,5) uses
F(6,3)'s alpha-8 points (0, +-1, +-2, +-1/2), F(2,5) F(4,3)'s alpha-6 ones. float64: 1e-11.
"""
from __future__ import annotations

import numpy as np
import pytest
from conftest import ISAS, rel_err

import fastconv
from fastconv import _C, _cpu
from fastconv import functional as F
from fastconv import nn
from fastconv import reference as R
from fastconv._geometry import conv_geometry

TOL32 = {"winograd_f2": 3e-5, "winograd_f4": 1e-4}
TOL64 = 1e-11
TILES = {"winograd_f2": 2, "winograd_f4": 4}


def case(rng, n, c, k, h, w, pad=0, groups=1, dtype=np.float32, weight_scale=1.0):
    """Standard-normal input, 5x5 weight (times weight_scale) and bias, and the float64 reference
    forward conv2d(x, weight, bias, padding=pad, groups=groups)."""
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = (rng.standard_normal((k, c // groups, 5, 5)) * weight_scale).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    as64 = (a.astype(np.float64) for a in (x, wt, b))
    return x, wt, b, R.conv2d(*as64, padding=pad, groups=groups)


# ---------------------------------------------------------------- matrices

@pytest.mark.parametrize("tile", [2, 4])
def test_matrices_compute_correlation(rng, tile):
    AT, G, BT, points = _C.winograd_matrices(tile, kernel_size=5)
    a = tile + 4
    assert AT.shape == (tile, a) and G.shape == (a, 5) and BT.shape == (a, a) and len(points) == a - 1
    d, g = rng.standard_normal((a, a)), rng.standard_normal((5, 5))
    np.testing.assert_allclose(AT @ ((G @ g[0]) * (BT @ d[0])), np.correlate(d[0], g[0], "valid"), atol=1e-12)
    y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    ref = np.array([[np.sum(d[i:i + 5, j:j + 5] * g) for j in range(tile)] for i in range(tile)])
    np.testing.assert_allclose(y, ref, atol=1e-11)


@pytest.mark.parametrize("tile", [2, 4])
def test_matrices_match_toom_cook_and_share_the_3x3_input_transform(tile):
    """The independent numpy construction of tests/test_winograd.py with 5 taps; B^T depends only
    on alpha, so it equals the 3x3 kernel's B^T of the same alpha (the transform kernels rely on it)."""
    AT, G, BT, pts = _C.winograd_matrices(tile, kernel_size=5)
    a, pts = tile + 4, np.array(pts)
    Em = np.vstack([pts[:, None] ** np.arange(tile), np.eye(tile)[-1]])
    E5 = np.vstack([pts[:, None] ** np.arange(5), np.eye(5)[-1]])
    f = np.array([abs(np.prod([p - q for q in pts if q != p])) for p in pts] + [1.0])
    np.testing.assert_allclose(AT, Em.T, atol=1e-14)
    np.testing.assert_allclose(G, E5 / f[:, None], atol=1e-14)
    _, _, BT3, pts3 = _C.winograd_matrices(a - 2)
    assert list(pts3) == list(pts)
    np.testing.assert_array_equal(BT, BT3)
    if tile == 2:  # the values written in winograd_matrices.cpp
        np.testing.assert_allclose(AT, [[1, 1, 1, 1, 1, 0], [0, 1, -1, 0.5, -0.5, 1]])
        np.testing.assert_allclose(G[3], np.array([1, 1 / 2, 1 / 4, 1 / 8, 1 / 16]) * 8 / 3)


@pytest.mark.parametrize("tile,kernel", [(6, 5), (3, 5), (2, 7), (4, 1)])
def test_bad_tile_or_kernel_rejected(tile, kernel):
    with pytest.raises(ValueError, match="tile|kernel_size"):
        _C.winograd_matrices(tile, kernel_size=kernel)


# ---------------------------------------------------------------- forward

SHAPES = [  # n, c, k, h, w, pad, groups: odd sizes, padding 0..4, maps smaller than a tile, groups
    (1, 1, 3, 6, 6, 0, 1), (1, 3, 8, 7, 9, 2, 1), (2, 13, 5, 10, 11, 4, 1), (3, 4, 6, 12, 12, 1, 1),
    (1, 64, 32, 6, 6, 2, 1), (2, 16, 24, 15, 5, 0, 1), (1, 5, 7, 3, 3, 3, 1), (1, 5, 7, 2, 17, 2, 1),
    (2, 8, 6, 9, 13, 2, 2), (1, 12, 12, 8, 8, 1, 4), (1, 6, 6, 11, 11, 2, 6),
]


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", SHAPES)
def test_forward(rng, algo, n, c, k, h, w, pad, groups):
    x, wt, b, ref = case(rng, n, c, k, h, w, pad, groups)
    assert rel_err(F.conv2d(x, wt, b, padding=pad, groups=groups, algorithm=algo), ref) <= TOL32[algo]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo", list(TILES))
def test_forward_every_isa_and_dtype(rng, isa, dtype, algo):
    """AlexNet conv2's geometry scaled down (27x27 map, padding 2), a wide map whose rows exceed a
    vector of tiles, and a small one, under each ISA, in float32 and float64."""
    tol = TOL32[algo] if dtype == np.float32 else TOL64
    for n, c, k, h, w, pad in ((1, 16, 24, 27, 27, 2), (2, 3, 5, 9, 150, 1), (1, 4, 4, 4, 4, 4)):
        x, wt, b, ref = case(rng, n, c, k, h, w, pad, dtype=dtype)
        with fastconv.use_isa(isa):
            assert rel_err(F.conv2d(x, wt, b, padding=pad, algorithm=algo), ref) <= tol


@pytest.mark.parametrize("algo", list(TILES))
def test_forward_alexnet_conv2_channels(rng, algo):
    """AlexNet conv2's 64 -> 192 channels @27 pad 2 with its weight scale; the element-major and
    tile-block drivers both run (auto's choice of weights_reused decides which)."""
    x, wt, b, ref = case(rng, 1, 64, 192, 27, 27, 2, weight_scale=1 / np.sqrt(25 * 64))
    assert rel_err(F.conv2d(x, wt, b, padding=2, algorithm=algo), ref) <= TOL32[algo]
    ww = F.winograd_weights(wt, tile=TILES[algo])
    assert rel_err(F.conv2d(x, ww, b, padding=2), ref) <= TOL32[algo]


def test_fused_bias_relu_binding(rng):
    x, wt, b, ref = case(rng, 2, 5, 7, 10, 10, 2)
    y = np.empty((2, 7, 10, 10), np.float32)
    _C.conv2d_winograd(x, wt, None, (0, 0), b, y, (2, 2), 1, 4, relu=True, kernel_size=5)
    assert rel_err(y, np.maximum(ref, 0)) <= TOL32["winograd_f4"]
    with pytest.raises(ValueError, match="weight"):  # a 5x5 weight said to be 3x3
        _C.conv2d_winograd(x, wt, None, (0, 0), b, np.empty((2, 7, 12, 12), np.float32), (2, 2), 1, 4)


def test_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x, wt, b, _ = case(rng, 2, 8, 12, 19, 19)
    ours = F.conv2d(x, wt, b, padding=2, algorithm="winograd_f4")
    theirs = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, wt, b)), padding=2).numpy()
    assert rel_err(ours, theirs.astype(np.float64)) <= TOL32["winograd_f4"]


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", [
    (1, 3, 4, 9, 9, 2, 1), (2, 5, 7, 13, 8, 0, 1), (1, 6, 4, 6, 11, 4, 2), (3, 2, 3, 5, 5, 3, 1),
])
def test_input_grad(rng, algo, n, c, k, h, w, pad, groups):
    wt = case(rng, 1, c, k, 5, 5, groups=groups)[1]
    oh, ow = h + 2 * pad - 4, w + 2 * pad - 4
    dy = rng.standard_normal((n, k, oh, ow)).astype(np.float32)
    ref = R.conv2d_input((n, c, h, w), wt.astype(np.float64), dy.astype(np.float64), padding=pad, groups=groups)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            dx = F.conv2d_input((n, c, h, w), wt, dy, padding=pad, groups=groups, algorithm=algo)
            assert rel_err(dx, ref) <= TOL32[algo]
    dx64 = F.conv2d_input((n, c, h, w), wt.astype(np.float64), dy.astype(np.float64), padding=pad, groups=groups,
                          algorithm=algo)
    assert rel_err(dx64, ref) <= TOL64


def test_input_grad_auto_uses_winograd_and_padding_over_4_is_direct(rng):
    g = conv_geometry((1, 64, 27, 27), (192, 64, 5, 5), 1, 2, 1, 1)
    assert _cpu.choose_algorithm("auto", (1, 64, 27, 27), (192, 64, 5, 5), g, input_grad=True).startswith("winograd")
    wt = case(rng, 1, 3, 4, 5, 5)[1]
    dy = rng.standard_normal((1, 4, 11, 11)).astype(np.float32)
    with pytest.raises(ValueError, match="padding <= 4"):
        F.conv2d_input((1, 3, 5, 5), wt, dy, padding=5, algorithm="winograd_f2")
    ref = R.conv2d_input((1, 3, 5, 5), wt.astype(np.float64), dy.astype(np.float64), padding=5)
    assert rel_err(F.conv2d_input((1, 3, 5, 5), wt, dy, padding=5), ref) <= 1e-5


@pytest.mark.parametrize("algo", ["auto", "winograd", "winograd_f4"])
def test_weight_grad_runs_direct(rng, algo):
    """The Winograd weight gradient is 3x3 only: a 5x5 request is validated, then runs direct."""
    x, wt, _, _ = case(rng, 2, 4, 6, 10, 9)
    dy = rng.standard_normal((2, 6, 10, 9)).astype(np.float32)
    g = conv_geometry(x.shape, wt.shape, 1, 2, 1, 1)
    assert _cpu.choose_algorithm(algo, x.shape, wt.shape, g, weight_grad=True) == "direct"
    ref = R.conv2d_weight(x.astype(np.float64), wt.shape, dy.astype(np.float64), padding=2)
    assert rel_err(F.conv2d_weight(x, wt.shape, dy, padding=2, algorithm=algo), ref) <= 1e-5
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d_weight(x, wt.shape, dy, padding=2, algorithm="winograd_f6")


# ---------------------------------------------------------------- selection and transformed weights

def test_requests_rejected_where_5x5_winograd_cannot_run(rng):
    x, wt, _, _ = case(rng, 1, 3, 4, 12, 12)
    with pytest.raises(ValueError, match="winograd_f6"):  # F(6x6, 5x5) is not built
        F.conv2d(x, wt, padding=2, algorithm="winograd_f6")
    for kwargs in (dict(stride=2), dict(dilation=2)):
        with pytest.raises(ValueError, match="algorithm"):
            F.conv2d(x, wt, padding=2, algorithm="winograd_f2", **kwargs)
    with pytest.raises(ValueError, match="5x5"):
        F.conv2d(x, rng.standard_normal((4, 3, 5, 3)).astype(np.float32), algorithm="winograd_f2")


def test_auto_choices():
    def auto(n, c, k, h, pad, **kw):
        g = conv_geometry((n, c, h, h), (k, c, 5, 5), 1, pad, 1, 1)
        return _cpu.choose_algorithm("auto", (n, c, h, h), (k, c, 5, 5), g, **kw)
    assert auto(1, 64, 192, 27, 2) in TILES                       # AlexNet conv2
    assert auto(1, 64, 192, 27, 2, weights_reused=True) in TILES
    assert auto(1, 1, 6, 32, 0) == "direct"                       # LeNet c1: one input channel
    g = conv_geometry((1, 3, 8, 8), (4, 3, 5, 5), 1, 2, 1, 1)
    assert _cpu.choose_algorithm("winograd", (1, 3, 8, 8), (4, 3, 5, 5), g) in TILES


@pytest.mark.parametrize("tile", [2, 4])
def test_winograd_weights_values_and_reuse(rng, tile):
    x, wt, b, ref = case(rng, 2, 6, 14, 9, 9, 2, groups=2, dtype=np.float64)
    ww = F.winograd_weights(wt, tile=tile, groups=2)
    assert ww.alpha == tile + 4
    _, G, _, _ = _C.winograd_matrices(tile, kernel_size=5)
    a = tile + 4
    expect = np.einsum("ia,kcab,jb->kcij", G, wt, G).reshape(2, 7, 3, a * a).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ww.unpacked(), expect, atol=1e-12)
    for isa in ISAS:  # packed for the best ISA, used under each (repacked when panels differ)
        with fastconv.use_isa(isa):
            assert rel_err(F.conv2d(x, ww, b, padding=2, groups=2), ref) <= TOL64
    with pytest.raises(ValueError, match="tile"):
        F.winograd_weights(wt, tile=6, groups=2)


def test_nn_conv2d_reuses_5x5_transform(rng):
    """An eval-mode nn.Conv2d with a 5x5 kernel caches its Winograd weights from the second call."""
    layer = nn.Conv2d(64, 96, 5, padding=2).eval()
    x = rng.standard_normal((1, 64, 27, 27)).astype(np.float32)
    ref = R.conv2d(x.astype(np.float64), layer.weight.data.astype(np.float64), layer.bias.data.astype(np.float64),
                   padding=2)
    for _ in range(3):
        assert rel_err(layer.forward(x), ref) <= TOL32["winograd_f4"]
    plans = layer._winograd[1]
    assert isinstance(plans[x.shape], _cpu.WinogradWeights) and plans[x.shape].weight_shape[2:] == (5, 5)

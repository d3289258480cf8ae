"""Winograd F(2,3) / F(4,3) / F(6,3) convolution against the float64 reference and torch.

Inputs drawn from a generator seeded per test (conftest's rng: the seed is printed with a
failure, FASTCONV_TEST_SEED varies it): the tolerances are bounds, not snapshots of one draw.
Relative error = max|out - ref| / max|ref|.
"""
from __future__ import annotations


import numpy as np
import pytest

import fastconv
from conftest import WINOGRAD_TOL32
from fastconv import _C, _cpu
from fastconv import functional as F
from fastconv import reference as R
from fastconv._geometry import conv_geometry

TILES = {"winograd_f2": 2, "winograd_f4": 4, "winograd_f6": 6}
TOL32 = WINOGRAD_TOL32
TOL64 = 1e-11
ISAS = fastconv.capabilities()["available_isas"]
rng = None  # the module's helpers draw from this; _per_test_rng sets it for each test


@pytest.fixture(autouse=True)
def _per_test_rng(request):
    """Each test draws from its own seeded generator (conftest's rng fixture, seed printed on
    failure), so its data does not depend on which tests ran before it."""
    global rng
    rng = request.getfixturevalue("rng")


def rel_err(out, ref):
    return float(np.abs(out.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-300))


def make(n, c, k, h, w, groups=1, dtype=np.float32, bias=True):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    return x, wt, b


def ref_conv(x, w, b, padding, groups=1):
    return R.conv2d(x.astype(np.float64), w.astype(np.float64), None if b is None else b.astype(np.float64),
                    padding=padding, groups=groups)


# ---------------------------------------------------------------- matrices

@pytest.mark.parametrize("tile", [2, 4, 6])
def test_matrices_compute_1d_correlation(tile):
    AT, G, BT, points = _C.winograd_matrices(tile)
    a = tile + 2
    assert AT.shape == (tile, a) and G.shape == (a, 3) and BT.shape == (a, a)
    assert len(points) == a - 1 and len(set(points)) == a - 1
    for _ in range(20):
        d, g = rng.standard_normal(a), rng.standard_normal(3)
        y = AT @ ((G @ g) * (BT @ d))
        np.testing.assert_allclose(y, np.correlate(d, g, "valid"), rtol=0, atol=1e-12 * np.abs(d).sum() * 10)


@pytest.mark.parametrize("tile", [2, 4, 6])
def test_matrices_compute_2d_correlation(tile):
    AT, G, BT, _ = _C.winograd_matrices(tile)
    a = tile + 2
    d, g = rng.standard_normal((a, a)), rng.standard_normal((3, 3))
    y = AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T
    ref = np.array([[np.sum(d[i:i + 3, j:j + 3] * g) for j in range(tile)] for i in range(tile)])
    np.testing.assert_allclose(y, ref, atol=1e-11)


@pytest.mark.parametrize("tile", [2, 4, 6])
def test_matrices_match_toom_cook_construction(tile):
    """Independent construction in numpy: A^T = Vandermonde(points)^T, G rows = point powers
    over the Lagrange denominators, B^T = inverse(full Vandermonde)^T scaled back."""
    AT, G, BT, pts = _C.winograd_matrices(tile)
    a = tile + 2
    pts = np.array(pts)
    Em = np.vstack([pts[:, None] ** np.arange(tile), np.eye(tile)[-1]])
    E3 = np.vstack([pts[:, None] ** np.arange(3), np.eye(3)[-1]])
    V = np.vstack([pts[:, None] ** np.arange(a), np.eye(a)[-1]])
    f = np.array([abs(np.prod([p - q for q in pts if q != p])) for p in pts] + [1.0])
    np.testing.assert_allclose(AT, Em.T, atol=1e-14)
    np.testing.assert_allclose(G, E3 / f[:, None], atol=1e-14)
    np.testing.assert_allclose(BT, np.linalg.inv(V).T * f[:, None], atol=1e-12)
    if tile == 2:  # the textbook F(2,3) (Lavin & Gray), up to the sign of B^T/G row pairs
        np.testing.assert_allclose(np.abs(BT), np.abs([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]))


def test_f6_matrices_are_the_documented_ones():
    """The F(6,3) matrices written beside the code (winograd_matrices.cpp; ncnn uses the same)."""
    AT, G, BT, _ = _C.winograd_matrices(6)
    np.testing.assert_allclose(BT[0], [1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0], atol=1e-13)
    np.testing.assert_allclose(BT[1], [0, -1, -1, 17 / 4, 17 / 4, -1, -1, 0], atol=1e-13)
    np.testing.assert_allclose(BT[5], [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0], atol=1e-13)
    np.testing.assert_allclose(G[3], [1 / 90, 1 / 45, 2 / 45], atol=1e-15)
    np.testing.assert_allclose(G[5], [32 / 45, 16 / 45, 8 / 45], atol=1e-15)
    np.testing.assert_allclose(AT[5], [0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1], atol=1e-13)


def test_bad_tile_rejected():
    with pytest.raises(ValueError, match="tile"):
        _C.winograd_matrices(3)


# ---------------------------------------------------------------- forward accuracy

@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad", [
    (1, 1, 1, 5, 5, 0), (1, 3, 8, 7, 9, 1), (2, 13, 5, 10, 11, 2), (3, 4, 6, 12, 12, 1),
    (1, 64, 64, 6, 6, 1), (2, 16, 24, 15, 4, 0), (1, 5, 7, 3, 3, 0), (1, 5, 7, 3, 17, 2),
])
def test_forward_small_shapes(algo, n, c, k, h, w, pad):
    x, wt, b = make(n, c, k, h, w)
    y = F.conv2d(x, wt, b, padding=pad, algorithm=algo)
    assert rel_err(y, ref_conv(x, wt, b, pad)) <= TOL32[algo]


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("c,k,h", [(64, 128, 14), (256, 256, 7), (512, 512, 4), (128, 64, 9)])
def test_forward_vgg_like_channels(algo, c, k, h):
    x, wt, b = make(1, c, k, h, h)
    wt /= np.sqrt(9 * c)
    y = F.conv2d(x, wt, b, padding=1, algorithm=algo)
    assert rel_err(y, ref_conv(x, wt, b, 1)) <= TOL32[algo]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad", [
    (1, 3, 5, 9, 150, 1), (2, 2, 3, 7, 133, 0), (1, 4, 4, 11, 70, 2), (3, 2, 2, 6, 67, 1), (1, 2, 3, 13, 35, 1),
])
def test_forward_wide_rows(dtype, algo, n, c, k, h, w, pad):
    """Rows of >= 16 tiles: the vectorised interior path (full, overlapping last vector, short
    runs at block ends) beside the gathered border tiles, under every ISA."""
    x, wt, b = make(n, c, k, h, w, dtype=dtype)
    ref = ref_conv(x, wt, b, pad)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            y = F.conv2d(x, wt, b, padding=pad, algorithm=algo)
        assert rel_err(y, ref) <= (TOL32[algo] if dtype == np.float32 else TOL64), isa


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("pad", [17, 40])
def test_forward_padding_wider_than_a_vector(algo, pad):
    """Tiles whose windows lie wholly (or all but a sliver) in the padding: the gather's masked
    row windows start more than a vector's width left of the row."""
    x, wt, b = make(2, 3, 4, 5, 23)
    ref = ref_conv(x, wt, b, pad)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            assert rel_err(F.conv2d(x, wt, b, padding=pad, algorithm=algo), ref) <= TOL32[algo], isa


@pytest.mark.parametrize("algo", list(TILES))
def test_forward_many_blocks_batch(algo):
    """Enough tiles for several blocks (threads take whole blocks; blocks span images)."""
    x, wt, b = make(5, 8, 16, 37, 29)
    y = F.conv2d(x, wt, b, padding=1, algorithm=algo)
    assert rel_err(y, ref_conv(x, wt, b, 1)) <= TOL32[algo]


def tiles_of(n, h, w, pad, tile):
    return n * -(-(h + 2 * pad - 2) // tile) * -(-(w + 2 * pad - 2) // tile)


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", [
    (4, 96, 100, 31, 29, 1, 1),   # Kg = 100: a partial 12-row panel; tiles not a multiple of 32
    (4, 80, 112, 37, 27, 0, 1),
    (4, 192, 200, 26, 27, 2, 2),  # per group 96 -> 100
])
def test_forward_element_major(algo, n, c, k, h, w, pad, groups):
    """Wide layers with many tiles run one GEMM per transform element (winograd_by_element)."""
    tiles = tiles_of(n, h, w, pad, TILES[algo])
    assert _C.winograd_by_element(c // groups, k // groups, tiles, False)
    x, wt, b = make(n, c, k, h, w, groups)
    wt /= np.sqrt(9 * c // groups)
    ref = ref_conv(x, wt, b, pad, groups)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            assert rel_err(F.conv2d(x, wt, b, padding=pad, groups=groups, algorithm=algo), ref) <= TOL32[algo], isa
    y = F.conv2d(x, wt, b, padding=pad, groups=groups, algorithm=algo)
    ww = F.winograd_weights(wt, tile=TILES[algo], groups=groups)
    np.testing.assert_array_equal(F.conv2d(x, ww, b, padding=pad, groups=groups), y)


@pytest.mark.parametrize("algo", list(TILES))
def test_forward_element_major_cached_weights_few_tiles(algo):
    """Cached U: element-major even with few tiles; float64 through the same path."""
    tiles = tiles_of(1, 9, 11, 1, TILES[algo])
    assert tiles < 96 and _C.winograd_by_element(100, 96, tiles, True)
    assert not _C.winograd_by_element(100, 96, tiles, False)
    for dtype, tol in ((np.float32, TOL32[algo]), (np.float64, TOL64)):
        x, wt, b = make(1, 100, 96, 9, 11, dtype=dtype)
        ref = ref_conv(x, wt, b, 1)
        y = F.conv2d(x, F.winograd_weights(wt, tile=TILES[algo]), b, padding=1)
        assert rel_err(y, ref) <= tol
        assert rel_err(F.conv2d(x, wt, b, padding=1, algorithm=algo), ref) <= tol  # tile blocks


def test_forward_element_major_several_blocks():
    """More tiles than one element-major block holds (kWinoElementBytes of V + M): 2025 tiles of
    16 * (256 + 264) floats each at F(2,3) is over 64 MiB, so two balanced blocks run."""
    x, wt, b = make(1, 256, 256, 90, 90)
    wt /= np.sqrt(9 * 256)
    y = F.conv2d(x, wt, b, padding=1, algorithm="winograd_f2")
    assert rel_err(y, ref_conv(x, wt, b, 1)) <= TOL32["winograd_f2"]


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("groups,c,k", [(2, 4, 6), (4, 8, 4), (3, 3, 3), (2, 32, 64)])
def test_forward_groups(algo, groups, c, k):
    x, wt, b = make(2, c, k, 9, 10, groups)
    y = F.conv2d(x, wt, b, padding=1, groups=groups, algorithm=algo)
    assert rel_err(y, ref_conv(x, wt, b, 1, groups)) <= TOL32[algo]


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("algo", list(TILES))
def test_forward_every_isa(isa, algo):
    x, wt, b = make(2, 13, 20, 11, 14)
    with fastconv.use_isa(isa):
        y = F.conv2d(x, wt, b, padding=1, algorithm=algo)
        y64 = F.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), padding=1, algorithm=algo)
    ref = ref_conv(x, wt, b, 1)
    assert rel_err(y, ref) <= TOL32[algo]
    assert y64.dtype == np.float64
    assert rel_err(y64, ref_conv(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), 1)) <= TOL64


@pytest.mark.parametrize("algo", list(TILES))
def test_forward_float64(algo):
    x, wt, b = make(2, 7, 9, 13, 8, dtype=np.float64)
    y = F.conv2d(x, wt, b, padding=2, algorithm=algo)
    assert y.dtype == np.float64
    assert rel_err(y, ref_conv(x, wt, b, 2)) <= TOL64


def test_bias_fused_and_relu_binding():
    x, wt, b = make(2, 6, 10, 9, 9)
    ref = ref_conv(x, wt, b, 1)
    for tile in (2, 4, 6):
        y = np.empty(ref.shape, np.float32)
        _C.conv2d_winograd(x, wt, None, (0, 0), b, y, (1, 1), 1, tile)
        assert rel_err(y, ref) <= 2e-4
        _C.conv2d_winograd(x, wt, None, (0, 0), b, y, (1, 1), 1, tile, relu=True)
        assert rel_err(y, np.maximum(ref, 0)) <= 2e-4
        assert (y >= 0).all()
        _C.conv2d_winograd(x, wt, None, (0, 0), None, y, (1, 1), 1, tile)
        assert rel_err(y, ref_conv(x, wt, None, 1)) <= 2e-4


def test_padding_same_and_unbatched_and_out():
    x, wt, b = make(1, 5, 6, 10, 7)
    ref = ref_conv(x, wt, b, 1)
    y = F.conv2d(x[0], wt, b, padding="same", algorithm="winograd_f4")
    assert y.shape == ref.shape[1:] and rel_err(y, ref[0]) <= 5e-5
    out = np.full(ref.shape, np.nan, np.float32)
    r = F.conv2d(x, wt, b, padding=1, algorithm="winograd_f6", out=out)
    assert r is out and rel_err(out, ref) <= 2e-4


def test_matches_torch():
    torch = pytest.importorskip("torch")
    x, wt, b = make(2, 32, 48, 20, 17)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(wt).double(),
                                     torch.from_numpy(b).double(), padding=1).numpy()
    t32 = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(b), padding=1).numpy()
    for algo in TILES:
        y = F.conv2d(x, wt, b, padding=1, algorithm=algo)
        assert rel_err(y, ref) <= TOL32[algo]
        assert rel_err(y, t32.astype(np.float64)) <= TOL32[algo] + 1e-5


# ---------------------------------------------------------------- input gradient

@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", [
    (1, 3, 8, 9, 9, 1, 1), (2, 13, 6, 11, 7, 0, 1), (1, 8, 8, 10, 12, 2, 2), (2, 64, 32, 8, 8, 1, 1),
])
def test_input_grad(algo, n, c, k, h, w, pad, groups):
    _, wt, _ = make(n, c, k, h, w, groups, bias=False)
    oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
    dy = rng.standard_normal((n, k, oh, ow)).astype(np.float32)
    dx = F.conv2d_input((n, c, h, w), wt, dy, padding=pad, groups=groups, algorithm=algo)
    ref = R.conv2d_input((n, c, h, w), wt.astype(np.float64), dy.astype(np.float64), padding=pad, groups=groups)
    assert dx.shape == (n, c, h, w)
    assert rel_err(dx, ref) <= TOL32[algo]


def test_input_grad_float64_and_torch():
    torch = pytest.importorskip("torch")
    _, wt, _ = make(2, 10, 12, 9, 9, dtype=np.float64, bias=False)
    dy = rng.standard_normal((2, 12, 9, 9))
    ref = torch.nn.grad.conv2d_input((2, 10, 9, 9), torch.from_numpy(wt), torch.from_numpy(dy), padding=1).numpy()
    for algo in TILES:
        dx = F.conv2d_input((2, 10, 9, 9), wt, dy, padding=1, algorithm=algo)
        assert rel_err(dx, ref) <= TOL64


def test_input_grad_padding_over_2_rejected_or_direct():
    _, wt, _ = make(1, 3, 4, 5, 5, bias=False)
    dy = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d_input((1, 3, 5, 5), wt, dy, padding=3, algorithm="winograd_f2")
    dx = F.conv2d_input((1, 3, 5, 5), wt, dy, padding=3, algorithm="auto")
    ref = R.conv2d_input((1, 3, 5, 5), wt.astype(np.float64), dy.astype(np.float64), padding=3)
    assert rel_err(dx, ref) <= 1e-5


# ---------------------------------------------------------------- algorithm selection

@pytest.mark.parametrize("kwargs,kernel", [
    (dict(stride=2), 3), (dict(dilation=2), 3), ({}, 7), ({}, 1), (dict(stride=(1, 2)), 3),
])
@pytest.mark.parametrize("algo", ["winograd", "winograd_f2", "winograd_f4", "winograd_f6"])
def test_unsupported_explicit_requests_rejected(kwargs, kernel, algo):
    x = rng.standard_normal((1, 3, 12, 12)).astype(np.float32)
    wt = rng.standard_normal((4, 3, kernel, kernel)).astype(np.float32)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, wt, padding=1, algorithm=algo, **kwargs)
    y = F.conv2d(x, wt, padding=1, algorithm="auto", **kwargs)  # auto falls back to direct
    ref = R.conv2d(x.astype(np.float64), wt.astype(np.float64), padding=1, **kwargs)
    assert rel_err(y, ref) <= 1e-5


@pytest.mark.parametrize("bad", ["Winograd", "winograd_f3", "fft", "", None, 4])
def test_bad_algorithm_names_rejected(bad):
    x, wt, _ = make(1, 3, 4, 6, 6)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, wt, algorithm=bad)


def _auto(n, c, k, h, input_grad=False, r=3, stride=1):
    g = conv_geometry((n, c, h, h), (k, c, r, r), stride, 1, 1, 1)
    return _cpu.choose_algorithm("auto", (n, c, h, h), (k, c, r, r), g, input_grad=input_grad)


def test_auto_picks_sensibly():
    assert _auto(1, 3, 64, 224) == "direct"        # 3 input channels: the GEMM is too thin
    assert _auto(8, 256, 256, 56).startswith("winograd")
    assert _auto(8, 512, 512, 28).startswith("winograd")
    assert _auto(1, 64, 64, 56, r=7) == "direct"   # neither 3x3 nor 5x5 (tests/test_winograd_5x5.py)
    assert _auto(1, 64, 64, 56, stride=2) == "direct"
    # AlexNet conv3-5 @13, batch 1 (see _cpu._DIRECT_WEIGHT_PACK): F(2,3), or F(4,3) where its 16 tiles
    # fill the tile-rows driver's row panels exactly (8-row AVX-512 tiles)
    for c, k in ((192, 384), (384, 256), (256, 256)):
        assert _auto(1, c, k, 13) in ("winograd_f2", "winograd_f4")
        assert _auto(1, c, k, 13, input_grad=True) in ("winograd_f2", "winograd_f4")
    assert _auto(1, 1, 1, 4) == "direct"           # tiny
    # "winograd" always names a tile
    g = conv_geometry((1, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1)
    assert _cpu.choose_algorithm("winograd", (1, 3, 8, 8), (4, 3, 3, 3), g) in TILES
    for algo in TILES:
        assert _cpu.choose_algorithm(algo, (1, 3, 8, 8), (4, 3, 3, 3), g) == algo


def test_auto_result_correct_on_vgg_like_layer():
    x, wt, b = make(2, 64, 64, 16, 16)
    wt /= 24.0
    y = F.conv2d(x, wt, b, padding=1)  # algorithm="auto"
    assert rel_err(y, ref_conv(x, wt, b, 1)) <= 2e-4


# ---------------------------------------------------------------- transformed-weight reuse

@pytest.mark.parametrize("tile", [2, 4, 6])
def test_winograd_weights_reuse(tile):
    x, wt, b = make(2, 12, 10, 11, 13)
    ww = F.winograd_weights(wt, tile=tile)
    assert ww.tile == tile and ww.weight_shape == wt.shape and ww.dtype == np.float32
    ref = ref_conv(x, wt, b, 1)
    y1 = F.conv2d(x, ww, b, padding=1)
    y2 = F.conv2d(x, ww, b, padding=1, algorithm=f"winograd_f{tile}")
    direct_wino = F.conv2d(x, wt, b, padding=1, algorithm=f"winograd_f{tile}")
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(y1, direct_wino)
    assert rel_err(y1, ref) <= TOL32[f"winograd_f{tile}"]
    wt[:] = 0  # the object holds its own copy of the transformed weights
    np.testing.assert_array_equal(F.conv2d(x, ww, b, padding=1), y1)


@pytest.mark.parametrize("tile", [2, 4, 6])
def test_winograd_weights_values(tile):
    """U = G g G^T, checked through the unpacked view against the float64 matrices."""
    _, wt, _ = make(1, 6, 14, 4, 4, groups=2, dtype=np.float64)
    ww = F.winograd_weights(wt, tile=tile, groups=2)
    _, G, _, _ = _C.winograd_matrices(tile)
    U = ww.unpacked()
    a = tile + 2
    assert U.shape == (2, a * a, 7, 3)
    expect = np.einsum("ia,kcab,jb->kcij", G, wt, G).reshape(2, 7, 3, a * a).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(U, expect, atol=1e-12)


def test_winograd_weights_values_across_reduction_slices():
    """More input channels than one GEMM reduction slice holds (the packing splits them)."""
    wt = rng.standard_normal((13, 401, 3, 3))
    ww = F.winograd_weights(wt, tile=4)
    _, G, _, _ = _C.winograd_matrices(4)
    expect = np.einsum("ia,kcab,jb->kcij", G, wt, G).reshape(1, 13, 401, 36).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ww.unpacked(), expect, atol=1e-12)


def test_winograd_weights_groups_and_isa_change():
    x, wt, b = make(2, 8, 6, 9, 9, groups=2)
    ref = ref_conv(x, wt, b, 1, groups=2)
    ww = F.winograd_weights(wt, tile=4, groups=2)
    for isa in ISAS:  # packed for the best ISA, used under each (repacked when panels differ)
        with fastconv.use_isa(isa):
            assert rel_err(F.conv2d(x, ww, b, padding=1, groups=2), ref) <= 5e-5


def test_winograd_weights_validation():
    x, wt, b = make(1, 4, 6, 8, 8)
    ww = F.winograd_weights(wt, tile=4)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, ww, algorithm="winograd_f2")
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d(x, ww, algorithm="direct")
    with pytest.raises(TypeError, match="dtype"):
        F.conv2d(x.astype(np.float64), ww)
    with pytest.raises(ValueError, match="groups"):
        F.conv2d(x, ww, groups=2)
    with pytest.raises(ValueError, match="weight"):
        F.conv2d(x[:, :3], ww)
    with pytest.raises(ValueError, match="stride"):
        F.conv2d(x, ww, stride=2)
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(x, ww, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="tile"):
        F.winograd_weights(wt, tile=3)
    with pytest.raises(ValueError, match="3x3"):
        F.winograd_weights(np.zeros((2, 2, 7, 7), np.float32))
    with pytest.raises(ValueError, match="groups"):
        F.winograd_weights(wt, groups=4)
    assert "winograd_weights" in F.__all__ and "WinogradWeights" in F.__all__


# ---------------------------------------------------------------- big sweep (slow)

@pytest.mark.slow
@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("c,k,h", [(3, 64, 32), (64, 64, 32), (128, 256, 14), (256, 512, 14), (512, 512, 14)])
@pytest.mark.parametrize("n", [1, 3])
def test_vgg16_sweep(algo, c, k, h, n):
    x, wt, b = make(n, c, k, h, h)
    wt /= np.sqrt(9 * c)
    y = F.conv2d(x, wt, b, padding=1, algorithm=algo)
    assert rel_err(y, ref_conv(x, wt, b, 1)) <= TOL32[algo]
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = F.conv2d_input(x.shape, wt, dy, padding=1, algorithm=algo)
    ref = R.conv2d_input(x.shape, wt.astype(np.float64), dy.astype(np.float64), padding=1)
    assert rel_err(dx, ref) <= TOL32[algo]

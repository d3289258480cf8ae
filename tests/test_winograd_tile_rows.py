"""The Winograd tile-rows driver (csrc/conv/winograd/winograd.cpp, winograd_tile_rows): few tiles
per group in the micro-kernel's row panels, output channels in its columns. Forward (3x3 and
5x5, bias, ReLU, groups, batch 1 and 3) and the input gradient (whose blocked driver hands such
shapes to it) against the float64 reference under every ISA, with the Winograd tolerances.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastconv
from conftest import WINOGRAD_TOL32
from fastconv import _C
from fastconv import functional as F
from fastconv import reference as R

ISAS = fastconv.capabilities()["available_isas"]
TILES = {"winograd_f2": 2, "winograd_f4": 4, "winograd_f6": 6}


def rel_err(out, ref):
    return float(np.abs(out.astype(np.float64) - ref).max() / max(np.abs(ref).max(), 1e-300))


def tiles_of(n, oh, ow, m):
    return n * -(-oh // m) * -(-ow // m)


def check_rows(tiles, kg, isa):
    with fastconv.use_isa(isa):
        return _C.winograd_tile_rows(tiles, kg)


# (n, c, k, h, w, pad, groups): maps 1x1..16x16, odd sizes, channel counts off multiples of 16.
SHAPES = [
    (1, 192, 384, 13, 13, 1, 1),   # AlexNet conv3 @13: 49 tiles at F(2,3), 16 at F(4,3)
    (1, 37, 70, 7, 9, 1, 1),
    (3, 20, 100, 5, 5, 1, 1),
    (1, 64, 98, 13, 13, 1, 2),     # per group 32 -> 49
    (1, 33, 130, 16, 16, 1, 1),
    (3, 16, 200, 1, 1, 1, 1),
    (1, 50, 96, 11, 3, 0, 1),
    (3, 24, 90, 6, 7, 2, 3),
]


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", SHAPES)
def test_forward(rng, algo, n, c, k, h, w, pad, groups):
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c // groups, 3, 3)) / np.sqrt(9 * c // groups)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    ref = R.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), padding=pad, groups=groups)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            y = F.conv2d(x, wt, b, padding=pad, groups=groups, algorithm=algo)
            assert rel_err(y, ref) <= WINOGRAD_TOL32[algo], isa
            y64 = F.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), padding=pad,
                           groups=groups, algorithm=algo)
            assert rel_err(y64, ref) <= 1e-11, isa


@pytest.mark.parametrize("m", [2, 4])
def test_shapes_take_tile_rows(m):
    """Most SHAPES run the tile-rows driver under every ISA (the others the tile-block driver)."""
    for isa in ISAS:
        rows = [check_rows(tiles_of(n, h + 2 * pad - 2, w + 2 * pad - 2, m), k // g, isa)
                for n, c, k, h, w, pad, g in SHAPES]
        assert sum(map(bool, rows)) >= 4, (isa, rows)


def test_forward_relu_and_no_bias_binding(rng):
    x = rng.standard_normal((1, 40, 13, 13)).astype(np.float32)
    wt = (rng.standard_normal((96, 40, 3, 3)) / 19).astype(np.float32)
    b = rng.standard_normal(96).astype(np.float32)
    assert _C.winograd_tile_rows(16, 96) or _C.winograd_tile_rows(49, 96)
    ref = R.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), padding=1)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            for tile in (2, 4):
                y = np.empty(ref.shape, np.float32)
                _C.conv2d_winograd(x, wt, None, (0, 0), b, y, (1, 1), 1, tile, relu=True)
                assert rel_err(y, np.maximum(ref, 0)) <= 5e-5 and (y >= 0).all(), isa
                _C.conv2d_winograd(x, wt, None, (0, 0), None, y, (1, 1), 1, tile)
                assert rel_err(y, ref - b[None, :, None, None]) <= 5e-5, isa


@pytest.mark.parametrize("algo", ["winograd_f2", "winograd_f4"])
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", [
    (1, 384, 192, 13, 13, 1, 1),   # dx of AlexNet conv3: 192 output channels of the adjoint
    (1, 100, 60, 7, 7, 1, 1),
    (3, 98, 40, 5, 6, 0, 2),
    (1, 130, 33, 14, 14, 2, 1),
    (1, 64, 16, 1, 1, 1, 1),
])
def test_input_grad(rng, algo, n, c, k, h, w, pad, groups):
    """The input gradient's conv has c output channels and the dx tiles."""
    m = TILES[algo]
    oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
    wt = (rng.standard_normal((k, c // groups, 3, 3)) / np.sqrt(9 * k // groups)).astype(np.float32)
    dy = rng.standard_normal((n, k, oh, ow)).astype(np.float32)
    ref = R.conv2d_input((n, c, h, w), wt.astype(np.float64), dy.astype(np.float64), padding=pad, groups=groups)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            dx = F.conv2d_input((n, c, h, w), wt, dy, padding=pad, groups=groups, algorithm=algo)
            assert dx.shape == (n, c, h, w)
            assert rel_err(dx, ref) <= WINOGRAD_TOL32[algo], isa
            for blocked in (True, False):
                out = np.full((n, c, h, w), np.nan, np.float32)
                _C.conv2d_winograd_input_grad(dy, wt, out, (pad, pad), groups, m, blocked)
                assert rel_err(out, ref) <= WINOGRAD_TOL32[algo], (isa, blocked)


@pytest.mark.parametrize("n,c,k,h,w", [(1, 40, 100, 9, 9), (3, 17, 70, 6, 5)])
def test_forward_5x5(rng, n, c, k, h, w):
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((k, c, 5, 5)) / np.sqrt(25 * c)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    ref = R.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), padding=2)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            for algo in ("winograd_f2", "winograd_f4"):
                y = F.conv2d(x, wt, b, padding=2, algorithm=algo)
                assert rel_err(y, ref) <= 5 * WINOGRAD_TOL32[algo], (isa, algo)


def test_not_with_cached_weights_or_many_tiles():
    assert _C.winograd_tile_rows(129, 384) == 0
    assert _C.winograd_tile_rows(0, 384) == 0


@pytest.mark.parametrize("n,c,k,h,w,pad,groups", [(1, 70, 40, 7, 7, 1, 1), (3, 64, 30, 3, 4, 1, 2)])
def test_input_grad_float64(rng, n, c, k, h, w, pad, groups):
    """float64 panels (NR = 16 values: the in-place flipped transpose) and its last-filter fallback."""
    oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
    wt = rng.standard_normal((k, c // groups, 3, 3)) / np.sqrt(9 * k // groups)
    dy = rng.standard_normal((n, k, oh, ow))
    ref = R.conv2d_input((n, c, h, w), wt, dy, padding=pad, groups=groups)
    for isa in ISAS:
        with fastconv.use_isa(isa):
            for algo in ("winograd_f2", "winograd_f4"):
                dx = F.conv2d_input((n, c, h, w), wt, dy, padding=pad, groups=groups, algorithm=algo)
                assert rel_err(dx, ref) <= 1e-11, (isa, algo)

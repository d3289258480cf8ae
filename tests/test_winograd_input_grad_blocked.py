"""The blocked Winograd input gradient (csrc/conv/winograd/winograd_input_grad.cpp) and the forward
driver's (winograd.cpp), both reached through _C.conv2d_winograd_input_grad(..., blocked), against
the float64 reference: tile edges, odd sizes, padding 0-2, groups, several 64-tile blocks and
several blocks of packed grad_output, float32 / float64, every ISA; and auto's use of it.

Relative error = max|out - ref| / max|ref| (conftest.rel_err).
"""
from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import _C, _cpu
from fastconv import functional as F
from fastconv import reference as R
from conftest import rel_err

TOL32 = {2: 1e-5, 4: 5e-5, 6: 1e-4}  # the forward's bounds (test_winograd.py)
TOL64 = 1e-11
ISAS = fastconv.capabilities()["available_isas"]

# (n, c, k, h, w, pad, groups): dx planes of 1..45 pixels a side, channels off the GEMM panels.
SHAPES = [
    (1, 1, 1, 1, 1, 1, 1), (1, 3, 8, 9, 9, 1, 1), (2, 13, 6, 11, 7, 0, 1), (3, 5, 7, 8, 13, 2, 1),
    (1, 8, 8, 10, 12, 2, 2), (2, 12, 9, 7, 6, 1, 3), (2, 40, 30, 17, 19, 1, 1), (1, 26, 20, 45, 43, 1, 2),
]


def run(dy, w, shape, pad, groups, tile, blocked):
    dx = np.empty(shape, dy.dtype)
    _C.conv2d_winograd_input_grad(dy, w, dx, (pad, pad), groups, tile, blocked)
    return dx


def case(rng, n, c, k, h, w, pad, groups, dtype):
    wt = rng.standard_normal((k, c // groups, 3, 3)).astype(dtype)
    dy = rng.standard_normal((n, k, h + 2 * pad - 2, w + 2 * pad - 2)).astype(dtype)
    ref = R.conv2d_input((n, c, h, w), wt.astype(np.float64), dy.astype(np.float64), padding=pad, groups=groups)
    return wt, dy, ref


@pytest.mark.parametrize("blocked", [True, False])
@pytest.mark.parametrize("tile", [2, 4, 6])
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", SHAPES)
def test_matches_reference(rng, blocked, tile, n, c, k, h, w, pad, groups):
    for dtype in (np.float32, np.float64):
        wt, dy, ref = case(rng, n, c, k, h, w, pad, groups, dtype)
        dx = run(dy, wt, ref.shape, pad, groups, tile, blocked)
        assert rel_err(dx, ref) <= (TOL32[tile] if dtype == np.float32 else TOL64)


@pytest.mark.parametrize("tile", [2, 4, 6])
def test_many_packed_blocks(rng, tile):
    """More tiles than one packed block of grad_output holds (1100 channels: the block's 32 MiB
    cap gives 512 / 256 / 128 tiles at F(2,3) / F(4,3) / F(6,3), for 1800 / 450 / 200 tiles),
    each block with several 64-tile items."""
    wt, dy, ref = case(rng, 2, 2, 1100, 60, 60, 1, 1, np.float32)
    assert rel_err(run(dy, wt, ref.shape, 1, 1, tile, True), ref) <= TOL32[tile]


@pytest.mark.parametrize("isa", ISAS)
def test_every_isa(rng, isa):
    wt, dy, ref = case(rng, 2, 13, 20, 11, 14, 1, 1, np.float32)
    with fastconv.use_isa(isa):
        for tile in (2, 4, 6):
            assert rel_err(run(dy, wt, ref.shape, 1, 1, tile, True), ref) <= TOL32[tile]


def test_auto_runs_blocked_while_tiles_fit_one_block(rng):
    assert _cpu.dx_blocked(1, 14, 14, 2) and _cpu.dx_blocked(8, 3, 3, 4)
    assert not _cpu.dx_blocked(1, 56, 56, 4) and not _cpu.dx_blocked(8, 14, 14, 4)
    wt, dy, ref = case(rng, 8, 16, 24, 3, 3, 1, 1, np.float32)
    assert rel_err(F.conv2d_input(ref.shape, wt, dy, padding=1, algorithm="winograd_f2"), ref) <= TOL32[2]

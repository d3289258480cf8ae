"""Winograd weight gradient (F(2,3) / F(4,3) / F(6,3) transposed) against the float64 reference,
the direct weight gradient and torch: tile edges, odd sizes, padding 0-3, groups, batch 1-3,
float32 and float64, every ISA, and the auto choice and argument checks of conv2d_weight.

Relative error = max|out - ref| / max|ref| (conftest.rel_err); inputs are drawn fresh from the
per-test seeded generator (conftest's rng fixture).
"""
from __future__ import annotations

import numpy as np
import pytest

import fastconv
from fastconv import _C, _cpu
from fastconv import functional as F
from fastconv import reference as R
from fastconv._geometry import conv_geometry
from conftest import rel_err, require_cuda_backend

TILES = {"winograd_f2": 2, "winograd_f4": 4, "winograd_f6": 6}
# The weight gradient sums N*OH*OW products, so its error grows less with the tile than the
# forward's; these bounds sit 5-10x above the worst relative error seen over these shapes and VGG-like ones
# (2e-6, 9e-6, 1.2e-5 in float32; 2e-14 in float64).
TOL32 = {"winograd_f2": 1e-5, "winograd_f4": 5e-5, "winograd_f6": 1e-4}
TOL64 = 1e-11
ISAS = fastconv.capabilities()["available_isas"]


def case(rng, n, c, k, h, w, pad, groups=1, dtype=np.float32):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    oh, ow = h + 2 * pad - 2, w + 2 * pad - 2
    dy = rng.standard_normal((n, k, oh, ow)).astype(dtype)
    ref = R.conv2d_weight(x.astype(np.float64), (k, c // groups, 3, 3), dy.astype(np.float64), padding=pad,
                          groups=groups)
    return x, dy, ref


# (n, c, k, h, w, pad, groups): outputs of 1..13 pixels per side (partial tiles of every tile
# size), non-square maps, padding 0-3 (3: whole tiles inside the padding), groups 1-4.
SHAPES = [
    (1, 1, 1, 3, 3, 0, 1), (1, 3, 8, 9, 9, 1, 1), (2, 13, 6, 11, 7, 0, 1), (3, 5, 7, 8, 13, 2, 1),
    (1, 8, 8, 10, 12, 2, 2), (2, 12, 9, 7, 6, 1, 3), (1, 4, 8, 5, 5, 3, 4), (2, 64, 32, 8, 8, 1, 1),
    (1, 6, 5, 2, 4, 1, 1), (3, 2, 3, 14, 15, 1, 1), (1, 17, 19, 4, 9, 3, 1),
]


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", SHAPES)
def test_matches_reference_float32(rng, algo, n, c, k, h, w, pad, groups):
    x, dy, ref = case(rng, n, c, k, h, w, pad, groups)
    dw = F.conv2d_weight(x, ref.shape, dy, padding=pad, groups=groups, algorithm=algo)
    assert dw.shape == ref.shape and dw.dtype == np.float32
    assert rel_err(dw, ref) <= TOL32[algo]
    direct = F.conv2d_weight(x, ref.shape, dy, padding=pad, groups=groups, algorithm="direct")
    assert rel_err(dw, direct) <= TOL32[algo] + 1e-5


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("n,c,k,h,w,pad,groups", SHAPES[:6])
def test_matches_reference_float64(rng, algo, n, c, k, h, w, pad, groups):
    x, dy, ref = case(rng, n, c, k, h, w, pad, groups, np.float64)
    dw = F.conv2d_weight(x, ref.shape, dy, padding=pad, groups=groups, algorithm=algo)
    assert dw.dtype == np.float64 and rel_err(dw, ref) <= TOL64


@pytest.mark.parametrize("algo", list(TILES))
@pytest.mark.parametrize("groups,dtype", [(1, np.float32), (2, np.float32), (1, np.float64)])
def test_many_blocks_of_tiles(rng, algo, groups, dtype):
    """More tiles than one block holds (Mw accumulates over blocks), with channel counts that
    are not multiples of the micro-kernel's panels."""
    x, dy, ref = case(rng, 3, 20, 26, 45, 43, 1, groups, dtype)
    dw = F.conv2d_weight(x, ref.shape, dy, padding=1, groups=groups, algorithm=algo)
    assert rel_err(dw, ref) <= (TOL32[algo] if dtype == np.float32 else TOL64)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("algo", list(TILES))
def test_every_isa(rng, isa, algo):
    x, dy, ref = case(rng, 2, 13, 20, 11, 14, 1)
    with fastconv.use_isa(isa):
        dw = F.conv2d_weight(x, ref.shape, dy, padding=1, algorithm=algo)
        dw64 = F.conv2d_weight(x.astype(np.float64), ref.shape, dy.astype(np.float64), padding=1, algorithm=algo)
    assert rel_err(dw, ref) <= TOL32[algo]
    assert rel_err(dw64, ref) <= TOL64


def test_matches_torch_unbatched_and_out(rng):
    torch = pytest.importorskip("torch")
    x, dy, _ = case(rng, 2, 10, 12, 9, 9, 1, dtype=np.float64)
    want = torch.nn.grad.conv2d_weight(torch.from_numpy(x), (12, 10, 3, 3), torch.from_numpy(dy), padding=1).numpy()
    for algo in TILES:
        assert rel_err(F.conv2d_weight(x, (12, 10, 3, 3), dy, padding=1, algorithm=algo), want) <= TOL64
        out = np.empty((12, 10, 3, 3))
        got = F.conv2d_weight(x[0], (12, 10, 3, 3), dy[0], padding=1, algorithm=algo, out=out)
        assert got is out
        assert rel_err(out, R.conv2d_weight(x[:1], (12, 10, 3, 3), dy[:1], padding=1)) <= TOL64


def test_same_padding_string(rng):
    x, dy, ref = case(rng, 1, 4, 6, 10, 10, 1)
    dw = F.conv2d_weight(x, ref.shape, dy, padding="same", algorithm="winograd_f4")
    assert rel_err(dw, ref) <= TOL32["winograd_f4"]


@pytest.mark.parametrize("kwargs,kernel", [(dict(stride=2), 3), (dict(dilation=2), 3), ({}, 7), ({}, 1)])
@pytest.mark.parametrize("algo", ["winograd", "winograd_f2", "winograd_f6"])
def test_unsupported_explicit_requests_rejected_auto_falls_back(rng, kwargs, kernel, algo):
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    ws = (4, 3, kernel, kernel)
    y = F.conv2d(x, rng.standard_normal(ws).astype(np.float32), padding=1, **kwargs)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d_weight(x, ws, dy, padding=1, algorithm=algo, **kwargs)
    dw = F.conv2d_weight(x, ws, dy, padding=1, algorithm="auto", **kwargs)
    assert rel_err(dw, R.conv2d_weight(x, ws, dy, padding=1, **kwargs)) <= 1e-5


@pytest.mark.parametrize("bad", ["Winograd", "winograd_f3", "", None, 4])
def test_bad_algorithm_names_rejected(rng, bad):
    x, dy, _ = case(rng, 1, 3, 4, 6, 6, 1)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d_weight(x, (4, 3, 3, 3), dy, padding=1, algorithm=bad)
    with pytest.raises(ValueError, match="algorithm"):  # also where there is no work to do
        F.conv2d_weight(x[:0], (4, 3, 3, 3), dy[:0], padding=1, algorithm=bad)


def test_padding_over_2_runs_winograd(rng):
    """Unlike the input gradient, the weight gradient's Winograd has no padding limit."""
    x, dy, ref = case(rng, 1, 3, 4, 5, 5, 3)
    g = conv_geometry(x.shape, ref.shape, 1, 3, 1, 1)
    assert _cpu.choose_algorithm("winograd", x.shape, ref.shape, g, weight_grad=True).startswith("winograd_f")
    assert rel_err(F.conv2d_weight(x, ref.shape, dy, padding=3, algorithm="winograd"), ref) <= 1e-4


def test_binding_checks_shapes():
    x = np.zeros((1, 4, 8, 8), np.float32)
    dy = np.zeros((1, 6, 8, 8), np.float32)
    with pytest.raises(ValueError, match="tile"):
        _C.conv2d_winograd_weight_grad(x, dy, np.zeros((6, 4, 3, 3), np.float32), (1, 1), 1, 3)
    with pytest.raises(ValueError, match="output size"):
        _C.conv2d_winograd_weight_grad(x, dy, np.zeros((6, 4, 3, 3), np.float32), (0, 0), 1, 4)
    with pytest.raises(ValueError, match="groups"):
        _C.conv2d_winograd_weight_grad(x, dy, np.zeros((6, 3, 3, 3), np.float32), (1, 1), 1, 4)
    with pytest.raises(TypeError, match="out"):
        _C.conv2d_winograd_weight_grad(x, dy, np.zeros((6, 4, 3, 3), np.float64), (1, 1), 1, 4)


def test_auto_choice_follows_the_cost_model():
    """The weight-gradient cost model (fitted in bench/bench_conv_algorithms.py): direct where
    the GEMMs are thin (3 input channels) or the transforms dominate (one tile per image), F(4,3)
    on VGG-16's deep layers, and never Winograd where it cannot run."""
    def choice(n, c, k, hw, stride=1):
        g = conv_geometry((n, c, hw, hw), (k, c, 3, 3), stride, 1, 1, 1)
        return _cpu.choose_algorithm("auto", (n, c, hw, hw), (k, c, 3, 3), g, weight_grad=True)
    assert choice(1, 3, 64, 224) == "direct"
    assert choice(1, 512, 512, 2) == "direct"
    assert choice(1, 512, 512, 28) == "winograd_f4"
    assert choice(8, 256, 256, 14) == "winograd_f4"
    assert choice(1, 512, 512, 28, stride=2) == "direct"


@pytest.mark.parametrize("algo,padding", [("winograd_f2", 1), ("winograd_f4", 3), ("direct", 1)])
def test_torch_adapter_passes_the_layer_algorithm(rng, monkeypatch, algo, padding):
    """fastconv.torch's Conv2d runs its weight gradient with the layer's algorithm (any padding:
    unlike the input gradient, the weight gradient's Winograd has no padding limit)."""
    torch = pytest.importorskip("torch")
    import fastconv.torch as ft
    seen = []
    real = F.conv2d_weight
    monkeypatch.setattr(F, "conv2d_weight", lambda *a, **k: seen.append(k.get("algorithm")) or real(*a, **k))
    conv = ft.Conv2d(4, 6, 3, padding=padding, algorithm=algo).double()
    x = torch.from_numpy(rng.standard_normal((2, 4, 9, 8)))
    dy = rng.standard_normal((2, 6, 7 + 2 * padding, 6 + 2 * padding))
    conv(x).backward(torch.from_numpy(dy))
    assert seen == [algo]
    want = R.conv2d_weight(x.numpy(), (6, 4, 3, 3), dy, padding=padding)
    assert rel_err(conv.weight.grad.numpy(), want) <= TOL64


@pytest.mark.usefixtures("fast_simulator")
def test_cuda_backend_validates_then_runs_direct(rng):
    """The CUDA backend has no Winograd weight gradient: a Winograd request is checked as on the
    CPU (same errors), then runs its direct kernel."""
    pytest.importorskip("numba.cuda")
    from numba import cuda
    require_cuda_backend(cuda)  # the simulator or a usable GPU; a GPU whose CUDA is broken fails
    x, dy, ref = case(rng, 1, 3, 4, 6, 5, 1)
    got = F.conv2d_weight(cuda.to_device(x), ref.shape, cuda.to_device(dy), padding=1, algorithm="winograd_f4")
    assert rel_err(got.copy_to_host(), ref) <= 1e-5
    dy2 = rng.standard_normal((1, 4, 3, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="algorithm"):
        F.conv2d_weight(cuda.to_device(x), ref.shape, cuda.to_device(dy2), stride=2, padding=1, algorithm="winograd_f4")

"""The double-buffered GEMM kernel of fastconv/cuda/_igemm.py, tile by tile, against the float64
reference: conv forward, input gradient and split-K weight gradient (the three implicit GEMMs),
on shapes whose M, N and K are not multiples of the tile (tiny and odd, so the simulator, which
runs every CUDA thread as a Python thread, stays fast).

SIM_LARGE is the production 128x128 tile shrunk to 2x2 threads with the same 8x8 outputs per
thread, 4 epilogue passes and the same pipeline; the production configs themselves (256
threads) run one small problem each. On a GPU the same tests run the real kernels.
"""
import os

import numpy as np
import pytest

pytest.importorskip("numba")
pytest.importorskip("numba.cuda")
from numba import cuda  # noqa: E402

import fastconv.functional as F  # noqa: E402
from fastconv import reference as R  # noqa: E402
from fastconv._geometry import conv_geometry  # noqa: E402
from conftest import require_cuda_backend  # noqa: E402

require_cuda_backend(cuda)

from fastconv.cuda import _device, _igemm, conv_direct  # noqa: E402

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
pytestmark = pytest.mark.usefixtures("fast_simulator")


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def rel_err(got, ref):
    return float(np.abs(np.asarray(got, np.float64) - ref).max() / max(np.abs(ref).max(), 1e-30))


# x shape, w shape, kwargs; with SIM_LARGE (16x16 tile, BK 4) these give M, N, Kred such as
# (5, 2*5*7=70, 27), (17, 36, 2*3*3=18), ... : ragged in every dimension, several k steps
CASES = [
    ((2, 3, 5, 7), (5, 3, 3, 3), dict(padding=1)),                       # M < tile, odd N and K
    ((1, 2, 6, 6), (17, 2, 3, 3), dict(padding=1)),                      # M just over the tile
    ((1, 4, 7, 6), (6, 2, 3, 2), dict(stride=2, padding=1, groups=2)),   # groups, even kernel
    ((3, 1, 4, 5), (3, 1, 2, 2), dict(dilation=2, padding=1)),           # K=4: one k step
]


@pytest.fixture(params=["SIM_LARGE", "TINY"])
def tile(request, monkeypatch):
    cfg = getattr(_igemm, request.param)
    monkeypatch.setattr(_igemm, "choose_config", lambda *a, **k: cfg)
    return cfg


@pytest.mark.parametrize("xs,ws,kw", CASES)
def test_conv_forward_and_input_grad(tile, xs, ws, kw):
    rng = np.random.default_rng(sum(xs) + 3 * sum(ws))
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, ws[:1]))
    y = F.conv2d(dev(x), dev(w), dev(b), algorithm="direct", **kw).copy_to_host()
    assert rel_err(y, R.conv2d(x, w, b, **kw)) < 2e-6
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = F.conv2d_input(xs, dev(w), dev(dy), algorithm="direct", **kw).copy_to_host()
    assert rel_err(dx, R.conv2d_input(xs, w, dy, **kw)) < 2e-6


@pytest.mark.parametrize("splits", [1, 2, 5])
@pytest.mark.parametrize("xs,ws,kw", CASES[:3])
def test_conv_weight_grad_split_k(tile, monkeypatch, xs, ws, kw, splits):
    # the reduction over N*OH*OW cut across blockIdx.z, partials summed in a fixed order
    monkeypatch.setattr(conv_direct, "_weight_splits", lambda *a: splits)
    rng = np.random.default_rng(sum(xs) * splits)
    x = rng.standard_normal(xs).astype(np.float32)
    oh, ow = conv_geometry(xs, ws, kw.get("stride", 1), kw.get("padding", 0), kw.get("dilation", 1),
                           kw.get("groups", 1)).out_hw
    dy = rng.standard_normal((xs[0], ws[0], oh, ow)).astype(np.float32)
    dw = F.conv2d_weight(dev(x), ws, dev(dy), **kw).copy_to_host()
    assert rel_err(dw, R.conv2d_weight(x, ws, dy, **kw)) < 2e-6


def test_split_plan_covers_the_reduction_in_whole_steps():
    for kred in (1, 7, 8, 9, 100, 1568):
        for want in (1, 2, 3, 7, 64):
            splits, chunk = _igemm.split_plan(kred, want, _igemm.LARGE)
            assert chunk % _igemm.LARGE.BK == 0 and 1 <= splits <= want
            assert (splits - 1) * chunk < kred <= splits * chunk


@pytest.mark.parametrize("name", sorted(_igemm.CONFIGS))
def test_production_tiles_one_block(name):
    # the GPU's 256-thread tiles, index arithmetic and epilogue passes included (~2-6 s each
    # on the simulator); M, N, K ragged against every one of them
    cfg = _igemm.CONFIGS[name]
    rng = np.random.default_rng(len(name))
    x, w = rng.standard_normal((1, 3, 5, 7)).astype(np.float32), rng.standard_normal((37, 3, 3, 3)).astype(np.float32)
    g = conv_geometry(x.shape, w.shape, 1, 1, 1, 1)
    y = cuda.device_array((1, 37, 5, 7), np.float32)
    f32 = np.dtype(np.float32).str
    _igemm.launch(conv_direct._loaders(f32, 3, 3)["forward"], np.float32, dev(w), dev(x), y, conv_direct._empty_aux(f32),
                  37, 35, 27, 1, conv_direct._geometry(x.shape, w.shape, g), 0, cfg=cfg)
    assert rel_err(y.copy_to_host(), R.conv2d(x, w, padding=1)) < 2e-6


def test_tile_configs_are_consistent_and_bad_ones_rejected():
    for cfg in (*_igemm.CONFIGS.values(), _igemm.SIM_LARGE, _igemm.TINY):
        assert _igemm.check_config(cfg) is cfg
    assert _igemm.LARGE.TY * _igemm.LARGE.TX == 256
    assert (_igemm.LARGE.BM // _igemm.LARGE.TY, _igemm.LARGE.BN // _igemm.LARGE.TX) == (8, 8)
    with pytest.raises(ValueError, match="tile config"):
        _igemm.check_config(_igemm.TileConfig(128, 128, 8, 16, 16, 3))


def test_choose_config_fills_the_gpu(monkeypatch):
    # on a 132-SM GPU: 128x128 when it gives a full wave, else 64x128; few rows: 32x64
    monkeypatch.setattr(_device, "SIMULATOR", False)
    monkeypatch.setattr(_device, "multiprocessor_count", lambda: 132)
    assert _igemm.choose_config(512, 32 * 196) is _igemm.LARGE        # VGG conv5, batch 32
    assert _igemm.choose_config(512, 8 * 196) is _igemm.WIDE          # batch 8: 52 large tiles
    assert _igemm.choose_config(64, 8 * 224 * 224) is _igemm.WIDE     # 64 output channels
    assert _igemm.choose_config(20, 10000) is _igemm.NARROW
    assert _igemm.choose_config(256, 128, G=36 * 4) is _igemm.LARGE  # Winograd: alpha^2 batches
    assert _igemm.choose_config(512, 32 * 196, itemsize=8) is _igemm.WIDE   # float64: 8x8 would spill
    assert _igemm.LARGE not in _igemm.configs_for(8).values()

"""Every kernel in fastconv._C.kernel_list() runs against the numpy float64 reference.

The list holds one entry per (operator, dtype, ISA variant), named <op>_<tile>__<isa>; it is the
same table dispatch picks from. Each entry runs here under fastconv.use_isa(entry ISA), after
checking that dispatch then picks exactly that entry, so every AVX2 / baseline variant runs on an
AVX-512 host too. GEMM tiles (including the 8x48 tile, picked only for some row counts, and the
float64 tiles) are also run directly, one full tile at a time. Entries that need an ISA this CPU
lacks are skipped with the reason; they run on hosts that have it.
"""
import itertools
import re

import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import _C, _cpu, reference
from fastconv.augment import functional as AF
from fastconv.augment import matrices as M
from fastconv.augment import reference as AR

from conftest import ISAS, rel_err, skip_for_hardware

KERNELS = _C.kernel_list()
ISA_ORDER = ("scalar", "avx2", "avx512")
SEED = 20261201


def kernel_id(entry):
    return f"{entry['name']}[{entry['dtype']}]"


@pytest.fixture(params=KERNELS, ids=kernel_id)
def kernel(request):
    """One listed kernel, with its ISA forced; skipped (reason printed by -ra) if the CPU lacks it."""
    entry = request.param
    if entry["isa"] not in ISAS:
        skip_for_hardware(f"{entry['name']} needs {entry['isa']}; this CPU/build runs at most {ISAS[-1]}")
    with fastconv.use_isa(entry["isa"]):
        yield entry


def rng_for(entry):
    """A per-kernel seeded generator; the seed is part of the failure message."""
    seed = SEED + sum(map(ord, entry["name"] + entry["dtype"]))
    return np.random.default_rng(seed), seed


# ------------------------------------------------------------------ the list itself

def test_names_are_unique_and_end_with_their_isa():
    keys = [(e["name"], e["dtype"]) for e in KERNELS]
    assert len(keys) == len(set(keys))
    for e in KERNELS:
        assert e["isa"] in ISA_ORDER and e["name"].endswith("__" + e["isa"]), e
        assert e["dtype"] in ("float32", "float64", "uint8"), e


def test_every_family_has_a_baseline_kernel():
    for op, dtype in {(e["op"], e["dtype"]) for e in KERNELS}:
        assert any(e["isa"] == "scalar" for e in KERNELS if (e["op"], e["dtype"]) == (op, dtype)), (op, dtype)


@pytest.mark.parametrize("isa", ISAS)
def test_dispatch_only_picks_listed_kernels_of_a_lower_isa(isa):
    for op, dtype in {(e["op"], e["dtype"]) for e in KERNELS}:
        name = _C.kernel_chosen(op, dtype, isa)
        entry = next((e for e in KERNELS if (e["op"], e["dtype"], e["name"]) == (op, dtype, name)), None)
        assert entry is not None, f"{op}/{dtype} under {isa} runs {name!r}, which is not listed"
        assert ISA_ORDER.index(entry["isa"]) <= ISA_ORDER.index(isa)
        # ... and the best one the ISA allows (a lower ISA never wins while a higher one is listed).
        best = max(ISA_ORDER.index(e["isa"]) for e in KERNELS
                   if (e["op"], e["dtype"]) == (op, dtype) and ISA_ORDER.index(e["isa"]) <= ISA_ORDER.index(isa))
        assert ISA_ORDER.index(entry["isa"]) == best
    gemm_f32 = {e["name"] for e in KERNELS if e["op"] == "gemm" and e["dtype"] == "float32"}
    for rows in range(1, 257):
        assert _C.gemm_kernel_for_rows(isa, rows) in gemm_f32


def test_use_isa_switches_every_family():
    for isa in ISAS:
        with fastconv.use_isa(isa):
            for e in KERNELS:
                chosen = _C.kernel_chosen(e["op"], e["dtype"], _C.active_isa())
                assert chosen == _C.kernel_chosen(e["op"], e["dtype"], isa)


# ------------------------------------------------------------------ one runner per operator

def tile_shape(name):
    mr, nr = map(int, re.match(r"gemm_(\d+)x(\d+)__", name).groups())
    return mr, nr


def run_gemm(entry, rng):
    dt = np.dtype(entry["dtype"])
    mr, nr = tile_shape(entry["name"])
    tol = 1e-12 if dt == np.float64 else 1e-5
    for kc in (1, 3, 17, 64):
        a = rng.standard_normal((kc, mr)).astype(dt)
        b = rng.standard_normal((kc, nr)).astype(dt)
        for accumulate in (False, True):
            ldc = nr + 5  # C rows are strided, as in the drivers
            c0 = rng.standard_normal((mr, ldc)).astype(dt)
            c = c0.copy()
            _C.gemm_tile(entry["name"], a, b, c, accumulate)
            want = a.astype(np.float64).T @ b.astype(np.float64) + (c0[:, :nr] if accumulate else 0)
            assert rel_err(c[:, :nr], want) < tol
            np.testing.assert_array_equal(c[:, nr:], c0[:, nr:])  # nothing written past the tile
        # the epilogue variant: bias per row, the activation, the residual before or after it
        bias = rng.standard_normal(mr).astype(dt)
        for act, lo, hi in ((0, 0.0, 0.0), (1, 0.0, 0.0), (2, -0.5, 0.75)):
            for after in (False, True):
                c0 = rng.standard_normal((mr, nr + 5)).astype(dt)
                res = rng.standard_normal(c0.shape).astype(dt)
                c = c0.copy()
                _C.gemm_tile(entry["name"], a, b, c, True, bias=bias, act=act, lo=lo, hi=hi, residual=res,
                             residual_after_act=after)
                z = a.astype(np.float64).T @ b.astype(np.float64) + c0[:, :nr] + bias[:, None]
                z = z if after else z + res[:, :nr]
                z = z if act == 0 else np.maximum(z, 0) if act == 1 else np.clip(z, lo, hi)
                z = z + res[:, :nr] if after else z
                assert rel_err(c[:, :nr], z) < tol, (act, after)
                np.testing.assert_array_equal(c[:, nr:], c0[:, nr:])
        # the shifted-rows variant: row k of B starts at an arbitrary offset of one flat array
        flat = rng.standard_normal(kc * nr + 3 * nr).astype(dt)
        offsets = rng.integers(0, flat.size - nr + 1, kc)
        c = np.zeros((mr, nr), dt)
        _C.gemm_tile(entry["name"], a, flat, c, False, offsets)
        rows = np.stack([flat[o:o + nr] for o in offsets]).astype(np.float64)
        assert rel_err(c, a.astype(np.float64).T @ rows) < tol


def run_conv_weight_grad(entry, rng):
    """The transposing pack serves the weight gradient (strided and stride-1 paths)."""
    dt = np.dtype(entry["dtype"])
    for stride, (n, c, k, h) in ((1, (2, 5, 7, 11)), (2, (1, 3, 9, 13))):
        x = rng.standard_normal((n, c, h, h)).astype(dt)
        w_shape = (k, c, 3, 3)
        dy = rng.standard_normal((n, k) + F.conv2d(x, np.zeros(w_shape, dt), stride=stride, padding=1).shape[2:])
        dy = dy.astype(dt)
        got = F.conv2d_weight(x, w_shape, dy, stride=stride, padding=1)
        want = reference.conv2d_weight(x, w_shape, dy, stride=stride, padding=1)
        assert rel_err(got, want) < (1e-12 if dt == np.float64 else 1e-5)


def run_pointwise_tile(entry, rng):
    """The small-map 1x1 path's transposed tile and store (csrc/conv/pointwise/pointwise_kernels.h):
    forward and input gradient of 1x1 convs, forced onto it, against the reference."""
    _C.set_pointwise_variant("small_maps")
    try:
        run_pointwise_tile_forced(rng)
    finally:
        _C.set_pointwise_variant("auto")


def run_pointwise_tile_forced(rng):
    for n, c, h, w, k, stride, groups in ((1, 64, 1, 1, 48, 1, 1), (1, 40, 1, 7, 33, 1, 1), (1, 33, 1, 7, 48, 1, 1),
                                          (1, 96, 7, 7, 80, 1, 1), (1, 64, 5, 10, 70, 1, 1),
                                          (1, 64, 14, 14, 144, 1, 1), (1, 37, 14, 9, 40, 2, 1),
                                          (3, 32, 2, 2, 96, 1, 1), (2, 96, 14, 14, 64, 2, 2)):
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        wt = rng.standard_normal((k, c // groups, 1, 1)).astype(np.float32)
        b = rng.standard_normal(k).astype(np.float32)
        for p in ("forward", "input_grad"):
            assert _C.pointwise_variant(x.shape, wt.shape, (stride, stride), groups, p) == "small_maps", (x.shape, p)
        y = F.conv2d(x, wt, b, stride, 0, 1, groups)
        want = reference.conv2d(x, wt, b, stride, 0, 1, groups)
        assert rel_err(y, want) < 1e-5
        # the epilogue in the transposing store: clamp, the residual after it
        res = rng.standard_normal(y.shape).astype(np.float32)
        fused = np.empty_like(y)
        _C.conv2d_direct(x, wt, b, fused, (stride, stride), (0, 0), (1, 1), groups,
                         **_cpu.conv_epilogue_kwargs("clamp", (-0.5, 0.5), res, True))
        assert rel_err(fused, np.clip(want, -0.5, 0.5) + res) < 1e-5
        dy = rng.standard_normal(y.shape).astype(np.float32)
        dx = F.conv2d_input(x.shape, wt, dy, stride, 0, 1, groups)
        assert rel_err(dx, reference.conv2d_input(x.shape, wt, dy, stride, 0, 1, groups)) < 1e-5


def run_winograd(entry, rng):
    dt = np.dtype(entry["dtype"])
    x = rng.standard_normal((2, 6, 13, 10)).astype(dt)
    w = rng.standard_normal((5, 6, 3, 3)).astype(dt)
    b = rng.standard_normal(5).astype(dt)
    want = reference.conv2d(x, w, b, padding=1)
    for tile in (2, 4, 6):
        got = F.conv2d(x, w, b, padding=1, algorithm=f"winograd_f{tile}")
        assert rel_err(got, want) < (1e-11 if dt == np.float64 else 1e-4), tile


def run_winograd_weight_grad(entry, rng):
    dt = np.dtype(entry["dtype"])
    x = rng.standard_normal((2, 6, 13, 10)).astype(dt)
    dy = rng.standard_normal((2, 5, 13, 10)).astype(dt)
    want = reference.conv2d_weight(x, (5, 6, 3, 3), dy, padding=1)
    for tile in (2, 4, 6):
        got = F.conv2d_weight(x, (5, 6, 3, 3), dy, padding=1, algorithm=f"winograd_f{tile}")
        assert rel_err(got, want) < (1e-11 if dt == np.float64 else 1e-4), tile


def run_winograd_input_grad(entry, rng):
    """The blocked input-gradient driver (its U-panel kernel is the listed one)."""
    dt = np.dtype(entry["dtype"])
    w = rng.standard_normal((5, 6, 3, 3)).astype(dt)
    dy = rng.standard_normal((2, 5, 13, 10)).astype(dt)
    want = reference.conv2d_input((2, 6, 13, 10), w, dy, padding=1)
    for tile in (2, 4, 6):
        got = np.empty((2, 6, 13, 10), dt)
        _C.conv2d_winograd_input_grad(dy, w, got, (1, 1), 1, tile, True)
        assert rel_err(got, want) < (1e-11 if dt == np.float64 else 1e-4), tile


def run_max_pool(entry, rng):
    dt = np.dtype(entry["dtype"])
    # odd sizes: a row / column left over; output rows of 1-33 columns cover the vector kernels'
    # whole vectors and masked tails
    for shape in ((2, 3, 8, 8), (1, 2, 7, 37), (1, 1, 2, 2), (2, 3, 14, 14), (1, 2, 10, 10), (1, 2, 6, 66),
                  (1, 1, 5, 33), (1, 2, 9, 32), (1, 1, 3, 65)):
        x = rng.standard_normal(shape).astype(dt)
        x[0, 0, 0, :2] = x[0, 0, 1, 0]  # ties: the first maximum wins
        if x.size > 8:
            x.flat[5] = np.nan
        y, idx = F.max_pool2d(x, 2, return_indices=True)
        want_y, want_idx = reference.max_pool2d(x, 2)
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_array_equal(idx, want_idx)


def run_max_pool_window(entry, rng):
    """Windows other than 2x2/2 (3x3/2 as AlexNet and ResNet, padded, ceil_mode, stride 1 and 3,
    windows wider than the map): interior outputs vectorised, edges per window."""
    dt = np.dtype(entry["dtype"])
    cases = [((1, 2, 55, 55), 3, 2, 0, False), ((2, 3, 16, 19), 3, 2, 1, False), ((1, 2, 13, 13), 3, 2, 0, True),
             ((1, 1, 9, 40), (2, 3), (1, 3), (1, 1), False), ((1, 2, 7, 33), 3, 1, 1, False),
             ((1, 1, 3, 4), 5, 2, 2, True), ((1, 1, 6, 70), (1, 4), (2, 4), 0, True)]
    for shape, k, s, pad, ceil in cases:
        x = rng.standard_normal(shape).astype(dt)
        x[0, 0, 0, :3] = x[0, 0, 1, 1]  # ties: the first maximum in row-major order wins
        x.flat[7] = np.nan
        x.flat[x.size // 2] = -np.inf
        y, idx = F.max_pool2d(x, k, s, pad, ceil_mode=ceil, return_indices=True)
        want_y, want_idx = reference.max_pool2d(x, k, s, pad, ceil_mode=ceil)
        np.testing.assert_array_equal(y, want_y, err_msg=str((shape, k, s, pad, ceil)))
        np.testing.assert_array_equal(idx, want_idx, err_msg=str((shape, k, s, pad, ceil)))


def run_max_pool_values(entry, rng):
    """The values-only kernel (no indices asked for: inference), on the window kernel's cases plus
    2x2/2 and a row of NaNs: the reference's values, NaN propagating, -inf kept."""
    dt = np.dtype(entry["dtype"])
    cases = [((1, 2, 55, 55), 3, 2, 0, False), ((2, 3, 16, 19), 3, 2, 1, False), ((1, 2, 13, 13), 3, 2, 0, True),
             ((1, 1, 9, 40), (2, 3), (1, 3), (1, 1), False), ((1, 2, 7, 33), 3, 1, 1, False),
             ((1, 1, 3, 4), 5, 2, 2, True), ((1, 1, 6, 70), (1, 4), (2, 4), 0, True), ((2, 3, 9, 37), 2, 2, 0, False),
             ((1, 2, 112, 112), 3, 2, 1, False)]
    for shape, k, s, pad, ceil in cases:
        x = rng.standard_normal(shape).astype(dt)
        x.flat[7] = np.nan
        x.flat[x.size // 2] = -np.inf
        x[-1, -1, -1, :] = np.nan
        y = F.max_pool2d(x, k, s, pad, ceil_mode=ceil)
        want_y, _ = reference.max_pool2d(x, k, s, pad, ceil_mode=ceil)
        np.testing.assert_array_equal(y, want_y, err_msg=str((shape, k, s, pad, ceil)))


def run_depthwise(entry, rng):
    """One window's kernels (depthwise_3x3 / _5x5 / _any): forward, input and weight gradient with
    channel multiplier 2, strides 1 and 2, on a narrow plane (the flat window) and a wide one (the
    ring), against the reference."""
    dt = np.dtype(entry["dtype"])
    windows = {"depthwise_3x3": [(3, 3)], "depthwise_5x5": [(5, 5)], "depthwise_any": [(2, 4), (7, 1)]}[entry["op"]]
    tol = 1e-12 if dt == np.float64 else 1e-4
    for r, s in windows:
        for stride in (1, 2):
            for h, w in ((9, 11), (13, 70)):
                x = rng.standard_normal((2, 3, h, w)).astype(dt)
                wt = rng.standard_normal((6, 1, r, s)).astype(dt)
                kw = dict(stride=stride, padding=(r // 2, s // 2), groups=3)
                y = F.conv2d(x, wt, None, **kw)
                assert rel_err(y, reference.conv2d(x, wt, None, **kw)) < tol
                dy = rng.standard_normal(y.shape).astype(dt)
                assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), reference.conv2d_input(x.shape, wt, dy, **kw)) < tol
                assert rel_err(F.conv2d_weight(x, wt.shape, dy, **kw), reference.conv2d_weight(x, wt.shape, dy, **kw)) < tol


def run_depthwise_dense(entry, rng):
    """The dense 3x3 kernels (stride 1 and 2, padding 1, one output per channel): forward, input
    and weight gradient on planes narrower than a vector, spanning rows, and wide, against the
    reference."""
    dt = np.dtype(entry["dtype"])
    tol = 1e-12 if dt == np.float64 else 1e-4
    for (h, w), stride in itertools.product(((9, 11), (1, 5), (13, 70)), (1, 2)):
        x = rng.standard_normal((2, 3, h, w)).astype(dt)
        wt = rng.standard_normal((3, 1, 3, 3)).astype(dt)
        kw = dict(stride=stride, padding=1, groups=3)
        y = F.conv2d(x, wt, None, **kw)
        assert rel_err(y, reference.conv2d(x, wt, None, **kw)) < tol
        dy = rng.standard_normal(y.shape).astype(dt)
        assert rel_err(F.conv2d_input(x.shape, wt, dy, **kw), reference.conv2d_input(x.shape, wt, dy, **kw)) < tol
        assert rel_err(F.conv2d_weight(x, wt.shape, dy, **kw), reference.conv2d_weight(x, wt.shape, dy, **kw)) < tol


def u8_images(rng, n=3, h=19, w=37):
    """uint8 NHWC RGB images, and the same as float64 NCHW in [0, 1]."""
    x8 = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return x8, x8.transpose(0, 3, 1, 2).astype(np.float64) / 255


def assert_u8_close(y8_nhwc, ref01_nchw, levels=1):
    want = np.clip(np.rint(ref01_nchw.transpose(0, 2, 3, 1) * 255), 0, 255)
    assert np.abs(y8_nhwc.astype(np.int64) - want).max() <= levels


def run_color(entry, rng):
    n = 3
    b, c = rng.uniform(0.5, 1.6, n), rng.uniform(0.5, 1.5, n)
    s, h = rng.uniform(0.3, 1.7, n), rng.uniform(-0.3, 0.3, n)
    cases = [dict(brightness=b, contrast=c, saturation=s, hue=h),               # the per-pixel RGB kernel
             dict(brightness=b, contrast=c, saturation=s, value_range=(0.1, 0.9)),  # mean from histograms
             dict(brightness=b, contrast=c),                                    # uint8: one LUT per image
             dict(brightness=b, contrast=c, value_range=None)]                  # no clamp (uint8 saturates)
    if entry["dtype"] == "uint8":
        x8, x = u8_images(rng, n)
        for kw in cases:
            assert_u8_close(AF.adjust_color(x8, **kw, layout="NHWC"), AR.adjust_color(x, **kw))
            planar = np.ascontiguousarray(x8.transpose(0, 3, 1, 2))
            assert_u8_close(AF.adjust_color(planar, **kw).transpose(0, 2, 3, 1), AR.adjust_color(x, **kw))
    else:
        x = rng.random((n, 3, 19, 37)).astype(np.float32)
        for kw in cases:
            np.testing.assert_allclose(AF.adjust_color(x, **kw), AR.adjust_color(x, **kw), atol=1e-4)
        gray = x[:, :1]  # one channel: brightness and contrast only
        kw = dict(brightness=b, contrast=c)
        np.testing.assert_allclose(AF.adjust_color(gray, **kw), AR.adjust_color(gray, **kw), atol=1e-5)


def run_blur(entry, rng):
    sigmas = [0.8, 2.5, 17.0]  # 17: radius 68, past the uint8 fixed-point path's limit of 64
    if entry["dtype"] == "uint8":
        x8, x = u8_images(rng, 3, 9, 70)
        for border in ("reflect", "constant", "replicate"):
            assert_u8_close(AF.gaussian_blur(x8, sigmas, border=border, layout="NHWC"),
                            AR.gaussian_blur(x, sigmas, border=border))
    else:
        x = rng.random((3, 2, 9, 70)).astype(np.float32)
        for border in ("reflect", "constant", "replicate"):
            np.testing.assert_allclose(AF.gaussian_blur(x, sigmas, border=border),
                                       AR.gaussian_blur(x, sigmas, border=border), atol=1e-5)


def run_warp(entry, rng):
    n = 3
    m = M.about(M.rotation(rng.uniform(-40, 40, n)) @ M.scaling(rng.uniform(0.7, 1.3, n)), *M.center((19, 37)))
    for border in ("constant", "reflect", "replicate"):
        if entry["dtype"] == "uint8":
            x8, x = u8_images(rng, n)
            y = AF.warp_affine(x8, m, border=border, fill=0.25, layout="NHWC")
            assert_u8_close(y, AR.warp_affine(x, m, border=border, fill=0.25))
            planar = np.ascontiguousarray(x8.transpose(0, 3, 1, 2))
            assert_u8_close(AF.warp_affine(planar, m, border=border, fill=0.25).transpose(0, 2, 3, 1),
                            AR.warp_affine(x, m, border=border, fill=0.25))
        else:
            x = rng.random((n, 2, 19, 37)).astype(np.float32)
            np.testing.assert_allclose(AF.warp_affine(x, m, border=border, fill=0.25),
                                       AR.warp_affine(x, m, border=border, fill=0.25), atol=1e-5)


def run_flip(entry, rng):
    for w in (1, 5, 6, 7, 11, 37):  # below, at and past the 5-pixel vector step
        x8 = rng.integers(0, 256, (2, 3, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(AF.flip(x8, True, [False, True], layout="NHWC"),
                                      np.stack([x8[0, :, ::-1], x8[1, ::-1, ::-1]]))


def run_noise(entry, rng):
    n = 3
    std, keys = rng.uniform(0.02, 0.2, n), rng.integers(0, 2 ** 63, n, dtype=np.uint64)
    if entry["dtype"] == "uint8":
        x8, x = u8_images(rng, n)
        planar = np.ascontiguousarray(x8.transpose(0, 3, 1, 2))  # the noise follows memory order
        y = AF.gaussian_noise(planar, std, keys)
        assert_u8_close(y.transpose(0, 2, 3, 1), AR.gaussian_noise(x, std, keys))
    else:
        x = rng.random((n, 3, 19, 37)).astype(np.float32)
        np.testing.assert_allclose(AF.gaussian_noise(x, std, keys), AR.gaussian_noise(x, std, keys), atol=1e-5)


def run_epilogue(entry, rng):
    dt = np.dtype(entry["dtype"])
    tol = 1e-6 if dt == np.float32 else 1e-13
    # NCHW planes (odd sizes: vector tails), (rows, features) as after a linear, an empty batch
    for shape in ((2, 5, 7, 9), (1, 3, 1, 1), (3, 37), (2, 4, 33), (0, 3, 4, 4)):
        x = (rng.standard_normal(shape) * 4).astype(dt)
        if x.size > 3:
            x.flat[3] = np.nan  # propagates through every activation
        scale, bias = rng.standard_normal(shape[1]).astype(dt), rng.standard_normal(shape[1]).astype(dt)
        residual = rng.standard_normal(shape).astype(dt)
        for activation in (None, "relu", "relu6", "hardtanh", "silu"):
            for after in (False, True):
                args = dict(activation=activation, residual_after_activation=after, min_val=-0.5, max_val=2.0)
                got = F.epilogue(x, scale, bias, residual, **args)
                want = reference.epilogue(x, scale, bias, residual, **args)
                np.testing.assert_allclose(got, want, rtol=tol, atol=tol, err_msg=f"{shape} {activation} {after}")
        y = x.copy()
        F.epilogue(y, None, bias, None, activation="relu", out=y)  # in place, optional arguments absent
        np.testing.assert_allclose(y, reference.epilogue(x, None, bias, None, "relu"), rtol=tol, atol=tol)


def run_epilogue_store_rows(entry, rng):
    """The shifted-row convs' copy out with the epilogue (stride 1 on the padded input, stride 2
    on its phase images; a map cut into blocks that start inside the padded columns at 2 threads):
    every activation but SiLU (which keeps its own pass), the residual before and after it, a NaN
    reaching exactly the outputs whose window holds it."""
    from test_conv_output_epilogue import ACTS, error, reference_epilogue
    dt = np.dtype(entry["dtype"])
    tol = 1e-5 if dt == np.float32 else 1e-12
    for (h, w_), stride in (((40, 9), 1), ((111, 11), 2), ((13, 6), 1)):
        x = rng.standard_normal((2, 5, h, w_)).astype(dt)
        x[1, 2, 4, 3] = np.nan
        wt = rng.standard_normal((9, 5, 3, 3)).astype(dt)
        b = rng.standard_normal(9).astype(dt)
        conv = reference.conv2d(x.astype(np.float64), wt.astype(np.float64), b.astype(np.float64), stride, 1)
        path = _C.conv2d_direct_path(x, wt, np.empty(conv.shape, dt), (stride, stride), (1, 1), (1, 1), 1, "forward")
        assert path in ("shifted", "phase_shifted"), path
        finite = np.isfinite(conv)
        for act, bounds in ACTS:
            if act == "silu":
                continue
            for where in (None, "before", "after"):
                res = None if where is None else rng.standard_normal(conv.shape).astype(dt)
                y = np.full(conv.shape, 7.0, dt)
                _C.conv2d_direct(x, wt, b, y, (stride, stride), (1, 1), (1, 1), 1,
                                 **_cpu.conv_epilogue_kwargs(act, bounds, res, where == "after"))
                want = reference_epilogue(np.where(finite, conv, 0.0), act, bounds, res, where == "after")
                assert np.array_equal(np.isnan(y), ~finite), (h, stride, act, where)
                assert error(np.where(finite, y, 0.0), np.where(finite, want, 0.0), np.where(finite, conv, 0.0),
                             res) < tol, (h, stride, act, where)


def run_linear_few_rows(entry, rng):
    from test_linear_few_rows import check_backward, check_forward
    dt = np.dtype(entry["dtype"]).type
    for rows, n_in, n_out in ((1, 17, 5), (3, 33, 9), (8, 65, 7)):  # vector tails, every row count class
        check_forward(rows, n_in, n_out, dt, rng)
        check_backward(rows, n_in, n_out, dt, rng)


RUNNERS = {
    "gemm": run_gemm,
    "transpose_panel": run_conv_weight_grad,
    "pointwise_tile": run_pointwise_tile,
    "winograd_transforms": run_winograd,
    "winograd_weight_grad": run_winograd_weight_grad,
    "winograd_input_grad": run_winograd_input_grad,
    "max_pool2d": run_max_pool,
    "max_pool2d_window": run_max_pool_window,
    "max_pool2d_values": run_max_pool_values,
    "depthwise_3x3": run_depthwise,
    "depthwise_5x5": run_depthwise,
    "depthwise_any": run_depthwise,
    "depthwise_3x3_dense": run_depthwise_dense,
    "color_adjust": run_color,
    "gaussian_blur": run_blur,
    "warp_affine": run_warp,
    "flip": run_flip,
    "gaussian_noise": run_noise,
    "epilogue": run_epilogue,
    "epilogue_store_rows": run_epilogue_store_rows,
    "linear_few_rows": run_linear_few_rows,
}


def test_kernel_matches_reference(kernel):
    assert kernel["op"] in RUNNERS, f"listed kernel {kernel['name']} has no test: add a runner for {kernel['op']!r}"
    if kernel["op"] != "gemm":  # GEMM tiles are run by name; every other op goes through dispatch
        assert _C.kernel_chosen(kernel["op"], kernel["dtype"], _C.active_isa()) == kernel["name"]
    rng, seed = rng_for(kernel)
    try:
        RUNNERS[kernel["op"]](kernel, rng)
    except AssertionError as e:
        raise AssertionError(f"{kernel['name']} ({kernel['dtype']}, seed {seed}): {e}") from e

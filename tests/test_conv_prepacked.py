"""Forward weights packed once (_C.conv2d_pack_forward_weights) and read by conv2d_direct in
place of packing them per call (the compiled plans' conv steps keep them per layer). Every
forward path that packs weights is checked on every ISA: the prepacked call must give exactly
the packing call's result (same panels, same order of operations) and the float64 reference's;
a layout made for another ISA or without the bias the call adds is not used (the call packs
again); a packed array of the wrong size, dtype or alignment is refused by name."""
import numpy as np
import pytest

from fastconv import _C, reference

# (N, C, H, W, K, kernel, stride, padding, groups, path the forward takes on AVX-512)
SHAPES = [
    (1, 64, 20, 20, 40, 1, 1, 0, 1, "pointwise GEMM"),
    (3, 24, 6, 5, 20, 1, 1, 0, 1, "pointwise, batch folded"),
    (1, 40, 7, 7, 56, 1, 1, 0, 1, "pointwise small maps"),
    (1, 200, 7, 7, 100, 1, 1, 0, 1, "pointwise small maps, several row blocks and slices"),
    (2, 12, 11, 9, 16, 1, 2, 0, 4, "pointwise strided, grouped"),
    (2, 8, 12, 10, 12, 3, 1, 1, 1, "shifted rows"),
    (1, 70, 7, 7, 72, 3, 1, 1, 1, "batched"),
    (8, 64, 3, 3, 100, 3, 1, 1, 1, "batched pixel rows"),
    (4, 128, 3, 3, 128, 3, 1, 1, 2, "batched pixel rows, grouped"),
    (1, 64, 7, 7, 112, 3, 2, 1, 1, "batched pixel rows strided"),
    (1, 64, 14, 14, 80, 3, 2, 1, 1, "batched strided"),
    (1, 6, 17, 15, 10, 3, 2, 1, 1, "phase images"),
    (1, 3, 23, 23, 8, 7, 2, 3, 1, "stem (im2col)"),
    (1, 5, 9, 8, 7, 3, 1, 4, 1, "padding wider than the kernel"),
]


def conv_call(x, w, b, y, s, p, g, **packed):
    _C.conv2d_direct(x, w, b, y, (s, s), (p, p), (1, 1), g, 0, 0.0, 0.0, None, False, **packed)
    return y


def aligned_zeros(like):
    """Zeros of like's size and dtype at a 64-byte aligned address (numpy aligns to 16)."""
    raw = np.zeros(like.size + 64 // like.itemsize, like.dtype)
    start = (-raw.ctypes.data % 64) // like.itemsize
    return raw[start:start + like.size]


def out_shape(x, w, s, p):
    return (x.shape[0], w.shape[0], (x.shape[2] + 2 * p - w.shape[2]) // s + 1, (x.shape[3] + 2 * p - w.shape[3]) // s + 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s[-1])
def test_prepacked_forward_equals_packing_every_isa(shape, dtype, isa, rng):
    n, c, h, wd, k, r, s, p, g, _ = shape
    x = rng.standard_normal((n, c, h, wd)).astype(dtype)
    w = rng.standard_normal((k, c // g, r, r)).astype(dtype)
    want = reference.conv2d(x.astype(np.float64), w.astype(np.float64), None, s, p, 1, g)
    for b in (None, rng.standard_normal(k).astype(dtype)):
        plain = conv_call(x, w, b, np.full(out_shape(x, w, s, p), np.nan, dtype), s, p, g)
        made = _C.conv2d_pack_forward_weights(x, w, plain, (s, s), (p, p), (1, 1), g, b is not None)
        assert made is not None, "every path here packs its weights"
        packed, layout = made
        assert packed.ctypes.data % 64 == 0 and packed.dtype == dtype and packed.ndim == 1
        w_other = rng.standard_normal(w.shape).astype(dtype)  # proves the panels, not w, are read
        got = conv_call(x, w_other, b, np.full(plain.shape, np.nan, dtype), s, p, g, packed=packed, packed_layout=layout)
        np.testing.assert_array_equal(got, plain)
        ref = want + (0.0 if b is None else b.astype(np.float64)[None, :, None, None])
        tol = 1e-4 if dtype == np.float32 else 1e-11
        assert np.abs(got - ref).max() <= tol * max(1.0, np.abs(ref).max())


def test_prepacked_weights_are_read_on_every_path_that_packs(rng):
    """The layout names the path: a pointwise call keeps its transposed-tile slices or GEMM
    panels, the batched GEMMs their row or pixel-row panels; depthwise has none to keep."""
    x = rng.standard_normal((1, 16, 9, 9)).astype(np.float32)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    y = np.empty((1, 16, 9, 9), np.float32)
    assert _C.conv2d_pack_forward_weights(x, w, y, (1, 1), (1, 1), (1, 1), 16, False) is None
    layouts = set()
    for n, c, h, wd, k, r, s, p, g, _ in SHAPES:
        x = np.zeros((n, c, h, wd), np.float32)
        w = np.zeros((k, c // g, r, r), np.float32)
        y = np.empty(out_shape(x, w, s, p), np.float32)
        layouts.add(_C.conv2d_pack_forward_weights(x, w, y, (s, s), (p, p), (1, 1), g, False)[1].split("/")[0])
    if _C.active_isa() == "avx512":
        assert layouts == {"panels", "pixel_panels", "pointwise_small"}


def test_a_layout_made_for_another_call_is_not_used(isa, rng):
    """A layout name other than the one this call packs now (made under another ISA, or
    without the bias the small-map 1x1's cost rule counts) is ignored: the call packs its
    weights itself, so zeros in the packed array change nothing."""
    x = rng.standard_normal((1, 40, 7, 7)).astype(np.float32)
    w = rng.standard_normal((56, 40, 1, 1)).astype(np.float32)
    y = np.empty((1, 56, 7, 7), np.float32)
    packed, layout = _C.conv2d_pack_forward_weights(x, w, y, (1, 1), (0, 0), (1, 1), 1, False)
    want = conv_call(x, w, None, np.empty_like(y), 1, 0, 1)
    for other in ("panels/gemm_4x16__scalar", "pointwise_small/pointwise_tile_16x8__scalar", "panels/" + layout):
        if other == layout:
            continue
        got = conv_call(x, w, None, np.empty_like(y), 1, 0, 1, packed=aligned_zeros(packed), packed_layout=other)
        np.testing.assert_array_equal(got, want)


def test_bad_packed_arrays_are_refused_by_name(rng):
    x = rng.standard_normal((1, 32, 7, 7)).astype(np.float32)
    w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    y = np.empty((1, 48, 7, 7), np.float32)
    packed, layout = _C.conv2d_pack_forward_weights(x, w, y, (1, 1), (1, 1), (1, 1), 1, False)
    with pytest.raises(ValueError, match="packed must have shape"):
        conv_call(x, w, None, y, 1, 1, 1, packed=packed[:-1], packed_layout=layout)
    with pytest.raises(TypeError, match="packed has dtype float64"):
        conv_call(x, w, None, y, 1, 1, 1, packed=packed.astype(np.float64), packed_layout=layout)
    raw = np.zeros(packed.size + 16, np.float32)
    start = next(i for i in range(1, 17) if raw[i:].ctypes.data % 64)
    with pytest.raises(ValueError, match="64-byte aligned"):
        conv_call(x, w, None, y, 1, 1, 1, packed=raw[start:start + packed.size], packed_layout=layout)


def test_packing_keeps_no_reference_to_the_weight(rng):
    """The packed array is a copy: changing the weight afterwards does not change it."""
    x = rng.standard_normal((1, 32, 7, 7)).astype(np.float32)
    w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    y = np.empty((1, 48, 7, 7), np.float32)
    packed, layout = _C.conv2d_pack_forward_weights(x, w, y, (1, 1), (1, 1), (1, 1), 1, False)
    before = packed.copy()
    w[:] = 0.0
    np.testing.assert_array_equal(packed, before)

"""fastconv.augment.functional kernels against exact expectations, the numpy reference
(fastconv.augment.reference), scipy.ndimage and colorsys."""
import colorsys

import numpy as np
import pytest

import fastconv
from fastconv.augment import functional as F
from fastconv.augment import matrices as M
from fastconv.augment import reference as R

BORDERS = ["constant", "reflect", "replicate"]
INTERPS = ["bilinear", "nearest"]


def rand(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def random_affine(rng, n, hw):
    ang = rng.uniform(-180, 180, n)
    sc = rng.uniform(0.5, 1.7, n)
    m = M.about(M.rotation(ang) @ M.shear(rng.uniform(-20, 20, n), rng.uniform(-20, 20, n)) @ M.scaling(sc),
                *M.center(hw))
    return M.translation(rng.uniform(-5, 5, n), rng.uniform(-5, 5, n)) @ m


# ----------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("k", [1, 2, 3])
def test_rotations_by_quarter_turns_equal_rot90(k):
    x = rand(3, 2, 9, 9)
    m = M.about(M.rotation(np.full(3, 90.0 * k)), *M.center((9, 9)))
    for interp in INTERPS:
        y = F.warp_affine(x, m, interpolation=interp)
        np.testing.assert_array_equal(y, np.rot90(x, k, axes=(2, 3)))


def test_flips_equal_np_flip_both_via_kernel_and_via_warp():
    x = rand(4, 3, 7, 10)
    h, v = np.array([1, 0, 1, 0], bool), np.array([0, 1, 1, 0], bool)
    expected = np.stack([np.flip(x[i], axis=tuple(a for a, f in ((2, h[i]), (1, v[i])) if f)) if (h[i] or v[i])
                         else x[i] for i in range(4)])
    np.testing.assert_array_equal(F.flip(x, h, v), expected)
    np.testing.assert_array_equal(F.warp_affine(x, M.flips((7, 10), h, v)), expected)


@pytest.mark.parametrize("border", BORDERS)
def test_whole_pixel_translation_is_a_shift(border):
    x = rand(2, 3, 8, 11)
    y = F.warp_affine(x, M.translation([3, -2], [-1, 2]), border=border, fill=0.5)
    # sample 0 moves right by 3, up by 1
    np.testing.assert_array_equal(y[0, :, :7, 3:], x[0, :, 1:, :8])
    np.testing.assert_array_equal(y[1, :, 2:, :9], x[1, :, :6, 2:])
    if border == "constant":
        assert np.all(y[0, :, :, :3] == 0.5) and np.all(y[0, :, 7, :] == 0.5)
    if border == "replicate":
        np.testing.assert_array_equal(y[0, :, :7, 0], x[0, :, 1:, 0])
    if border == "reflect":
        np.testing.assert_array_equal(y[0, :, :7, 0], x[0, :, 1:, 3])  # -3 -> 3


def test_identity_returns_input_values():
    x = rand(2, 3, 6, 5)
    for interp in INTERPS:
        np.testing.assert_array_equal(F.warp_affine(x, np.eye(3), interpolation=interp), x)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 2e-5), (np.float64, 2e-5)])  # float64 runs in float32
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("interp", INTERPS)
def test_warp_matches_reference(interp, border, dtype, tol):
    rng = np.random.default_rng(INTERPS.index(interp) * 10 + BORDERS.index(border))
    for n, c, h, w, oh, ow in [(3, 3, 13, 17, 13, 17), (2, 1, 5, 4, 9, 7), (1, 2, 1, 6, 3, 3), (2, 3, 16, 16, 8, 24)]:
        x = rand(n, c, h, w, dtype=dtype, seed=h * w)
        m = random_affine(rng, n, (h, w))
        y = F.warp_affine(x, m, (oh, ow), interp, border, fill=0.25)
        ref = R.warp_affine(x, m, (oh, ow), interp, border, fill=0.25)
        assert y.dtype == dtype and y.shape == (n, c, oh, ow)
        if interp == "nearest":
            # only a source coordinate within float32 rounding of a .5 boundary may round either way
            bad = (np.abs(y - ref) > tol).any(axis=1)
            ties = rounding_ties(m, n, (oh, ow))
            assert not (bad & ~ties).any(), np.argwhere(bad & ~ties)[:5]
        else:
            np.testing.assert_allclose(y, ref, atol=tol, rtol=0)


def rounding_ties(matrix, n, out_size, margin=1e-4):
    """(n, oh, ow) mask of output pixels whose source coordinate (float64, as the reference
    maps it) lies within margin of a .5 boundary, where float32 may round it either way."""
    full = np.zeros((n, 3, 3))
    full[:, :2], full[:, 2, 2] = np.broadcast_to(matrix, (n, 3, 3))[:, :2], 1
    inv = np.linalg.inv(full)
    ys, xs = np.mgrid[0:out_size[0], 0:out_size[1]].astype(np.float64)
    src = np.einsum("nij,jhw->nihw", inv[:, :2], np.stack([xs, ys, np.ones_like(xs)]))
    frac = src - np.floor(src)
    return (np.abs(frac - 0.5) < margin).any(axis=1)


def test_warp_is_thread_count_invariant():
    x = rand(5, 3, 31, 29)
    m = random_affine(np.random.default_rng(1), 5, (31, 29))
    old = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        a = F.warp_affine(x, m, border="reflect")
        fastconv.set_num_threads(2)
        b = F.warp_affine(x, m, border="reflect")
    finally:
        fastconv.set_num_threads(old)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------- blur

@pytest.mark.parametrize("border,mode", [("reflect", "mirror"), ("replicate", "nearest"), ("constant", "constant")])
def test_blur_matches_scipy(border, mode):
    ndimage = pytest.importorskip("scipy.ndimage")
    x = rand(3, 2, 23, 19, dtype=np.float64)
    sigma = [0.7, 2.3, 0.0]
    y = F.gaussian_blur(x, sigma, border=border)
    for i, s in enumerate(sigma):
        exp = x[i] if s == 0 else ndimage.gaussian_filter(x[i], (0, s, s), mode=mode, truncate=4.0)
        np.testing.assert_allclose(y[i], exp, atol=1e-5)
    np.testing.assert_allclose(y, R.gaussian_blur(x, sigma, border=border), atol=1e-5)


def test_blur_float32_large_sigma_on_small_image():
    x = rand(2, 3, 5, 6)
    y = F.gaussian_blur(x, [3.0, 1.0], border="reflect")
    np.testing.assert_allclose(y, R.gaussian_blur(x, [3.0, 1.0], border="reflect"), atol=1e-5)


# ------------------------------------------------------------------------------ colour

def test_brightness_contrast_saturation_formulas():
    x = rand(2, 3, 8, 9)
    b = F.adjust_color(x, brightness=[1.3, 0.5])
    np.testing.assert_allclose(b, np.clip(x * np.array([1.3, 0.5])[:, None, None, None], 0, 1), atol=1e-6)
    c = F.adjust_color(x, contrast=0.6)
    gray_mean = np.tensordot(x, R.GRAY, axes=([1], [0])).mean(axis=(1, 2))[:, None, None, None]
    np.testing.assert_allclose(c, np.clip(0.6 * x + 0.4 * gray_mean, 0, 1), atol=1e-5)
    s = F.adjust_color(x, saturation=0.0)  # saturation 0 = grayscale in every channel
    gray = np.tensordot(x, R.GRAY, axes=([1], [0]))[:, None]
    np.testing.assert_allclose(s, np.broadcast_to(gray, x.shape), atol=1e-6)
    gray1 = rand(2, 1, 5, 5)
    np.testing.assert_allclose(F.adjust_color(gray1, brightness=2.0, contrast=0.5, value_range=None),
                               R.adjust_color(gray1, 2.0, 0.5, value_range=None), atol=1e-5)


def test_hue_matches_colorsys():
    x = rand(1, 3, 4, 5, seed=3)
    shift = 0.23
    y = F.adjust_color(x, hue=shift)
    for i in range(4):
        for j in range(5):
            h, s, v = colorsys.rgb_to_hsv(*x[0, :, i, j])
            np.testing.assert_allclose(y[0, :, i, j], colorsys.hsv_to_rgb((h + shift) % 1.0, s, v), atol=1e-5)


@pytest.mark.parametrize("value_range", [(0.0, 1.0), None])
def test_color_jitter_matches_reference(value_range):
    x = rand(5, 3, 11, 13, dtype=np.float64) * (1.2 if value_range is None else 1.0)
    rng = np.random.default_rng(0)
    args = [rng.uniform(0.5, 1.5, 5), rng.uniform(0.5, 1.5, 5), rng.uniform(0, 2, 5), rng.uniform(-0.5, 0.5, 5)]
    y = F.adjust_color(x, *args, value_range=value_range)
    np.testing.assert_allclose(y, R.adjust_color(x, *args, value_range=value_range), atol=1e-4)


def test_color_identity_parameters_leave_the_batch_unchanged():
    x = rand(3, 3, 6, 6)
    np.testing.assert_array_equal(F.adjust_color(x), x)


# ------------------------------------------------------------------------------- noise

def test_gaussian_noise_matches_reference_and_statistics():
    x = np.full((3, 3, 40, 41), 0.5, np.float64)
    keys = np.array([1, 2**40 + 7, 99], np.uint64)
    y = F.gaussian_noise(x, [0.1, 0.05, 0.0], keys, value_range=None)
    np.testing.assert_allclose(y, R.gaussian_noise(x, [0.1, 0.05, 0.0], keys, value_range=None), atol=1e-5)
    z = (y[0] - 0.5) / 0.1
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1) < 0.05
    stats = pytest.importorskip("scipy.stats")
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    np.testing.assert_array_equal(y[2], x[2])
    assert not np.array_equal(y[0][0], y[0][1])  # channels get different noise


def test_gaussian_noise_clamps_and_is_deterministic():
    x = rand(2, 3, 16, 16)
    a = F.gaussian_noise(x, 0.3, [5, 6])
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, F.gaussian_noise(x, 0.3, [5, 6]))
    np.testing.assert_array_equal(a[1:], F.gaussian_noise(x[1:], 0.3, [6]))


def test_salt_and_pepper_matches_reference_and_rate():
    x = np.full((2, 1, 100, 100), 0.5, np.float32)
    y = F.salt_and_pepper(x, [0.2, 0.0], [3, 4])
    np.testing.assert_array_equal(y, R.salt_and_pepper(x, [0.2, 0.0], [3, 4]).astype(np.float32))
    assert abs((y[0] == 0).mean() - 0.1) < 0.015 and abs((y[0] == 1).mean() - 0.1) < 0.015
    np.testing.assert_array_equal(y[1], x[1])


def test_cutout_boxes():
    x = rand(2, 3, 6, 7)
    y = F.cutout(x, np.array([[[1, 2, 3, 5]], [[-2, -2, 0, 9]]]), fill=0.0)
    exp = x.copy()
    exp[0, :, 1:3, 2:5] = 0
    np.testing.assert_array_equal(y, exp)


# ------------------------------------------------------------- uint8 and channels-last

def nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def to_u8(x):
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("c", [3, 1, 4])
def test_channels_last_matches_planar(c):
    x = rand(3, c, 14, 15)
    m = random_affine(np.random.default_rng(2), 3, (14, 15))
    for border in BORDERS:
        for interp in INTERPS:
            a = F.warp_affine(x, m, (12, 16), interp, border, 0.3)
            b = F.warp_affine(nhwc(x), m, (12, 16), interp, border, 0.3, layout="NHWC")
            np.testing.assert_allclose(b, nhwc(a), atol=1e-6)
    np.testing.assert_array_equal(F.flip(nhwc(x), [1, 0, 1], [0, 1, 1], layout="NHWC"),
                                  nhwc(F.flip(x, [1, 0, 1], [0, 1, 1])))
    np.testing.assert_allclose(F.gaussian_blur(nhwc(x), [0.8, 0, 2.0], layout="NHWC"),
                               nhwc(F.gaussian_blur(x, [0.8, 0, 2.0])), atol=1e-6)
    kw = dict(brightness=[1.2, 0.9, 1.0], contrast=[0.7, 1.3, 1.0])
    if c == 3:
        kw.update(saturation=[0.5, 1.5, 1.0], hue=[0.1, -0.2, 0.0])
    np.testing.assert_allclose(F.adjust_color(nhwc(x), **kw, layout="NHWC"), nhwc(F.adjust_color(x, **kw)), atol=1e-6)


def test_uint8_images_agree_with_float_within_one_level():
    x8 = (rand(4, 3, 20, 21) * 255).astype(np.uint8)
    xf = x8.astype(np.float32) / 255
    m = random_affine(np.random.default_rng(3), 4, (20, 21))
    pairs = [
        (lambda a, **k: F.warp_affine(a, m, border="reflect", fill=0.5, **k)),
        (lambda a, **k: F.warp_affine(a, m, interpolation="nearest", fill=0.5, **k)),
        (lambda a, **k: F.gaussian_blur(a, [0.5, 1.0, 2.0, 0.0], **k)),
        (lambda a, **k: F.adjust_color(a, [1.3, 0.7, 1, 1], [0.5, 1.2, 1, 1], [0.3, 1.7, 1, 1], [0.1, -0.3, 0.2, 0], **k)),
        (lambda a, **k: F.gaussian_noise(a, [0.05, 0.1, 0.0, 0.2], [1, 2, 3, 4], **k)),
        (lambda a, **k: F.salt_and_pepper(a, 0.3, [1, 2, 3, 4], **k)),
    ]
    for op in pairs:
        for layout, conv in (("NCHW", lambda a: a), ("NHWC", nhwc)):
            y8 = op(conv(x8), layout=layout)
            yf = op(conv(xf), layout=layout)
            assert y8.dtype == np.uint8
            diff = np.abs(y8.astype(int) - to_u8(yf).astype(int))
            assert diff.max() <= 1, (op, layout, diff.max())


def test_uint8_flip_and_rot90_are_exact():
    x8 = (rand(2, 9, 9, 3) * 255).astype(np.uint8)
    np.testing.assert_array_equal(F.flip(x8, True, False, layout="NHWC"), x8[:, :, ::-1])
    rot = F.warp_affine(x8, M.about(M.rotation([90, 180]), 4, 4), layout="NHWC")
    np.testing.assert_array_equal(rot, np.stack([np.rot90(x8[0]), np.rot90(x8[1], 2)]))


def test_in_place_outputs_for_elementwise_ops():
    x = rand(2, 3, 10, 10)
    exp = F.gaussian_blur(x, 1.0)
    y = x.copy()
    assert F.gaussian_blur(y, 1.0, out=y) is y
    np.testing.assert_array_equal(y, exp)
    y = x.copy()
    F.adjust_color(y, 1.1, 0.8, 1.2, 0.1, out=y)
    np.testing.assert_array_equal(y, F.adjust_color(x, 1.1, 0.8, 1.2, 0.1))


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call,match", [
    (lambda x: F.warp_affine(x[0], np.eye(3)), "input must be 4-D"),
    (lambda x: F.warp_affine(x.astype(np.int16), np.eye(3)), "dtype"),
    (lambda x: F.warp_affine(x, np.eye(3), layout="CHWN"), "layout"),
    (lambda x: F.warp_affine(x, np.eye(3), border="wrap"), "border"),
    (lambda x: F.warp_affine(x, np.eye(3), interpolation="cubic"), "interpolation"),
    (lambda x: F.warp_affine(x, np.zeros((3, 3))), "invertible"),
    (lambda x: F.warp_affine(x, np.full((2, 3), np.nan)), "finite"),
    (lambda x: F.warp_affine(x, np.eye(3), out_size=(0, 4)), "out_size"),
    (lambda x: F.gaussian_blur(x, -1.0), "sigma"),
    (lambda x: F.gaussian_blur(x, np.nan), "sigma"),
    (lambda x: F.adjust_color(x[:, :1], saturation=0.5), "3 \\(RGB\\) channels"),
    (lambda x: F.adjust_color(x[:, :1], hue=0.1), "3 \\(RGB\\) channels"),
    (lambda x: F.adjust_color(x, hue=0.7), "hue"),
    (lambda x: F.adjust_color(x, value_range=(1, 0)), "value_range"),
    (lambda x: F.gaussian_noise(x, [0.1, 0.2, 0.3], 0), "std"),
    (lambda x: F.salt_and_pepper(x, 1.5, 0), "amount"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    x = rand(2, 3, 5, 5)
    before = x.copy()
    with pytest.raises(ValueError, match=match):
        call(x)
    np.testing.assert_array_equal(x, before)


def test_kernels_never_modify_their_input():
    x = rand(2, 3, 9, 9)
    before = x.copy()
    F.warp_affine(x, M.rotation([10, 20]))
    F.gaussian_blur(x, 1.0)
    F.adjust_color(x, 1.2, 0.8, 1.1, 0.1)
    F.gaussian_noise(x, 0.1, 1)
    F.flip(x, True, True)
    F.cutout(x, np.zeros((2, 1, 4), int) + [0, 0, 3, 3])
    np.testing.assert_array_equal(x, before)


# ------------------------------------------------------- uint8 fixed-point / LUT fast paths

@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("border", BORDERS)
def test_uint8_fixed_point_blur_within_one_level_of_float(layout, border):
    # 16-bit fixed-point path for uint8 (SIMD body + scalar tail: widths around the vector
    # lengths), against the float kernel on the same values.
    rng = np.random.default_rng(7)
    for w in (5, 37, 70):
        shape = (4, 3, 23, w) if layout == "NCHW" else (4, 23, w, 3)
        x8 = rng.integers(0, 256, shape, dtype=np.uint8)
        sigma = [0.4, 1.0, 2.5, 6.0]
        y8 = F.gaussian_blur(x8, sigma, border=border, layout=layout)
        yf = F.gaussian_blur(x8.astype(np.float32), sigma, border=border, layout=layout)
        assert np.abs(y8.astype(np.float64) - yf).max() < 0.75
        assert np.abs(y8.astype(int) - np.clip(np.rint(yf), 0, 255).astype(int)).max() <= 1
    flat = np.full((1, 9, 40, 3), 255, np.uint8)  # saturated input stays 255 (no overflow)
    np.testing.assert_array_equal(F.gaussian_blur(flat, 3.0, layout="NHWC"), flat)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_uint8_brightness_contrast_lut_on_all_values(layout):
    # Every uint8 value in each channel; brightness pushes some past 255 (clamp), and the
    # contrast mean is computed from clamped sums: compare with the formula in float64.
    v = np.arange(256, dtype=np.uint8)
    x = np.stack([np.roll(v, 7 * c) for c in range(3)]).reshape(1, 3, 16, 16)
    x = np.concatenate([x, x[:, ::-1]])
    b, c = np.array([1.3, 0.7]), np.array([0.6, 1.4])
    xi = x if layout == "NCHW" else nhwc(x)
    y = F.adjust_color(xi, b, c, layout=layout)
    y = y if layout == "NCHW" else np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    bright = np.clip(x * b[:, None, None, None], 0, 255)
    gray = (0.2989 * bright[:, 0] + 0.587 * bright[:, 1] + 0.114 * bright[:, 2]).mean(axis=(1, 2))
    exp = np.clip(c[:, None, None, None] * bright + (1 - c[:, None, None, None]) * gray[:, None, None, None], 0, 255)
    assert np.abs(y.astype(np.float64) - exp).max() <= 0.5 + 1e-3


def test_uint8_rgb_hflip_every_width():
    # The shuffled 5-pixel blocks plus the pixel-by-pixel ends, for widths around the block size.
    rng = np.random.default_rng(3)
    for w in list(range(1, 24)) + [224]:
        x = rng.integers(0, 256, (2, 3, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(F.flip(x, True, [False, True], layout="NHWC"),
                                      np.stack([x[0, :, ::-1], x[1, ::-1, ::-1]]))

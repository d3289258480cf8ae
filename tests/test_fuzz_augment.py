"""Hypothesis property tests of the augmentation kernels (fastconv.augment.functional) against
their numpy reference, and of random transform pipelines: random shapes, dtypes, layouts and
parameters, valid or not. Each case matches the reference (or an exact property) or is refused
with ValueError / TypeError (see tests/fuzzing.py)."""
import numpy as np
import pytest
from hypothesis import strategies as st

from fastconv import augment
from fastconv.augment import functional as A
from fastconv.augment import matrices as M
from fastconv.augment import reference as R
from fuzzing import DEPTHS, REJECTED, draw_array, expect_rejected, run_property

BORDERS = ["constant", "reflect", "replicate"]


def draw_batch(data, channels=None):
    """(x in NCHW, its dtype, why it is invalid or None). Values in [0, 1] (uint8: 0..255)."""
    n = data.draw(st.integers(0, 3), label="N")
    c = channels or data.draw(st.integers(1, 4), label="C")
    h, w = data.draw(st.integers(1, 12), label="H"), data.draw(st.integers(1, 12), label="W")
    dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.float64, np.uint8, np.float16, np.int32]),
                               label="dtype"))
    if dtype == np.uint8:
        x = (draw_array(data, (n, c, h, w), np.dtype(np.float64), "input", 0, 1) * 255).round().astype(np.uint8)
    else:
        x = draw_array(data, (n, c, h, w), dtype, "input", 0, 1)
    broken = "dtype" if dtype in (np.float16, np.int32) else "empty batch" if n == 0 else None
    return x, broken


def tolerance(x):
    return 1.0 if x.dtype == np.uint8 else 2e-5  # uint8 results round to the nearest level


def close(got, ref, x, what):
    ref = np.asarray(ref, np.float64)
    if x.dtype == np.uint8:
        ref = np.clip(ref, 0, 255)
    assert got.dtype == x.dtype and got.shape == ref.shape, what
    assert np.abs(got.astype(np.float64) - ref).max() <= tolerance(x) * (1 if x.dtype == np.uint8 else
                                                                           max(1.0, np.abs(ref).max())), what


def same_in_nhwc(op, x, y):
    """The kernel on the NHWC copy of x gives y in NHWC."""
    got = op(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), "NHWC")
    np.testing.assert_array_equal(got, y.transpose(0, 2, 3, 1))


@pytest.mark.parametrize("examples", DEPTHS)
def test_warp_affine_matches_reference_or_refuses(examples):
    def prop(data):
        x, broken = draw_batch(data)
        n, _, h, w = x.shape
        angle = data.draw(st.floats(-180, 180), label="angle")
        scale = data.draw(st.floats(0.3, 3), label="scale")
        shift = data.draw(st.tuples(st.floats(-20, 20), st.floats(-20, 20)), label="shift")
        m = (M.translation(*shift) @ M.about(M.rotation(angle) @ M.scaling(scale), *M.center((h, w))))[0]
        out_size = data.draw(st.one_of(st.none(), st.tuples(st.integers(-1, 14), st.integers(-1, 14))), label="out")
        border = data.draw(st.sampled_from(BORDERS + ["wrap"]), label="border")
        fill = data.draw(st.sampled_from([0.0, 0.25, 1.0, float("nan")]), label="fill")
        interp = data.draw(st.sampled_from(["bilinear", "nearest"]), label="interpolation")
        broken = broken or ("border" if border == "wrap" else "fill" if np.isnan(fill) else
                            "out_size" if out_size is not None and min(out_size) < 1 else None)
        call = lambda layout="NCHW": A.warp_affine(x, m, out_size, interp, border, fill, layout=layout)  # noqa: E731
        if broken:
            return expect_rejected(call, broken)
        y = call()
        ref = R.warp_affine(x.astype(np.float64) / (255 if x.dtype == np.uint8 else 1), m, out_size, interp,
                            border, fill) * (255 if x.dtype == np.uint8 else 1)
        if interp == "bilinear":
            close(y, ref, x, "bilinear")
        else:  # every output is one input value or the fill (ties at .5 may pick either neighbour)
            fill_value = np.round(fill * 255) if x.dtype == np.uint8 else fill  # uint8 rounds the fill
            allowed = np.concatenate([x.ravel(), np.array([fill_value]).astype(x.dtype)])
            assert np.isin(y, allowed).all()
        same_in_nhwc(lambda a, layout: A.warp_affine(a, m, out_size, interp, border, fill, layout=layout), x, y)
    run_property(prop, examples)


@pytest.mark.parametrize("examples", DEPTHS)
def test_blur_colour_noise_match_reference_or_refuse(examples):
    def prop(data):
        x, broken = draw_batch(data, channels=data.draw(st.sampled_from([1, 3]), label="C"))
        n = x.shape[0]
        sigma = data.draw(st.lists(st.floats(-0.5, 4), min_size=max(n, 1), max_size=max(n, 1)), label="sigma")
        border = data.draw(st.sampled_from(BORDERS), label="border")
        factors = data.draw(st.tuples(st.floats(0, 2), st.floats(0, 2), st.floats(0, 2), st.floats(-0.6, 0.6)),
                            label="brightness, contrast, saturation, hue")
        std = data.draw(st.floats(-0.1, 0.3), label="std")
        key = data.draw(st.integers(0, 2 ** 63 - 1), label="key")
        scale = 255.0 if x.dtype == np.uint8 else 1.0
        x64 = x.astype(np.float64) / scale

        blur = lambda: A.gaussian_blur(x, sigma[:n] if n else sigma, border=border)  # noqa: E731
        why = broken or ("negative sigma" if min(sigma) < 0 else None)
        if why:
            expect_rejected(blur, why)
        else:
            close(blur(), R.gaussian_blur(x64, sigma, border=border) * scale, x, "blur")
            same_in_nhwc(lambda a, layout: A.gaussian_blur(a, sigma, border=border, layout=layout), x, blur())

        colour = lambda: A.adjust_color(x, *factors)  # noqa: E731
        why = broken or ("hue beyond 0.5" if abs(factors[3]) > 0.5 else
                         "saturation/hue on grey" if x.shape[1] != 3 and (factors[2] != 1 or factors[3] != 0) else None)
        if why:
            expect_rejected(colour, why)
        else:
            close(colour(), R.adjust_color(x64, *factors) * scale, x, "colour")

        noise = lambda: A.gaussian_noise(x, std, key)  # noqa: E731
        why = broken or ("negative std" if std < 0 else None)
        if why:
            expect_rejected(noise, why)
        else:
            close(noise(), R.gaussian_noise(x64, std, np.full(n, key, np.uint64)) * scale, x, "noise")
    run_property(prop, examples)


TRANSFORMS = {
    "HorizontalFlip": lambda d: augment.HorizontalFlip(p=d.draw(st.floats(-0.5, 1.5), label="p")),
    "Rotate": lambda d: augment.Rotate(d.draw(st.floats(-400, 400), label="degrees")),
    "Translate": lambda d: augment.Translate(d.draw(st.floats(-0.5, 1.5), label="fraction")),
    "Scale": lambda d: augment.Scale(d.draw(st.tuples(st.floats(-1, 3), st.floats(-1, 3)), label="range")),
    "Affine": lambda d: augment.Affine(rotate=d.draw(st.floats(-90, 90), label="rotate"),
                                       shear=d.draw(st.floats(-60, 60), label="shear"),
                                       border=d.draw(st.sampled_from(BORDERS + ["edge"]), label="border")),
    "RandomResizedCrop": lambda d: augment.RandomResizedCrop(d.draw(st.integers(-1, 12), label="size")),
    "ColorJitter": lambda d: augment.ColorJitter(*d.draw(st.tuples(*[st.floats(-0.5, 1.5)] * 3, st.floats(-0.2, 0.7)),
                                                         label="jitter")),
    "GaussianBlur": lambda d: augment.GaussianBlur(d.draw(st.tuples(st.floats(-1, 3), st.floats(-1, 3)), label="sigma"),
                                                   p=1.0),
    "GaussianNoise": lambda d: augment.GaussianNoise(d.draw(st.tuples(st.floats(-0.1, 0.2), st.floats(-0.1, 0.2)),
                                                            label="std")),
    "SaltAndPepper": lambda d: augment.SaltAndPepper(d.draw(st.tuples(st.floats(-0.1, 1.2), st.floats(-0.1, 1.2)),
                                                            label="amount")),
    "Cutout": lambda d: augment.Cutout(d.draw(st.integers(-1, 3), label="holes"), p=1.0),
}


@pytest.mark.parametrize("examples", DEPTHS)
def test_random_pipelines_keep_shape_dtype_and_range_or_refuse(examples):
    """Any Compose of transforms with any parameters: the constructor refuses bad parameters,
    or every call returns the input's shape and dtype with finite values inside [0, 1]."""
    def prop(data):
        names = data.draw(st.lists(st.sampled_from(sorted(TRANSFORMS)), min_size=1, max_size=4), label="pipeline")
        try:
            steps = [TRANSFORMS[name](data) for name in names]
            pipeline = augment.Compose(steps, seed=data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
        except REJECTED:
            return
        x, broken = draw_batch(data, channels=3)
        if broken:
            return expect_rejected(lambda: pipeline(x), broken)
        try:
            y = pipeline(x)
        except ValueError as e:  # a crop size larger than the image is the one call-time refusal
            assert "size" in str(e), (names, e)
            return
        size = next((s.size for s in steps if isinstance(s, augment.RandomResizedCrop)), x.shape[2:])
        assert y.dtype == x.dtype and y.shape == x.shape[:2] + tuple(size), names
        if y.dtype != np.uint8:
            assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1 + 1e-6, names
    run_property(prop, examples)

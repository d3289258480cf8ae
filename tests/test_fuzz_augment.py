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
from fuzzing import DEPTHS, draw_array, expect_rejected, run_property

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


def _negative(v):
    return v < 0


def _bad_pair(pair, low=0.0, high=None):
    """Why a (low, high) range is refused by the constructors' parse_range, or None."""
    lo, hi = pair
    return ("low > high" if lo > hi else f"below {low}" if lo < low else
            f"above {high}" if high is not None and hi > high else None)


def _mostly(valid, anything):
    """Three draws in four from the valid values, so that most pipelines get to run; the rest
    from a wider range that includes invalid ones."""
    return st.one_of(valid, valid, valid, anything)


def _pair(low, high):
    return st.tuples(st.floats(low, high), st.floats(low, high))


def _ordered_pair(low, high):
    return _pair(low, high).map(lambda v: tuple(sorted(v)))


def _draw_transform(data, name):
    """(a constructor of the transform `name` with drawn parameters, why the constructor must
    refuse them or None), the reasons stated from the documented parameter rules alone."""
    def d(valid, anything, label):
        return data.draw(_mostly(valid, anything), label=label)

    if name == "HorizontalFlip":
        p = d(st.floats(0, 1), st.floats(-0.5, 1.5), "p")
        return lambda: augment.HorizontalFlip(p=p), "p outside [0, 1]" if not 0 <= p <= 1 else None
    if name == "Rotate":
        deg = d(st.floats(0, 400), st.floats(-400, 400), "degrees")
        return lambda: augment.Rotate(deg), "negative degrees" if _negative(deg) else None
    if name == "Translate":
        f = d(st.floats(0, 1), st.floats(-0.5, 1.5), "fraction")
        return lambda: augment.Translate(f), "fraction outside [0, 1]" if not 0 <= f <= 1 else None
    if name == "Scale":
        r = d(_ordered_pair(0.1, 3), _pair(-1, 3), "range")
        return lambda: augment.Scale(r), "range low > high" if r[0] > r[1] else "range <= 0" if r[0] <= 0 else None
    if name == "Affine":
        rot, shear = d(st.floats(0, 90), st.floats(-90, 90), "rotate"), d(st.floats(0, 60), st.floats(-60, 60), "shear")
        border = d(st.sampled_from(BORDERS), st.sampled_from(BORDERS + ["edge"]), "border")
        why = ("negative rotate" if _negative(rot) else "negative shear" if _negative(shear) else
               "unknown border" if border not in BORDERS else None)
        return lambda: augment.Affine(rotate=rot, shear=shear, border=border), why
    if name == "RandomResizedCrop":
        size = d(st.integers(1, 12), st.integers(-1, 12), "size")
        return lambda: augment.RandomResizedCrop(size), "size < 1" if size < 1 else None
    if name == "ColorJitter":
        b, c, s, h = d(st.tuples(*[st.floats(0, 1.5)] * 3, st.floats(0, 0.5)),
                       st.tuples(*[st.floats(-0.5, 1.5)] * 3, st.floats(-0.2, 0.7)), "jitter")
        why = ("negative factor" if min(b, c, s) < 0 else "negative hue" if _negative(h) else
               "hue beyond 0.5" if h > 0.5 else None)
        return lambda: augment.ColorJitter(b, c, s, h), why
    if name == "GaussianBlur":
        sigma = d(_ordered_pair(0, 3), _pair(-1, 3), "sigma")
        return lambda: augment.GaussianBlur(sigma, p=1.0), _bad_pair(sigma)
    if name == "GaussianNoise":
        std = d(_ordered_pair(0, 0.2), _pair(-0.1, 0.2), "std")
        return lambda: augment.GaussianNoise(std), _bad_pair(std)
    if name == "SaltAndPepper":
        amount = d(_ordered_pair(0, 1), _pair(-0.1, 1.2), "amount")
        return lambda: augment.SaltAndPepper(amount), _bad_pair(amount, high=1.0)
    assert name == "Cutout", name
    holes = d(st.integers(1, 3), st.integers(-1, 3), "holes")
    return lambda: augment.Cutout(holes, p=1.0), "holes < 1" if holes < 1 else None


TRANSFORMS = ["HorizontalFlip", "Rotate", "Translate", "Scale", "Affine", "RandomResizedCrop", "ColorJitter",
              "GaussianBlur", "GaussianNoise", "SaltAndPepper", "Cutout"]


@pytest.mark.parametrize("examples", DEPTHS)
def test_random_pipelines_keep_shape_dtype_and_range_or_refuse(examples):
    """Any Compose of transforms with any parameters: the constructor refuses exactly the
    parameters the rules forbid, and every call returns the input's shape (the crop's size
    after a RandomResizedCrop) and dtype with finite values inside [0, 1], or refuses a zoom
    that maps the image onto a point."""
    def prop(data):
        names = data.draw(st.lists(st.sampled_from(TRANSFORMS), min_size=1, max_size=4), label="pipeline")
        steps = [_draw_transform(data, name) for name in names]
        seed = data.draw(st.integers(0, 2 ** 32 - 1), label="seed")
        build = lambda: augment.Compose([make() for make, _ in steps], seed=seed)  # noqa: E731
        why = next((why for _, why in steps if why), None)
        if why:
            return expect_rejected(build, why)
        pipeline = build()
        x, broken = draw_batch(data, channels=3)
        if broken:
            return expect_rejected(lambda: pipeline(x), broken)
        try:
            y = pipeline(x)
        except ValueError as e:
            # the one call-time refusal: zooming out so far (Hypothesis finds 1e-127) that the
            # pipeline's matrix maps the image onto a point, which cannot be inverted
            zoom = np.prod([t.range[0] for t in pipeline.transforms if isinstance(t, augment.Scale)])
            assert zoom < 1e-3 and "invertible" in str(e), (names, e)
            return
        size = next((s.size for s in reversed(pipeline.transforms) if isinstance(s, augment.RandomResizedCrop)),
                    x.shape[2:])
        assert y.dtype == x.dtype and y.shape == x.shape[:2] + tuple(size), names
        if y.dtype != np.uint8:
            assert np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1 + 1e-6, names
    run_property(prop, examples)

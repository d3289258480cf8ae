"""uint8 brightness / contrast steps in a row run as one table pass (functional.brightness_contrast_steps
and Compose's fusion of consecutive colour transforms), equal to running the steps one by one."""
import numpy as np
import pytest

from fastconv import augment as fa
from fastconv.augment import functional as F

SEED = 7


def images(layout, n=5, h=23, w=31, seed=SEED):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return x if layout == "NHWC" else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def one_by_one(x, steps, layout):
    for b, c, value_range in steps:
        x = F.adjust_color(x, b, c, value_range=value_range, layout=layout)
    return x


def assert_nearly_equal(got, want):
    """Equal except where a contrast anchor's last bit rounds the other way: one level, rarely."""
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= diff.size // 1000


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_steps_equal_applying_them_one_by_one(layout):
    rng = np.random.default_rng(SEED)
    x = images(layout)
    n = x.shape[0]
    steps = [(rng.uniform(0.6, 1.6, n), 1.0, (0.0, 1.0)),                       # brightness, clipping
             (1.0, rng.uniform(0.4, 1.6, n), (0.0, 1.0)),                       # contrast
             (rng.uniform(0.8, 1.2, n), rng.uniform(0.5, 1.5, n), (0.1, 0.9)),  # both, a narrower range
             (1.0, 0.7, None)]                                                   # unclamped
    got = F.brightness_contrast_steps(x, steps, layout=layout)
    assert got.dtype == np.uint8 and got.shape == x.shape
    assert_nearly_equal(got, one_by_one(x, steps, layout))
    for k in range(1, len(steps)):  # every prefix, too
        assert_nearly_equal(F.brightness_contrast_steps(x, steps[:k], layout=layout), one_by_one(x, steps[:k], layout))


def test_one_step_equals_adjust_color_exactly():
    x = images("NHWC")
    b, c = np.linspace(0.5, 1.5, 5), np.linspace(1.4, 0.6, 5)
    np.testing.assert_array_equal(F.brightness_contrast_steps(x, [(b, c, (0.0, 1.0))], layout="NHWC"),
                                  F.adjust_color(x, b, c, layout="NHWC"))


def test_out_may_be_the_input():
    x = images("NCHW")
    want = F.brightness_contrast_steps(x, [(1.3, 0.8, (0.0, 1.0))])
    got = F.brightness_contrast_steps(x, [(1.3, 0.8, (0.0, 1.0))], out=x)
    assert got is x
    np.testing.assert_array_equal(x, want)


def test_bad_arguments_are_named():
    x = images("NCHW")
    with pytest.raises(TypeError, match="uint8"):
        F.brightness_contrast_steps(x.astype(np.float32), [(1.0, 1.0, (0.0, 1.0))])
    with pytest.raises(ValueError, match="at least one"):
        F.brightness_contrast_steps(x, [])
    with pytest.raises(ValueError, match=r"steps\[1\] contrast"):
        F.brightness_contrast_steps(x, [(1.0, 1.0, (0.0, 1.0)), (1.0, -1.0, (0.0, 1.0))])
    with pytest.raises(ValueError, match=r"steps\[0\] value_range"):
        F.brightness_contrast_steps(x, [(1.0, 1.0, (0.9, 0.1))])


def test_compose_fuses_a_colour_run_and_matches_the_unfused_pipeline():
    x = images("NHWC", n=16)
    steps = [fa.Brightness(0.3, p=0.7), fa.Contrast(0.4, p=0.6), fa.ColorJitter(0.2, 0.2, value_range=(0.05, 0.95))]
    fused = fa.Compose(steps, seed=3).apply_images(x)
    # The same draws applied one transform at a time (a one-step pipeline per transform is never fused).
    params = fa.Compose(steps, seed=3).apply_images(x, return_params=True)[1]
    cur = x
    for t, p in zip(steps, params.transforms):
        if np.any(p["apply"]):
            cur = t.apply(cur, p, layout="NHWC")
    assert_nearly_equal(fused, cur)
    assert not np.array_equal(fused, x)


def test_compose_leaves_runs_with_saturation_or_hue_unfused():
    x = images("NHWC", n=6)
    steps = [fa.Brightness(0.3), fa.Saturation(0.5)]
    out, params = fa.Compose(steps, seed=1).apply_images(x, return_params=True)
    cur = x
    for t, p in zip(steps, params.transforms):
        cur = t.apply(cur, p, layout="NHWC")
    np.testing.assert_array_equal(out, cur)  # the very same per-step kernels ran

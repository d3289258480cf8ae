"""The shared argument checks (fastconv._validate): ints are int or numpy integers, numbers also
floats, never bool, and every public op that takes such an argument accepts the same types."""
import numpy as np
import pytest

import fastconv
import fastconv.functional as F
from fastconv import interpret, models
from fastconv._validate import check_int, finite_number, int_pair, number_in_range, positive_int
from fastconv.augment import Compose, Cutout, HorizontalFlip


@pytest.mark.parametrize("good, want", [(3, 3), (np.int64(3), 3), (np.uint8(3), 3)])
def test_ints_are_int_or_numpy_integers(good, want):
    assert positive_int(good, "n") == want and type(positive_int(good, "n")) is int
    assert int_pair(good, "n", 1) == (want, want)


@pytest.mark.parametrize("bad", [True, np.bool_(True), 3.0, "3", None])
def test_bool_floats_and_strings_are_not_ints(bad):
    with pytest.raises(TypeError, match="n must be an int"):
        check_int(bad, "n")


def test_int_bounds_and_number_ranges_name_the_argument():
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        positive_int(0, "steps")
    assert finite_number(np.float32(0.5), "x") == 0.5 and finite_number(np.int64(2), "x") == 2.0
    for bad in (float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="x must be a finite number"):
            finite_number(bad, "x")
    assert number_in_range(1, "p", 0, 1) == 1.0
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\], got 1.5"):
        number_in_range(1.5, "p", 0, 1)
    with pytest.raises(ValueError, match=r"noise must lie in \[0, inf\]"):
        number_in_range(-1, "noise", 0)


def test_public_ops_accept_numpy_integers_and_refuse_bool():
    x = np.ones((1, 2, 6, 6), np.float32)
    w = np.ones((2, 1, 3, 3), np.float32)
    np.testing.assert_array_equal(F.conv2d(x, w, groups=np.int64(2)), F.conv2d(x, w, groups=2))
    np.testing.assert_array_equal(F.softmax(x, dim=np.int32(1)), F.softmax(x, dim=1))
    for call in (lambda: F.conv2d(x, w, groups=True), lambda: F.softmax(x, dim=True),
                 lambda: Compose([HorizontalFlip()], seed=True), lambda: Cutout(num_holes=True),
                 lambda: fastconv.set_num_threads(True)):
        with pytest.raises(TypeError):
            call()
    assert Compose([HorizontalFlip()], seed=np.int64(4)).seed == 4
    net = models.lenet5(seed=0)
    images = np.zeros((1, 1, 32, 32), np.float32)
    assert interpret.integrated_gradients(net, images, 0, steps=np.int64(2)).shape == images.shape
    with pytest.raises(TypeError, match="steps"):
        interpret.integrated_gradients(net, images, 0, steps=2.0)

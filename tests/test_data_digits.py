"""The bundled digits (fastconv/data/digits.npz) are scikit-learn's load_digits(), value for value."""
import numpy as np
import pytest

from fastconv import data
from fastconv.data.digits import digits_raw


def test_bundled_digits_equal_scikit_learns_copy():
    sklearn_datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is not installed")
    ref = sklearn_datasets.load_digits()
    images, labels = digits_raw()
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images, ref.images)
    np.testing.assert_array_equal(labels, ref.target)


def test_digits_need_no_scikit_learn():
    x, y = data.digits(size=8)
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1.0
    assert np.bincount(y).min() >= 170  # ten classes of about 180 images

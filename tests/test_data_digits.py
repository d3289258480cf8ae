"""The bundled digits (fastconv/data/digits.npz) are scikit-learn's load_digits(), value for value."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from children import run_cli

from fastconv import data
from fastconv.data.digits import digits_raw


def test_bundled_digits_equal_scikit_learns_copy():
    # load_digits() parses this file (64 pixel columns, then the label); reading it directly
    # spares importing scikit-learn (several seconds)
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        pytest.skip("scikit-learn is not installed: nothing to compare the bundled digits with")
    ref = np.loadtxt(Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz", delimiter=",")
    images, labels = digits_raw()
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(images.reshape(1797, 64), ref[:, :64])
    np.testing.assert_array_equal(labels, ref[:, 64])


def test_digits_need_no_scikit_learn():
    x, y = data.digits(size=8)
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1.0
    assert np.bincount(y).min() >= 170  # ten classes of about 180 images
    blocked = run_cli(code="import sys; sys.modules['sklearn'] = None\n"
                           "from fastconv import data; print(len(data.digits(split='test')[1]))")
    assert blocked.returncode == 0 and blocked.stdout.strip() == "359", blocked.stderr

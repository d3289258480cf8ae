"""The lecture's worked example, the Sobel operator on a real photo, first-layer kernels."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fastconv import data, models
from fastconv import interpret as I


def test_lecture_worked_example():
    ex = I.lecture_example()
    np.testing.assert_array_equal(ex.first, [[9, 2, 2, 6], [-1, 4, 8, 7], [-4, 8, 8, 0], [2, 9, 7, 4]])
    assert ex.second.shape == (2, 2) and ex.receptive_field == 5
    # each unit of the 2x2 result is the kernel applied to the 3x3 block of the first result
    k = ex.kernel
    for y in range(2):
        for x in range(2):
            assert ex.second[y, x] == (ex.first[y:y + 3, x:x + 3] * k).sum()
    # ... and depends on exactly the 5x5 window of the image: the receptive field
    rf = I.receptive_field(_two_3x3(), 6)
    assert rf[-1].size == (5, 5) and rf[-1].output_size == (2, 2)


def _two_3x3():
    from fastconv import nn
    return nn.Sequential(nn.Conv2d(1, 1, 3, seed=0), nn.Conv2d(1, 1, 3, seed=1))


def _china_jpg():
    """scikit-learn's sample photo, read through fastconv's own image door (importing sklearn
    itself would cost seconds)."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0], "datasets", "images", "china.jpg") if spec else None
    if path is None or not path.exists():
        pytest.skip("needs scikit-learn's sample images")
    return data.load_image(path, size=(107, 160))


def _correlate_same(image, kernel):
    """3x3 cross-correlation with zero padding, as nine shifted sums in float64."""
    padded = np.pad(image.astype(np.float64), 1)
    h, w = image.shape
    return sum(kernel[r, s] * padded[r:r + h, s:s + w] for r in range(3) for s in range(3))


def test_sobel_on_a_real_photo():
    photo = _china_jpg()
    got = I.sobel(photo)
    assert got.shape == (2, 107, 160)
    grey = 0.299 * photo[0] + 0.587 * photo[1] + 0.114 * photo[2]
    for response, kernel in zip(got, (I.SOBEL_HORIZONTAL, I.SOBEL_VERTICAL)):
        np.testing.assert_allclose(response, _correlate_same(grey, kernel), atol=1e-5)
    assert np.abs(got).max() > 1  # a real photo has edges


def test_sobel_finds_horizontal_and_vertical_lines():
    img = np.zeros((9, 9))
    img[4, :] = 1  # a horizontal line
    horizontal, vertical = I.sobel(img)
    assert np.abs(horizontal[2:7, 2:7]).max() == 4 and np.abs(vertical[2:7, 2:7]).max() == 0
    horizontal, vertical = I.sobel(img.T)
    assert np.abs(vertical[2:7, 2:7]).max() == 4 and np.abs(horizontal[2:7, 2:7]).max() == 0


def test_first_layer_filters():
    net = models.lenet5(seed=0)
    w = I.first_layer_filters(net)
    assert w.shape == (6, 1, 5, 5)
    np.testing.assert_array_equal(w, net.state_dict()["features.0.weight"])


@pytest.mark.parametrize("bad", [np.zeros((2, 5, 5)), np.zeros((3, 2, 8)), np.zeros(5)])
def test_sobel_bad_shapes(bad):
    with pytest.raises(ValueError, match="image must be"):
        I.sobel(bad)

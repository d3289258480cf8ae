"""The walk every interpretation routine runs (fastconv.interpret._engine): what it accepts as
images, and that it runs the model's own layers."""
import numpy as np
import pytest

from fastconv import interpret as I
from fastconv import models


@pytest.fixture(scope="module")
def net():
    return models.lenet5("relu", "max", seed=0)


def test_images_given_as_nested_lists_run_like_the_array(net):
    images = np.random.default_rng(0).random((2, 1, 32, 32)).astype(np.float32)
    from_list = I.saliency(net, images.tolist(), [3, 7])
    np.testing.assert_array_equal(from_list, I.saliency(net, images, [3, 7]))
    np.testing.assert_array_equal(I.feature_maps(net, images.tolist())["features.0"],
                                  I.feature_maps(net, images)["features.0"])

"""Bad arguments give one clear ValueError/TypeError naming what was wrong."""
import numpy as np
import pytest

from fastconv import models
from fastconv import interpret as I


@pytest.fixture(scope="module")
def net():
    return models.lenet5("relu", "max", seed=0)


IMAGES = np.zeros((2, 1, 32, 32), np.float32)


@pytest.mark.parametrize("call,match", [
    (lambda n: I.feature_maps(n, IMAGES, ["features.9"]), "unknown layer 'features.9'"),
    (lambda n: I.top_patches(n, "nope", IMAGES), "unknown layer 'nope'"),
    (lambda n: I.grad_cam(n, IMAGES, 0, "conv1"), "unknown layer 'conv1'"),
    (lambda n: I.maximize_activation(n, "features.99", 0), "unknown layer"),
    (lambda n: I.maximize_activation(n, "features.3", 16, steps=1), r"channel must be in \[0, 16\)"),
    (lambda n: I.maximize_activation(n, "features.3", -1, steps=1), "channel must be in"),
    (lambda n: I.maximize_activation(n, "features.3", 0, position=(10, 0), steps=1), "position"),
    (lambda n: I.class_model(n, 10, steps=1), r"target must be in \[0, 10\)"),
    (lambda n: I.saliency(n, IMAGES, [0, 11]), "targets must be in"),
    (lambda n: I.saliency(n, IMAGES, [0, 1, 2]), "one per image"),
    (lambda n: I.saliency(n, IMAGES[0], 0), r"images must be a non-empty \(N, C, H, W\)"),
    (lambda n: I.saliency(n, np.zeros((2, 3, 32, 32), np.float32), 0), "1 channels"),
    (lambda n: I.feature_maps(n, np.full((1, 1, 32, 32), np.nan, np.float32)), "NaN"),
    (lambda n: I.top_patches(n, "features.3", IMAGES[0]), "images must be"),
    (lambda n: I.class_model(n, 1, steps=0), "steps must be"),
    (lambda n: I.maximize_activation(n, "features.0", 1, steps=-2), "steps must be"),
    (lambda n: I.class_model(n, 1, lr=0), "lr must be"),
    (lambda n: I.class_model(n, 1, preset="fancy"), "preset"),
    (lambda n: I.integrated_gradients(n, IMAGES, 0, steps=0), "steps must be"),
    (lambda n: I.smoothgrad(n, IMAGES, 0, samples=0), "samples must be"),
    (lambda n: I.top_patches(n, "features.3", IMAGES, k=0), "k must be"),
    (lambda n: I.class_model(n, 1, input_size=(0, 3)), "input_size"),
])
def test_value_errors(net, call, match):
    with pytest.raises(ValueError, match=match):
        call(net)


@pytest.mark.parametrize("call,match", [
    (lambda n: I.saliency(n, IMAGES.astype(np.uint8), 0), "floating point"),
    (lambda n: I.saliency(n, IMAGES, 1.5), "class indices"),
    (lambda n: I.feature_maps(n, IMAGES, [3]), "layer name"),
    (lambda n: I.receptive_field("not a model", 32), "Sequential"),
])
def test_type_errors(net, call, match):
    with pytest.raises(TypeError, match=match):
        call(net)


def test_grad_cam_needs_a_spatial_layer(net):
    with pytest.raises(ValueError, match="spatial layer"):
        I.grad_cam(net, IMAGES, 0, "classifier.0")

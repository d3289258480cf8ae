"""The walk every interpretation routine runs (fastconv.interpret._engine): what it accepts as
images, and that it runs the model's own layers."""
import numpy as np
import pytest

from fastconv import interpret as I
from fastconv import models, nn


@pytest.fixture(scope="module")
def net():
    return models.lenet5("relu", "max", seed=0)


def test_images_given_as_nested_lists_run_like_the_array(net):
    images = np.random.default_rng(0).random((2, 1, 32, 32)).astype(np.float32)
    from_list = I.saliency(net, images.tolist(), [3, 7])
    np.testing.assert_array_equal(from_list, I.saliency(net, images, [3, 7]))
    np.testing.assert_array_equal(I.feature_maps(net, images.tolist())["features.0"],
                                  I.feature_maps(net, images)["features.0"])


def _small_net():
    """3x3 convs at 32x32 with 32 channels: auto runs the second one by Winograd."""
    return models.vgg(((3, 32, 2),), input_size=32, hidden=16, num_classes=3, dropout=0.5, seed=0)


def test_input_grad_is_backwards_input_gradient_and_leaves_parameters_alone():
    rng = np.random.default_rng(1)
    for name, layer in _small_net().leaves():
        if isinstance(layer, nn.Conv2d):
            x = rng.standard_normal((2, layer.in_channels, 9, 7)).astype(np.float32)
        elif isinstance(layer, nn.Linear):
            x = rng.standard_normal((2, layer.in_features)).astype(np.float32)
        else:
            continue
        y = layer.forward(x)
        g = rng.standard_normal(y.shape).astype(np.float32)
        got = layer.input_grad(g)
        assert all(p.grad is None for p in layer.parameters()), name
        np.testing.assert_allclose(got, layer.backward(g), rtol=1e-5, atol=1e-5)


def test_gradient_ascent_reuses_conv2d_s_cached_winograd_weights(monkeypatch):
    """class_model runs the layers themselves: the Winograd transform of the 32-channel conv's
    weights is made once (on its second forward, see nn.Conv2d) for all the steps, not per step."""
    import fastconv.functional as F
    made = []
    real = F.winograd_weights
    monkeypatch.setattr(F, "winograd_weights", lambda *a, **k: made.append(a[1]) or real(*a, **k))
    net = _small_net()
    I.class_model(net, 1, steps=5)
    assert made == [4]
    assert all(p.grad is None for p in net.parameters())

"""nn.Sequential in inference (nn.no_grad()) runs Conv2d -> ReLU as one native call, the ReLU in
the conv's output pass (Conv2d.forward_relu): the outputs must equal running the layers one by
one, for every conv family the models use (Winograd with cached weights, direct, strided, 1x1),
NaN included; stopping at the conv (until=) must still give the conv's own output; with gradients
enabled nothing is fused and the backward is the layer order's; after a fused forward a backward
has nothing saved to run on and says so."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv import models, nn


def _layer_by_layer(model, x):
    for _, layer in model.leaves():
        x = layer.forward(x)
    return x


def _convs_net(seed, dtype=np.float32):
    nn.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=2, dtype=dtype), nn.ReLU(),   # strided 5x5 (phase images)
        nn.Conv2d(8, 16, 3, padding=1, dtype=dtype), nn.ReLU(),            # 3x3: Winograd, weights cached
        nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 24, 1, dtype=dtype), nn.ReLU(),                      # 1x1: the pointwise GEMM
        nn.Conv2d(24, 24, 3, padding=1, groups=24, dtype=dtype), nn.ReLU(),  # depthwise
        nn.Conv2d(24, 10, 3, padding=0, bias=False, dtype=dtype), nn.ReLU(),  # no bias
        nn.Flatten())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [17, 32])
def test_fused_inference_equals_the_layers_run_in_turn(size, dtype):
    model = _convs_net(0, dtype)
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(dtype)
    x[1, 0, 3, 4] = np.nan  # reaches the outputs whose windows hold it, through every layer
    with nn.no_grad():
        want = _layer_by_layer(model, x)
        for _ in range(2):  # the second call runs on the cached Winograd weights
            got = model(x)
            np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
            assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(want).any() and not np.isnan(want).all()


def test_alexnet_and_vgg_blocks_agree_with_the_layer_order():
    model = models.alexnet(seed=3)
    model.eval()
    x = np.random.default_rng(4).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with nn.no_grad():
        np.testing.assert_allclose(model(x), _layer_by_layer(model, x), rtol=1e-5, atol=1e-6)
        features = model.forward(x, until="features")
        np.testing.assert_allclose(features, _layer_by_layer(model.features, x), rtol=1e-5, atol=1e-6)


def test_stopping_at_the_conv_returns_its_output_before_the_relu():
    model = _convs_net(5)
    x = np.random.default_rng(6).standard_normal((1, 3, 20, 20)).astype(np.float32)
    with nn.no_grad():
        conv = model.forward(x, until="0")
        assert (conv < 0).any()  # not passed through the ReLU
        np.testing.assert_allclose(conv, model[0].forward(x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(model.forward(x, until="1"), np.maximum(conv, 0), rtol=1e-6, atol=1e-6)


def test_training_forward_is_not_fused_and_a_fused_forward_leaves_nothing_to_backpropagate():
    model = _convs_net(7)
    x = np.random.default_rng(8).standard_normal((2, 3, 16, 16)).astype(np.float32)
    y = model(x)  # gradients enabled: layer by layer, each keeps what its backward needs
    assert model[1]._y is not None
    model.backward(np.ones_like(y))
    assert all(p.grad is not None for p in model.parameters())
    with nn.no_grad():
        model(x)
    assert model[1]._y is None and model[0]._x is None
    with pytest.raises(RuntimeError):
        model.backward(np.ones_like(y))


def test_inputs_the_conv_refuses_are_refused_as_before():
    model = _convs_net(9)
    with nn.no_grad():
        with pytest.raises(ValueError):
            model(np.zeros((1, 4, 16, 16), np.float32))  # 4 channels for a 3-channel conv
        with pytest.raises(TypeError):
            model(np.zeros((1, 3, 16, 16), np.float64))  # dtype differs from the weights'

"""nn.Sequential runs ReLU -> MaxPool2d as MaxPool2d -> ReLU: outputs, input gradients and
parameter gradients must equal, bit for bit, those of running the layers one by one in order."""
from __future__ import annotations

import numpy as np
import pytest

from fastconv import models, nn


def _layer_by_layer(model, x, dy):
    """(output, input gradient) of model's leaves run one at a time in their own order."""
    chain = model.leaves()
    for _, layer in chain:
        x = layer.forward(x)
    g = dy
    for _, layer in reversed(chain):
        g = layer.backward(g)
    return x, g


def _grads(model):
    return {n: p.grad.copy() for n, p in model.named_parameters()}


def _net(seed, ceil_mode=False, padding=0):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2, 2, padding=padding, ceil_mode=ceil_mode),
                         nn.Conv2d(4, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=ceil_mode),
                         nn.Flatten())


@pytest.mark.parametrize("seed, ceil_mode, padding, dtype", [(0, False, 0, np.float32), (1, True, 1, np.float32),
                                                              (2, False, 1, np.float64), (3, True, 0, np.float64)])
def test_swapped_forward_and_backward_equal_the_layer_order_exactly(seed, ceil_mode, padding, dtype):
    model = _net(seed, ceil_mode, padding).astype(dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 2, 13, 11)).astype(dtype)
    x[0, :, :5, :5] = -1.0  # windows with no positive value after the first conv are likely
    x[1, :, 2:6, 2:6] = 0.0  # ties and exact zeros
    y = model.forward(x)
    assert model._swapped == {1, 4}
    dy = rng.standard_normal(y.shape).astype(y.dtype)
    model.zero_grad()
    gx = model.backward(dy)
    grads = _grads(model)

    model.zero_grad()
    y_ref, gx_ref = _layer_by_layer(model, x, dy)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(gx, gx_ref)
    for name, g in _grads(model).items():
        np.testing.assert_array_equal(grads[name], g, err_msg=name)


def test_nan_propagates_and_gets_no_gradient_in_both_orders():
    nn.manual_seed(4)
    model = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, 2))
    x = np.random.default_rng(4).standard_normal((1, 2, 4, 4)).astype(np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, :2, :2] = -2.0
    y = model.forward(x)
    assert model._swapped == {0}
    dy = np.ones_like(y)
    gx = model.backward(dy)
    y_ref, gx_ref = _layer_by_layer(model, x, dy)
    np.testing.assert_array_equal(y, y_ref)  # NaN at the same place (assert_array_equal matches NaNs)
    assert np.isnan(y[0, 0, 0, 0])
    np.testing.assert_array_equal(gx, gx_ref)


def test_lenet_training_step_gradients_equal_the_unswapped_order():
    model = models.lenet5("relu", "max", seed=0)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 1, 32, 32)).astype(np.float32)
    y = model.forward(x)
    assert len(model._swapped) == 2
    dy = rng.standard_normal(y.shape).astype(np.float32)
    model.zero_grad()
    model.backward(dy, need_input_grad=False)
    grads = _grads(model)
    model.zero_grad()
    y_ref, _ = _layer_by_layer(model, x, dy)
    np.testing.assert_array_equal(y, y_ref)
    for name, g in _grads(model).items():
        np.testing.assert_array_equal(grads[name], g, err_msg=name)


def test_named_activations_and_partial_passes_keep_the_relu_output():
    model = _net(6)
    x = np.random.default_rng(6).standard_normal((2, 2, 13, 11)).astype(np.float32)
    conv_out = model.forward(x, until="0")
    relu_out = model.forward(x, until="1")  # the pair is cut: the ReLU runs on the full map
    np.testing.assert_array_equal(relu_out, np.maximum(conv_out, 0))
    assert model._swapped == frozenset()
    _, acts = model.forward_with_activations(x, ["1", "2"])
    np.testing.assert_array_equal(acts["1"], relu_out)
    g = model.backward_from("1", np.ones_like(relu_out))  # after forward_with_activations: unswapped
    assert g.shape == x.shape
    model.forward(x)  # swapped: backpropagating from the ReLU between the pair is refused, clearly
    with pytest.raises(RuntimeError, match="ran after the max-pool"):
        model.backward_from("1", np.ones_like(relu_out))
    # from the pool (after the pair) it works and equals the unswapped walk
    pooled = model.forward(x, until="2")
    g_swapped = model.backward_from("2", np.ones_like(pooled))
    chain = model.leaves()[:3]
    h = x
    for _, layer in chain:
        h = layer.forward(h)
    g_ref = np.ones_like(pooled)
    for _, layer in reversed(chain):
        g_ref = layer.backward(g_ref)
    np.testing.assert_array_equal(g_swapped, g_ref)


def test_subclasses_are_not_swapped():
    class LeakyishReLU(nn.ReLU):
        pass

    model = nn.Sequential(LeakyishReLU(), nn.MaxPool2d(2))
    model.forward(np.ones((1, 1, 4, 4), np.float32))
    assert model._swapped == frozenset()

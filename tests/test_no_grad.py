"""fastconv.nn.no_grad(): the same outputs, nothing kept for backward, a clear error from a
backward that needs it, and the mode restored on exit (nested, on error, per thread)."""
import threading

import numpy as np
import pytest

from fastconv import models, nn


def lenet():
    return models.lenet5("relu", "max", seed=0)


def test_outputs_match_and_nothing_is_kept():
    x = np.random.default_rng(0).standard_normal((3, 1, 32, 32)).astype(np.float32)
    kept, bare = lenet(), lenet()
    want = kept.forward(x)
    with nn.no_grad():
        got = bare.forward(x)
    np.testing.assert_array_equal(got, want)
    for _, m in bare.named_modules():
        for attr in ("_x", "_y", "_idx"):
            assert getattr(m, attr, None) is None, (type(m).__name__, attr)
    assert any(getattr(m, "_x", None) is not None for _, m in kept.named_modules())


# (layer builder, input): built inside the test, with seeded weights, so what a case computes
# does not depend on the order in which tests run or are collected
@pytest.mark.parametrize("make, shape", [
    pytest.param(lambda: nn.Conv2d(2, 3, 3, seed=0), (1, 2, 5, 5), id="Conv2d"),
    pytest.param(lambda: nn.Linear(4, 2, seed=0), (2, 4), id="Linear"),
    pytest.param(lambda: nn.MaxPool2d(2), (1, 1, 4, 4), id="MaxPool2d"),
    pytest.param(nn.ReLU, (2, 3), id="ReLU"),
    pytest.param(nn.Sigmoid, (2, 3), id="Sigmoid"),
    pytest.param(nn.Tanh, (2, 3), id="Tanh"),
    pytest.param(nn.Softmax, (2, 3), id="Softmax"),
])
def test_backward_after_no_grad_forward_raises(make, shape):
    layer, x = make(), np.ones(shape, np.float32)
    with nn.no_grad():
        y = layer.forward(x)
    with pytest.raises(RuntimeError, match="no_grad"):
        layer.backward(np.ones_like(y))
    layer.backward(np.ones_like(layer.forward(x)))  # a normal forward makes it work again


def test_mode_is_restored_nested_on_error_and_as_decorator():
    assert nn.is_grad_enabled()
    with nn.no_grad():
        with nn.no_grad():
            assert not nn.is_grad_enabled()
        assert not nn.is_grad_enabled()
    assert nn.is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with nn.no_grad():
            1 / 0
    assert nn.is_grad_enabled()

    @nn.no_grad()
    def inside():
        return nn.is_grad_enabled()
    assert inside() is False and nn.is_grad_enabled()


def test_mode_is_per_thread():
    seen = []
    with nn.no_grad():
        t = threading.Thread(target=lambda: seen.append(nn.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]

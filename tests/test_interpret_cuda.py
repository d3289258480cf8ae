"""Interpretation on a model moved to CUDA (Numba's simulator without a GPU; tiny shapes):
the same answers as on the host."""
import numpy as np
import pytest

from fastconv import nn
from fastconv import interpret as I

pytest.importorskip("numba")


def _net():
    return nn.Sequential(nn.Conv2d(1, 2, 3, seed=0), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3, seed=1))


def test_same_results_on_the_device(fast_simulator):
    x = np.random.default_rng(0).random((2, 1, 8, 8)).astype(np.float32)
    host, device = _net(), _net().to("cuda")
    for fn in (lambda m: I.saliency(m, x, [0, 2]), lambda m: I.grad_cam(m, x, [0, 2], "0"),
               lambda m: I.top_patches(m, "0", x, k=3).scores):
        got = fn(device)
        assert isinstance(got, np.ndarray)  # results come back to the host
        np.testing.assert_allclose(got, fn(host), rtol=1e-5, atol=1e-6)

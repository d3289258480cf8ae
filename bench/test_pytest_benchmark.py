"""pytest-benchmark versions of the core comparisons (not collected by the test suite):

    pytest bench/test_pytest_benchmark.py --benchmark-enable --benchmark-group-by=param:layer
"""
import numpy as np
import pytest

import fastconv.functional as F

torch = pytest.importorskip("torch")

LAYERS = {"vgg_conv3_2": (1, 256, 256, 56), "vgg_conv5": (1, 512, 512, 14), "vgg_conv1_2_b8": (8, 64, 64, 56)}


@pytest.fixture(params=list(LAYERS), ids=lambda s: s)
def layer(request):
    n, c, k, h = LAYERS[request.param]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    w = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    return request.param, x, w


@pytest.mark.parametrize("impl", ["fastconv", "torch"])
def test_conv_forward(benchmark, layer, impl):
    name, x, w = layer
    benchmark.group = f"conv2d {name}"
    if impl == "fastconv":
        benchmark(F.conv2d, x, w, None, 1, 1)
    else:
        tx, tw = torch.from_numpy(x), torch.from_numpy(w)
        with torch.no_grad():
            benchmark(torch.nn.functional.conv2d, tx, tw, None, 1, 1)


@pytest.mark.parametrize("impl", ["fastconv", "torch"])
def test_max_pool(benchmark, layer, impl):
    name, x, _ = layer
    benchmark.group = f"max_pool2d {name}"
    if impl == "fastconv":
        benchmark(F.max_pool2d, x, 2, 2, 0, 1, False, True)
    else:
        benchmark(torch.nn.functional.max_pool2d, torch.from_numpy(x), 2, 2, 0, 1, False, True)

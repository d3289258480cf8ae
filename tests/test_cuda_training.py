"""Training on the CUDA backend: the device helpers of fastconv.cuda.training against numpy,
and small nets trained with SGD (momentum, Nesterov, weight decay) and Adam on the device
matching the same nets trained on the host, with no parameter, gradient, optimizer state or
activation becoming a host array during the steps.

Runs on Numba's CUDA simulator without a GPU (tests/conftest.py), on the GPU otherwise; shapes
are tiny because the simulator runs every CUDA thread as a Python thread.
"""
import os

import numpy as np
import pytest

numba = pytest.importorskip("numba")
pytest.importorskip("numba.cuda")
from numba import cuda  # noqa: E402

from fastconv import nn  # noqa: E402
from fastconv.nn import _ops  # noqa: E402
from fastconv.train import evaluate, fit  # noqa: E402
from conftest import hardware, require_cuda_backend  # noqa: E402

require_cuda_backend(cuda)

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


pytestmark = pytest.mark.usefixtures("fast_simulator")


def fc():
    from fastconv import cuda as fcuda
    return fcuda


def dev(a):
    return cuda.to_device(np.ascontiguousarray(a))


def host(d):
    return d.copy_to_host()


def is_dev(a):
    return a is not None and not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host")


def rnd(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------- kernels vs numpy

@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 7)])
def test_bias_grad(shape):
    dy = rnd(np.random.default_rng(0), *shape)
    got = host(fc().bias_grad(dev(dy)))
    np.testing.assert_allclose(got, _ops.bias_grad(dy), rtol=1e-5, atol=1e-6)


def test_accumulate_in_place_and_mul():
    rng = np.random.default_rng(1)
    a, b = rnd(rng, 3, 5), rnd(rng, 3, 5)
    da = dev(a)
    out = fc().accumulate(da, dev(b))
    assert out is da
    np.testing.assert_allclose(host(da), a + b, rtol=1e-6)
    np.testing.assert_allclose(host(fc().mul(dev(a), dev(b))), a * b, rtol=1e-6)
    assert _ops.accumulate(None, da) is da
    assert _ops.accumulate(da, dev(b)) is da


def test_dropout_mask_mul():
    rng = np.random.default_rng(2)
    x = rnd(rng, 4, 50)
    p = 0.3
    y, mask = fc().dropout_mask_mul(dev(x), p, np.random.default_rng(5))
    y, mask = host(y), host(mask)
    vals = np.unique(mask)
    assert set(np.round(vals, 5)) <= {0.0, np.float32(round(1 / (1 - p), 5))}
    np.testing.assert_allclose(y, x * mask, rtol=1e-6)
    kept = (mask > 0).mean()
    assert 0.55 < kept < 0.85                                # 200 draws of Bernoulli(0.7)
    # reproducible from the generator state; different draws give different masks
    _, m2 = fc().dropout_mask_mul(dev(x), p, np.random.default_rng(5))
    _, m3 = fc().dropout_mask_mul(dev(x), p, np.random.default_rng(6))
    assert np.array_equal(host(m2), mask) and not np.array_equal(host(m3), mask)


@pytest.mark.parametrize("dim", [1, 0, -1])
def test_softmax_backward(dim):
    rng = np.random.default_rng(3)
    y = np.exp(rnd(rng, 3, 4, 2))
    y /= y.sum(axis=dim, keepdims=True)
    g = rnd(rng, 3, 4, 2)
    got = host(fc().softmax_backward(dev(g), dev(y), dim))
    np.testing.assert_allclose(got, _ops.softmax_backward(g, y, dim), rtol=1e-5, atol=1e-6)


def test_copy_into_cast_zeros():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = dev(np.zeros((2, 3), np.float32))
    assert fc().copy_into(d, a) is d
    np.testing.assert_array_equal(host(d), a)
    fc().copy_into(d, dev(a * 2))
    np.testing.assert_array_equal(host(d), a * 2)
    c = fc().cast(d, np.float64)
    assert np.dtype(c.dtype) == np.float64 and is_dev(c)
    np.testing.assert_array_equal(host(c), a * 2)
    np.testing.assert_array_equal(host(fc().zeros_like(d)), np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss(reduction):
    rng = np.random.default_rng(4)
    x, t = rnd(rng, 3, 4), rnd(rng, 3, 4)
    cpu, gpu = nn.MSELoss(reduction), nn.MSELoss(reduction)
    assert gpu(dev(x), dev(t)) == pytest.approx(cpu(x, t), rel=1e-5)
    g = gpu.backward()
    assert is_dev(g)
    np.testing.assert_allclose(host(g), cpu.backward(), rtol=1e-5, atol=1e-7)


def test_adaptive_avg_pool_uneven_bins():
    rng = np.random.default_rng(5)
    x = rnd(rng, 2, 2, 5, 7)
    cpu, gpu = nn.AdaptiveAvgPool2d((3, 4)), nn.AdaptiveAvgPool2d((3, 4))
    y = gpu(dev(x))
    assert is_dev(y)
    np.testing.assert_allclose(host(y), cpu(x), rtol=1e-5, atol=1e-6)
    dy = rnd(rng, 2, 2, 3, 4)
    dx = gpu.backward(dev(dy))
    assert is_dev(dx)
    np.testing.assert_allclose(host(dx), cpu.backward(dy), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(momentum=0.0), dict(momentum=0.9), dict(momentum=0.9, dampening=0.2),
                                dict(momentum=0.9, nesterov=True, weight_decay=0.01)])
def test_sgd_kernel_matches_numpy(kw):
    rng = np.random.default_rng(6)
    w = rnd(rng, 3, 4)
    cpu_p, gpu_p = nn.Parameter(w.copy()), nn.Parameter(dev(w))
    cpu, gpu = nn.SGD([cpu_p], lr=0.1, **kw), nn.SGD([gpu_p], lr=0.1, **kw)
    for step in range(3):
        g = rnd(rng, 3, 4)
        cpu_p.grad, gpu_p.grad = g, dev(g)
        cpu.step()
        gpu.step()
    assert is_dev(gpu_p.data)
    np.testing.assert_allclose(host(gpu_p.data), cpu_p.data, rtol=1e-5, atol=1e-6)
    if kw["momentum"]:
        assert is_dev(gpu.state[id(gpu_p)])
        np.testing.assert_allclose(host(gpu.state[id(gpu_p)]), cpu.state[id(cpu_p)], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_kernel_matches_numpy(wd):
    rng = np.random.default_rng(7)
    w = rnd(rng, 5)
    cpu_p, gpu_p = nn.Parameter(w.copy()), nn.Parameter(dev(w))
    cpu, gpu = nn.Adam([cpu_p], lr=0.01, weight_decay=wd), nn.Adam([gpu_p], lr=0.01, weight_decay=wd)
    for _ in range(3):
        g = rnd(rng, 5)
        cpu_p.grad, gpu_p.grad = g, dev(g)
        cpu.step()
        gpu.step()
    np.testing.assert_allclose(host(gpu_p.data), cpu_p.data, rtol=1e-5, atol=1e-6)
    for a, b in zip(gpu.state[id(gpu_p)], cpu.state[id(cpu_p)]):
        assert is_dev(a)
        np.testing.assert_allclose(host(a), b, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------------------- whole nets

def tiny_net(seed=0):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 4))


def _check_no_host_arrays(model, opt, loss_grad):
    """Every parameter, gradient, optimizer buffer and cached activation is a device array."""
    assert is_dev(loss_grad)
    for name, p in model.named_parameters():
        assert is_dev(p.data), name
        assert is_dev(p.grad), name
    for st in opt.state.values():
        for a in (st if isinstance(st, tuple) else (st,)):
            assert is_dev(a)
    for _, layer in model.leaves():
        for attr in ("_x", "_y", "_idx"):
            v = getattr(layer, attr, None)
            if v is not None:
                assert is_dev(v), f"{type(layer).__name__}.{attr}"


def _train(model, opt, x, t, steps, on_device):
    loss = nn.CrossEntropyLoss()
    losses = []
    for _ in range(steps):
        logits = model.forward(x)
        losses.append(loss(logits, t))
        model.zero_grad()
        g = loss.backward()
        model.backward(g, need_input_grad=False)
        opt.step()
        if on_device:
            assert is_dev(logits)
            _check_no_host_arrays(model, opt, g)
    return losses


@pytest.mark.parametrize("make_opt,steps", [
    (lambda ps: nn.SGD(ps, lr=0.1, momentum=0.9), 2),
    (lambda ps: nn.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3), 2),
    (lambda ps: nn.Adam(ps, lr=0.01), 1),
], ids=["sgd_momentum", "sgd_nesterov_wd", "adam"])
def test_tiny_net_trains_on_device_like_cpu(make_opt, steps):
    rng = np.random.default_rng(8)
    x, t = rnd(rng, 2, 1, 8, 8), np.array([1, 3])
    cpu_net, gpu_net = tiny_net(), tiny_net().to("cuda")
    assert gpu_net.device == "cuda" and cpu_net.device == "cpu"
    cpu_opt, gpu_opt = make_opt(cpu_net.parameters()), make_opt(gpu_net.parameters())
    cl = _train(cpu_net, cpu_opt, x, t, steps, False)
    gl = _train(gpu_net, gpu_opt, dev(x), dev(t), steps, True)
    np.testing.assert_allclose(gl, cl, rtol=1e-5)
    gsd = gpu_net.state_dict()                         # host copies
    for k, v in cpu_net.state_dict().items():
        np.testing.assert_allclose(gsd[k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    gpu_net.to("cpu")
    assert all(isinstance(p.data, np.ndarray) for p in gpu_net.parameters())


@pytest.mark.skipif(SIM, reason=hardware("LeNet-5 at 32x32 takes ~90 s on the simulator; the tiny nets cover it there"))
def test_lenet5_sgd_step_on_device():
    from fastconv.models import lenet5
    rng = np.random.default_rng(9)
    x, t = rnd(rng, 2, 1, 32, 32), np.array([0, 7])
    cpu_net = lenet5("tanh", "max", seed=1)
    gpu_net = lenet5("tanh", "max", seed=1).to("cuda")
    cpu_opt = nn.SGD(cpu_net.parameters(), lr=0.05, momentum=0.9)
    gpu_opt = nn.SGD(gpu_net.parameters(), lr=0.05, momentum=0.9)
    cl = _train(cpu_net, cpu_opt, x, t, 1, False)
    gl = _train(gpu_net, gpu_opt, dev(x), dev(t), 1, True)
    np.testing.assert_allclose(gl, cl, rtol=1e-5)
    gsd = gpu_net.state_dict()
    for k, v in cpu_net.state_dict().items():
        np.testing.assert_allclose(gsd[k], v, rtol=1e-4, atol=1e-6, err_msg=k)


def test_dropout_and_softmax_layers_on_device():
    rng = np.random.default_rng(10)
    x = dev(rnd(rng, 2, 6))
    drop, sm = nn.Dropout(0.5, seed=0), nn.Softmax(1)
    y = sm(drop(x))
    g = drop.backward(sm.backward(dev(rnd(rng, 2, 6))))
    assert is_dev(y) and is_dev(g)
    drop.eval()
    assert drop(x) is x


def test_astype_and_optimizer_state_follow_the_model():
    net = tiny_net()
    rng = np.random.default_rng(11)
    x, t = rnd(rng, 2, 1, 8, 8), np.array([0, 2])
    opt = nn.SGD(net.parameters(), lr=0.1, momentum=0.9)
    _train(net, opt, x, t, 1, False)               # host state first
    net.to("cuda")
    _train(net, opt, dev(x), dev(t), 1, True)      # state moved to the device on the step
    net.astype(np.float64)
    assert all(is_dev(p.data) and np.dtype(p.data.dtype) == np.float64 for p in net.parameters())
    net.to("cpu").astype(np.float32)
    _train(net, opt, x, t, 1, False)               # and back
    assert all(isinstance(s, np.ndarray) for s in opt.state.values())


def test_fit_and_evaluate_on_device():
    rng = np.random.default_rng(12)
    images = rnd(rng, 4, 1, 8, 8)
    labels = np.array([0, 1, 2, 3])
    net = tiny_net()
    opt = nn.SGD(net.parameters(), lr=0.1, momentum=0.9)
    hist = fit(net, (images, labels), epochs=1, batch_size=2, optimizer=opt, progress=False, device="cuda")
    assert net.device == "cuda" and np.isfinite(hist["loss"][0])
    ev = evaluate(net, (images, labels), batch_size=4, device="cuda")
    assert ev["n"] == 4 and 0 <= ev["accuracy"] <= 1

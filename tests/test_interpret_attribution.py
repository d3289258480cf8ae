"""Saliency, SmoothGrad, integrated gradients, guided backprop and Grad-CAM against finite
differences, numpy references and a torch twin."""
import numpy as np
import pytest

from conftest import torch
from fastconv import data, models, nn
from fastconv import interpret as I


def _small_net(activation, seed=0):
    """A float64 net small enough for finite differences over every pixel."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, seed=seed), act(), nn.AvgPool2d(2),
                        nn.Conv2d(4, 3, 2, seed=seed + 1), act(), nn.Flatten(), nn.Linear(12, 5, seed=seed + 2))
    return net.astype(np.float64)


def _scores(net, x, targets):
    return net.forward(x)[np.arange(len(x)), targets]


def _fd_gradient(net, x, targets, h=1e-6):
    """Central differences of each image's target score, one pixel at a time."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape[1:]):
        step = np.zeros_like(x)
        step[(slice(None),) + idx] = h
        g[(slice(None),) + idx] = (_scores(net, x + step, targets) - _scores(net, x - step, targets)) / (2 * h)
    return g


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_saliency_matches_finite_differences(activation):
    rng = np.random.default_rng(1)
    net = _small_net(activation)
    x = rng.standard_normal((3, 2, 6, 6))
    targets = np.array([0, 3, 4])
    fd = _fd_gradient(net, x, targets)
    got = I.saliency(net, x, targets)
    assert got.shape == (3, 6, 6)
    np.testing.assert_allclose(got, np.abs(fd).max(axis=1), rtol=1e-6, atol=1e-8)


def test_integrated_gradients_matches_finite_differences_and_is_complete():
    rng = np.random.default_rng(2)
    net = _small_net("tanh")
    x = rng.standard_normal((2, 2, 6, 6))
    base = 0.1 * rng.standard_normal((2, 6, 6))  # broadcast over the batch
    targets = [1, 2]
    steps = 4
    got = I.integrated_gradients(net, x, targets, baseline=base, steps=steps)
    # the same trapezoid rule on finite-difference gradients
    alphas = np.linspace(0, 1, steps + 1)
    weights = np.full(steps + 1, 1 / steps)
    weights[[0, -1]] /= 2
    ref = sum(w * _fd_gradient(net, base + a * (x - base), np.array(targets)) for a, w in zip(alphas, weights))
    np.testing.assert_allclose(got, (x - base) * ref, rtol=1e-5, atol=1e-8)
    # completeness: attributions add up to S(x) - S(baseline)
    fine = I.integrated_gradients(net, x, targets, baseline=base, steps=64)
    gap = _scores(net, x, targets) - _scores(net, np.broadcast_to(base, x.shape).copy(), targets)
    np.testing.assert_allclose(fine.sum(axis=(1, 2, 3)), gap, rtol=1e-3)


def test_integrated_gradients_complete_on_trained_lenet(trained_lenet, mnist_dir):
    net = trained_lenet()
    x, y = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x, y = x[-4:], y[-4:]
    ig = I.integrated_gradients(net.astype(np.float64), x.astype(np.float64), y, steps=256)
    gap = _scores(net, x.astype(np.float64), y) - _scores(net, np.zeros_like(x, np.float64), y)
    np.testing.assert_allclose(ig.sum(axis=(1, 2, 3)), gap, rtol=1e-3)


def test_smoothgrad_is_averaged_saliency():
    rng = np.random.default_rng(3)
    net = _small_net("relu")
    x = rng.standard_normal((2, 2, 6, 6))
    np.testing.assert_allclose(I.smoothgrad(net, x, 1, noise=0.0, samples=2), I.saliency(net, x, 1))
    a = I.smoothgrad(net, x, [0, 1], samples=5, seed=7)
    b = I.smoothgrad(net, x, [0, 1], samples=5, seed=7)
    np.testing.assert_array_equal(a, b)
    # by hand: the mean over the same seeded noise draws
    noise_rng = np.random.default_rng(7)
    sigma = 0.15 * (x.max(axis=(1, 2, 3), keepdims=True) - x.min(axis=(1, 2, 3), keepdims=True))
    ref = np.mean([I.saliency(net, x + sigma * noise_rng.standard_normal(x.shape), [0, 1]) for _ in range(5)], axis=0)
    np.testing.assert_allclose(a, ref, rtol=1e-12)


def test_guided_backprop_against_numpy():
    """Linear -> ReLU -> Linear -> ReLU -> Linear: guided backprop passes a gradient through a
    ReLU only where both the unit's output and the incoming gradient are positive."""
    rng = np.random.default_rng(4)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 12, seed=1), nn.ReLU(), nn.Linear(12, 8, seed=2), nn.ReLU(),
                        nn.Linear(8, 3, seed=3)).astype(np.float64)
    x = rng.standard_normal((5, 1, 4, 4))
    targets = np.array([0, 1, 2, 1, 0])
    (w1, b1), (w2, b2), (w3, _) = [(net[k].weight.data, net[k].bias.data) for k in ("1", "3", "5")]
    h1 = np.maximum(x.reshape(5, 16) @ w1.T + b1, 0)
    h2 = np.maximum(h1 @ w2.T + b2, 0)
    g = w3[targets]
    g = np.maximum(g, 0) * (h2 > 0)
    g = np.maximum(g @ w2, 0) * (h1 > 0)
    ref = (g @ w1).reshape(x.shape)
    got = I.guided_backprop(net, x, targets)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)
    plain = _fd_gradient(net, x, targets)
    assert not np.allclose(got, plain, atol=1e-6)  # the modified backward really differs


def _torch_twin(net):
    """The same layers in torch, with the weights copied over by (torchvision-style) name."""
    tnn = torch.nn
    mapping = {nn.Conv2d: lambda m: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding),
               nn.ReLU: lambda m: tnn.ReLU(), nn.MaxPool2d: lambda m: tnn.MaxPool2d(m.kernel_size, m.stride),
               nn.Flatten: lambda m: tnn.Flatten(), nn.Dropout: lambda m: tnn.Dropout(),
               nn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features)}
    names = [n for n, _ in net.leaves()]
    layers = [mapping[type(m)](m) for _, m in net.leaves()]
    twin = tnn.Sequential(*layers).double().eval()
    state = {f"{names.index(k.rsplit('.', 1)[0])}.{k.rsplit('.', 1)[1]}": torch.from_numpy(v.astype(np.float64))
             for k, v in net.state_dict().items()}
    twin.load_state_dict(state)
    return twin, names


def _torch_grad_cam(twin, names, x, targets, layer_index):
    xt = torch.from_numpy(x)
    acts = twin[:layer_index + 1](xt).detach().requires_grad_(True)
    scores = twin[layer_index + 1:](acts)
    scores[torch.arange(len(targets)), torch.as_tensor(targets)].sum().backward()
    weights = acts.grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * acts).sum(dim=1, keepdim=True))
    up = torch.nn.functional.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
    return up[:, 0].detach().numpy()


@pytest.mark.skipif(torch is None, reason="needs torch")
@pytest.mark.parametrize("which,layer", [("lenet", "features.3"), ("lenet", "features.5"), ("vgg", "features.2"),
                                         ("vgg", "features.7")])
def test_grad_cam_matches_torch(which, layer, trained_lenet, mnist_dir):
    x, y = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    if which == "lenet":
        net = trained_lenet()
        images, targets = x[:6], y[:6]
    else:
        net = models.vgg(((1, 4, 2), (4, 8, 2)), input_size=32, hidden=16, num_classes=10, seed=0)
        images, targets = x[:3], np.array([2, 5, 9])
    net = net.astype(np.float64)
    images = images.astype(np.float64)
    twin, names = _torch_twin(net)
    # grad_cam reads a conv after its ReLU: the torch side takes the same leaf
    index = names.index(layer) + (1 if isinstance(dict(net.leaves())[layer], nn.Conv2d) else 0)
    ref = _torch_grad_cam(twin, names, images, targets, index)
    got = I.grad_cam(net, images, targets, layer)
    assert got.shape == (len(images), 32, 32)
    assert ref.max() > 0
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12 * ref.max())


def test_attributions_on_float32_lenet(trained_lenet, mnist_dir):
    net = trained_lenet()
    x, y = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x, y = x[:5], y[:5]
    for fn in (I.saliency, I.smoothgrad):
        out = fn(net, x, y)
        assert out.shape == (5, 32, 32) and out.dtype == np.float32 and (out >= 0).all() and out.max() > 0
    assert I.guided_backprop(net, x, y).shape == (5, 1, 32, 32)
    cam = I.grad_cam(net, x, y, "features.3")
    assert cam.shape == (5, 32, 32) and cam.max() > 0
    # the parameters' gradients are untouched: interpretation never trains
    assert all(p.grad is None for p in net.parameters())

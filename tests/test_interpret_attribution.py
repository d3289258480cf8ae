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


# Completeness: the attributions add up to S(I) - S(I0) up to the trapezoid rule's error, which
# is exactly 0 where the gradient is constant along the path and c / steps^2 + O(steps^-4) where
# it is smooth; float32 adds its rounding, bounded as the kernels' own tests bound it.

def _completeness_error(net, x, targets, steps, baseline=None):
    """sum of the attributions - (S(I) - S(I0)), per image, and S(I) - S(I0)."""
    base = np.zeros_like(x) if baseline is None else np.broadcast_to(baseline, x.shape).copy()
    gap = _scores(net, x, targets) - _scores(net, base, targets)
    ig = I.integrated_gradients(net, x, targets, baseline=baseline, steps=steps)
    return ig.astype(np.float64).sum(axis=(1, 2, 3)) - gap, gap


def test_integrated_gradients_exactly_complete_on_a_linear_net():
    """No non-linearity: the gradient is the same all along the path, so even one trapezoid is
    exact and only float64 rounding remains."""
    rng = np.random.default_rng(6)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, seed=1), nn.AvgPool2d(2), nn.Conv2d(4, 3, 2, seed=2),
                        nn.Flatten(), nn.Linear(12, 5, seed=3)).astype(np.float64)
    x = rng.standard_normal((3, 2, 6, 6))
    for steps in (1, 7):
        err, gap = _completeness_error(net, x, [0, 2, 4], steps, baseline=0.3 * rng.standard_normal((2, 6, 6)))
        assert np.all(np.abs(err) <= 1e-12 * np.abs(gap).max()), (steps, err, gap)


def test_integrated_gradients_completeness_error_is_the_trapezoid_rules(mnist_dir):
    """A smooth float64 LeNet-5 (tanh, average pooling) on real digits: doubling the steps divides
    the completeness error by 4 (the trapezoid rule's steps^-2), and Richardson's extrapolation
    (4 IG_2n - IG_n) / 3, which cancels that term, is complete to 1e-8 of S(I) - S(I0)."""
    net = models.lenet5("tanh", "avg", seed=0).eval().astype(np.float64)
    x, y = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x, y = x[-4:].astype(np.float64), y[-4:]
    err32, gap = _completeness_error(net, x, y, 32)
    err64, _ = _completeness_error(net, x, y, 64)
    np.testing.assert_allclose(err32 / err64, 4.0, rtol=0.02)
    assert np.all(np.abs((4 * err64 - err32) / 3) <= 1e-8 * np.abs(gap)), ((4 * err64 - err32) / 3, gap)


def test_integrated_gradients_float32_within_its_rounding_of_float64(trained_lenet, mnist_dir):
    """The trained LeNet-5 in float32 against its float64 copy, same steps: each image's attribution
    sum differs by at most float32's error for the longest reduction in the backward pass
    (conftest.tolerance, 16 x 5 x 5 terms) relative to sum |IG|, so the float32 attributions are
    complete up to the float64 run's quadrature error plus that."""
    from conftest import tolerance
    net = trained_lenet()
    net64 = trained_lenet().astype(np.float64)
    x, y = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x, y = x[-4:], y[-4:]
    steps = 64
    ig32 = I.integrated_gradients(net, x, y, steps=steps)
    assert ig32.dtype == np.float32
    ig64 = I.integrated_gradients(net64, x.astype(np.float64), y, steps=steps)
    bound = tolerance(np.float32, 16 * 5 * 5) * np.abs(ig64).sum(axis=(1, 2, 3))
    diff = ig32.astype(np.float64).sum(axis=(1, 2, 3)) - ig64.sum(axis=(1, 2, 3))
    assert np.all(np.abs(diff) <= bound), (diff, bound)
    quadrature, gap = _completeness_error(net64, x.astype(np.float64), y, steps)
    assert np.all(np.abs(ig32.astype(np.float64).sum(axis=(1, 2, 3)) - gap) <= np.abs(quadrature) + bound)


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

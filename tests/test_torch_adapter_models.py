"""Patched torch models against the unpatched ones: LeNet-5 on real MNIST digits and a narrow
VGG-16 (same layer pattern, 1/16 of the channels) give the same logits and parameter gradients
(float32, max relative error <= 1e-4), and ten SGD steps follow the same trajectory."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastconv.torch as ft  # noqa: E402
from conftest import rel_err  # noqa: E402
from fastconv import data  # noqa: E402
from test_models_torch import VGG16, torch_lenet, torch_vgg  # noqa: E402

TOL = 1e-4


def mnist_batch(root, n, seed):
    x, y = data.mnist(root, "test", dtype="float32", pad=2)
    pick = np.random.default_rng(seed).choice(len(y), n, replace=False)
    return torch.from_numpy(x[pick]), torch.from_numpy(y[pick].astype(np.int64))


def check_same_training(reference, x, target, steps=10, lr=0.02):
    """Forward, gradients of the first step, then the loss at every step and the final weights."""
    reference.eval()  # dropout off in both, so they see the same function
    patched = ft.patch(copy.deepcopy(reference), force=True)
    assert sum(isinstance(m, (ft.Conv2d, ft.MaxPool2d)) for m in patched.modules()) > 0
    assert rel_err(patched(x).detach(), reference(x).detach()) <= TOL
    opts = [torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9) for m in (patched, reference)]
    for step in range(steps):
        losses = []
        for model, opt in zip((patched, reference), opts):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), target)
            loss.backward()
            losses.append(loss.item())
        if step == 0:
            initial_loss = losses[1]
            for (name, p), q in zip(patched.named_parameters(), reference.parameters()):
                assert rel_err(p.grad, q.grad) <= TOL, name
        assert abs(losses[0] - losses[1]) <= TOL * abs(losses[1]), (step, losses)
        for opt in opts:
            opt.step()
    assert losses[1] < initial_loss  # the steps really trained the nets
    for (name, p), q in zip(patched.named_parameters(), reference.parameters()):
        assert rel_err(p.detach(), q.detach()) <= TOL, name


def test_patched_lenet5_trains_like_torch(mnist_dir):
    torch.manual_seed(0)
    x, target = mnist_batch(mnist_dir, 32, 1)
    check_same_training(torch_lenet("relu", "max"), x, target)


def test_patched_lenet5_avg_pool_trains_like_torch(mnist_dir):
    torch.manual_seed(2)
    x, target = mnist_batch(mnist_dir, 16, 3)
    check_same_training(torch_lenet("tanh", "avg"), x, target)


def test_patched_small_vgg_trains_like_torch():
    torch.manual_seed(4)
    model = torch_vgg(VGG16, 10, width=1 / 16, hidden=32, final=1)
    for m in model.modules():  # torchvision's VGG init keeps the signal alive through 13 convs
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            torch.nn.init.normal_(m.bias, 0, 0.01)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    target = torch.tensor([1, 7, 3, 0])
    check_same_training(model, x, target)

"""The training step's fast paths against their plain definitions: in-place SGD against
torch.optim.SGD, cross-entropy with class indices (no one-hot) against the one-hot formula and
torch, and a whole LeNet-5 step (swapped ReLU/max-pool, remembered plans) against torch."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastconv import functional as F  # noqa: E402
from fastconv import models, nn  # noqa: E402


@pytest.mark.parametrize("kw", [dict(momentum=0.9), dict(momentum=0.9, dampening=0.3), dict(momentum=0.0),
                                dict(momentum=0.8, nesterov=True, weight_decay=0.01), dict(momentum=0.9, weight_decay=0.1)])
def test_sgd_matches_torch_over_steps(kw):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((5, 7)).astype(np.float32)
    p = nn.Parameter(p0.copy())
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt, topt = nn.SGD([p], lr=0.1, **kw), torch.optim.SGD([tp], lr=0.1, **kw)
    for _ in range(4):
        g = rng.standard_normal(p0.shape).astype(np.float32)
        g_before = g.copy()
        p.grad, tp.grad = g, torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        np.testing.assert_array_equal(g, g_before)  # the gradient array is never modified
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-6, atol=1e-6)


def _one_hot_reference(x, t, weight, ignore_index, label_smoothing):
    """loss per position and its gradient from the one-hot coefficient form, float64."""
    x = x.astype(np.float64)
    n, c = x.shape
    w = np.ones(c) if weight is None else weight.astype(np.float64)
    keep = t != ignore_index
    safe = np.where(keep, t, 0)
    q = np.zeros((n, c))
    q[np.arange(n), safe] = (1 - label_smoothing) * w[safe]
    q += label_smoothing / c * w
    q *= keep[:, None]
    lp = x - x.max(1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    grad = q.sum(1, keepdims=True) * np.exp(lp) - q
    return -(q * lp).sum(1), grad, (w[safe] * keep).sum()


@pytest.mark.parametrize("case", range(8))
def test_index_cross_entropy_equals_the_one_hot_form(case):
    rng = np.random.default_rng(case)
    n, c = 1 + case * 3, 2 + case
    x = (rng.standard_normal((n, c)) * 3).astype(np.float32)
    t = rng.integers(0, c, n)
    ignore = -100
    if case % 2:
        ignore = int(t[0])  # some positions ignored
    weight = (rng.random(c) + 0.5).astype(np.float32) if case % 4 >= 2 else None
    ls = (0.0, 0.2)[case % 3 == 1]
    losses, grad, divisor = _one_hot_reference(x, t, weight, ignore, ls)
    kw = dict(weight=weight, ignore_index=ignore, label_smoothing=ls)
    np.testing.assert_allclose(F.cross_entropy(x, t, reduction="none", **kw), losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.cross_entropy(x, t, reduction="sum", **kw), losses.sum(), rtol=1e-5, atol=1e-5)
    got = F.cross_entropy_backward(x, t, reduction="sum", **kw)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, grad, rtol=1e-5, atol=1e-6)
    if divisor:
        np.testing.assert_allclose(F.cross_entropy(x, t, reduction="mean", **kw), losses.sum() / divisor, rtol=1e-5)
        np.testing.assert_allclose(F.cross_entropy_backward(x, t, **kw), grad / divisor, rtol=1e-5, atol=1e-6)
    tx = torch.from_numpy(x).requires_grad_()
    tl = torch.nn.functional.cross_entropy(tx, torch.from_numpy(t), None if weight is None else torch.from_numpy(weight),
                                           ignore_index=ignore, reduction="sum", label_smoothing=ls)
    tl.backward()
    np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_lenet_steps_match_torch():
    """Three SGD-momentum steps of LeNet-5 (ReLU, max-pool) from the same weights as torch's."""
    model = models.lenet5("relu", "max", seed=0)
    tmodel = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2), torch.nn.Conv2d(6, 16, 5),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2), torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(),
        torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))
    tparams = [m for m in tmodel if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    fparams = [m for _, m in model.leaves() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for tm, fm in zip(tparams, fparams):
            tm.weight.copy_(torch.from_numpy(fm.weight.data))
            tm.bias.copy_(torch.from_numpy(fm.bias.data))
    opt = nn.SGD(model.parameters(), lr=0.05, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.05, momentum=0.9)
    ce = nn.CrossEntropyLoss()
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal((8, 1, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 8)
        loss = ce(model.forward(x), y)
        model.zero_grad()
        model.backward(ce.backward(), need_input_grad=False)
        opt.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y))
        tloss.backward()
        topt.step()
        assert abs(loss - tloss.item()) < 1e-4
    for tm, fm in zip(tparams, fparams):
        np.testing.assert_allclose(fm.weight.data, tm.weight.detach().numpy(), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(fm.bias.data, tm.bias.detach().numpy(), rtol=1e-3, atol=1e-4)

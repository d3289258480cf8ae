"""Every layer's forward and backward against torch autograd, plus init, Sequential naming,
named activations / backpropagation from a layer, losses, optimisers and schedules."""
import math

import numpy as np
import pytest

from fastconv import nn

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def _torch_single_threaded():
    """torch on one thread while this module's tiny layers run (its thread start-up dominates
    them), restored afterwards so other modules see torch as configured."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def copy_params(ours, theirs):
    sd = {k: t(v.copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(sd)


def check_layer(ours, theirs, shape, rng, tol=1e-5):
    x = rng.standard_normal(shape).astype(np.float32)
    copy_params(ours, theirs)
    y = ours.forward(x)
    xt = t(x.copy()).requires_grad_(True)
    yt = theirs(xt)
    assert y.shape == tuple(yt.shape)
    assert rel_err(y, yt.detach().numpy()) < tol
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = ours.backward(g)
    yt.backward(t(g))
    assert rel_err(gx, xt.grad.numpy()) < tol
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_err(p.grad, tparams[name].grad.numpy()) < tol, name


@pytest.mark.parametrize("args,kw,shape", [
    ((3, 5, 3), {}, (2, 3, 9, 8)),
    ((3, 4, 5), dict(stride=2, padding=2), (2, 3, 11, 13)),
    ((4, 6, 3), dict(padding=1, groups=2, bias=False), (1, 4, 7, 7)),
    ((2, 3, (3, 1)), dict(stride=(1, 2), dilation=(2, 1)), (3, 2, 10, 9)),
    ((3, 64, 11), dict(stride=4, padding=2), (1, 3, 35, 35)),
])
def test_conv2d_matches_torch(args, kw, shape):
    rng = np.random.default_rng(0)
    check_layer(nn.Conv2d(*args, **kw), torch.nn.Conv2d(*args, **kw), shape, rng, tol=1e-5)


def test_linear_matches_torch():
    rng = np.random.default_rng(1)
    check_layer(nn.Linear(13, 7), torch.nn.Linear(13, 7), (5, 13), rng)
    check_layer(nn.Linear(4, 3, bias=False), torch.nn.Linear(4, 3, bias=False), (2, 4), rng)


@pytest.mark.parametrize("ours,theirs,shape", [
    (lambda: nn.MaxPool2d(2, 2), lambda: torch.nn.MaxPool2d(2, 2), (2, 3, 8, 9)),
    (lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), lambda: torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True),
     (1, 2, 9, 10)),
    (lambda: nn.AvgPool2d(2), lambda: torch.nn.AvgPool2d(2), (2, 3, 10, 10)),
    (lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False), lambda: torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     (1, 2, 9, 7)),
    (lambda: nn.AdaptiveAvgPool2d(6), lambda: torch.nn.AdaptiveAvgPool2d(6), (1, 2, 6, 6)),
    (lambda: nn.AdaptiveAvgPool2d(3), lambda: torch.nn.AdaptiveAvgPool2d(3), (1, 2, 12, 9)),
    (lambda: nn.AdaptiveAvgPool2d((3, 4)), lambda: torch.nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 7, 10)),
    (lambda: nn.AdaptiveAvgPool2d(7), lambda: torch.nn.AdaptiveAvgPool2d(7), (1, 3, 1, 1)),
    (lambda: nn.ReLU(), lambda: torch.nn.ReLU(), (3, 4, 5, 5)),
    (lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid(), (3, 4, 5)),
    (lambda: nn.Tanh(), lambda: torch.nn.Tanh(), (3, 7)),
    (lambda: nn.Softmax(1), lambda: torch.nn.Softmax(1), (4, 10)),
    (lambda: nn.Flatten(), lambda: torch.nn.Flatten(), (2, 3, 4, 5)),
    (lambda: nn.Identity(), lambda: torch.nn.Identity(), (2, 3)),
])
def test_parameterless_layers_match_torch(ours, theirs, shape):
    check_layer(ours(), theirs(), shape, np.random.default_rng(2))


def test_dropout_train_and_eval():
    rng = np.random.default_rng(3)
    d = nn.Dropout(0.3, seed=0)
    x = rng.standard_normal((200, 50)).astype(np.float32) + 5
    y = d.forward(x)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8  # p=0.3 dropped
    np.testing.assert_allclose(y[kept], x[kept] / 0.7, rtol=1e-6)
    g = np.ones_like(x)
    np.testing.assert_allclose(d.backward(g), kept / np.float32(0.7), rtol=1e-6)
    d.eval()
    assert d.forward(x) is x and d.backward(g) is g
    with pytest.raises(ValueError, match="p"):
        nn.Dropout(1.0)


def test_init_is_torch_like_and_seeded():
    nn.manual_seed(5)
    a = nn.Conv2d(16, 32, 3)
    nn.manual_seed(5)
    b = nn.Conv2d(16, 32, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert a.weight.data.dtype == np.float32
    bound = 1 / math.sqrt(16 * 9)
    w = a.weight.data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound  # uniform(-b, b) has std b/sqrt(3)
    assert np.abs(a.bias.data).max() <= bound
    c = nn.Linear(100, 10, seed=1)
    d = nn.Linear(100, 10, seed=1)
    np.testing.assert_array_equal(c.weight.data, d.weight.data)
    assert np.abs(c.weight.data).max() <= 0.1


def small_net(seed=0):
    nn.manual_seed(seed)
    from collections import OrderedDict
    return nn.Sequential(OrderedDict(
        features=nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                               nn.Conv2d(4, 5, 3), nn.Tanh()),
        flatten=nn.Flatten(),
        classifier=nn.Sequential(nn.Linear(5 * 2 * 2, 6), nn.Sigmoid(), nn.Linear(6, 3)))), \
        torch.nn.Sequential(OrderedDict(
            features=torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                         torch.nn.Conv2d(4, 5, 3), torch.nn.Tanh()),
            flatten=torch.nn.Flatten(),
            classifier=torch.nn.Sequential(torch.nn.Linear(20, 6), torch.nn.Sigmoid(), torch.nn.Linear(6, 3))))


def test_sequential_names_until_and_backward_from():
    ours, theirs = small_net()
    names = [n for n, _ in ours.named_parameters()]
    assert names == [n for n, _ in theirs.named_parameters()]
    assert names[0] == "features.0.weight" and names[-1] == "classifier.2.bias"
    copy_params(ours, theirs)
    x = np.random.default_rng(4).standard_normal((2, 2, 8, 8)).astype(np.float32)
    act = ours.forward(x, until="features.2")
    assert act.shape == (2, 4, 4, 4)
    xt = t(x.copy()).requires_grad_(True)
    at = theirs.features[:3](xt)
    assert rel_err(act, at.detach().numpy()) < 1e-5
    # saliency: d sum(activation of channel 1) / d image
    g = np.zeros_like(act)
    g[:, 1] = 1
    gx = ours.backward_from("features.2", g)
    at[:, 1].sum().backward()
    assert rel_err(gx, xt.grad.numpy()) < 1e-5
    # a whole container name stops after its last layer
    assert ours.forward(x, until="features").shape == (2, 5, 2, 2)
    out, acts = ours.forward_with_activations(x, ["features.1", "classifier"])
    assert out.shape == (2, 3) and acts["classifier"] is out and acts["features.1"].shape == (2, 4, 8, 8)
    with pytest.raises(ValueError, match="unknown layer 'features.9'"):
        ours.forward(x, until="features.9")
    ours.forward(x, until="features.1")
    with pytest.raises(RuntimeError, match="not reached"):
        ours.backward_from("classifier.0", np.ones((2, 6), np.float32))


def test_train_eval_propagate_and_zero_grad():
    ours, _ = small_net()
    ours.eval()
    assert all(not m.training for _, m in ours.named_modules())
    ours.train()
    assert all(m.training for _, m in ours.named_modules())
    x = np.ones((1, 2, 8, 8), np.float32)
    ours.forward(x)
    ours.backward(np.ones((1, 3), np.float32))
    g1 = ours.parameters()[0].grad.copy()
    ours.forward(x)
    ours.backward(np.ones((1, 3), np.float32))
    np.testing.assert_allclose(ours.parameters()[0].grad, 2 * g1, rtol=1e-5)  # accumulates like torch
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_need_input_grad_false_skips_first_layer_input_gradient():
    ours, _ = small_net()
    x = np.ones((1, 2, 8, 8), np.float32)
    ours.forward(x)
    assert ours.backward(np.ones((1, 3), np.float32), need_input_grad=False) is None
    assert ours.parameters()[0].grad is not None


def test_losses_match_torch():
    rng = np.random.default_rng(6)
    logits = rng.standard_normal((8, 5)).astype(np.float32) * 10
    target = rng.integers(0, 5, 8)
    for kw in (dict(), dict(reduction="sum"), dict(label_smoothing=0.1)):
        ce = nn.CrossEntropyLoss(**kw)
        lt = t(logits.copy()).requires_grad_(True)
        ref = torch.nn.CrossEntropyLoss(**kw)(lt, t(target))
        ref.backward()
        assert abs(ce(logits, target) - ref.item()) < 1e-5 * max(1, abs(ref.item()))
        assert rel_err(ce.backward(), lt.grad.numpy()) < 1e-5
    a, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    mse = nn.MSELoss()
    at = t(a.copy()).requires_grad_(True)
    ref = torch.nn.MSELoss()(at, t(b))
    ref.backward()
    assert abs(mse(a, b) - ref.item()) < 1e-6
    assert rel_err(mse.backward(), at.grad.numpy()) < 1e-6


@pytest.mark.parametrize("make", [
    (lambda p: nn.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (lambda p: nn.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2)),
    (lambda p: nn.SGD(p, lr=0.05, momentum=0.8, nesterov=True), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True)),
    (lambda p: nn.SGD(p, lr=0.05, momentum=0.8, dampening=0.3), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.3)),
    (lambda p: nn.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (lambda p: nn.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1),
     lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
])
def test_optimizers_match_torch(make):
    ours, theirs = small_net(1)
    copy_params(ours, theirs)
    opt, topt = make[0](ours.parameters()), make[1](theirs.parameters())
    rng = np.random.default_rng(7)
    ce, tce = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    for _ in range(4):
        x = rng.standard_normal((3, 2, 8, 8)).astype(np.float32)
        y = rng.integers(0, 3, 3)
        ce(ours.forward(x), y)
        ours.zero_grad()
        ours.backward(ce.backward())
        opt.step()
        topt.zero_grad()
        tce(theirs(t(x)), t(y)).backward()
        topt.step()
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_err(p.data, tp[name].detach().numpy()) < 2e-5, name


def test_schedules_match_torch():
    p = [nn.Parameter(np.zeros(1, np.float32))]
    tp = [torch.nn.Parameter(torch.zeros(1))]
    for ours_s, theirs_s in [
        (lambda o: nn.StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (lambda o: nn.CosineAnnealingLR(o, 7, 1e-3), lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 7, 1e-3)),
    ]:
        opt, topt = nn.SGD(p, lr=0.2), torch.optim.SGD(tp, lr=0.2)
        s, ts = ours_s(opt), theirs_s(topt)
        for _ in range(10):
            topt.step()
            s.step()
            ts.step()
            assert abs(opt.lr - topt.param_groups[0]["lr"]) < 1e-9


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(TypeError, match="params"):
        nn.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        nn.SGD(nn.Linear(2, 2).parameters(), lr=0)
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD(nn.Linear(2, 2).parameters(), lr=0.1, nesterov=True)
    with pytest.raises(TypeError, match="Module"):
        nn.Sequential(nn.ReLU(), "relu")

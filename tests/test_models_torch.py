"""LeNet-5, AlexNet and VGG-16 against the same architectures written in torch.nn (no
torchvision): weights copied across, logits and one SGD step's gradients compared."""
from collections import OrderedDict

import numpy as np
import pytest

from fastconv import models, nn

torch = pytest.importorskip("torch")
tnn = torch.nn
import torch_zoo  # noqa: E402  (torchvision's AlexNet and VGG-16, written out)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)


def torch_lenet(act, pool):
    A = {"relu": tnn.ReLU, "sigmoid": tnn.Sigmoid, "tanh": tnn.Tanh}[act]
    P = {"max": tnn.MaxPool2d, "avg": tnn.AvgPool2d}[pool]
    return tnn.Sequential(OrderedDict(
        features=tnn.Sequential(tnn.Conv2d(1, 6, 5), A(), P(2, 2), tnn.Conv2d(6, 16, 5), A(), P(2, 2)),
        flatten=tnn.Flatten(),
        classifier=tnn.Sequential(tnn.Linear(400, 120), A(), tnn.Linear(120, 84), A(), tnn.Linear(84, 10))))


def torch_vgg(cfg, num_classes, width=1.0, hidden=4096, final=None):
    """torchvision.models.vgg's layout for any fastconv VGG config ((in, out, convs) per block),
    narrowed (width, hidden) and for small inputs (final): full VGG-16 is torch_zoo.vgg16;
    final=None keeps the 7x7 adaptive pool (224 input), otherwise the head flattens a
    final x final map (fastconv.models.vgg at small inputs)."""
    layers, c = [], cfg[0][0]
    for _, out, n in cfg:
        out = max(1, int(round(out * width)))
        for _ in range(n):
            layers += [tnn.Conv2d(c, out, 3, padding=1), tnn.ReLU()]
            c = out
        layers.append(tnn.MaxPool2d(2, 2))
    return tnn.Sequential(OrderedDict(
        features=tnn.Sequential(*layers),
        **({"avgpool": tnn.AdaptiveAvgPool2d(7)} if final is None else {}), flatten=tnn.Flatten(),
        classifier=tnn.Sequential(tnn.Linear(c * (final or 7) ** 2, hidden), tnn.ReLU(), tnn.Dropout(),
                                  tnn.Linear(hidden, hidden), tnn.ReLU(), tnn.Dropout(),
                                  tnn.Linear(hidden, num_classes))))


VGG16 = models.VGG_CONFIGS["vgg16"]


def he_init(model, seed):
    """torchvision's VGG/AlexNet-style init (kaiming normal fan_out for convs, N(0, 0.01) for
    linears): keeps the signal alive through deep nets, so gradients at the first layers are
    not tiny remainders of cancellation and a 1e-4-relative comparison means something."""
    rng = np.random.default_rng(seed)
    sd = {}
    for k, v in model.state_dict().items():
        if v.ndim == 4:
            sd[k] = rng.standard_normal(v.shape) * np.sqrt(2.0 / (v.shape[0] * v.shape[2] * v.shape[3]))
        elif v.ndim == 2:
            sd[k] = rng.standard_normal(v.shape) * 0.01
        else:
            sd[k] = rng.standard_normal(v.shape) * 0.01
    model.load_state_dict(sd)
    return model


def check_parity(ours, theirs, x, y, tol=1e-4, lr=0.01, steps=1):
    """Logits equal; then `steps` SGD steps with momentum 0.9 (loss, backward, update) on the
    batch: at every step the losses and gradients agree, and at the end so does each weight's
    displacement from its start (the part of the weight that training wrote, so velocity from
    earlier steps counts). Both nets in eval mode so dropout is the identity."""
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    ours.eval()
    theirs.eval()
    start = {name: p.data.copy() for name, p in ours.named_parameters()}
    opt = nn.SGD(ours.parameters(), lr=lr, momentum=0.9)
    topt = torch.optim.SGD(theirs.parameters(), lr=lr, momentum=0.9)
    tparams = dict(theirs.named_parameters())
    ce = nn.CrossEntropyLoss()
    for step in range(steps):
        logits = ours.forward(x)
        tl = theirs(torch.from_numpy(x))
        assert rel_err(logits, tl.detach().numpy()) <= tol, step
        loss = ce(logits, y)
        ours.zero_grad()
        ours.backward(ce.backward(), need_input_grad=False)
        opt.step()
        topt.zero_grad()
        tloss = tnn.functional.cross_entropy(tl, torch.from_numpy(y))
        tloss.backward()
        assert abs(loss - tloss.item()) <= tol * abs(tloss.item()), step
        for name, p in ours.named_parameters():
            assert rel_err(p.grad, tparams[name].grad.numpy()) <= tol * 10, (step, name)
        topt.step()
    for name, p in ours.named_parameters():
        # the displacement is a difference of float32 weights: a few ulps of |w| are rounding
        moved = tparams[name].detach().numpy().astype(np.float64) - start[name]
        rounding = 4 * np.finfo(p.data.dtype).eps * np.abs(start[name]).max()
        assert np.abs(p.data - start[name] - moved).max() <= tol * 10 * np.abs(moved).max() + rounding, name
    return loss


@pytest.mark.parametrize("act,pool", [("sigmoid", "avg"), ("tanh", "avg"), ("relu", "max")])
def test_lenet5_matches_torch(act, pool):
    ours = models.lenet5(act, pool, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 32, 32)).astype(np.float32)
    check_parity(ours, torch_lenet(act, pool), x, rng.integers(0, 10, 4))
    probs = ours.predict_proba(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert (ours.predict(x) == probs.argmax(axis=1)).all()


@pytest.mark.parametrize("size", [
    127,  # features end at 3x3: exercises the adaptive 3 -> 6 pooling (and is 3x cheaper)
    pytest.param(224, marks=pytest.mark.slow)])
def test_alexnet_matches_torch(size):
    """Logits in float32, gradients in float64, as VGG-16's below: conv1 (11x11 stride 4) runs as a
    stride-1 conv on its phase images (Winograd F(4,3) in auto's forward), whose float32 rounding
    (within 1e-6 of torch's with the direct paths, 1e-5 with Winograd) flips one max-pool argmax
    of the 127x127 input; features.0.weight's gradient then differed from torch's by 1.7e-3."""
    ours = he_init(models.alexnet(num_classes=10, seed=1), 1)
    assert ours.state_dict()["classifier.1.weight"].shape == (4096, 9216)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
    theirs = torch_zoo.alexnet(10)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    ours.eval()
    assert rel_err(ours.forward(x), theirs.eval()(torch.from_numpy(x)).detach().numpy()) <= 1e-4
    check_parity(ours.astype(np.float64), theirs.double(), x.astype(np.float64), np.array([3]), tol=1e-8)


@pytest.mark.slow
def test_vgg16_224_matches_torch():
    """Gradients compared in float64. In float32 at 224 rounding flips some max-pool argmaxes
    and ReLU signs between any two implementations; measured on features.0.weight's gradient:
    torch fp32 vs torch fp64 6e-4, fastconv fp32 vs torch fp32 7.5e-3, while the individual
    conv gradient kernels agree with fp64 to ~5e-6. Logits are checked in float32."""
    ours = he_init(models.vgg16(num_classes=10, seed=2), 2)
    keys = list(ours.state_dict())
    assert keys[0] == "features.0.weight" and keys[-1] == "classifier.6.bias" and len(keys) == 32
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    theirs = torch_zoo.vgg16(10)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    ours.eval()
    assert rel_err(ours.forward(x), theirs.eval()(torch.from_numpy(x)).detach().numpy()) <= 1e-4
    check_parity(ours.astype(np.float64), theirs.double(), x.astype(np.float64), np.array([7]), tol=1e-8)


def test_vgg16_layout_small_matches_torch():
    """VGG-16's 13 convs and 5 pools at quarter width on 64x64 input (seconds, not a minute)."""
    ours = he_init(models.vgg(models.VGG_CONFIGS["vgg16"], num_classes=10, input_size=64,
                              width_multiplier=0.25, hidden=64, seed=3), 3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    check_parity(ours, torch_vgg(VGG16, 10, width=0.25, hidden=64, final=2), x, np.array([7, 1]))


def test_vgg_family_layouts():
    expected_convs = {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16}
    for name, n in expected_convs.items():
        cfg = models.VGG_CONFIGS[name]
        assert sum(b[2] for b in cfg) == n
    m = models.vgg19(num_classes=5)
    convs = [k for k, v in m.state_dict().items() if v.ndim == 4]
    assert len(convs) == 16 and convs[-1] == "features.34.weight"  # torchvision's last vgg19 conv
    assert m.num_parameters() == 143_667_240 - (1000 - 5) * 4097  # torchvision vgg19, 5 classes
    assert models.vgg16().num_parameters() == 138_357_544  # torchvision vgg16


def test_small_vgg_trains_like_torch():
    """Five SGD steps with momentum on a small VGG: the loss falls, and the trajectory (losses,
    gradients, weight displacements) follows torch's step by step."""
    cfg = [(3, 16, 1), (16, 32, 2), (32, 64, 2)]
    m = he_init(models.vgg(cfg, in_channels=3, num_classes=10, input_size=32, width_multiplier=0.5,
                           hidden=64, seed=0), 4)
    assert m.state_dict()["features.0.weight"].shape == (8, 3, 3, 3)
    assert m.state_dict()["classifier.0.weight"].shape == (64, 32 * 4 * 4)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = np.array([1, 7, 3, 7])
    first = nn.CrossEntropyLoss()(m.forward(x), y)
    last = check_parity(m, torch_vgg(cfg, 10, width=0.5, hidden=64, final=4), x, y, lr=0.05, steps=5)
    assert last < 0.97 * first, (first, last)
    with pytest.raises(ValueError, match="chain"):
        models.vgg([(3, 8, 1), (16, 32, 1)])
    with pytest.raises(ValueError, match="too small"):
        models.vgg(cfg, input_size=4)


def test_bad_model_options():
    with pytest.raises(ValueError, match="activation"):
        models.lenet5("gelu")
    with pytest.raises(ValueError, match="pool"):
        models.lenet5(pool="lp")

"""Class models and unit visualisation: they reach their targets on a trained LeNet-5; the
Fourier parameterisation's hand-written backward is the adjoint it claims to be; the gradient the
ascent climbs is that of S_c(jitter(I)) - l2 ||I||^2, by finite differences on a float64 net."""
import numpy as np
import pytest

from fastconv import interpret as I
from fastconv.interpret.optimize import gaussian_blur, infer_input_size
from fastconv.interpret.parameterize import FourierImage
from fastconv import models


def _rises(score):
    """The score rises on average along the trace: later steps beat earlier ones."""
    steps = len(score)
    first, last = score[: steps // 5].mean(axis=0), score[-steps // 5:].mean(axis=0)
    return np.all(last > first) and np.all(np.diff(score, axis=0).mean(axis=0) > 0)


@pytest.mark.parametrize("preset", [None, "robust"])
def test_class_model_reaches_every_digit(trained_lenet, preset):
    net = trained_lenet()
    vis = I.class_model(net, list(range(10)), preset=preset)
    assert vis.image.shape == (10, 1, 32, 32) and vis.image.dtype == np.float32
    assert vis.trace.score.shape == vis.trace.prob.shape == vis.trace.norm.shape == (200, 10)
    # the robust preset trades a little confidence (blurred, jittered, clipped images) for looks
    assert vis.trace.prob[-1].min() >= (0.99 if preset is None else 0.95), vis.trace.prob[-1]
    assert _rises(vis.trace.score)
    # the final image really is classified so: re-evaluate it from scratch
    np.testing.assert_array_equal(net.predict(vis.image), np.arange(10))
    if preset == "robust":
        assert vis.image.min() >= 0 and vis.image.max() <= 1


def test_class_model_single_target_and_seed(trained_lenet):
    net = trained_lenet()
    a = I.class_model(net, 3, steps=20)
    b = I.class_model(net, 3, steps=20)
    assert a.image.shape == (1, 1, 32, 32) and a.trace.score.shape == (20, 1)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, I.class_model(net, 3, steps=20, seed=1).image)
    # the images of a batch are optimised independently: changing one target leaves the others
    np.testing.assert_allclose(I.class_model(net, [7, 3], steps=20).image[1],
                               I.class_model(net, [1, 3], steps=20).image[1], rtol=1e-6, atol=1e-6)


def test_maximize_activation_channel_mean_and_unit(trained_lenet):
    net = trained_lenet()
    vis = I.maximize_activation(net, "features.3", [0, 1, 2], steps=60)
    assert vis.image.shape == (3, 1, 32, 32) and vis.trace.prob is None
    assert _rises(vis.trace.score)
    # the objective is the conv's output (before its ReLU), averaged over the map
    pre = net.forward(vis.image, until="features.3")
    assert np.all(pre[np.arange(3), [0, 1, 2]].mean(axis=(1, 2)) > vis.trace.score[-1])  # the last step improved it
    hidden = I.maximize_activation(net, "classifier.2", [5, 80], steps=30)  # units of a Linear layer
    assert hidden.image.shape == (2, 1, 32, 32) and _rises(hidden.trace.score)
    unit = I.maximize_activation(net, "features.0", 4, position=(10, 12), steps=40)
    assert _rises(unit.trace.score)
    # only the unit's 5x5 receptive field can change the unit: outside it the image keeps its
    # noise (the L2 term only shrinks it), inside it moves far more
    change = np.abs(unit.image[0, 0] - I.maximize_activation(net, "features.0", 4, position=(10, 12), steps=1)
                    .image[0, 0])
    inside = np.zeros((32, 32), bool)
    inside[10:15, 12:17] = True
    assert change[inside].mean() > 20 * change[~inside].mean()


def test_fourier_backward_is_the_adjoint():
    rng = np.random.default_rng(0)
    for shape in [(2, 3, 8, 8), (1, 1, 7, 10)]:
        p = FourierImage(shape, rng, std=0.3)
        y0 = p.image().copy()
        g = rng.standard_normal(shape)
        analytic = p.backward(g)
        # finite differences of <image(params), g> in a few random directions
        for _ in range(4):
            d = rng.standard_normal(p.params.shape)
            base = p.params.copy()
            p.params = base + 1e-6 * d
            plus = (p.image() * g).sum()
            p.params = base - 1e-6 * d
            minus = (p.image() * g).sum()
            p.params = base
            assert abs((plus - minus) / 2e-6 - (analytic * d).sum()) < 1e-5 * max(1, abs((analytic * d).sum()))
        p.set(y0)
        np.testing.assert_allclose(p.image(), y0, atol=1e-9)


def test_gaussian_blur_matches_scipy():
    """The blur of preset="robust" (augment's compiled one, with the settings _ascend passes)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 11, 9))
    got = gaussian_blur(x, 1.0, truncate=3.0, border="reflect")
    ref = np.stack([[ndimage.gaussian_filter(c, 1.0, mode="mirror", truncate=3.0) for c in img] for img in x])
    np.testing.assert_allclose(got, ref, atol=1e-6)  # the compiled kernel's taps are not scipy's to the last bit


def test_input_size_inference():
    assert infer_input_size(models.lenet5(seed=0)) == (32, 32)
    assert infer_input_size(models.vgg(((1, 4, 1), (4, 4, 1)), input_size=28, hidden=8, num_classes=3,
                                       seed=0)) == (28, 28)
    assert infer_input_size(models.vgg(((3, 4, 1),), hidden=8, num_classes=3, seed=0)) == (224, 224)


def test_robust_preset_on_an_rgb_net():
    """3 channels: the decorrelated-colour Fourier parameterisation, jitter, blur and clipping."""
    net = models.vgg(((3, 4, 1), (4, 8, 1)), input_size=16, hidden=8, num_classes=3, seed=0)
    vis = I.class_model(net, [0, 2], steps=12, preset=I.Robust(blur_every=3))
    assert vis.image.shape == (2, 3, 16, 16)
    assert vis.image.min() >= 0 and vis.image.max() <= 1
    assert vis.trace.score[-3:].mean() > vis.trace.score[:3].mean()


# ---------------------------------------------------------------- the objective, independently

def _tiny_float64_net():
    """Smooth (tanh, average pool) so that finite differences see no kinks; float64 so that they
    can be tight."""
    from fastconv import nn
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, seed=1, dtype=np.float64), nn.Tanh(), nn.AvgPool2d(2),
                        nn.Conv2d(4, 5, 3, seed=2, dtype=np.float64), nn.Tanh(), nn.Flatten(),
                        nn.Linear(5 * 2 * 2, 3, seed=3, dtype=np.float64))
    return net.eval()


def _class_scores(net, x):
    """S(x) for every class, by fastconv.reference's float64 ops from the layers' weights."""
    import fastconv.reference as R
    conv1, _, _, conv2, _, _, fc = [layer for _, layer in net.leaves()]
    h = R.tanh(R.conv2d(x, conv1.weight.data, conv1.bias.data, padding=1))
    h = R.tanh(R.conv2d(R.avg_pool2d(h, 2), conv2.weight.data, conv2.bias.data))
    return R.linear(h.reshape(len(x), -1), fc.weight.data, fc.bias.data)


def _record_ascent(monkeypatch):
    """Every step's (parameters, the gradient the ascent climbs, the network's input): the
    optimiser and the network's forward are spied on, nothing else changes."""
    from fastconv import nn
    from fastconv.interpret import optimize
    steps, inputs = [], []
    real_step, real_forward = nn.Adam.step, optimize.Tape.forward

    def step(self):
        for p in self.params:  # nn.Adam descends: the ascent hands it minus the gradient it climbs
            steps.append((p.data.copy(), -np.array(p.grad, copy=True)))
        return real_step(self)

    def forward(self, x, *args, **kwargs):
        inputs.append(np.array(x, copy=True))
        return real_forward(self, x, *args, **kwargs)

    monkeypatch.setattr(nn.Adam, "step", step)
    monkeypatch.setattr(optimize.Tape, "forward", forward)
    return steps, inputs


@pytest.mark.parametrize("fourier", [True, False], ids=["fourier", "pixels"])
def test_class_model_climbs_the_gradient_of_score_minus_l2(monkeypatch, fourier):
    """At every step, the gradient the ascent feeds Adam is d/dparams [S_c(jitter(I)) - l2 ||I||^2]
    (I the image the parameters give, jitter the step's shift), checked by central differences
    of that objective computed independently (fastconv.reference's ops)."""
    from fastconv.interpret.parameterize import PixelImage
    net, targets, l2, shape = _tiny_float64_net(), np.array([2, 0]), 0.3, (2, 3, 8, 8)
    steps, inputs = _record_ascent(monkeypatch)
    # jitter of up to 2 pixels; no blur or clipping, which act between steps, not on the gradient
    robust = I.Robust(jitter=2, blur_every=0, norm_pct=0, contrib_pct=0, fourier=fourier)
    I.class_model(net, targets, steps=4, lr=0.1, l2=l2, preset=robust, input_size=8)
    inputs = inputs[-4:]  # the ascent's own forwards (class_model probes the output size first)
    assert len(steps) == 4
    param = FourierImage(shape, np.random.default_rng(0)) if fourier else PixelImage(np.zeros(shape))
    rng = np.random.default_rng(5)
    shifts = set()
    for (params, grad), x in zip(steps, inputs):
        param.params = params
        image = param.image().copy()
        # the step's jitter: the shift that turns the image into what the network was fed
        shift = next(s for s in np.ndindex(5, 5)
                     if np.array_equal(np.roll(image, (s[0] - 2, s[1] - 2), axis=(2, 3)), x))
        shift = (shift[0] - 2, shift[1] - 2)
        shifts.add(shift)

        def objective(p):
            param.params = p
            img = param.image()
            scores = _class_scores(net, np.roll(img, shift, axis=(2, 3)))[np.arange(2), targets]
            return scores.sum() - l2 * (img * img).sum()

        for _ in range(3):  # directional derivatives along random directions
            d = rng.standard_normal(params.shape)
            eps = 1e-5
            numeric = (objective(params + eps * d) - objective(params - eps * d)) / (2 * eps)
            analytic = (grad * d).sum()
            assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(analytic)), (shift, numeric, analytic)
    assert shifts - {(0, 0)}  # the jitter really moved the image


def test_larger_l2_gives_a_smaller_image():
    """The L2 term works: the same ascent with a larger penalty ends with a smaller ||I||, step
    after step."""
    net = _tiny_float64_net()
    norms = [I.class_model(net, [0, 1, 2], steps=40, l2=l2, input_size=8).trace.norm for l2 in (0.0, 0.05, 0.5)]
    for weaker, stronger in zip(norms, norms[1:]):
        assert np.all(stronger[-1] < weaker[-1]), (weaker[-1], stronger[-1])
        assert np.all(stronger[10:] <= weaker[10:])

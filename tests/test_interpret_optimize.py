"""Class models and unit visualisation: they reach their targets on a trained LeNet-5; the
Fourier parameterisation's hand-written backward is the adjoint it claims to be."""
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

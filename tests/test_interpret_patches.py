"""top_patches against a brute-force sort of every unit's activation over the same images; it
and feature_maps against activations computed independently (fastconv.reference's float64 ops
on the layers' weights, with "read after the non-linearity" written out per layer)."""
import numpy as np
import pytest

import fastconv.reference as R
from fastconv import data, models
from fastconv import interpret as I
from fastconv.interpret.activations import activation_end


def _brute_force(net, layer, images, k):
    acts = net.forward(images, until=net.leaves()[activation_end(net, layer) - 1][0])
    n, channels, h, w = acts.shape
    flat = acts.transpose(1, 0, 2, 3).reshape(channels, -1)
    order = np.stack([np.lexsort((np.arange(flat.shape[1]), -flat[c].astype(np.float64)))[:k]
                      for c in range(channels)])
    scores = np.take_along_axis(flat, order, 1)
    index, pos = np.divmod(order, h * w)
    return scores, index, np.stack(np.divmod(pos, w), axis=-1)


def _boxes(net, layer, positions, size):
    rf = I.receptive_field(net, size)[activation_end(net, layer) - 1]
    return np.array([[rf.box(y, x, (size, size)) for y, x in row] for row in positions])


@pytest.mark.parametrize("layer,batch_size", [("features.3", 64), ("features.0", 100), ("features.5", 1000)])
def test_equals_brute_force_on_trained_lenet(trained_lenet, mnist_dir, layer, batch_size):
    net = trained_lenet()
    x, _ = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x = x[:300]
    got = I.top_patches(net, layer, x, k=9, batch_size=batch_size)
    scores, index, positions = _brute_force(net, layer, x, 9)
    np.testing.assert_array_equal(got.scores, scores)
    np.testing.assert_array_equal(got.indices, index)        # dead channels: ties go to the earliest unit
    np.testing.assert_array_equal(got.positions, positions)
    np.testing.assert_array_equal(got.boxes, _boxes(net, layer, positions, 32))
    # each patch is its box cut from its image
    c, j = np.unravel_index(np.argmax(got.scores), got.scores.shape)
    top, left, bottom, right = got.boxes[c, j]
    patch = got.patches[c, j]
    assert patch.shape[-1] == I.receptive_field(net, 32)[activation_end(net, layer) - 1].size[0]
    assert np.isclose(np.abs(patch).sum(), np.abs(x[got.indices[c, j], :, top:bottom, left:right]).sum())


def test_padded_net_clips_boxes_and_fills_outside_with_zeros():
    rng = np.random.default_rng(0)
    net = models.vgg(((1, 3, 2), (3, 4, 1)), input_size=16, hidden=8, num_classes=3, seed=0)
    x = rng.random((40, 1, 16, 16)).astype(np.float32)
    got = I.top_patches(net, "features.5", x, k=5, batch_size=16)
    scores, index, positions = _brute_force(net, "features.5", x, 5)
    np.testing.assert_array_equal(got.scores, scores)
    np.testing.assert_array_equal(got.indices, index)
    np.testing.assert_array_equal(got.boxes, _boxes(net, "features.5", positions, 16))
    size = got.patches.shape[-1]
    rf = I.receptive_field(net, 16)[activation_end(net, "features.5") - 1]
    for c in range(got.scores.shape[0]):
        for j in range(5):
            full = rf.box(*got.positions[c, j])
            top, left, bottom, right = got.boxes[c, j]
            inside = np.zeros((size, size), bool)
            inside[top - full[0]:bottom - full[0], left - full[1]:right - full[1]] = True
            assert np.all(got.patches[c, j][:, ~inside] == 0)
            np.testing.assert_array_equal(got.patches[c, j][:, inside].reshape(-1),
                                          x[got.indices[c, j], :, top:bottom, left:right].reshape(-1))


def test_k_larger_than_units_is_refused():
    net = models.lenet5("relu", "max", seed=0)
    with pytest.raises(ValueError, match="k must be"):
        I.top_patches(net, "features.5", np.zeros((1, 1, 32, 32), np.float32), k=26)


# ------------------------------------------------------------ against an independent forward pass

ACTIVATIONS = {"relu": R.relu, "sigmoid": R.sigmoid, "tanh": R.tanh}


def reference_lenet_activations(net, activation, pool, x):
    """{layer name: what that layer's units output} for models.lenet5(activation, pool), by
    fastconv.reference in float64. A Conv2d's units are read after the non-linearity that
    follows it (the rule top_patches and feature_maps document); a pooling layer's are its output."""
    layers = dict(net.leaves())
    act = ACTIVATIONS[activation]

    def conv(name, h):
        return act(R.conv2d(h, layers[name].weight.data, layers[name].bias.data))

    def subsample(h):
        return R.max_pool2d(h, 2, 2)[0] if pool == "max" else R.avg_pool2d(h, 2, 2)

    out = {"features.0": conv("features.0", x)}
    out["features.2"] = subsample(out["features.0"])
    out["features.3"] = conv("features.3", out["features.2"])
    out["features.5"] = subsample(out["features.3"])
    return out


LENETS = [("sigmoid", "avg"), ("relu", "max"), ("tanh", "max")]


@pytest.mark.parametrize("activation,pool", LENETS)
def test_top_patches_scores_are_the_layer_activations_after_the_nonlinearity(mnist_dir, activation, pool):
    """Each returned score is the independent activation at the returned image and position, and
    the scores are each channel's k largest activations over all images and positions (compared
    as values, so a float32 near-tie may order two units either way)."""
    net = models.lenet5(activation, pool, seed=3)
    x, _ = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x = x[:200]
    reference = reference_lenet_activations(net, activation, pool, x)
    k = 9
    for layer in ("features.0", "features.2", "features.3", "features.5"):
        got = I.top_patches(net, layer, x, k=k, batch_size=64)
        ref = reference[layer]
        tol = 1e-5 * np.abs(ref).max()
        channels = ref.shape[1]
        assert got.scores.shape == (channels, k)
        at_returned = ref[got.indices, np.arange(channels)[:, None], got.positions[..., 0], got.positions[..., 1]]
        np.testing.assert_allclose(got.scores, at_returned, rtol=0, atol=tol, err_msg=layer)
        best = -np.sort(-ref.transpose(1, 0, 2, 3).reshape(channels, -1), axis=1)[:, :k]
        np.testing.assert_allclose(got.scores, best, rtol=0, atol=tol, err_msg=layer)
        units = got.indices * ref[0, 0].size + got.positions[..., 0] * ref.shape[3] + got.positions[..., 1]
        assert all(len(set(row)) == k for row in units), layer  # k different units per channel


@pytest.mark.parametrize("activation,pool", LENETS)
def test_feature_maps_are_the_layer_activations_after_the_nonlinearity(mnist_dir, activation, pool):
    net = models.lenet5(activation, pool, seed=4)
    x, _ = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x = x[:16]
    reference = reference_lenet_activations(net, activation, pool, x)
    every_conv = I.feature_maps(net, x)  # default: every Conv2d, after its non-linearity
    assert sorted(every_conv) == ["features.0", "features.3"]
    chosen = I.feature_maps(net, x, ["features.5", "features.0", "features.2"])
    assert list(chosen) == ["features.5", "features.0", "features.2"]
    for maps in (every_conv, chosen):
        for layer, got in maps.items():
            ref = reference[layer]
            assert isinstance(got, np.ndarray) and got.shape == ref.shape and got.dtype == np.float32, layer
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max(), err_msg=layer)

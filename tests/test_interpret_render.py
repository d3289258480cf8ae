"""Every renderer writes a PNG that Pillow reads back at the size it returned."""
import numpy as np
import pytest
from PIL import Image

from fastconv import models
from fastconv import interpret as I
from fastconv.interpret import render


def _roundtrip(img, path):
    with Image.open(path) as back:
        assert back.format == "PNG" and back.size == img.size and back.mode == "RGB"
        return np.asarray(back)


def test_grid_layout_size(tmp_path):
    rng = np.random.default_rng(0)
    img = render.grid(rng.random((3, 1, 8, 8)), ncols=3, cell=32, path=tmp_path / "g.png")
    # 3 tiles of 8 px scaled 4x = 32 px, 4 px gaps around them, no labels or title
    assert img.size == (3 * (32 + 4) + 4, 32 + 4 + 4)
    _roundtrip(img, tmp_path / "g.png")


@pytest.mark.parametrize("channels", [1, 3])
def test_grid_labels_rgb_and_grey(tmp_path, channels):
    rng = np.random.default_rng(1)
    tiles = rng.random((5, channels, 10, 12))
    img = render.grid(tiles, [f"t{i}" for i in range(5)], ncols=2, title="title", row_labels=["a", "b", "c"],
                      path=tmp_path / "g.png")
    pixels = _roundtrip(img, tmp_path / "g.png")
    assert img.size[0] > 2 * 48 and img.size[1] > 3 * 48
    if channels == 1:
        # grey tiles through the grey colour map: R == G == B everywhere
        assert np.array_equal(pixels[..., 0], pixels[..., 1])


def test_per_map_normalisation():
    tiles = np.stack([np.linspace(0, 1, 64).reshape(1, 8, 8), 1000 + np.linspace(0, 5, 64).reshape(1, 8, 8)])
    pixels = np.asarray(render.grid(tiles, ncols=2, cell=8))
    first, second = pixels[4:12, 4:12, 0], pixels[4:12, 16:24, 0]
    assert first.min() == second.min() == 0 and first.max() == second.max() == 255


def test_all_renderers(tmp_path, trained_lenet, mnist_dir):
    from fastconv import data
    net = trained_lenet()
    x, y = data.mnist(mnist_dir, "test", pad=2, dtype="float32")
    x, y = x[:200], y[:200]
    maps = I.feature_maps(net, x[:2], ["features.0"])["features.0"]
    outputs = {
        "maps": render.feature_map_grid(maps, "features.0", path=tmp_path / "maps.png"),
        "filters": render.filter_grid(I.first_layer_filters(net), "features.0", path=tmp_path / "filters.png"),
        "rgb_filters": render.filter_grid(models.vgg(((3, 4, 1),), input_size=8, hidden=4, num_classes=2, seed=0)
                                          [0][0].weight.data, path=tmp_path / "rgb_filters.png"),
        "patches": render.patch_grid(I.top_patches(net, "features.3", x, k=4), channels=[0, 1, 2],
                                     path=tmp_path / "patches.png"),
        "classes": render.visualization_grid(I.class_model(net, [0, 1], steps=3), path=tmp_path / "classes.png"),
        "units": render.visualization_grid(I.maximize_activation(net, "features.3", [0, 1], steps=3), kind="ch",
                                           path=tmp_path / "units.png"),
        "saliency": render.overlay(x[:4], I.saliency(net, x[:4], y[:4]), labels=list(y[:4]),
                                   path=tmp_path / "saliency.png"),
        "gradcam": render.overlay(x[:4], I.grad_cam(net, x[:4], y[:4], "features.3"), path=tmp_path / "gradcam.png"),
        "attribution": render.attribution_grid(x[:3], {"saliency": I.saliency(net, x[:3], y[:3]),
                                                       "guided": I.guided_backprop(net, x[:3], y[:3])},
                                               labels=list(y[:3]), path=tmp_path / "attribution.png"),
    }
    for name, img in outputs.items():
        _roundtrip(img, tmp_path / f"{name}.png")
    # one row of k=4 patches per requested channel; inputs + one row per attribution method
    assert outputs["patches"].size[1] > 3 * 48
    assert outputs["attribution"].size[1] > 3 * 48 and outputs["attribution"].size[0] > 3 * 48


def test_renderer_bad_input():
    with pytest.raises(ValueError, match="images must be"):
        render.grid(np.zeros((2, 2, 5, 5)))
    with pytest.raises(ValueError, match="labels"):
        render.grid(np.zeros((2, 1, 5, 5)), ["one"])
    with pytest.raises(ValueError, match="heatmaps"):
        render.overlay(np.zeros((2, 1, 5, 5)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="cmap"):
        render.colorize(np.zeros((2, 2)), "nope")

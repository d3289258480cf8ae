"""The augmentation picture and its CLI hook."""

import numpy as np
import pytest

from fastconv.augment import HorizontalFlip, Rotate
from fastconv.cli import main
from fastconv.augment.grid import draw_grid


def photo():
    datasets = pytest.importorskip("sklearn.datasets")
    return datasets.load_sample_image("china.jpg")[::4, ::4]


def test_grid_png_holds_each_panel(tmp_path):
    from PIL import Image
    img = photo()
    path = draw_grid(img, tmp_path / "g.png", [None, ("flip", HorizontalFlip(p=1.0)), Rotate((90, 90))],
                     columns=3, max_side=10_000)
    grid = np.asarray(Image.open(path).convert("RGB"))
    h, w = img.shape[:2]
    pad, text_h = 6, 16
    tile = lambda c: grid[pad + text_h:pad + text_h + h, pad + c * (w + pad):pad + c * (w + pad) + w]
    np.testing.assert_array_equal(tile(0), img)
    np.testing.assert_array_equal(tile(1), img[:, ::-1])
    assert grid.shape == (h + text_h + 2 * pad, 3 * (w + pad) + pad, 3)


def test_default_grid_and_cli(tmp_path):
    from PIL import Image
    src = tmp_path / "in.png"
    Image.fromarray(photo()).save(src)
    assert main(["augment", str(src), "--out", str(tmp_path / "grid.png")]) == 0  # the real CLI
    assert Image.open(tmp_path / "grid.png").size[0] > 4 * 100
    with pytest.raises(TypeError, match="transforms\\[0\\]"):
        draw_grid(photo(), tmp_path / "x.png", [lambda x: x])

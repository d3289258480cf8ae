"""A picture of augmentation: one photo under several transforms, drawn as a labelled grid
(the lecture's original / flip / zoom / rotations / blur panel), saved with Pillow."""
from __future__ import annotations

import pathlib

import numpy as np

from fastconv.augment.compose import Compose
from fastconv.augment.transforms import (Affine, ColorJitter, GaussianBlur, GaussianNoise, HorizontalFlip,
                                         RandomResizedCrop, Rotate, Scale, Transform, VerticalFlip)

__all__ = ["default_panels", "draw_grid"]


def default_panels():
    """(label, transform or None for the original) in the lecture's order."""
    return [
        ("original", None),
        ("horizontal flip", HorizontalFlip(p=1.0)),
        ("vertical flip", VerticalFlip(p=1.0)),
        ("zoom in x1.4", Scale((1.4, 1.4))),
        ("zoom out x0.7", Scale((0.7, 0.7), border="reflect")),
        ("rotate +15", Rotate((15, 15))),
        ("rotate -30", Rotate((-30, -30))),
        ("rotate 90", Rotate((90, 90))),
        ("affine (random)", Affine(rotate=20, translate=0.1, scale=(0.8, 1.2), shear=10, border="reflect")),
        ("random resized crop", RandomResizedCrop(1, scale=(0.2, 0.5))),  # size set to the image's below
        ("gaussian blur s=3", GaussianBlur((3.0, 3.0), p=1.0)),
        ("colour jitter", ColorJitter(0.4, 0.4, 0.6, 0.1)),
        ("gaussian noise s=0.1", GaussianNoise(0.1)),
    ]


def _rgb_uint8(image):
    """A path (read by fastconv.data.load_image) or an (H, W[, C]) array -> (H, W, 3) uint8."""
    if isinstance(image, (str, pathlib.Path)):
        from fastconv.data import load_image
        image = load_image(image, mode="RGB").transpose(1, 2, 0)  # float in [0, 1]: made uint8 below
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 3) or a path, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image[:, :, :3]
    if image.dtype != np.uint8:
        image = np.clip(np.rint(np.asarray(image, np.float64) * 255), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def draw_grid(image, out_path, transforms=None, seed=0, columns=4, max_side=320):
    """Draw `image` under each transform into a grid saved at out_path (PNG); returns the path.

    transforms: a list of Transform or (label, Transform) (None = the original); default
    default_panels(). Large photos are first shrunk so that their longer side is max_side.
    """
    from PIL import Image, ImageDraw
    img = _rgb_uint8(image)
    if max(img.shape[:2]) > max_side:
        k = max_side / max(img.shape[:2])
        size = (max(1, round(img.shape[1] * k)), max(1, round(img.shape[0] * k)))
        img = np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))
    h, w = img.shape[:2]
    panels = default_panels() if transforms is None else [
        t if isinstance(t, tuple) else (type(t).__name__ if t is not None else "original", t) for t in transforms]
    tiles = []
    for i, (label, t) in enumerate(panels):
        if t is not None and not isinstance(t, Transform):
            raise TypeError(f"transforms[{i}] must be a fastconv.augment Transform, got {type(t).__name__}")
        if isinstance(t, RandomResizedCrop) and t.size != (h, w):
            t = RandomResizedCrop((h, w), scale=t.scale, ratio=t.ratio)
        out = img if t is None else Compose([t], seed=seed).apply_images(img, start_index=i)
        if out.shape[:2] != (h, w):  # e.g. a crop to another size: fit it into the tile
            out = np.asarray(Image.fromarray(out).resize((w, h), Image.BILINEAR))
        tiles.append((label, out))
    columns = max(1, min(columns, len(tiles)))
    rows = (len(tiles) + columns - 1) // columns
    pad, text_h = 6, 16
    canvas = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + text_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (label, tile) in enumerate(tiles):
        r, c = divmod(k, columns)
        x0, y0 = pad + c * (w + pad), pad + r * (h + text_h + pad)
        draw.text((x0 + 2, y0 + 2), label, fill="black")
        canvas.paste(Image.fromarray(tile), (x0, y0 + text_h))
    out_path = pathlib.Path(out_path)
    canvas.save(out_path, format="PNG")
    return out_path

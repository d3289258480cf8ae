"""Report section: the augmentation panel (the lecture's flip / rotate / shift / zoom / colour /
blur / noise on a photo) and what the net saw: one digit under the training augmentation."""
from __future__ import annotations

import numpy as np

from fastconv.report.html import Section, figure, figures, paragraph


def photo_panels():
    from fastconv.augment import (ColorJitter, GaussianBlur, GaussianNoise, HorizontalFlip, Rotate, Scale,
                                  Translate, VerticalFlip)
    return [("original", None), ("horizontal flip", HorizontalFlip(p=1.0)), ("vertical flip", VerticalFlip(p=1.0)),
            ("rotate +20", Rotate((20, 20))), ("shift", Translate((0.15, 0.15))), ("zoom in x1.4", Scale((1.4, 1.4))),
            ("zoom out x0.7", Scale((0.7, 0.7), border="reflect")), ("colour jitter", ColorJitter(0.4, 0.4, 0.6, 0.1)),
            ("gaussian blur s=2", GaussianBlur((2.0, 2.0), p=1.0)), ("gaussian noise s=0.08", GaussianNoise(0.08))]


def _digit_grid(path, image, pipeline, draws=15, columns=8, scale=3):
    """The original digit (top left) and `draws` augmented copies in rows of `columns`,
    upscaled (nearest) with a white line between tiles."""
    from PIL import Image
    tiles = np.concatenate([image[None], pipeline(np.repeat(image[None], draws, axis=0))])[:, 0]
    tiles = np.pad(np.clip(tiles, 0, 1), ((0, 0), (1, 1), (1, 1)), constant_values=1)
    rows = [np.concatenate(list(tiles[i:i + columns]), axis=1) for i in range(0, len(tiles), columns)]
    sheet = np.concatenate(rows, axis=0)
    img = Image.fromarray((sheet * 255).astype(np.uint8))
    img.resize((sheet.shape[1] * scale, sheet.shape[0] * scale), Image.NEAREST).save(path, format="PNG")


def build(ctx):
    from fastconv.augment.grid import draw_grid
    from fastconv.augment.presets import digit_augmentation
    draw_grid(ctx.photo, ctx.path("augmentation.png"), photo_panels(), seed=ctx.seed, columns=5, max_side=200)
    _digit_grid(ctx.path("augmentation_digits.png"), ctx.train[0][0], digit_augmentation(ctx.seed + 1))
    body = (paragraph("Augmentation is drawn afresh for every batch of every epoch, so the net never sees the "
                      "same image twice. Geometric steps are fused into one warp per image; everything runs in "
                      "fastconv's compiled kernels.")
            + figures(figure("augmentation.png", "One photo under each transform", photo=True),
                      figure("augmentation_digits.png", "A training digit (top left) and 15 draws of the augmentation "
                             "used in training: rotation up to 12°, shift up to 10%, zoom 0.9-1.1, some noise")))
    return Section("augmentation", "Augmentation", body, ["augmentation.png", "augmentation_digits.png"])

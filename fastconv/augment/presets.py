"""Ready-made pipelines, shared by `fastconv train` and the report (which shows what training saw)."""
from __future__ import annotations

from fastconv.augment.compose import Compose
from fastconv.augment.transforms import Affine, GaussianNoise


def digit_augmentation(seed=0):
    """Small rotations, shifts and zooms plus a little noise: what handwriting varies by.
    No flips (a flipped 2 is not a 2)."""
    return Compose([Affine(rotate=12, translate=0.1, scale=(0.9, 1.1)), GaussianNoise((0.0, 0.05), p=0.5)],
                   seed=seed)

"""On-the-fly data augmentation for (N, C, H, W) batches: per-sample random parameters,
seeded and chunking-invariant, geometric steps fused into one warp, compiled kernels
(csrc/augment/) behind fastconv.augment.functional.

    from fastconv.augment import Compose, HorizontalFlip, Affine, ColorJitter
    pipeline = Compose([HorizontalFlip(), Affine(rotate=15, translate=0.1, scale=(0.9, 1.1)),
                        ColorJitter(0.2, 0.2, 0.2, 0.02)], seed=0)
    batch = pipeline(batch)          # fresh parameters on every call
"""
from fastconv.augment import functional
from fastconv.augment.compose import AugmentParams, Compose
from fastconv.augment.images import batch_to_images, images_to_batch
from fastconv.augment.transforms import (Affine, Brightness, ColorJitter, Contrast, Cutout,
                                         GaussianBlur, GaussianNoise, HorizontalFlip, Hue,
                                         RandomResizedCrop, Rotate, SaltAndPepper, Saturation,
                                         Scale, Transform, Translate, VerticalFlip)

__all__ = ["functional", "Compose", "AugmentParams", "images_to_batch", "batch_to_images",
           "Transform", "HorizontalFlip", "VerticalFlip", "Rotate", "Translate", "Scale", "Affine",
           "RandomResizedCrop", "Brightness", "Contrast", "Saturation", "Hue", "ColorJitter",
           "GaussianBlur", "GaussianNoise", "SaltAndPepper", "Cutout"]

"""Conversion between image arrays (H, W, C) / (N, H, W, C) - uint8 in [0, 255] or float in
[0, 1] - and the (N, C, H, W) float32 batches the augmentation kernels work on."""
from __future__ import annotations

import numpy as np

__all__ = ["images_to_batch", "batch_to_images"]


def images_to_batch(images):
    """(batch float32 (N, C, H, W) in [0, 1], meta) where meta lets batch_to_images undo it."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy array, got {type(images).__name__}")
    if images.ndim == 2:
        images = images[:, :, None]
    single = images.ndim == 3
    if single:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"images must be (H, W), (H, W, C) or (N, H, W, C), got shape {images.shape}")
    if images.dtype == np.uint8:
        batch = images.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255)
    elif images.dtype in (np.float32, np.float64):
        batch = np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)
    else:
        raise ValueError(f"images must have dtype uint8, float32 or float64, got {images.dtype}")
    return np.ascontiguousarray(batch), (single, images.dtype)


def batch_to_images(batch, meta):
    single, dtype = meta
    images = batch.transpose(0, 2, 3, 1)
    if dtype == np.uint8:
        images = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)
    else:
        images = np.ascontiguousarray(images, dtype=dtype)
    return images[0] if single else images
